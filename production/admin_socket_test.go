package production_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goangel/angel/production"
)

// unixClient is an HTTP client that reaches every URL through the Unix
// socket path.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// TestAdminSocket: --admin-socket serves the admin API on a Unix socket
// with permissions 0600 (a relative path in $RUNTIME_DIRECTORY, as systemd
// sets it), verbs included; a stale socket file is replaced, a live one is
// a start-up error, and the file is gone after the runner stops.
func TestAdminSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")
	env := func(k string) (string, bool) {
		if k == "RUNTIME_DIRECTORY" {
			return dir, true
		}
		return "", false
	}
	// A stale socket: bound, then its process "ended" without removing it.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	h := startRunner(t, hello, []string{"-j", "1", "--admin-socket", "admin.sock"}, production.WithLookupEnv(env))
	if got := h.run.AdminSocket(); got != path {
		t.Fatalf("AdminSocket() = %q, want %q", got, path)
	}
	if h.run.AdminAddr() != nil {
		t.Errorf("AdminAddr() = %v without --admin-address", h.run.AdminAddr())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s: mode %v, want a socket with 0600", path, fi.Mode())
	}
	c := unixClient(path)
	defer c.CloseIdleConnections()
	call := func(method, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s over the socket: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("GET", "http://localhost/instances"); code != 200 || !strings.Contains(body, `"wanted": 1`) {
		t.Errorf("GET /instances over the socket: %d %s", code, body)
	}
	if code, body := call("POST", "http://localhost/scale?n=2"); code != 200 {
		t.Errorf("POST /scale?n=2 over the socket: %d %s", code, body)
	}
	if s := h.run.Stats(); s.Wanted != 2 {
		t.Errorf("wanted %d after scaling over the socket, want 2", s.Wanted)
	}
	if code, body := call("GET", "http://localhost/metrics"); code != 200 || !strings.Contains(body, "goangel_instances_wanted 2") {
		t.Errorf("GET /metrics over the socket: %d", code)
	}

	// A second runner on the same socket: a start-up error naming it.
	out := &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, out), production.WithLookupEnv(env))
	err = r.Run(context.Background(), []string{"-p", "0", "-j", "1", "--admin-socket", path})
	if production.ExitCode(err) != production.ExitStartup || !strings.Contains(err.Error(), "another process listens on it") {
		t.Errorf("a second runner on the socket: %v (exit %d), want a start-up error", err, production.ExitCode(err))
	}

	c.CloseIdleConnections()
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket file is still there after the runner stopped: %v", err)
	}
}
