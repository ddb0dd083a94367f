package production_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// midBody is a handler that starts a JSON answer, flushes it, and panics.
func midBody(app *production.App) error {
	instanceHeader(app)
	app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	app.Router.Get("/mid-body", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[1,2,3,`)
		w.(http.Flusher).Flush()
		panic("panic mid-body")
	})
	app.Router.Get("/mid-body-length", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, `{"items":[1,2,3,`)
		w.(http.Flusher).Flush()
		panic("panic mid-body with a length")
	})
	app.Router.Get("/after-status", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		panic("panic after the status")
	})
	app.Router.Get("/before", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Half", "set")
		panic("panic before the answer")
	})
	app.Router.Get("/abort", func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	return nil
}

func panics(h *harness) (n uint64) {
	for _, s := range h.run.Stats().Instances {
		n += s.Panics
	}
	return n
}

// TestPanicAfterAnswerStartedAborts: a panic once anything of the answer
// was written never turns into a complete-looking answer: the client's read
// fails and the connection is not reused. Only a panic before the first
// byte is a 500.
func TestPanicAfterAnswerStartedAborts(t *testing.T) {
	h := startRunner(t, midBody, []string{"-j", "1"})
	for _, path := range []string{"/mid-body", "/mid-body-length"} {
		resp, err := h.client.Get(h.run.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v (the status line was flushed: want it, then a failed body)", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("GET %s: body %q read with error %v, want an unexpected EOF", path, body, err)
		}
		if resp.StatusCode != 200 || strings.Contains(string(body), "Internal Server Error") {
			t.Errorf("GET %s = %d %q: want the 200 as sent and no 500 text after the half body", path, resp.StatusCode, body)
		}
	}
	// Nothing but the status was written: the status never leaves; the
	// client sees the connection end with no answer.
	if resp, err := h.client.Get(h.run.URL + "/after-status"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("GET /after-status = %d %q, want no answer", resp.StatusCode, b)
	}
	// Before the first byte: a 500.
	resp, err := h.client.Get(h.run.URL + "/before")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 500 || !strings.Contains(string(b), "Internal Server Error") {
		t.Errorf("GET /before = %d %q %v, want a whole 500", resp.StatusCode, b, err)
	}
	// http.ErrAbortHandler goes through, silent and not counted.
	if _, err := h.client.Get(h.run.URL + "/abort"); err == nil {
		t.Error("GET /abort got an answer, want the connection aborted")
	}
	if code, body, _, err := h.get("/"); err != nil || code != 200 || body != "ok" {
		t.Fatalf("GET / after the panics = %d %q %v: the instance must keep serving", code, body, err)
	}
	if n := panics(h); n != 4 {
		t.Errorf("Stats panics = %d, want 4 (three aborted, one 500; ErrAbortHandler not counted)", n)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	log := h.run.Log()
	for _, want := range []string{
		"after its answer started: aborting the response: panic mid-body",
		"after its answer started: aborting the response: panic after the status",
		"Recovered from a panic in a handler: panic before the answer",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "abort handler") {
		t.Errorf("http.ErrAbortHandler was logged:\n%s", log)
	}
}

// TestPanicMidBodyRawConnection: on the wire, the chunked body of a
// handler that panics mid-body never gets its last chunk, and the server
// closes the connection.
func TestPanicMidBodyRawConnection(t *testing.T) {
	h := startRunner(t, midBody, []string{"-j", "1"})
	c, err := net.Dial("tcp", h.run.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /mid-body HTTP/1.1\r\nHost: x\r\n\r\n")
	raw, err := io.ReadAll(c) // ends when the server closes
	if err != nil {
		t.Fatalf("reading until the server closes: %v (got %q)", err, raw)
	}
	s := string(raw)
	if !strings.HasPrefix(s, "HTTP/1.1 200 OK") || !strings.Contains(s, `{"items":[1,2,3,`) {
		t.Fatalf("got %q, want the 200 and the half body", s)
	}
	if strings.HasSuffix(s, "0\r\n\r\n") || strings.Contains(s, "Internal Server Error") {
		t.Errorf("got %q: the body was finished (last chunk or 500 text)", s)
	}
	// Parsing it as a client would fails.
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(s)), nil)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
	}
	if err == nil {
		t.Error("the half answer parses as a complete one")
	}
}

// TestPanicMidBodyHTTP2: over HTTP/2 the stream is reset; the connection
// and its other streams live on.
func TestPanicMidBodyHTTP2(t *testing.T) {
	h := startTLS(t, "--http2", midBody, "-j", "1")
	resp, err := h.client.Get(h.run.URL + "/mid-body")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", resp.Proto)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("GET /mid-body over h2 = %q with no error, want the stream reset", body)
	}
	if code, proto := getProto(t, h, "/"); code != 200 || proto != "HTTP/2.0" {
		t.Errorf("GET / after the reset = %d %s", code, proto)
	}
	if n := panics(h); n != 1 {
		t.Errorf("Stats panics = %d, want 1", n)
	}
}
