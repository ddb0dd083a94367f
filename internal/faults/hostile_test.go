package faults

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/production/productiontest"
)

// hostileArgs bound every slow client at half a second.
var hostileArgs = []string{"-j", "2", "--quiet", "--read-header-timeout", "500ms", "--read-timeout", "500ms", "--write-timeout", "500ms"}

// limitArgs are hostileArgs with the default --read-header-timeout (10s):
// on a loaded machine, reading 1 MB of headers may take longer than half a
// second, and a header timeout that fires first closes the connection
// without the 431 that the header limit owes the client.
var limitArgs = []string{"-j", "2", "--quiet", "--read-timeout", "500ms", "--write-timeout", "500ms"}

// exchange writes each part of send (pausing pause between parts) while it
// reads, until the server closes the connection or, once everything was
// sent, stops talking for 5s; it returns what it read and whether the server
// closed the connection.
func exchange(t *testing.T, addr string, pause time.Duration, send ...string) (string, bool) {
	got, closed, _ := exchangeN(t, addr, pause, send...)
	return got, closed
}

// exchangeN is exchange that also returns how many parts of send were
// written before the server cut the connection.
//
// It reads while it writes: a server that answers before it read the whole
// request (431 after 1 MB of headers) and then closes a socket with unread
// bytes sends a reset, and a client that reads only after its last write can
// lose the answer to that reset.
func exchangeN(t *testing.T, addr string, pause time.Duration, send ...string) (string, bool, int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wrote atomic.Bool // every part was written, or the server cut us off
	type result struct {
		got    string
		closed bool
	}
	read := make(chan result, 1)
	go func() {
		var got bytes.Buffer
		buf := make([]byte, 64<<10)
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := c.Read(buf)
			got.Write(buf[:n])
			if err == nil {
				continue
			}
			var ne net.Error
			if errAs(err, &ne) && ne.Timeout() {
				if !wrote.Load() {
					continue // a slow client still sending: keep listening
				}
				read <- result{got.String(), false}
				return
			}
			read <- result{got.String(), true}
			return
		}
	}()
	sent := 0
	for i, part := range send {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		if _, err := io.WriteString(c, part); err != nil {
			break // the server cut us off: what it said is read meanwhile
		}
		sent++
	}
	wrote.Store(true)
	r := <-read
	return r.got, r.closed, sent
}

func errAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error) //nolint:errorlint // a net.Conn's Read error
	if ok {
		*ne = e
	}
	return ok
}

// trickle splits s into one-byte parts.
func trickle(s string) []string {
	parts := make([]string, len(s))
	for i := range s {
		parts[i] = s[i : i+1]
	}
	return parts
}

