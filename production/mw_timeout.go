package production

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrRequestTimeout is the cause of a request context canceled by
// --request-timeout: context.Cause(r.Context()) tells it from a client that
// went away.
var ErrRequestTimeout = errors.New("production: request timeout (--request-timeout)")

// requestTimeout bounds each request (--request-timeout): at the deadline
// its context is canceled with cause ErrRequestTimeout, and a handler that
// has not started its answer by then gets 503 at once, with
// "Connection: close", even if it ignores its context and keeps running;
// its later writes fail with http.ErrHandlerTimeout. A handler whose answer
// started is only canceled: what it sent is its answer. Unlike
// http.TimeoutHandler nothing is buffered, so streaming works. (Over HTTP/2
// the 503's stream ends only when the handler returns; a client that reads
// the announced Content-Length has the whole answer at the deadline.)
//
// The handler sees a writer whose Header map is its own until the answer
// starts, so that the 503 written from the timer never races with the
// handler setting a header.
func requestTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The real clock: the request path keeps the runtime's own timer.
			ctx, cancel := context.WithTimeoutCause(r.Context(), d, ErrRequestTimeout)
			defer cancel()
			rw := respWriterOf(w)
			t := &timeoutGate{ctx: ctx, rw: rw, h: make(http.Header), d: d}
			rw.to = t
			stop := context.AfterFunc(ctx, t.expire)
			defer func() {
				stop()
				t.finish()
				rw.to = nil // the handler has returned: nothing is gated now
			}()
			next.ServeHTTP(rw, r.WithContext(ctx))
		})
	}
}

// timeoutGate is the request timeout's part of the request's respWriter
// (mw_writer.go): it serialises the handler's writes and the timer's 503.
// It is made per request and never pooled: a timer that fires as the
// request ends may still take mu after the respWriter went back to its
// pool, and then finds timedOut set and touches nothing else.
type timeoutGate struct {
	mu       sync.Mutex
	ctx      context.Context // the request's, with the deadline
	rw       *respWriter
	h        http.Header // the handler's headers until the answer starts
	d        time.Duration
	timedOut bool // the 503 was sent, or the handler returned: nothing more is written
}

// expire runs when the request's context ends: past the deadline it
// answers 503 unless the handler's answer started. (A client that went away
// ends the context too: then nothing is written.)
func (t *timeoutGate) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.timedOut && !t.rw.started && t.late() {
		t.send503()
	}
}

// late reports whether the deadline has passed.
func (t *timeoutGate) late() bool {
	return errors.Is(context.Cause(t.ctx), ErrRequestTimeout)
}

// send503 answers 503 and flushes it; the caller holds mu.
func (t *timeoutGate) send503() {
	t.timedOut = true
	rw := t.rw
	msg := fmt.Sprintf("%s: no answer within the request timeout (%v)\n", http.StatusText(http.StatusServiceUnavailable), t.d)
	h := rw.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	h.Set("Connection", "close")
	rw.sendHeader(http.StatusServiceUnavailable)
	_, _ = rw.sendString(msg)
	// The handler may never return: send the answer now.
	_ = rw.flush()
}

// finish runs on the handler's goroutine when it returns (or panics):
// trailers the handler set through its header map go through.
func (t *timeoutGate) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.timedOut:
	case t.rw.started:
		copyTrailers(t.rw.w.Header(), t.h)
	case t.late():
		t.send503() // it returned silent past its deadline
	}
	t.timedOut = true // nothing after the handler's end writes
}

func copyTrailers(dst, src http.Header) {
	for k, vs := range src {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			dst[k] = vs
		}
	}
	for _, decl := range src.Values("Trailer") {
		for k := range strings.SplitSeq(decl, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if vs, ok := src[k]; ok {
				dst[k] = vs
			}
		}
	}
}

// open decides whether the handler's write goes through; the caller holds
// mu. code is the status of a WriteHeader, 0 for a body write, a flush or a
// hijack. A 1xx informational answer (103 Early Hints) goes with the
// handler's headers so far and does not start the answer. The first write
// that starts the answer copies the handler's headers to net/http's, once.
// It reports false once the 503 was sent: past the deadline, the first of
// the timer and the handler to get here sends it.
func (t *timeoutGate) open(code int) bool {
	if t.timedOut {
		return false
	}
	rw := t.rw
	if code != 0 && code < 200 && code != http.StatusSwitchingProtocols {
		copyHeader(rw.w.Header(), t.h)
		return true
	}
	if !rw.started {
		if t.late() {
			t.send503()
			return false
		}
		copyHeader(rw.w.Header(), t.h)
		rw.started = true
	}
	return true
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}

// bodyTimeout bounds how long a request body may take to arrive
// (--read-timeout), counted from the handler's start: the connection's read
// deadline is set then, and cleared once the body has been read to its end,
// so that a handler that runs longer than d afterwards is not disturbed. A
// POST whose body never comes, or trickles in, fails the handler's read with
// a timeout and closes the connection. A handler that takes a long upload
// moves the deadline with http.ResponseController.SetReadDeadline.
func bodyTimeout(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := respWriterOf(w)
			next.ServeHTTP(rw, withReadTimeout(rw, r, d))
		})
	}
}

// withReadTimeout is bodyTimeout's work for one request (a life's
// accounting calls it in its own frame): it returns r with its body bounded
// by d, counted from now.
func withReadTimeout(rw *respWriter, r *http.Request, d time.Duration) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	if r.ProtoMajor == 2 {
		// HTTP/2 gives every request a body (a GET's reads EOF), and a
		// stream's read deadline is a timer of its own: set it at the
		// handler's first read, counted from the handler's start all the
		// same. Setting it for every request cost 3 % of h2c throughput
		// (issue 26).
		// Its own deadline calls go below rw: through rw they would count
		// as the handler's (respWriter.SetReadDeadline).
		lb := &lazyDeadlineBody{ReadCloser: r.Body, w: rw.w, at: time.Now().Add(d)}
		rw.lazy = lb
		r.Body = lb
		return r
	}
	rc := http.NewResponseController(rw)
	// A socket deadline: the real clock, whatever the runner's.
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return r // a writer without deadlines: nothing to bound
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
	return r
}

// deadlineBody clears the read deadline once the body has been read to its
// end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// lazyDeadlineBody is an HTTP/2 request body whose read deadline (at) is set
// at its first Read, unless the handler has set one of its own by then
// (respWriter.SetReadDeadline sets own), and cleared at its end.
type lazyDeadlineBody struct {
	io.ReadCloser
	w     http.ResponseWriter
	at    time.Time
	own   atomic.Bool
	armed bool
	done  bool
}

func (b *lazyDeadlineBody) Read(p []byte) (int, error) {
	if !b.armed && !b.own.Load() {
		b.armed = true
		_ = http.NewResponseController(b.w).SetReadDeadline(b.at)
	}
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && b.armed && !b.done && !b.own.Load() {
		b.done = true
		_ = http.NewResponseController(b.w).SetReadDeadline(time.Time{})
	}
	return n, err
}
