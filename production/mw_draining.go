package production

import (
	"net/http"
	"runtime/pprof"
)

// accounting is the outermost per-request middleware of a life: it counts
// the request (the instance's total, and the life's for --max-requests
// recycling), keeps the life's handlers in flight (what its drain waits
// for), makes the request's one response writer (mw_writer.go), watches
// the request's progress for --hang-timeout, labels its goroutine with the
// life's labels, and, once the life
// is draining, answers with "Connection: close" so that a keep-alive client
// moves to a live instance for its next request instead of failing on a
// closed connection (the drain path of drain.go, for every verb).
func (l *life) accounting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pprof.SetGoroutineLabels(l.labels) // the one label scheme: internal/goroutines
		l.counts.requests.Add(1)
		if n := l.requests.Add(1); n == l.recycleAt {
			l.wantRecycle()
		}
		rw := newRespWriter(w) // the request's one writer: mw_writer.go
		defer rw.release()
		l.handlers.Add(1)
		defer l.done()
		if l.rs.cfg.HangTimeout > 0 {
			watch, unwatch := l.watchRequest()
			defer unwatch()
			rw.watch, r = watch, watch.watchBody(r)
		}
		if l.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(rw, r)
	})
}

// wantRecycle asks the supervisor for a recycle (--max-requests).
func (l *life) wantRecycle() {
	select {
	case l.recycle <- struct{}{}:
	default:
	}
}
