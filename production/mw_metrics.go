package production

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the per-life middleware of the admin listener's metrics
// (chained in handler; a no-op without --admin-address): it counts each
// request by status class and observes its duration (the requests in
// flight are Stats', counted by accounting). It leaves the goroutine's labels alone: accounting set
// the life's (hang.go's lifeLabels, which hang detection reads and
// /debug/pprof/goroutine?instance=N filters on).
func (l *life) metrics(next http.Handler) http.Handler {
	a := l.rs.r.admin.Load()
	if a == nil || a.m == nil {
		return next
	}
	inst := strconv.Itoa(l.info.Number)
	var byClass [6]prometheus.Counter // index: status / 100; 0 for out-of-range codes
	for i, class := range codeClasses {
		byClass[i] = a.m.requests.WithLabelValues(inst, class)
	}
	observe := a.m.duration.WithLabelValues(inst)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()   // the latency metric: real elapsed time, not the runner's clock
		rw := respWriterOf(w) // mw_writer.go: it records the status sent
		returned := false
		defer func() {
			code := rw.code // after the request timeout's end: no lock needed
			if code == 0 && !returned {
				code = http.StatusInternalServerError // panicked before answering: recoverRequest answers 500
			} else if code == 0 {
				code = http.StatusOK // returned without writing: net/http answers 200
			}
			class := code / 100
			if class < 1 || class > 5 {
				class = 0
			}
			byClass[class].Inc()
			observe.Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rw, r)
		returned = true
	})
}

// countConns chains the admin listener's count of accepted connections
// after the life's ConnState (the open ones are Stats', counted by
// connState).
func (l *life) countConns(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	a := l.rs.r.admin.Load()
	if a == nil || a.m == nil {
		return next
	}
	accepted := a.m.connsAccepted.WithLabelValues(strconv.Itoa(l.info.Number))
	return func(c net.Conn, s http.ConnState) {
		if next != nil {
			next(c, s)
		}
		if s == http.StateNew {
			accepted.Inc()
		}
	}
}
