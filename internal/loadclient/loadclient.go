// Package loadclient is a strict HTTP/1.1 load client for goangel's fault
// suite. Unlike net/http's Transport it never retries (the Transport silently
// resends an idempotent request whose reused connection failed before any
// answer, which hides exactly the failures the suite looks for), and it sorts
// every failure into one of a few kinds: refused, reset, EOF, timeout, bad
// status, other.
//
// Each worker owns one connection at a time: with KeepAlive it sends request
// after request on it (reconnecting only when the server said
// "Connection: close", which is no failure), without it a new connection per
// request.
// With Config.TLS the connections are TLS (HTTP/1.1 over TLS).
//
// A server that stops closes its socket at last: a connection whose
// handshake ends after the stop began may be reset (it raced the close), a
// new one refused, though no request of theirs reached the server. Call
// Load.Stopping just before the stop: from then on a refused dial, and a
// failure on a connection dialled after the call and never answered, count
// as Late, which is no failure. A connection dialled before the call was in
// the kernel's accept queue or accepted when the stop began: a server that
// drains must answer it, so its failure still counts.
package loadclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Kind is what happened to one request.
type Kind int

const (
	OK        Kind = iota // the expected status, whole body
	Refused               // the connection was refused (ECONNREFUSED)
	Reset                 // the connection was reset (ECONNRESET, EPIPE)
	EOF                   // the connection ended before a whole answer
	Timeout               // no whole answer within Config.Timeout
	BadStatus             // an answer with a status not in Config.Expect
	BadBody               // an expected status, but not the body Config.Body asks for
	Other                 // anything else
	Late                  // after Load.Stopping: never reached the server (no failure)
)

var kindNames = [...]string{"ok", "refused", "reset", "eof", "timeout", "bad status", "bad body", "other", "late"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Classify sorts an error of a request into a Kind.
func Classify(err error) Kind {
	var ne net.Error
	switch {
	case err == nil:
		return OK
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return EOF
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Other
}

// Config is one load run.
type Config struct {
	Addr      string        // host:port
	Path      string        // request path, e.g. "/ok"
	Workers   int           // concurrent workers (default 1)
	KeepAlive bool          // reuse each worker's connection
	Timeout   time.Duration // per request (default 10s)
	Expect    []int         // statuses that count as OK (default 200)
	Body      string        // when set, the whole body an OK answer must have
	TLS       *tls.Config   // when set, connect with TLS (ALPN http/1.1 unless it says otherwise)
}

// Result counts what happened.
type Result struct {
	mu       sync.Mutex
	Requests int
	Kinds    map[Kind]int
	Statuses map[int]int
	Examples map[Kind]string // the first error of each failing kind
	// Closes counts the whole answers on keep-alive connections that said
	// "Connection: close" (the life that answered was draining): no
	// failure, the worker dials again.
	Closes int
	// latencies are the times of the OK requests (send to whole answer).
	latencies []time.Duration
}

// Quantile returns the q-quantile (0 < q <= 1) of the times of the OK
// requests, from sending to the whole answer read (0 when there is none):
// what the client saw, to compare with the server's histograms.
func (r *Result) Quantile(q float64) time.Duration {
	r.mu.Lock()
	ls := slices.Clone(r.latencies)
	r.mu.Unlock()
	if len(ls) == 0 {
		return 0
	}
	slices.Sort(ls)
	i := int(math.Ceil(q*float64(len(ls)))) - 1
	return ls[min(max(i, 0), len(ls)-1)]
}

// Failed is the number of requests that were neither OK nor Late.
func (r *Result) Failed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Requests - r.Kinds[OK] - r.Kinds[Late]
}

// Count returns the number of requests of kind k.
func (r *Result) Count(k Kind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Kinds[k]
}

func (r *Result) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	for k := OK; k <= Late; k++ {
		if n := r.Kinds[k]; n > 0 {
			s := fmt.Sprintf("%s=%d", k, n)
			if ex := r.Examples[k]; ex != "" {
				s += fmt.Sprintf(" (first: %s)", ex)
			}
			parts = append(parts, s)
		}
	}
	var codes []int
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("status %d=%d", c, r.Statuses[c]))
	}
	return fmt.Sprintf("%d requests: %s", r.Requests, strings.Join(parts, ", "))
}

// CloseCount is Closes, safe while the run goes on.
func (r *Result) CloseCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Closes
}

func (r *Result) add(k Kind, status int, err error, took time.Duration, closed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Requests++
	if closed {
		r.Closes++
	}
	if k == OK {
		r.latencies = append(r.latencies, took)
	}
	r.Kinds[k]++
	if status != 0 {
		r.Statuses[status]++
	}
	if k != OK && r.Examples[k] == "" {
		if err != nil {
			r.Examples[k] = err.Error()
		} else {
			r.Examples[k] = fmt.Sprintf("status %d", status)
		}
	}
}

// Run sends requests until ctx is done, and returns the counts. A request in
// flight when ctx ends is finished (bounded by Timeout) and counted.
func Run(ctx context.Context, cfg Config) *Result { return Start(ctx, cfg).Wait() }

