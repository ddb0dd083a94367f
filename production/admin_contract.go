// Accessors the admin adapter uses for the fields of Event, Stats and
// InstanceStats that the supervisor fills in.

package production

func eventCount(ev Event) int                      { return ev.Count }
func statsWanted(s Stats) int                      { return s.Wanted }
func statsReloading(s Stats) bool                  { return s.Reloading }
func instanceState(is InstanceStats) InstanceState { return is.State }
func instanceLoad(is InstanceStats) (int64, int64) { return is.InFlight, is.Connections }
