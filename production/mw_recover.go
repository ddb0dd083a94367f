package production

import (
	"net/http"
	"runtime/debug"

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
// does. A life's requests get this boundary from accounting (mw_draining.go,
// in the same frame); recoverer is it as a middleware of its own.
func recoverer(log *logrus.Entry, onPanic func()) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := respWriterOf(w) // mw_writer.go: it knows whether the answer started
			defer func() {
				if p := recover(); p != nil && recoverRequest(log, onPanic, rw, r, p) {
					panic(http.ErrAbortHandler)
				}
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// recoverRequest answers the panic p of a handler (recovered by its
// caller): counted (onPanic) and logged with its stack, then a 500 unless
// the answer had started. It reports whether the answer must be aborted
// instead (the caller panics with http.ErrAbortHandler, once its own
// cleanup is done): the answer had started, or the handler aborted it
// itself.
func recoverRequest(log *logrus.Entry, onPanic func(), rw *respWriter, r *http.Request, p any) (abort bool) {
	if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
		return true
	}
	if onPanic != nil {
		onPanic()
	}
	entry := log.WithFields(logrus.Fields{
		"method": r.Method,
		"path":   r.URL.Path,
		"stack":  string(debug.Stack()),
	})
	if rw.started {
		entry.Errorf("Recovered from a panic in a handler after its answer started: aborting the response: %v", p)
		return true
	}
	entry.Errorf("Recovered from a panic in a handler: %v", p)
	http.Error(rw, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	return false
}
