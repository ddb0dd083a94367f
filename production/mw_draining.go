package production

import (
	"net/http"
	"runtime/pprof"
	"time"
)

// accounting is the outermost per-request handler of a life: it counts the
// request (the instance's total, and the life's for --max-requests
// recycling), keeps the life's handlers in flight (what its drain waits
// for), makes the request's one response writer (mw_writer.go), watches the
// request's progress for --hang-timeout, labels its goroutine with the
// life's labels, and, once the life is draining, answers with "Connection:
// close" so that a keep-alive client moves to a live instance for its next
// request instead of failing on a closed connection (the drain path of
// drain.go, for every verb). It is also the request's recover boundary
// (recoverRequest, mw_recover.go) and bounds its body (--read-timeout,
// withReadTimeout, mw_timeout.go).
//
// All of that is one frame with one defer, not three middlewares: each was
// a frame and a call of its own, and the goroutine of each new connection
// (and of each HTTP/2 request) copied its stack one more time to grow past
// them (issue 26: runtime.newstack 9 % of goangel's CPU on new connections,
// 5 % of plain net/http's).
func (l *life) accounting(next http.Handler) http.Handler {
	return &lifeHandler{l: l, next: next, readTimeout: l.rs.cfg.ReadTimeout}
}

type lifeHandler struct {
	l           *life
	next        http.Handler
	readTimeout time.Duration
}

func (h *lifeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l := h.l
	pprof.SetGoroutineLabels(l.labels) // the one label scheme: internal/goroutines
	l.counts.requests.Add(1)
	if n := l.requests.Add(1); n == l.recycleAt {
		l.wantRecycle()
	}
	rw := newRespWriter(w) // the request's one writer: mw_writer.go
	l.handlers.Add(1)
	var unwatch func()
	defer func() { l.endRequest(recover(), rw, r, unwatch) }()
	if l.rs.cfg.HangTimeout > 0 {
		var watch *reqWatch
		watch, unwatch = l.watchRequest()
		rw.watch, r = watch, watch.watchBody(r)
	}
	if l.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	if h.readTimeout > 0 {
		r = withReadTimeout(rw, r, h.readTimeout)
	}
	h.next.ServeHTTP(rw, r)
}

// endRequest ends a request: a panic p (nil: none) is answered as the
// recover boundary does, then the request leaves the life's accounting;
// a panic that aborts the answer goes on to net/http last.
func (l *life) endRequest(p any, rw *respWriter, r *http.Request, unwatch func()) {
	abort := p != nil && recoverRequest(l.log, func() { l.counts.panics.Add(1) }, rw, r, p)
	if unwatch != nil {
		unwatch()
	}
	l.done()
	rw.release()
	if abort {
		panic(http.ErrAbortHandler)
	}
}

func (l *life) wantRecycle() {
	select {
	case l.recycle <- struct{}{}:
	default:
	}
}
