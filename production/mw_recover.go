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
// does.
func recoverer(log *logrus.Entry, onPanic func()) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := respWriterOf(w) // mw_writer.go: it knows whether the answer started
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
				started := rw.started
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
				http.Error(rw, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}
