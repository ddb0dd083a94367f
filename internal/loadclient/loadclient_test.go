package loadclient_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Config.Body: an answer with the expected status but another body is a
// failure of its own kind; the right body is OK.
func TestBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		body string
		want loadclient.Kind
	}{{"hello", loadclient.OK}, {"bye", loadclient.BadBody}} {
		ctx, cancel := context.WithCancel(context.Background())
		l := loadclient.Start(ctx, loadclient.Config{Addr: addr, Path: "/", KeepAlive: true, Body: tc.body, Timeout: 5 * time.Second})
		t.Cleanup(func() { cancel(); l.Wait() }) // also when WaitFor fails
		testutil.WaitFor(t, 10*time.Second, "ten requests of kind "+tc.want.String(), func() bool { return l.Result().Count(tc.want) >= 10 })
		cancel()
		res := l.Wait()
		if res.Count(tc.want) < 10 || res.Count(tc.want) != res.Requests {
			t.Errorf("Body %q: %v; want every request %v", tc.body, res, tc.want)
		}
	}
}

// A "Connection: close" answer on a keep-alive connection is no failure:
// it is counted in Closes and the worker dials again; Get reads one whole
// answer, body and Close flag included.
func TestClosesAndGet(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithCancel(context.Background())
	l := loadclient.Start(ctx, loadclient.Config{Addr: addr, Path: "/", KeepAlive: true, Body: "hello", Timeout: 5 * time.Second})
	t.Cleanup(func() { cancel(); l.Wait() })
	testutil.WaitFor(t, 10*time.Second, "ten answers that said Connection: close", func() bool { return l.Result().CloseCount() >= 10 })
	cancel()
	if res := l.Wait(); res.Failed() != 0 || res.Count(loadclient.OK) != res.Requests {
		t.Errorf("%v: want every request OK", res)
	}
	for range 3 {
		a, err := loadclient.Get(addr, "/", 5*time.Second)
		if err != nil || a.Status != 200 || a.Body != "hello" || a.Close != (n.Load()%3 == 0) {
			t.Errorf("Get = %+v, %v; want 200 \"hello\", Close on every third answer (answer %d)", a, err, n.Load())
		}
	}
}

// Result.Quantile: the client's own latency quantiles cover the time the
// server took (a handler that sleeps 2ms on every 10th request and answers
// at once otherwise): p50 below 2ms, p99 at least 2ms.
func TestQuantile(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	l := loadclient.Start(ctx, loadclient.Config{Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/", KeepAlive: true, Timeout: 5 * time.Second})
	t.Cleanup(func() { cancel(); l.Wait() })
	testutil.WaitFor(t, 20*time.Second, "200 requests", func() bool { return l.Result().Count(loadclient.OK) >= 200 })
	cancel()
	res := l.Wait()
	if p50, p99 := res.Quantile(0.5), res.Quantile(0.99); p50 >= 2*time.Millisecond || p99 < 2*time.Millisecond {
		t.Errorf("p50 %v, p99 %v; want p50 < 2ms <= p99 (%v)", p50, p99, res)
	}
	if (&loadclient.Result{}).Quantile(0.5) != 0 {
		t.Error("the quantile of no requests is not 0")
	}
}

// Config.TLS connects with TLS; after Stopping, requests refused by a
// server that closed its socket count as Late, not as failures, while the
// same refusals before Stopping are failures.
//
// TestDialledBeforeStoppingMustBeAnswered covers the other half of the rule.
func TestTLSAndStopping(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			t.Error("a request without TLS")
		}
		io.WriteString(w, "hello")
	}))
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
	addr := strings.TrimPrefix(srv.URL, "https://")
	ctx, cancel := context.WithCancel(context.Background())
	l := loadclient.Start(ctx, loadclient.Config{Addr: addr, Path: "/", Body: "hello", TLS: tlsConfig, Timeout: 5 * time.Second})
	t.Cleanup(func() { cancel(); l.Wait() })
	testutil.WaitFor(t, 10*time.Second, "ten answers over TLS", func() bool { return l.Result().Count(loadclient.OK) >= 10 })
	l.Stopping()
	// One worker, a new connection per request: two more answers, and the
	// connection open now was dialled after Stopping.
	ok := l.Result().Count(loadclient.OK)
	testutil.WaitFor(t, 10*time.Second, "answers after Stopping", func() bool { return l.Result().Count(loadclient.OK) >= ok+2 })
	srv.Close()
	testutil.WaitFor(t, 10*time.Second, "ten late requests", func() bool { return l.Result().Count(loadclient.Late) >= 10 })
	cancel()
	if res := l.Wait(); res.Failed() != 0 {
		t.Errorf("%v: want no failure", res)
	}

	// Without Stopping, a refusal is a failure.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	l = loadclient.Start(ctx, loadclient.Config{Addr: addr, Path: "/", TLS: tlsConfig, Timeout: 5 * time.Second})
	testutil.WaitFor(t, 10*time.Second, "a refused request", func() bool { return l.Result().Count(loadclient.Refused) >= 1 })
	cancel()
	if res := l.Wait(); res.Failed() == 0 || res.Count(loadclient.Late) != 0 {
		t.Errorf("%v: want refusals counted as failures", res)
	}
}

// TestDialledBeforeStoppingMustBeAnswered: a connection dialled before
// Stopping was in the server's accept queue when the stop began; a server
// that resets it instead of answering fails the request, Stopping or not.
func TestDialledBeforeStoppingMustBeAnswered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Nothing accepts: the worker's connection waits in the accept queue.
	l := loadclient.Start(ctx, loadclient.Config{Addr: ln.Addr().String(), Path: "/", Timeout: 10 * time.Second})
	c, err := ln.Accept() // the worker's connection, dialled before Stopping
	if err != nil {
		t.Fatal(err)
	}
	// Its request has arrived: the worker's dial has returned.
	if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	l.Stopping()
	c.(*net.TCPConn).SetLinger(0)
	c.Close() // reset, unanswered
	testutil.WaitFor(t, 10*time.Second, "the reset counted", func() bool { return l.Result().Failed() >= 1 })
	cancel()
	ln.Close()
	res := l.Wait()
	if res.Failed() != 1 || res.Count(loadclient.Reset)+res.Count(loadclient.EOF) != 1 {
		t.Errorf("%v: want the reset of a connection dialled before Stopping counted as a failure", res)
	}
}
