package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// The operating verbs (scale, reload, stop, upgrade) where they meet a slow
// or hostile client, a long request, or an operator's large number.

// TestScaleBounded: Scale is bounded by --max-instances (a clear error
// above it, SIGTTIN included), a large scale costs the runner's loop about
// n, not n³, and a stop during it is not held up: Run returns within
// --shutdown-timeout, cleanly, while a client keeps getting answers until
// the stop.
func TestScaleBounded(t *testing.T) {
	const many = 2000
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "2", "--quiet", "--max-instances", "2000",
		"--drain-timeout", "2s", "--shutdown-timeout", "20s"})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load := loadclient.Start(ctx, loadclient.Config{Addr: r.Addr().String(), Path: "/ok", Workers: 2, KeepAlive: true})

	if err := r.Scale(ctx, 100000); !errors.Is(err, production.ErrTooManyInstances) {
		t.Fatalf("Scale(100000) = %v, want ErrTooManyInstances", err)
	}
	if s := r.Stats(); s.Wanted != 2 {
		t.Fatalf("after a refused Scale(100000): %d instances wanted, want 2", s.Wanted)
	}

	scaled := make(chan error, 1)
	go func() { scaled <- r.Scale(context.Background(), many) }()
	testutil.WaitFor(t, 30*time.Second, "the scale under way", func() bool { return r.Stats().Wanted == many })
	before := load.Result().Count(loadclient.OK)
	testutil.WaitFor(t, 30*time.Second, "answers during the scale", func() bool { return load.Result().Count(loadclient.OK) > before+10 })
	stop()
	if res := load.Wait(); res.Failed() > 0 {
		t.Errorf("load during the scale: %v", res)
	}
	r.Signal(syscall.SIGTERM)
	select {
	case <-r.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("Run still running 20s (--shutdown-timeout) after SIGTERM during Scale(%d)", many)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run after SIGTERM during Scale(%d) = %v, want a clean stop", many, err)
	}
	if err := <-scaled; err != nil && !errors.Is(err, production.ErrNotRunning) {
		t.Errorf("Scale(%d) interrupted by the stop = %v, want nil or ErrNotRunning", many, err)
	}
}

// TestScaleBeyondMaxBySignal: SIGTTIN at --max-instances is refused and
// logged; the runner serves on with the instances it has.
func TestScaleBeyondMaxBySignal(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "2", "--max-instances", "2"})
	r.Signal(syscall.SIGTTIN)
	testutil.WaitFor(t, 10*time.Second, "the refusal logged", func() bool {
		return strings.Contains(r.Log(), "--max-instances")
	})
	if s := r.Stats(); s.Wanted != 2 || len(s.Instances) != 2 {
		t.Errorf("after SIGTTIN at --max-instances 2: wanted %d, %d instances", s.Wanted, len(s.Instances))
	}
}

// openEcho opens a connection to /hijack-echo and checks that it echoes.
func openEcho(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /hijack-echo HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("GET /hijack-echo: %v %v", resp, err)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// alive fails the test if the runner has ended.
func alive(t *testing.T, r *productiontest.Runner, when string) {
	t.Helper()
	select {
	case <-r.Done():
		t.Fatalf("%s: the runner ended: %v\n%s", when, r.Stop(), r.Log())
	default:
	}
}

// TestReloadWithHijackedConnections: WebSocket-style handlers blocked
// reading their hijacked connections do not end the process through
// reloads: at the drain deadline their connections are closed, the handlers
// return and are not abandoned (--max-abandoned 10, 12 connections per
// reload, three reloads).
func TestReloadWithHijackedConnections(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "2", "--drain-timeout", "500ms", "--max-abandoned", "10"})
	addr := r.Addr().String()
	for round := range 3 {
		var conns []net.Conn
		for range 12 {
			conns = append(conns, openEcho(t, addr))
		}
		if err := r.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", round+1, err)
		}
		for i, c := range conns {
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("reload %d: hijacked connection %d not closed at the drain deadline: %v", round+1, i, err)
			}
		}
		testutil.WaitFor(t, 10*time.Second, "no handler left running", func() bool { return r.Stats().Abandoned == 0 })
		alive(t, r, fmt.Sprintf("after reload %d", round+1))
	}
	if code, _, err := rawGet(addr, "/ok"); err != nil || code != 200 {
		t.Fatalf("GET /ok after three reloads = %d %v", code, err)
	}
	if strings.Contains(r.Log(), "abandoned") {
		t.Errorf("handlers of hijacked connections were abandoned:\n%s", r.Log())
	}
}