// Load is a run started by Start.
type Load struct {
	res      *Result
	wg       sync.WaitGroup
	stopping atomic.Bool
}

// Stopping says the server is about to stop: from now on a refused dial,
// and a failure on a connection dialled after this call that the server
// never answered, count as Late.
func (l *Load) Stopping() { l.stopping.Store(true) }

// Result is the counts so far (its methods may be called while it runs).
func (l *Load) Result() *Result { return l.res }

// Wait waits until the run has ended (ctx is done and the requests in
// flight are counted) and returns its counts.
func (l *Load) Wait() *Result {
	l.wg.Wait()
	return l.res
}

// Start is Run without the wait: the workers run until ctx is done; Wait
// waits for them.
func Start(ctx context.Context, cfg Config) *Load {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if len(cfg.Expect) == 0 {
		cfg.Expect = []int{http.StatusOK}
	}
	if cfg.TLS != nil && len(cfg.TLS.NextProtos) == 0 {
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.NextProtos = []string{"http/1.1"}
	}
	l := &Load{res: &Result{Kinds: map[Kind]int{}, Statuses: map[int]int{}, Examples: map[Kind]string{}}}
	for range cfg.Workers {
		l.wg.Go(func() {
			w := &worker{cfg: cfg, stopping: &l.stopping}
			defer w.close()
			for ctx.Err() == nil {
				start := time.Now()
				status, body, closed, err := w.do()
				took := time.Since(start)
				k := Classify(err)
				switch {
				case err != nil && w.late:
					k = Late
				case err != nil:
				case !expected(cfg.Expect, status):
					k = BadStatus
				case cfg.Body != "" && body != cfg.Body:
					k, err = BadBody, fmt.Errorf("body %q, want %q", body, cfg.Body)
				}
				l.res.add(k, status, err, took, closed && cfg.KeepAlive && err == nil)
			}
		})
	}
	return l
}

func expected(codes []int, status int) bool {
	for _, c := range codes {
		if c == status {
			return true
		}
	}
	return false
}

type worker struct {
	cfg      Config
	c        net.Conn
	br       *bufio.Reader
	stopping *atomic.Bool
	answered bool // the server answered on c
	late     bool // the last request's failure never reached the server
	after    bool // c was dialled after Load.Stopping
}

func (w *worker) close() {
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}

// do sends one request and reads its whole answer; it returns the status,
// the body when Config.Body asks for one, and whether the answer said
// "Connection: close".
func (w *worker) do() (int, string, bool, error) {
	w.late = false
	if w.c == nil {
		stopping := w.stopping.Load()
		c, err := w.dial()
		if err != nil {
			w.late = stopping || w.stopping.Load()
			if w.late {
				time.Sleep(time.Millisecond) // the server is gone: do not spin
			}
			return 0, "", false, err
		}
		w.c, w.br, w.answered = c, bufio.NewReader(c), false
		w.after = w.stopping.Load()
	}
	a, err := roundTrip(w.c, w.br, w.cfg, w.cfg.Body != "")
	if err != nil || a.Close || !w.cfg.KeepAlive {
		w.close()
	}
	if err != nil && !w.answered && w.after {
		w.late = true // its handshake raced the socket's close
	}
	if err == nil {
		w.answered = true
	}
	return a.Status, a.Body, a.Close, err
}

func (w *worker) dial() (net.Conn, error) {
	d := &net.Dialer{Timeout: w.cfg.Timeout}
	if w.cfg.TLS == nil {
		return d.Dial("tcp", w.cfg.Addr)
	}
	return tls.DialWithDialer(d, "tcp", w.cfg.Addr, w.cfg.TLS)
}

// Answer is one whole answer.
type Answer struct {
	Status int
	Body   string // when Config.Body asks for it (Get: always)
	Close  bool   // it said "Connection: close"
}

// roundTrip sends GET cfg.Path on c and reads the whole answer (keeping the
// body when keepBody).
func roundTrip(c net.Conn, br *bufio.Reader, cfg Config, keepBody bool) (Answer, error) {
	c.SetDeadline(time.Now().Add(cfg.Timeout))
	conn := "keep-alive"
	if !cfg.KeepAlive {
		conn = "close"
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: %s\r\n\r\n", cfg.Path, cfg.Addr, conn); err != nil {
		return Answer{}, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return Answer{}, err
	}
	var body strings.Builder
	var dst io.Writer = io.Discard
	if keepBody {
		dst = &body
	}
	_, err = io.Copy(dst, resp.Body)
	resp.Body.Close()
	a := Answer{Status: resp.StatusCode, Body: body.String(), Close: resp.Close}
	if err != nil {
		a.Body = ""
	}
	return a, err
}

// Get sends one GET path to addr on a new keep-alive connection (closed
// after the answer) and reads the whole answer, with the load's strictness:
// no retry, and an error Classify sorts. timeout bounds the dial and the
// answer (0: 10s).
func Get(addr, path string, timeout time.Duration) (Answer, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return Answer{}, err
	}
	defer c.Close()
	return roundTrip(c, bufio.NewReader(c), Config{Addr: addr, Path: path, KeepAlive: true, Timeout: timeout}, true)
}
