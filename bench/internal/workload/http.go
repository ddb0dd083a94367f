package workload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

// HelloBody is what the hello route answers.
const HelloBody = "Hello, production world!"

// RegisterRoutes adds the benchmark app's ten routes to r: "/" answers
// HelloBody, the other nine are plausible API routes with URL parameters, so
// the router has real work to do and the per-instance memory figure is that of
// a small but realistic app.
func RegisterRoutes(r chi.Router) {
	hello := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, HelloBody) }
	param := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, chi.URLParam(r, "id")) }
	r.Get("/", hello)
	r.Get("/greeting", hello)
	r.Get("/users", hello)
	r.Get("/users/{id}", param)
	r.Post("/users", hello)
	r.Put("/users/{id}", param)
	r.Delete("/users/{id}", param)
	r.Get("/orders/{id}", param)
	r.Get("/orders/{id}/items", param)
	r.Get("/health", hello)
}

// PlainServer serves the benchmark routes on one plain net/http server on a
// fresh loopback port: the baseline every goangel HTTP figure is compared with.
// It returns the base URL and a function that stops the server and waits for it.
func PlainServer(tb testing.TB) (url string, stop func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	r := chi.NewRouter()
	RegisterRoutes(r)
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("serve: %v", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() {
		srv.Close()
		<-done
	}
}

// Client returns an HTTP client for the load loops. With keepAlive false every
// request opens a new connection; the client closes it with SO_LINGER 0 so
// benchmark loops do not exhaust loopback ports with TIME_WAIT sockets.
func Client(keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DisableKeepAlives:   !keepAlive,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && !keepAlive {
				c.(*net.TCPConn).SetLinger(0)
			}
			return c, err
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Get sends one GET and drains the answer; any failure or non-200 status is an error.
func Get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// Clients is how many concurrent clients the HTTP load loops run.
const Clients = 8

// SetClients makes b.RunParallel run Clients goroutines (Clients/GOMAXPROCS
// per CPU, at least 1).
func SetClients(b *testing.B) { b.SetParallelism(max(1, Clients/runtime.GOMAXPROCS(0))) }

// DriveHTTP sends b.N GETs to url from Clients concurrent goroutines and
// reports requests per second. A failed request fails the benchmark.
func DriveHTTP(b *testing.B, url string, keepAlive bool) {
	c := Client(keepAlive)
	defer c.CloseIdleConnections()
	// Warm the connection pool so the first iterations do not pay the dials.
	if err := Get(c, url); err != nil {
		b.Fatal(err)
	}
	var (
		failed   atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	b.ReportAllocs()
	SetClients(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := Get(c, url); err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed; first: %v", n, b.N, firstErr)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// LifeRoute is the route of RegisterLifeRoute.
const LifeRoute = "/life"

// RegisterLifeRoute adds GET /life to r: it answers "N.L", the instance
// number and life of info, so that a client can tell which life answered.
func RegisterLifeRoute(r chi.Router, instance, life int) {
	body := strconv.Itoa(instance) + "." + strconv.Itoa(life)
	r.Get(LifeRoute, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })
}

// WaitAnswer asks addr (host:port) for /life on a new connection, again and
// again, until life (or a later one) of instance answers, or the deadline
// passes. Refused and failed requests are retried with a new connection
// (this is a poll, not load); only a whole 200 answer counts. It is how the
// respawn benchmark sees the new life serving: its first HTTP answer.
func WaitAnswer(addr string, instance, life int, deadline time.Time) error {
	var last string
	for {
		n, l, err := lifeOf(addr, deadline)
		if err == nil && n == instance && l >= life {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("life %d.%d answered", n, l)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance #%d: life %d did not answer by the deadline (last: %s)", instance, life, last)
		}
	}
}

func lifeOf(addr string, deadline time.Time) (instance, life int, err error) {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return 0, 0, err
	}
	c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT pile-up over thousands of polls (see Client)
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, "GET "+LifeRoute+" HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: status %d", LifeRoute, resp.StatusCode)
	}
	ns, ls, ok := strings.Cut(string(b), ".")
	instance, err1 := strconv.Atoi(ns)
	life, err2 := strconv.Atoi(ls)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("GET %s: unexpected body %q", LifeRoute, b)
	}
	return instance, life, nil
}
