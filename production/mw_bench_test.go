package production

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/logging"
)

// BenchmarkMiddlewares measures what each per-request middleware adds to a
// handler that writes "ok", in process (no network, and a response writer
// that allocates nothing, so that allocs/op are the middlewares' own): time
// and allocations per request.
func BenchmarkMiddlewares(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	parent := container.NewNamed("life")
	defer parent.Close()
	// A life's accounting, bare and under --hang-timeout (each request
	// then reads the runner's clock and is watched for progress).
	acct := func(hang time.Duration) http.Handler {
		l := &life{
			rs:     &runState{cfg: &Config{HangTimeout: hang}, clock: SystemClock()},
			counts: &instanceCounts{},
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
			w := newBenchWriter()
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				c.h.ServeHTTP(w, req)
			}
		})
	}
	// The whole chain of a life (life.handler): with the admin listener
	// (accounting, recover, metrics), and with every per-request feature on
	// (--hang-timeout, --read-timeout, --request-timeout, --use-zone and
	// the access log, to io.Discard).
	for _, all := range []bool{false, true} {
		name := "chain-admin"
		if all {
			name = "chain-all"
		}
		b.Run(name, func(b *testing.B) {
			h := benchLife(b, all).handler(ok)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			w := newBenchWriter()
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, req)
			}
		})
	}
}

// benchLife is a life with the admin listener's metrics (and with all,
// every per-request feature) on, for the chain benchmarks (no server, no
// listener).
func benchLife(b *testing.B, all bool) *life {
	cfg := &Config{}
	logs := &logging.Logging{Logger: logrus.New()}
	logs.Logger.SetOutput(io.Discard)
	if all {
		cfg = &Config{HangTimeout: time.Minute, RequestTimeout: time.Minute, ReadTimeout: time.Minute, UseZone: true}
		logs.Access = logs.Logger
	}
	r := &Runner{}
	rs := &runState{r: r, cfg: cfg, logs: logs, clock: SystemClock()}
	r.admin.Store(&adminState{rs: rs, m: newRunMetrics(cfg)})
	c := container.NewNamed("life")
	b.Cleanup(func() { c.Close() })
	info := InstanceInfo{App: "bench", Number: 0, Life: 1, ID: "bench-0-1"}
	return &life{rs: rs, counts: &instanceCounts{}, info: info, log: quietLog(), container: c,
		changed: make(chan struct{}, 1), recycle: make(chan struct{}, 1), labels: lifeLabels(info)}
}

// benchWriter is a response writer that allocates nothing once made: its
// header map is cleared, not remade, between requests.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func newBenchWriter() *benchWriter { return &benchWriter{h: make(http.Header)} }

func (w *benchWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

func (w *benchWriter) WriteString(s string) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(s)
	return len(s), nil
}
