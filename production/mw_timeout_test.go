package production_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// timeouts is an app whose handlers report what they saw on channels.
type timeouts struct {
	cause    chan error    // /wait: the cause of its context's end
	release  chan struct{} // /hang: returns once closed
	hung     chan struct{} // /hang: closed when it returns
	readErr  chan error    // /upload: what reading the body gave
	writeErr chan error    // /big: what writing 200 MB gave
	deadline chan bool     // /deadline: whether the context has one
}

func newTimeouts() *timeouts {
	return &timeouts{
		cause: make(chan error, 4), release: make(chan struct{}), hung: make(chan struct{}),
		readErr: make(chan error, 4), writeErr: make(chan error, 4), deadline: make(chan bool, 4),
	}
}

func (a *timeouts) configure(app *production.App) error {
	app.Router.Get("/wait", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		a.cause <- context.Cause(r.Context())
		io.WriteString(w, "too late") // fails: the 503 went
	})
	app.Router.Get("/hang", func(w http.ResponseWriter, r *http.Request) {
		defer close(a.hung)
		<-a.release // ignores its context
	})
	app.Router.Get("/started", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial ")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		io.WriteString(w, "end")
	})
	app.Router.Get("/deadline", func(w http.ResponseWriter, r *http.Request) {
		_, ok := r.Context().Deadline()
		a.deadline <- ok
	})
	app.Router.Post("/upload", func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		a.readErr <- err
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		io.WriteString(w, "got it")
	})
	app.Router.Post("/long-upload", func(w http.ResponseWriter, r *http.Request) {
		// A handler that expects a slow upload extends its bound.
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			panic(err)
		}
		b, err := io.ReadAll(r.Body)
		a.readErr <- err
		fmt.Fprintf(w, "%d bytes", len(b))
	})
	app.Router.Get("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<20)
		var err error
		for i := 0; i < 200 && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		a.writeErr <- err
	})
	app.Router.Get("/patient", func(w http.ResponseWriter, r *http.Request) {
		// A handler whose client pauses longer than --write-timeout.
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			panic(err)
		}
		chunk := make([]byte, 1<<20)
		var err error
		for i := 0; i < 16 && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		a.writeErr <- err
	})
	app.Router.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
		// A stream slower than --write-timeout, to a client that reads.
		for i := range 6 {
			fmt.Fprintf(w, "tick %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	return nil
}

func recvErr(t *testing.T, ch chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20s", what)
		return nil
	}
}

func TestRequestTimeout(t *testing.T) {
	a := newTimeouts()
	h := startRunner(t, a.configure, []string{"-j", "1", "--request-timeout", "200ms"})

	// A handler that waits on its context: canceled with ErrRequestTimeout,
	// and the client gets 503 with Connection: close.
	resp, err := h.client.Get(h.run.URL + "/wait")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "request timeout (200ms)") || !resp.Close {
		t.Errorf("GET /wait = %d %q close=%v, want 503 naming the timeout, Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := recvErr(t, a.cause, "cause"); !errors.Is(err, production.ErrRequestTimeout) {
		t.Errorf("context cause = %v, want ErrRequestTimeout", err)
	}

	// A handler that ignores its context: the 503 comes while it still runs.
	resp, err = h.client.Get(h.run.URL + "/hang")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-a.hung:
		t.Fatal("the hanging handler returned before its release")
	default:
	}
	if resp.StatusCode != 503 {
		t.Errorf("GET /hang = %d, want 503 while the handler still runs", resp.StatusCode)
	}
	close(a.release)

	// A handler whose answer started keeps its answer; its context ends.
	code, body2, _, err := h.get("/started")
	if err != nil || code != 200 || body2 != "partial end" {
		t.Errorf("GET /started = %d %q %v, want the handler's own 200", code, body2, err)
	}
}

func TestRequestTimeoutOffByDefault(t *testing.T) {
	a := newTimeouts()
	h := startRunner(t, a.configure, []string{"-j", "1"})
	if code, _, _, err := h.get("/deadline"); err != nil || code != 200 {
		t.Fatalf("GET /deadline = %d %v", code, err)
	}
	if <-a.deadline {
		t.Error("a request context has a deadline without --request-timeout")
	}
}