// TestReloadWithSlowRequests: requests that outlast --drain-timeout are
// abandoned at the deadline but stop counting when they return, so that
// routine reloads never add up to --max-abandoned (5 two-second requests
// per reload, --max-abandoned 6, three reloads).
func TestReloadWithSlowRequests(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "1", "--drain-timeout", "300ms", "--max-abandoned", "6"})
	addr := r.Addr().String()
	for round := range 3 {
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() { rawGet(addr, "/sleep?d=1500ms") }) // cut at the drain deadline
		}
		testutil.WaitFor(t, 10*time.Second, "5 slow requests in flight", func() bool {
			s := r.Stats()
			return len(s.Instances) == 1 && s.Instances[0].InFlight == 5
		})
		if err := r.Reload(context.Background()); err != nil {
			t.Fatalf("reload %d: %v", round+1, err)
		}
		wg.Wait()
		testutil.WaitFor(t, 10*time.Second, "the slow handlers abandoned", func() bool {
			return strings.Count(r.Log(), "were abandoned") == round+1
		})
		testutil.WaitFor(t, 10*time.Second, "the slow handlers returned", func() bool { return r.Stats().Abandoned == 0 })
		alive(t, r, fmt.Sprintf("after reload %d", round+1))
	}
	if code, _, err := rawGet(addr, "/ok"); err != nil || code != 200 {
		t.Fatalf("GET /ok after three reloads = %d %v", code, err)
	}
}

// TestHangTimeoutIsNoProgress: --hang-timeout means no progress, not age: a
// steady download and a steady upload that each take several times
// --hang-timeout complete on the life they started on, while a request that
// moves no byte is still found hung and its instance replaced.
func TestHangTimeoutIsNoProgress(t *testing.T) {
	a := faultapp.New()
	defer a.Release()
	var ev eventCounter
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "1", "--hang-timeout", "300ms", "--drain-timeout", "5s"},
		production.WithEventHook(ev.hook))
	addr := r.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	var wg sync.WaitGroup
	wg.Go(func() { // 24 chunks of 64 KiB, one per 50ms: 1.2s, 4x --hang-timeout
		resp, err := client.Get("http://" + addr + "/trickle?n=24&every=50ms")
		if err != nil {
			t.Errorf("download: %v", err)
			return
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != 24*faultapp.TrickleChunk {
			t.Errorf("download past --hang-timeout: %d of %d bytes, %v", n, 24*faultapp.TrickleChunk, err)
		}
	})
	wg.Go(func() { // 24 chunks of 1 KiB, one per 50ms
		pr, pw := io.Pipe()
		go func() {
			chunk := make([]byte, 1024)
			for range 24 {
				pw.Write(chunk)
				time.Sleep(50 * time.Millisecond) // the pace of a slow client, not a wait for a condition
			}
			pw.Close()
		}()
		resp, err := client.Post("http://"+addr+"/upload", "application/octet-stream", pr)
		if err != nil {
			t.Errorf("upload: %v", err)
			return
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "24576" {
			t.Errorf("upload past --hang-timeout: %d %q, want 200 \"24576\"", resp.StatusCode, b)
		}
	})
	wg.Wait()
	if n := ev.count(production.EventHung); n != 0 {
		t.Fatalf("%d hung events for requests that made progress\n%s", n, r.Log())
	}
	if life := r.Stats().Instances[0].Life; life != 1 {
		t.Fatalf("the instance was replaced (life %d) during moving requests\n%s", life, r.Log())
	}

	// A request that moves nothing is hung.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	testutil.WaitFor(t, 10*time.Second, "the /hang request found hung", func() bool { return ev.count(production.EventHung) > 0 })
}

// eventCounter counts a runner's events by kind.
type eventCounter struct {
	mu    sync.Mutex
	kinds map[production.EventKind]int
}

func (e *eventCounter) hook(ev production.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kinds == nil {
		e.kinds = map[production.EventKind]int{}
	}
	e.kinds[ev.Kind]++
}

func (e *eventCounter) count(k production.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.kinds[k]
}
