package production

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
			tw := &timeoutWriter{ctx: ctx, w: w, h: make(http.Header), d: d}
			stop := context.AfterFunc(ctx, tw.expire)
			defer func() {
				stop()
				tw.finish()
			}()
			next.ServeHTTP(tw, r.WithContext(ctx))
		})
	}
}

// timeoutWriter serialises the handler's writes and the timer's 503.
type timeoutWriter struct {
	mu       sync.Mutex
	ctx      context.Context // the request's, with the deadline
	w        http.ResponseWriter
	h        http.Header // the handler's headers until the answer starts
	d        time.Duration
	started  bool // the handler's answer started: h was copied to w
	timedOut bool // the 503 was sent: the handler's writes fail
}

// expire runs when the request's context ends: past the deadline it
// answers 503 unless the handler's answer started. (A client that went away
// ends the context too: then nothing is written.)
func (t *timeoutWriter) expire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started && !t.timedOut && t.late() {
		t.send503()
	}
}

// late reports whether the deadline has passed.
func (t *timeoutWriter) late() bool {
	return errors.Is(context.Cause(t.ctx), ErrRequestTimeout)
}

// send503 answers 503 and flushes it; the caller holds mu.
func (t *timeoutWriter) send503() {
	t.timedOut = true
	msg := fmt.Sprintf("%s: no answer within the request timeout (%v)\n", http.StatusText(http.StatusServiceUnavailable), t.d)
	h := t.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	h.Set("Connection", "close")
	t.w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(t.w, msg)
	// The handler may never return: send the answer now.
	_ = http.NewResponseController(t.w).Flush()
}

// finish runs on the handler's goroutine when it returns (or panics):
// trailers the handler set through its header map go through.
func (t *timeoutWriter) finish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.started && !t.timedOut:
		copyTrailers(t.w.Header(), t.h)
	case !t.started && !t.timedOut && t.late():
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

// start copies the handler's headers to the real writer, once; the caller
// holds mu. It reports false once the 503 was sent: past the deadline, the
// first of the timer and the handler to get here sends it.
func (t *timeoutWriter) start() bool {
	if t.timedOut {
		return false
	}
	if !t.started && t.late() {
		t.send503()
		return false
	}
	if !t.started {
		t.started = true
		dst := t.w.Header()
		for k, vs := range t.h {
			dst[k] = vs
		}
	}
	return true
}

func (t *timeoutWriter) Header() http.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started && !t.timedOut {
		return t.w.Header()
	}
	return t.h
}

func (t *timeoutWriter) WriteHeader(code int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if code < 200 && code != http.StatusSwitchingProtocols {
		// 1xx informational answers (103 Early Hints) do not start it.
		if !t.timedOut {
			dst := t.w.Header()
			for k, vs := range t.h {
				dst[k] = vs
			}
			t.w.WriteHeader(code)
		}
		return
	}
	if t.start() {
		t.w.WriteHeader(code)
	}
}

func (t *timeoutWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.start() {
		return 0, http.ErrHandlerTimeout
	}
	return t.w.Write(p)
}

func (t *timeoutWriter) Flush() { _ = t.FlushError() }

func (t *timeoutWriter) FlushError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.start() {
		return http.ErrHandlerTimeout
	}
	return http.NewResponseController(t.w).Flush()
}

func (t *timeoutWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.start() {
		return nil, nil, http.ErrHandlerTimeout
	}
	return http.NewResponseController(t.w).Hijack()
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (t *timeoutWriter) Unwrap() http.ResponseWriter { return t.w }

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
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			rc := http.NewResponseController(w)
			// A socket deadline: the real clock, whatever the runner's.
			if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
				next.ServeHTTP(w, r) // a writer without deadlines: nothing to bound
				return
			}
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			next.ServeHTTP(w, r)
		})
	}
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
