package production

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/goangel/angel/internal/logging"
)

// respWriter is the one response writer of a request. accounting, the
// outermost middleware, takes it from a pool once per request; every
// middleware after it shares it instead of wrapping the writer again:
//
//   - metrics and the access log read the status and the bytes of the
//     answer (Status, BytesWritten: internal/logging's Recorder);
//   - recoverer reads whether the answer started (a final status, a byte of
//     body, a flush, a hijack), to answer 500 or abort;
//   - --hang-timeout counts each write of the answer as progress (watch);
//   - --request-timeout gates it (to): the handler gets its own header map
//     until its answer starts, the timer's 503 and the handler's writes are
//     serialised, and the handler's writes after the 503 fail with
//     http.ErrHandlerTimeout.
//
// It records what reaches the client, so that every reader agrees (a 503
// sent at the deadline is a 503 for the metrics and the access log alike).
// It keeps http.Flusher, http.Hijacker, io.StringWriter and io.ReaderFrom
// (sendfile) of net/http's writer, and Unwrap for http.ResponseController.
//
// Without --request-timeout only the request's goroutine uses it. With it,
// every field is written under to.mu while the timer may run; the readers
// (metrics, recoverer) run after the timeout's finish, or take the lock
// (Status, BytesWritten).
type respWriter struct {
	w       http.ResponseWriter // net/http's
	code    int                 // the final status sent; 0 until then
	bytes   int                 // bytes of body sent
	started bool                // a final status, a byte, a flush or a hijack was sent
	watch   *reqWatch           // --hang-timeout; nil without it
	to      *timeoutGate        // --request-timeout, while its middleware runs; else nil
	lazy    *lazyDeadlineBody   // an HTTP/2 body's --read-timeout, set at its first read
}

var respWriters = sync.Pool{New: func() any { return new(respWriter) }}

// newRespWriter takes a respWriter for w from the pool; release gives it back
// once the request has ended.
func newRespWriter(w http.ResponseWriter) *respWriter {
	rw := respWriters.Get().(*respWriter)
	*rw = respWriter{w: w}
	return rw
}

func (rw *respWriter) release() {
	*rw = respWriter{}
	respWriters.Put(rw)
}

// respWriterOf returns the request's respWriter: w itself when accounting
// made it, or a new one around w (a middleware used on its own, in tests),
// which the middleware then passes on.
func respWriterOf(w http.ResponseWriter) *respWriter {
	if rw, ok := w.(*respWriter); ok {
		return rw
	}
	return &respWriter{w: w}
}

// Status returns the final status sent (0: none yet).
func (rw *respWriter) Status() int {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
	}
	return rw.code
}

// BytesWritten returns the bytes of body sent.
func (rw *respWriter) BytesWritten() int {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
	}
	return rw.bytes
}

func (rw *respWriter) Header() http.Header {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !rw.started || t.timedOut {
			return t.h
		}
	}
	return rw.w.Header()
}

func (rw *respWriter) WriteHeader(code int) {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.open(code) {
			return
		}
	}
	rw.sendHeader(code)
}

func (rw *respWriter) Write(p []byte) (int, error) {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.open(0) {
			return 0, http.ErrHandlerTimeout
		}
	}
	return rw.send(p)
}

func (rw *respWriter) WriteString(s string) (int, error) {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.open(0) {
			return 0, http.ErrHandlerTimeout
		}
	}
	return rw.sendString(s)
}

// ReadFrom keeps io.Copy into the answer on net/http's own ReadFrom
// (sendfile for files), except under --hang-timeout, where each chunk the
// source gives counts as progress: a long sendfile to a slow client would
// show none until its end.
func (rw *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if t := rw.to; t != nil {
		t.mu.Lock()
		ok := t.open(0)
		if ok {
			rw.begin()
		}
		t.mu.Unlock()
		if !ok {
			return 0, http.ErrHandlerTimeout
		}
		// Started: the timer sends nothing from now on, so the copy
		// runs without the lock.
	} else {
		rw.begin()
	}
	if rw.watch != nil {
		src = &progressReader{src, rw.watch}
	}
	n, err := io.Copy(rw.w, src)
	rw.bytes += int(n)
	return n, err
}

func (rw *respWriter) Flush() { _ = rw.FlushError() }

func (rw *respWriter) FlushError() error {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.open(0) {
			return http.ErrHandlerTimeout
		}
	}
	return rw.flush()
}

func (rw *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t := rw.to; t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.open(0) {
			return nil, nil, http.ErrHandlerTimeout
		}
	}
	rw.started = true
	c, brw, err := http.NewResponseController(rw.w).Hijack()
	if err == nil {
		if rw.code == 0 {
			rw.code = http.StatusSwitchingProtocols
		}
		if rw.watch != nil {
			// A hijacked connection is its handler's: the request is no
			// longer watched.
			rw.watch.forget()
		}
	}
	return c, brw, err
}

func (rw *respWriter) Unwrap() http.ResponseWriter { return rw.w }

// SetReadDeadline is http.ResponseController's: a handler's own read
// deadline wins over --read-timeout's lazy one (lazyDeadlineBody).
func (rw *respWriter) SetReadDeadline(t time.Time) error {
	if rw.lazy != nil {
		rw.lazy.own.Store(true)
	}
	return http.NewResponseController(rw.w).SetReadDeadline(t)
}

// The send methods write to net/http's writer and record it; the gate
// (to.open) is the caller's.

func (rw *respWriter) sendHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		rw.started = true
		if rw.code == 0 {
			rw.code = code
		}
	}
	rw.w.WriteHeader(code)
	rw.progress(1)
}

// begin records that the answer's body starts (net/http sends 200 first
// when no status was written).
func (rw *respWriter) begin() {
	rw.started = true
	if rw.code == 0 {
		rw.code = http.StatusOK
	}
}

func (rw *respWriter) send(p []byte) (int, error) {
	rw.begin()
	n, err := rw.w.Write(p)
	rw.bytes += n
	rw.progress(n)
	return n, err
}

func (rw *respWriter) sendString(s string) (int, error) {
	rw.begin()
	n, err := io.WriteString(rw.w, s)
	rw.bytes += n
	rw.progress(n)
	return n, err
}

func (rw *respWriter) flush() error {
	rw.begin()
	err := http.NewResponseController(rw.w).Flush()
	if err == nil {
		rw.progress(1)
	}
	return err
}

// progress counts a write of n bytes (or a status, a flush) as the request's
// progress under --hang-timeout.
func (rw *respWriter) progress(n int) {
	if n > 0 && rw.watch != nil {
		rw.watch.progress()
	}
}

// The access log (internal/logging) reads the status and bytes from it.
var _ logging.Recorder = (*respWriter)(nil)
