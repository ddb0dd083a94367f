// Package admin is the HTTP side of goangel's admin listener: /metrics,
// /healthz, /readyz, the instances API, the live status page at / and,
// when enabled, /debug/pprof/.
//
// It does not import package production: the runner plugs itself in through
// the small Control interface (its own verbs and a Snapshot of its
// instances), so that every state change the admin listener makes goes
// through the runner's one code path, and so that this package is tested
// with a fake.
//
// Access: with a token set (Config.Token), every endpoint but /healthz and
// /readyz needs it, as "Authorization: Bearer TOKEN" (or HTTP Basic with the
// token as the password, so that a browser can open the status page). State
// changes are POST only, and refused when a browser sends them from another
// origin (net/http.CrossOriginProtection); every endpoint refuses a Host
// header that is not an IP address, localhost or a name of Config.Hosts
// (DNS rebinding).
package admin
