package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// FuzzRouter sends request paths and headers through the example's router
// on a real Runner, on the raw socket (no client cleans them up first). No
// request may make a handler panic (500) or the server fail (5xx other than
// 505 for a request line whose version does not parse, 501 for an unknown
// transfer coding); the answer is a well-formed HTTP answer or a close, and
// the instance serves the next request. The seeds (f.Add and
// testdata/fuzz/FuzzRouter) run as a normal test; .ci/run explores briefly.
func FuzzRouter(f *testing.F) {
	for _, s := range [][3]string{
		{"/", "Accept", "*/*"},
		{"/greeting", "X-Forwarded-For", "1.2.3.4"},
		{"/change_greeting/Howdy", "Accept-Language", "en"},
		{"/change_greeting/", "", ""},
		{"/change_greeting/a%2Fb", "Cookie", "a=b"},
		{"/change_greeting/%00%ff", "Content-Type", "text/plain; charset=\x00"},
		{"/404", "Transfer-Encoding", "chunked"},
		{"/crash", "Connection", "Upgrade"},
		{"//greeting/../greeting", "Host", "evil"},
		{"/greeting?x=%zz", "Content-Length", "-1"},
		{"*", "Expect", "100-continue"},
		{"http://x/greeting", "Upgrade", "h2c"},
		{"/" + strings.Repeat("a/", 500), "X-Long", strings.Repeat("v", 9000)},
		{"/gr\u00e9eting", "X-\u00e9", "\u00e9"},
		{"/\r\nX-Injected: 1", "X", "a\r\nb: c"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	rn := productiontest.Start(f, "example", configure, []string{"-j", "1", "--crash-delay", "1h", "--quiet"}, production.WithFlags(&Flags{}))
	addr := rn.Addr().String()
	f.Fuzz(func(t *testing.T, path, name, value string) {
		if len(path)+len(name)+len(value) > 1<<16 {
			return
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Garbage may announce a body that never comes: do not wait for
		// the server's read timeout.
		c.SetDeadline(time.Now().Add(3 * time.Second))
		req := "GET " + path + " HTTP/1.1\r\nHost: example\r\n"
		if name != "" {
			req += name + ": " + value + "\r\n"
		}
		io.WriteString(c, req+"Connection: close\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		switch {
		case err != nil:
			// A close without an answer is fine for garbage, never for a
			// clean request.
			if clean(path) && cleanHeader(name, value) {
				t.Fatalf("GET %q with %q: %q: no answer: %v", path, name, value, err)
			}
		case resp.StatusCode == http.StatusInternalServerError:
			t.Fatalf("GET %q with %q: %q = 500: a handler panicked", path, name, value)
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusHTTPVersionNotSupported && resp.StatusCode != http.StatusNotImplemented:
			t.Fatalf("GET %q with %q: %q = %d", path, name, value, resp.StatusCode)
		}
		// The instance still serves.
		code, body := plainGet(t, addr)
		if code != 200 || body != "Hello, production world!" {
			t.Fatalf("after GET %q with %q: %q: GET / = %d %q", path, name, value, code, body)
		}
	})
}

// clean reports whether path is a request target a client may send as is.
func clean(path string) bool {
	if !strings.HasPrefix(path, "/") {
		return false
	}
	for i := 0; i < len(path); i++ {
		if path[i] <= ' ' || path[i] >= 0x7f {
			return false
		}
	}
	return true
}

func cleanHeader(name, value string) bool {
	if name == "" {
		return true
	}
	for i := 0; i < len(name); i++ {
		if name[i] <= ' ' || name[i] >= 0x7f || name[i] == ':' {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if value[i] < ' ' && value[i] != '\t' || value[i] == 0x7f {
			return false
		}
	}
	return !strings.EqualFold(name, "Host") && !strings.EqualFold(name, "Content-Length") &&
		!strings.EqualFold(name, "Transfer-Encoding") && !strings.EqualFold(name, "Connection") && !strings.EqualFold(name, "Expect")
}

func plainGet(t *testing.T, addr string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
