package admin

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// guard is what every request passes before the routes: the Host
// allow-list (against DNS rebinding, which makes a web page same-origin with
// the admin listener), then net/http.CrossOriginProtection for the verbs
// (POST from a page on another origin, with or without the token: a
// browser sends cached Basic credentials by itself). Scripts and the ctl
// command send neither Sec-Fetch-Site nor Origin and pass.
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.logf("Admin listener: refused a cross-origin %s %s (Origin %q, Sec-Fetch-Site %q)", r.Method, r.URL.Path, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"))
		writeError(w, http.StatusForbidden, "cross-origin request refused: the admin listener's verbs are not for other web pages (scripts and the ctl command send no Origin and pass)")
	}))
	guarded := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			s.logf("Admin listener: refused Host %q for %s %s", r.Host, r.Method, r.URL.Path)
			writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not this admin listener's address: use its IP address (http://127.0.0.1:PORT) or localhost, or allow the name with --admin-host", r.Host))
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// hostAllowed: host (the Host header, port optional) names an IP address,
// localhost, or one of Config.Hosts. A literal IP cannot be rebound to
// another server by DNS, so a page that reaches the listener through one is
// on the listener's own origin.
func (s *Server) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" || host == "localhost" {
		return true // HTTP/1.0 without Host; a Unix-socket client's default
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for _, h := range s.cfg.Hosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), host) {
			return true
		}
	}
	return false
}

// logf writes to ErrorLog (nil: the standard logger, as http.Server).
func (s *Server) logf(format string, args ...any) {
	if s.cfg.ErrorLog != nil {
		s.cfg.ErrorLog.Printf(format, args...)
	}
}

// cmdline is pprof's /debug/pprof/cmdline with Config.Cmdline (the
// command line with its secrets redacted) instead of os.Args.
func (s *Server) cmdline(w http.ResponseWriter, _ *http.Request) {
	args := os.Args
	if s.cfg.Cmdline != nil {
		args = s.cfg.Cmdline()
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprint(w, strings.Join(args, "\x00"))
}