// TestHostileHTTP: hostile bytes on the raw socket each get their expected
// status or close, and the instance serves the next client.
func TestHostileHTTP(t *testing.T) {
	a, b := faultapp.New(), faultapp.New()
	hostile := productiontest.Start(t, "faultapp", a.Configure, hostileArgs).Addr().String()
	limits := productiontest.Start(t, "faultapp", b.Configure, limitArgs).Addr().String()
	cases := []struct {
		name   string
		send   []string
		pause  time.Duration
		status string // the status line's start, "" for a close with no answer
		cut    bool   // the server must cut the client off before it sent everything
		limit  bool   // sent to the runner with the default --read-header-timeout
	}{
		{"oversized header", []string{"GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"}, 0, "HTTP/1.1 431", false, true},
		{"numerous headers", []string{"GET /ok HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: "+strings.Repeat("b", 50)+"\r\n", 20_000) + "\r\n"}, 0, "HTTP/1.1 431", false, true},
		{"slowloris on headers", trickle("GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 40) + "\r\n\r\n"), 50 * time.Millisecond, "HTTP/1.1 400", true, false},
		{"slowloris on the body", append([]string{"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n"}, trickle(strings.Repeat("b", 40))...), 50 * time.Millisecond, "HTTP/1.1 400", true, false},
		{"body never sent", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"bad request line", []string{"GARBAGE\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"bad method", []string{"G(T / HTTP/1.1\r\nHost: x\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"unknown protocol version", []string{"GET /ok HTTP/7.3\r\nHost: x\r\n\r\n"}, 0, "HTTP/1.1 505", false, false},
		{"HTTP/0.9", []string{"GET /ok\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"no Host", []string{"GET /ok HTTP/1.1\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"absurd Content-Length", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"negative Content-Length", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"two Content-Lengths", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"}, 0, "HTTP/1.1 400", false, false},
		{"chunked garbage", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"chunk size overflow", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"unknown transfer coding", []string{"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"}, 0, "HTTP/1.1 501", false, false},
		{"binary garbage", []string{"\x00\x01\x02\xff\xfe\r\n\r\n"}, 0, "HTTP/1.1 400", false, false},
		{"TLS hello on plain HTTP", []string{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"}, 0, "HTTP/1.1 400", false, false},
		{"nothing at all", nil, 0, "", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := hostile
			if c.limit {
				addr = limits
			}
			got, closed, sent := exchangeN(t, addr, c.pause, c.send...)
			if c.cut && sent == len(c.send) {
				t.Errorf("the server took all %d parts of a slow client: it was not cut at its timeout", sent)
			}
			if !closed {
				t.Errorf("the server kept the connection open after %q", first(got))
			}
			if c.status == "" {
				if got != "" {
					t.Errorf("got %q, want the connection closed without an answer", first(got))
				}
			} else if !strings.HasPrefix(got, c.status) {
				t.Errorf("got %q, want %q", first(got), c.status)
			}
			if code, _, err := rawGet(addr, "/ok"); err != nil || code != 200 {
				t.Fatalf("GET /ok after it = %d %v: the instance must keep serving", code, err)
			}
		})
	}
}

func first(s string) string {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	if len(s) > 80 {
		return s[:80]
	}
	return s
}

// TestHalfClosed: a client that sends its request and then closes its
// sending side still gets the answer.
func TestHalfClosed(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, hostileArgs)
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 200") || !strings.HasSuffix(string(got), "ok") {
		t.Errorf("half-closed client got %q %v, want the 200 and a close", got, err)
	}
	// A half-closed connection before the request ends ends quietly.
	got2, closed := exchange(t, r.Addr().String(), 0, "GET /ok HTT")
	if got2 != "" && !strings.HasPrefix(got2, "HTTP/1.1 400") || !closed {
		t.Errorf("a cut request line got %q closed=%v", got2, closed)
	}
	if code, _, err := rawGet(r.Addr().String(), "/ok"); err != nil || code != 200 {
		t.Fatalf("GET /ok = %d %v", code, err)
	}
}

// TestThousandsOfIdleConnections: idle connections (some with a request
// half sent) take no instance away: new clients are served while they stay
// open, and they are closed at their timeouts.
func TestThousandsOfIdleConnections(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	n := 3000
	if max := int(lim.Cur)/2 - 100; n > max {
		n = max // client and server ends both live in this process
	}
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, hostileArgs)
	addr := r.Addr().String()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d of %d: %v", i, n, err)
		}
		if i%2 == 1 {
			io.WriteString(c, "GET /ok HTTP/1.1\r\n") // half a request
		}
		conns = append(conns, c)
	}
	for i := range 20 {
		if code, _, err := rawGet(addr, "/ok"); err != nil || code != 200 {
			t.Fatalf("GET /ok %d with %d idle connections = %d %v", i, n, code, err)
		}
	}
	// Every idle connection is closed by the server at its header timeout.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("idle connection %d: %v (got %q), want it closed by the server", i, err, got)
		}
	}
	t.Logf("%d idle connections held and closed by the server; 20 requests served meanwhile", n)
}