// rawPost sends a POST's headers announcing n body bytes, then the body by
// send; it returns the connection.
func rawPost(t *testing.T, h *harness, path string, n int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", h.run.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, n)
	return c
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func TestReadTimeout(t *testing.T) {
	a := newTimeouts()
	h := startRunner(t, a.configure, []string{"-j", "1", "--read-timeout", "300ms"})

	// A body that never comes.
	c := rawPost(t, h, "/upload", 10)
	if err := recvErr(t, a.readErr, "read error"); !isTimeout(err) {
		t.Errorf("reading a body that never comes: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || !strings.Contains(string(got), "408") {
		t.Errorf("client got %q %v, want the 408 and the connection closed", got, err)
	}

	// A body at one byte per 50ms: cut at the bound, not after the body.
	c = rawPost(t, h, "/upload", 1000)
	trickled := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 1000; n++ {
			if _, err := c.Write([]byte{'x'}); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		trickled <- n
	}()
	if err := recvErr(t, a.readErr, "read error"); !isTimeout(err) {
		t.Errorf("reading a trickled body: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(c)
	c.Close()
	if n := <-trickled; n >= 1000 {
		t.Errorf("the whole trickled body was taken (%d bytes)", n)
	}

	// A handler that extends its deadline gets its slow body.
	c = rawPost(t, h, "/long-upload", 10)
	for range 10 {
		c.Write([]byte{'y'})
		time.Sleep(60 * time.Millisecond) // 600ms in all: twice the bound
	}
	if err := recvErr(t, a.readErr, "read result"); err != nil {
		t.Errorf("an extended upload failed: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "10 bytes" {
		t.Errorf("extended upload answered %q", b)
	}

	// A quick body is not disturbed, nor a handler that runs past the bound
	// after reading it.
	resp, err = h.client.Post(h.run.URL+"/upload", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "got it" {
		t.Errorf("a normal POST = %d %q", resp.StatusCode, b)
	}
	<-a.readErr
}

// TestReadTimeoutHTTP2: over HTTP/2 (h2c), where --read-timeout's stream
// deadline is set at the handler's first read of the body: a body that never
// comes still fails the read at the bound, counted from the handler's start;
// a handler that extended its deadline before reading gets its slow body; and
// a handler that reads no body runs past the bound undisturbed.
func TestReadTimeoutHTTP2(t *testing.T) {
	a := newTimeouts()
	slow := make(chan error, 1)
	configure := func(app *production.App) error {
		if err := a.configure(app); err != nil {
			return err
		}
		app.Router.Post("/late-read", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(400 * time.Millisecond) // past the bound, then read
			_, err := io.ReadAll(r.Body)
			slow <- err
		})
		app.Router.Get("/slow", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(400 * time.Millisecond) // past the bound, no body
			io.WriteString(w, "slow")
		})
		return nil
	}
	h := startRunner(t, configure, []string{"-j", "1", "--http2", "--read-timeout", "300ms"})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	post := func(path string, body io.Reader) (*http.Response, error) {
		req, err := http.NewRequest("POST", h.run.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		return c.Do(req)
	}

	// A body that never comes.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		if resp, err := post("/upload", pr); err == nil {
			resp.Body.Close()
		}
	}()
	if err := recvErr(t, a.readErr, "read error"); !isTimeout(err) {
		t.Errorf("h2: reading a body that never comes: %v, want a timeout", err)
	}

	// Read only after the bound: the deadline counts from the handler's
	// start, so the read fails at once.
	pr2, pw2 := io.Pipe()
	defer pw2.Close()
	go func() {
		if resp, err := post("/late-read", pr2); err == nil {
			resp.Body.Close()
		}
	}()
	if err := recvErr(t, slow, "late read"); !isTimeout(err) {
		t.Errorf("h2: a read after the bound: %v, want a timeout", err)
	}

	// A handler that extends its deadline gets a body slower than the bound.
	pr3, pw3 := io.Pipe()
	go func() {
		for range 10 {
			pw3.Write([]byte{'y'})
			time.Sleep(60 * time.Millisecond) // 600ms in all: twice the bound
		}
		pw3.Close()
	}()
	resp, err := post("/long-upload", pr3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := recvErr(t, a.readErr, "read result"); err != nil || string(b) != "10 bytes" || resp.Proto != "HTTP/2.0" {
		t.Errorf("h2: an extended upload: %v, answered %q over %s", err, b, resp.Proto)
	}

	// No body: past the bound, undisturbed.
	body, resp, err := fetch(c, h.run.URL+"/slow")
	if err != nil || resp.StatusCode != 200 || body != "slow" {
		t.Errorf("h2: GET /slow = %v %q %v", resp, body, err)
	}
}

func TestWriteTimeout(t *testing.T) {
	a := newTimeouts()
	h := startRunner(t, a.configure, []string{"-j", "1", "--write-timeout", "300ms"})

	// 200 MB that nobody reads: the write fails at the bound.
	c, err := net.Dial("tcp", h.run.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := recvErr(t, a.writeErr, "write result"); err == nil || !isTimeout(err) {
		t.Errorf("writing 200 MB to a client that does not read: %v, want a timeout", err)
	}
	// The server closed the connection: reading what is buffered ends.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n >= 200<<20 {
		t.Errorf("client read %d bytes, %v: want less than the 200 MB and EOF", n, err)
	}

	// A handler that extends its deadline is not cut while its client
	// pauses; the next request on the connection has the bound again.
	c2, err := net.Dial("tcp", h.run.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /patient HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c2)
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the client pauses past the bound (a fault, not a measurement)
	c2.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err = io.Copy(io.Discard, resp.Body)
	if err != nil || n != 16<<20 {
		t.Errorf("extended answer: %d bytes, %v; want all 16 MiB", n, err)
	}
	if err := recvErr(t, a.writeErr, "write result"); err != nil {
		t.Errorf("an extended write failed: %v", err)
	}
	fmt.Fprintf(c2, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := recvErr(t, a.writeErr, "write result"); err == nil || !isTimeout(err) {
		t.Errorf("the next request on the connection, unread: %v, want a timeout again", err)
	}

	// A stream slower than the bound, to a client that reads, is whole.
	code, body, _, err := h.get("/stream")
	if err != nil || code != 200 || !strings.HasSuffix(body, "tick 5\n") {
		t.Errorf("GET /stream = %d %q %v, want every tick", code, body, err)
	}
}

// TestMaxConnections: at --max-connections the runner stops accepting; the
// next client waits in the backlog and is served once a connection closes.
func TestMaxConnections(t *testing.T) {
	var served atomic.Int64
	configure := func(app *production.App) error {
		app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			io.WriteString(w, "ok")
		})
		return nil
	}
	h := startRunner(t, configure, []string{"-j", "2", "--max-connections", "2"})
	get := func(c net.Conn) (*http.Response, error) {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", h.run.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := get(c); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The third connects (the kernel's backlog) but is not served.
	third, err := net.Dial("tcp", h.run.Addr().String())
	if err != nil {
		t.Fatalf("dial at the limit: %v, want it to wait in the backlog", err)
	}
	defer third.Close()
	fmt.Fprintf(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := third.Read(make([]byte, 1)); n > 0 || !isTimeout(err) {
		t.Fatalf("the connection over the limit was served (%d bytes, %v)", n, err)
	}
	if n := served.Load(); n != 2 {
		t.Fatalf("%d requests served, want 2", n)
	}
	// One held connection closes: the third is accepted and served.
	held[0].Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting connection after a slot freed: %v", err)
	}
	resp.Body.Close()
}

// TestRequestTimeoutHTTP2: the 503 of --request-timeout goes out on an
// HTTP/2 stream too, while the handler still runs (the stream's end waits
// for the handler), and the connection's other streams live on.
func TestRequestTimeoutHTTP2(t *testing.T) {
	a := newTimeouts()
	h := startTLS(t, "--http2", a.configure, "-j", "1", "--request-timeout", "200ms")
	resp, err := h.client.Get(h.run.URL + "/hang")
	if err != nil {
		t.Fatal(err)
	}
	// The stream itself ends when the handler returns (HTTP/2 has no other
	// way): read what Content-Length announces.
	body := make([]byte, resp.ContentLength)
	if _, err := io.ReadFull(resp.Body, body); err != nil {
		t.Fatalf("reading the 503's %d bytes: %v", resp.ContentLength, err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 503 || !strings.Contains(string(body), "request timeout") {
		t.Errorf("GET /hang = %s %d %q, want an HTTP/2 503", resp.Proto, resp.StatusCode, body)
	}
	select {
	case <-a.hung:
		t.Fatal("the hanging handler returned before its release")
	default:
	}
	close(a.release)
	if code, proto := getProto(t, h, "/deadline"); code != 200 || proto != "HTTP/2.0" {
		t.Errorf("GET /deadline = %d %s", code, proto)
	}
	if !<-a.deadline {
		t.Error("no deadline on a request context under --request-timeout")
	}
}
