package production

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/goangel/angel/container"
)

// BenchmarkMiddlewares measures what each per-request middleware adds to a
// handler that writes "ok", in process (httptest.ResponseRecorder, no
// network): time and allocations per request.
func BenchmarkMiddlewares(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	parent := container.NewNamed("life")
	defer parent.Close()
	// A life's accounting, bare and under --hang-timeout (each request
	// then reads the runner's clock and is watched for progress).
	acct := func(hang time.Duration) http.Handler {
		l := &life{
			rs:     &runState{cfg: &Config{HangTimeout: hang}, clock: SystemClock()},
			in:     &instance{},
			labels: lifeLabels(InstanceInfo{}),
		}
		return l.accounting(ok)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"none", ok},
		{"recover", recoverer(quietLog(), nil)(ok)},
		{"zone", zone(parent, quietLog())(ok)},
		{"request-timeout", requestTimeout(time.Minute)(ok)},
		{"body-timeout", bodyTimeout(time.Minute)(ok)},
		{"accounting", acct(0)},
		{"accounting+hang", acct(time.Minute)},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
