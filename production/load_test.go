package production_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// strictLoad is a load client that never retries: each worker sends GET path
// on its own connection, reads the whole answer, and counts anything but a
// full 200 as a failure, sorted into refused, reset, EOF, timeout and other.
// Keep-alive workers keep their connection until an answer says
// "Connection: close"; new-connection workers dial for every request.
type strictLoad struct {
	addr, path string
	stop       chan struct{}
	wg         sync.WaitGroup
	ok         atomic.Int64
	closed     atomic.Int64 // answers with "Connection: close" on keep-alive connections
	// stopAt is set when the test stops the runner: a connection dialled
	// after it may be refused or reset by the closing socket (it was never
	// accepted); its failures are counted apart and do not fail the test.
	stopAt   atomic.Bool
	late     atomic.Int64
	mu       sync.Mutex
	failures map[string]int
	examples []string
}

// startLoad starts keepAlive + fresh workers against addr.
func startLoad(t *testing.T, addr, path string, keepAlive, fresh int) *strictLoad {
	t.Helper()
	l := &strictLoad{addr: addr, path: path, stop: make(chan struct{}), failures: map[string]int{}}
	for i := range keepAlive + fresh {
		l.wg.Go(func() { l.worker(i < keepAlive) })
	}
	t.Cleanup(l.halt)
	return l
}

func (l *strictLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// finish stops the load and fails t on any failed request, or if too few
// requests were answered for the test to mean anything.
func (l *strictLoad) finish(t *testing.T, atLeast int64) {
	t.Helper()
	l.halt()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("failed requests: %v (of %d answered); e.g. %s", l.failures, l.ok.Load(), strings.Join(l.examples, "; "))
	}
	if l.ok.Load() < atLeast {
		t.Errorf("only %d requests answered, want at least %d", l.ok.Load(), atLeast)
	}
}

// stopping marks that the runner is about to stop.
func (l *strictLoad) stopping() { l.stopAt.Store(true) }

func (l *strictLoad) fail(err error) {
	kind := "other"
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		kind = "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "EOF"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		kind = "timeout"
	}
	l.mu.Lock()
	l.failures[kind]++
	if len(l.examples) < 5 {
		l.examples = append(l.examples, err.Error())
	}
	l.mu.Unlock()
}

func (l *strictLoad) worker(keepAlive bool) {
	var conn net.Conn
	var br *bufio.Reader
	late := false  // dialled after the stop began
	first := false // no answer yet on this connection
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	req := "GET " + l.path + " HTTP/1.1\r\nHost: test\r\n\r\n"
	if !keepAlive {
		req = "GET " + l.path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
	}
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		if conn == nil {
			late = l.stopAt.Load()
			c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
			if err != nil {
				if late || l.stopAt.Load() {
					// Refused or reset by the closing socket: never accepted.
					l.late.Add(1)
					time.Sleep(time.Millisecond) // the runner is gone: do not spin
				} else {
					l.fail(err)
				}
				continue
			}
			conn, br = c, bufio.NewReader(c)
			first = true
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		closeAfter, err := l.roundTrip(conn, br, req)
		switch {
		case err != nil && (late || first && l.stopAt.Load()):
			// A connection still in the kernel's backlog when the
			// socket closed: reset, but its request never reached the
			// server. Requests on accepted connections must not fail.
			l.late.Add(1)
		case err != nil:
			l.fail(err)
		default:
			first = false
			l.ok.Add(1)
			if closeAfter && keepAlive {
				l.closed.Add(1)
			}
		}
		if err != nil || closeAfter || !keepAlive {
			conn.Close()
			conn = nil
		}
	}
}

func (l *strictLoad) roundTrip(conn net.Conn, br *bufio.Reader, req string) (closeAfter bool, err error) {
	if _, err := io.WriteString(conn, req); err != nil {
		return true, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return true, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Close, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Close, nil
}

// waitAnswered waits until n more requests were answered, so that a verb
// runs under load.
func (l *strictLoad) waitAnswered(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	waitFor(t, 20*time.Second, fmt.Sprintf("%d requests answered", n), func() bool { return l.ok.Load() >= target })
}
