package production

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// recoverer is the recover boundary around every request: a handler panic
// is logged through logrus with its stack and counted (onPanic), and then
//   - answered 500 when nothing of the answer was written yet;
//   - aborted once anything was (a status, a byte of body, a flush, a
//     hijack): the status line is gone and a 500 appended to a half-sent
//     body would read as a complete answer. It panics with
//     http.ErrAbortHandler, on which net/http closes an HTTP/1.x connection
//     without finishing the body (the client sees an unexpected EOF) and
//     resets an HTTP/2 stream.
//
// A panic with http.ErrAbortHandler itself goes through unlogged, as net/http
// does.
func recoverer(log *logrus.Entry, onPanic func()) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tw := &trackingWriter{ResponseWriter: w}
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(p)
				}
				if onPanic != nil {
					onPanic()
				}
				started := tw.started.Load()
				entry := log.WithFields(logrus.Fields{
					"method": r.Method,
					"path":   r.URL.Path,
					"stack":  string(debug.Stack()),
				})
				if started {
					entry.Errorf("Recovered from a panic in a handler after its answer started: aborting the response: %v", p)
					panic(http.ErrAbortHandler)
				}
				entry.Errorf("Recovered from a panic in a handler: %v", p)
				http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			}()
			next.ServeHTTP(tw, r)
		})
	}
}

// trackingWriter records whether anything of the answer was written. It keeps
// the optional interfaces a handler may need (Flusher, Hijacker, and through
// Unwrap everything http.ResponseController reaches).
type trackingWriter struct {
	http.ResponseWriter
	started atomic.Bool // read by another goroutine only through mw_timeout's lock
}

func (t *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		t.started.Store(true)
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	t.started.Store(true)
	return t.ResponseWriter.Write(p)
}

// ReadFrom keeps io.Copy into the answer on net/http's own ReadFrom
// (sendfile for files).
func (t *trackingWriter) ReadFrom(r io.Reader) (int64, error) {
	t.started.Store(true)
	return io.Copy(t.ResponseWriter, r)
}

func (t *trackingWriter) Flush() {
	t.started.Store(true)
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

func (t *trackingWriter) FlushError() error {
	t.started.Store(true)
	return http.NewResponseController(t.ResponseWriter).Flush()
}

func (t *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.started.Store(true)
	return http.NewResponseController(t.ResponseWriter).Hijack()
}

func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
