package logging

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"
)

// Access-log field names.
const (
	MethodKey    = "method"
	URIKey       = "uri" // path and query, as sent (--access-log-without-query: path only)
	StatusKey    = "status"
	BytesKey     = "bytes"
	DurationKey  = "duration_ms" // a number of milliseconds (microsecond precision)
	RemoteKey    = "remote"
	RequestIDKey = "request_id"
)

// Recorder is a response writer that records the status and the body's
// bytes of its answer, as chi's middleware.WrapResponseWriter does. The
// runner's writer (one per request, shared by its middlewares) is one:
// AccessLog uses a Recorder it is given instead of wrapping it again.
type Recorder interface {
	http.ResponseWriter
	Status() int       // the final status sent; 0 until then
	BytesWritten() int // bytes of body sent
}

// AccessLog returns a middleware logging one entry per request to l, at
// info level: method, request URI (path and query as the client sent
// them, like nginx's and Apache's default formats; the runner's
// --access-log-without-query leaves the query out), status, bytes,
// duration in milliseconds, remote address,
// request id (chi's middleware.RequestID must run before it) and the base
// fields (the runner passes app and instance). A nil l returns a
// middleware that does nothing.
func AccessLog(l *logrus.Logger, base logrus.Fields) func(http.Handler) http.Handler {
	if l == nil {
		return func(next http.Handler) http.Handler { return next }
	}
	entry := l.WithFields(base) // the base fields, once, not per request
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww, ok := w.(Recorder)
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			defer func() {
				p := recover()
				if l.IsLevelEnabled(logrus.InfoLevel) {
					logRequest(entry, r, ww, start, p != nil)
				}
				if p != nil {
					panic(p) // for the recover middleware outside, which answers it
				}
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

func logRequest(e *logrus.Entry, r *http.Request, ww Recorder, start time.Time, panicked bool) {
	status := ww.Status()
	switch {
	case panicked && status == 0:
		status = http.StatusInternalServerError // what the recover middleware answers
	case status == 0:
		status = http.StatusOK // nothing written: net/http answers 200
	}
	e.WithFields(logrus.Fields{
		MethodKey:    r.Method,
		URIKey:       r.URL.RequestURI(),
		StatusKey:    status,
		BytesKey:     ww.BytesWritten(),
		DurationKey:  float64(time.Since(start).Microseconds()) / 1000,
		RemoteKey:    r.RemoteAddr,
		RequestIDKey: middleware.GetReqID(r.Context()),
	}).Info("request")
}
