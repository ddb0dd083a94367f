package admin_test

import (
	"bytes"
	"log"
	"strings"
	"testing"

	"github.com/goangel/angel/internal/admin"
)

// TestHostAllowList: every endpoint, /healthz included, refuses a Host that
// is not an IP address, localhost or a name of Config.Hosts (a DNS
// rebinding page names its own host); the verbs are not called.
func TestHostAllowList(t *testing.T) {
	f := &fake{snap: serving()}
	var logged bytes.Buffer
	s := newServer(t, f, func(c *admin.Config) {
		c.Hosts = []string{"admin.internal"}
		c.ErrorLog = log.New(&logged, "", 0)
	})
	for _, host := range []string{"127.0.0.1:9090", "[::1]:9090", "localhost:9090", "LOCALHOST", "10.1.2.3:9090", "admin.internal:9090", "admin.internal."} {
		if code, body, _ := do(t, s, "GET", "/healthz", "Host", host); code != 200 {
			t.Errorf("GET /healthz with Host %q: %d %s, want 200", host, code, body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/", "/instances"} {
		code, body, _ := do(t, s, "GET", path, "Host", "rebind.attacker.example:9090")
		if code != 421 || !strings.Contains(body, "rebind.attacker.example") || !strings.Contains(body, "--admin-host") {
			t.Errorf("GET %s with a foreign Host: %d %s, want 421 naming the Host and the flag", path, code, body)
		}
	}
	if code, _, _ := do(t, s, "POST", "/scale?n=1", "Host", "rebind.attacker.example:9090"); code != 421 {
		t.Errorf("POST /scale with a foreign Host: %d, want 421", code)
	}
	if len(f.calls) != 0 {
		t.Errorf("verbs called through a foreign Host: %v", f.calls)
	}
	if !strings.Contains(logged.String(), `refused Host "rebind.attacker.example:9090"`) {
		t.Errorf("the refusal is not logged:\n%s", logged.String())
	}
}

// TestCrossOriginVerbs: a browser's cross-origin POST is refused with or
// without the token (a browser sends cached Basic credentials by itself);
// same-origin requests and scripts (no Origin, no Sec-Fetch-Site) pass.
func TestCrossOriginVerbs(t *testing.T) {
	for _, token := range []string{"", "s3cret"} {
		f := &fake{snap: serving()}
		s := newServer(t, f, func(c *admin.Config) { c.Token = token })
		auth := []string{}
		if token != "" {
			auth = []string{"Authorization", "Basic OnMzY3JldA=="} // ":s3cret"
		}
		for _, hdr := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:8000"},
			{"Origin", "http://evil.example"},
		} {
			for _, path := range []string{"/scale?n=1", "/reload", "/instances/0/restart", "/instances/0/drain"} {
				code, body, _ := do(t, s, "POST", path, append(append([]string{}, auth...), hdr...)...)
				if code != 403 || !strings.Contains(body, "cross-origin") {
					t.Errorf("token %q: POST %s with %v: %d %s, want 403", token, path, hdr, code, body)
				}
			}
		}
		if len(f.calls) != 0 {
			t.Fatalf("token %q: verbs called by cross-origin requests: %v", token, f.calls)
		}
		if code, body, _ := do(t, s, "POST", "/scale?n=3", append(append([]string{}, auth...), "Sec-Fetch-Site", "same-origin")...); code != 200 {
			t.Errorf("token %q: same-origin POST /scale: %d %s", token, code, body)
		}
		if code, body, _ := do(t, s, "POST", "/reload", auth...); code != 200 {
			t.Errorf("token %q: a script's POST /reload: %d %s", token, code, body)
		}
		if strings.Join(f.calls, ",") != "scale 3,reload" {
			t.Errorf("token %q: calls %v, want the same-origin scale and the script's reload", token, f.calls)
		}
	}
}

// TestPprofCmdlineRedacted: /debug/pprof/cmdline shows Config.Cmdline.
func TestPprofCmdlineRedacted(t *testing.T) {
	s := newServer(t, &fake{snap: serving()}, func(c *admin.Config) {
		c.Pprof = true
		c.Cmdline = func() []string { return []string{"app", "--pubsub-password=REDACTED"} }
	})
	code, body, _ := do(t, s, "GET", "/debug/pprof/cmdline")
	if code != 200 || body != "app\x00--pubsub-password=REDACTED" {
		t.Errorf("GET /debug/pprof/cmdline: %d %q", code, body)
	}
}
