package production

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the per-life middleware of the admin listener's metrics
// (chained in handler; a no-op without --admin-address): it counts each
// request by status class, observes its duration, keeps the instance's
// requests in flight. It leaves the goroutine's labels alone: accounting set
// the life's (drain.go's lifeLabels, which hang detection reads and
// /debug/pprof/goroutine?instance=N filters on).
func (l *life) metrics(next http.Handler) http.Handler {
	a := l.rs.r.admin.Load()
	if a == nil || a.m == nil {
		return next
	}
	inst := strconv.Itoa(l.info.Number)
	t := a.instance(l.info.Number)
	var byClass [6]prometheus.Counter // index: status / 100; 0 for out-of-range codes
	for i, class := range codeClasses {
		byClass[i] = a.m.requests.WithLabelValues(inst, class)
	}
	observe := a.m.duration.WithLabelValues(inst)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.inFlight.Add(1)
		start := time.Now() // the latency metric: real elapsed time, not the runner's clock
		sw := statusWriters.Get().(*statusWriter)
		sw.ResponseWriter, sw.code = w, 0
		returned := false
		defer func() {
			code := sw.code
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
			t.inFlight.Add(-1)
			sw.ResponseWriter = nil
			statusWriters.Put(sw)
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}

// countConns chains the admin listener's connection counts (accepted
// connections, open connections per instance) after the life's ConnState.
func (l *life) countConns(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	a := l.rs.r.admin.Load()
	if a == nil || a.m == nil {
		return next
	}
	t := a.instance(l.info.Number)
	accepted := a.m.connsAccepted.WithLabelValues(strconv.Itoa(l.info.Number))
	return func(c net.Conn, s http.ConnState) {
		if next != nil {
			next(c, s)
		}
		switch s {
		case http.StateNew:
			accepted.Inc()
			t.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			t.conns.Add(-1)
		}
	}
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter records the status of the answer. It keeps http.Flusher,
// http.Hijacker, io.StringWriter and io.ReaderFrom (sendfile) of the writer
// it wraps, and Unwrap for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	code int // 0 until the final status is written
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) WriteString(s string) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return io.WriteString(w.ResponseWriter, s)
}

func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return io.Copy(w.ResponseWriter, r)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.code == 0 {
			w.code = http.StatusOK
		}
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("production: the response writer does not support hijacking")
	}
	c, rw, err := h.Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
