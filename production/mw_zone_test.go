package production

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/testutil"
)

// TestZone: each request gets its own child of the parent container in its
// context, closed when the request ends, a panicking one included; a failed
// close is logged.
func TestZone(t *testing.T) {
	parent := container.NewNamed("life")
	defer parent.Close()
	var closed atomic.Int64
	var seen []*container.Container
	out := &testutil.Buffer{}
	l := logrus.New()
	l.SetOutput(out)
	log := logrus.NewEntry(l)
	h := recoverer(log, nil)(zone(parent, log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := container.FromContext(r.Context())
		if !ok || c == parent {
			t.Errorf("request container = %v %v, want a child of the parent", c, ok)
			return
		}
		seen = append(seen, c)
		c.OnClose(func() error { closed.Add(1); return nil })
		switch r.URL.Path {
		case "/panic":
			panic("in a zone")
		case "/fail":
			c.OnClose(func() error { return errors.New("closer failed") })
		}
		io.WriteString(w, c.Name())
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i, path := range []string{"/a", "/b", "/panic", "/fail"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if path == "/panic" {
			if resp.StatusCode != 500 {
				t.Errorf("GET /panic = %d", resp.StatusCode)
			}
		} else if string(b) != "request" {
			t.Errorf("GET %s = %q, want the request container's name", path, b)
		}
		if n := closed.Load(); n != int64(i+1) {
			t.Errorf("after %s: %d request containers closed, want %d", path, n, i+1)
		}
	}
	if len(seen) != 4 || seen[0] == seen[1] {
		t.Errorf("request containers not distinct: %v", seen)
	}
	if !strings.Contains(out.String(), "Closing a request container failed") || !strings.Contains(out.String(), "closer failed") {
		t.Errorf("the failed close was not logged:\n%s", out)
	}
}
