//go:build goangel_sup

// The build constraint above goes away at merge, together with
// zz_placeholder_admin.go: these accessors read the fields the sup branch adds
// to Event, Stats and InstanceStats.

package production

func eventCount(ev Event) int                      { return ev.Count }
func statsWanted(s Stats) int                      { return s.Wanted }
func statsReloading(s Stats) bool                  { return s.Reloading }
func instanceState(is InstanceStats) string        { return is.State }
func instanceLoad(is InstanceStats) (int64, int64) { return is.InFlight, is.Connections }
