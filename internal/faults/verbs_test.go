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
		"--drain-timeout", "10s", "--shutdown-timeout", "20s"})
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

// TestStopServesAcceptQueue: connections waiting in the kernel's accept
// queue when SIGTERM comes are answered (with Connection: close) before the
// listener closes, not reset. --max-connections 4 with 4 slow requests in
// flight holds 10 new connections, their requests sent, in the queue.
func TestStopServesAcceptQueue(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "2", "--max-connections", "4", "--drain-timeout", "10s"})
	addr := r.Addr().String()
	type answer struct {
		what   string
		status int
		close  bool
		err    error
	}
	answers := make(chan answer, 14)
	ask := func(what, path string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			answers <- answer{what: what, err: err}
			return
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		go func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- answer{what: what, err: err}
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answers <- answer{what: what, status: resp.StatusCode, close: resp.Close, err: err}
		}()
	}
	for range 4 {
		ask("slow request", "/sleep?d=1500ms")
	}
	testutil.WaitFor(t, 10*time.Second, "4 slow requests in flight", func() bool {
		n := int64(0)
		for _, s := range r.Stats().Instances {
			n += s.InFlight
		}
		return n == 4
	})
	for range 10 {
		ask("queued request", "/ok") // in the kernel's accept queue: every slot is taken
	}
	r.Signal(syscall.SIGTERM)
	for range 14 {
		select {
		case ans := <-answers:
			if ans.err != nil || ans.status != 200 {
				t.Errorf("%s at SIGTERM: %d %v, want 200", ans.what, ans.status, ans.err)
			} else if ans.what == "queued request" && !ans.close {
				t.Errorf("%s at SIGTERM answered without Connection: close", ans.what)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("an answer did not come within 30s")
		}
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Run = %v, want a clean stop", err)
	}
}

// TestStopUnderNewConnections: SIGTERM while clients keep opening new
// connections: every connection made before the signal (in the kernel's
// accept queue or accepted when the stop began) is answered, none reset or
// cut. Connections made after it come after the stop began: they are
// answered, refused once the socket closed, or, when their handshake
// races the close (the kernel keeps completing handshakes until then, and
// these clients never pause), reset; loadclient counts those as Late.
func TestStopUnderNewConnections(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "2", "--quiet", "--drain-timeout", "3s"})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load := loadclient.Start(ctx, loadclient.Config{Addr: r.Addr().String(), Path: "/ok", Workers: 16, Timeout: 20 * time.Second})
	testutil.WaitFor(t, 10*time.Second, "answers", func() bool { return load.Result().Count(loadclient.OK) > 500 })
	load.Stopping()
	r.Signal(syscall.SIGTERM)
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Run still running 30s after SIGTERM")
	}
	stop()
	res := load.Wait()
	if err := r.Stop(); err != nil {
		t.Errorf("Run = %v, want a clean stop", err)
	}
	if res.Failed() != 0 {
		t.Errorf("SIGTERM under new-connection load: %v; a connection made before the signal must be answered", res)
	}
	t.Logf("%v", res)
}

// TestFailedUpgradeLosesNoConnection: a binary upgrade (SIGUSR2) whose new
// process cannot serve (its configure fails, or hangs until
// --upgrade-timeout kills it) loses no connection: the new process accepts
// only once every instance of it serves, so every connection the load opens
// meanwhile is answered by the old one.
func TestFailedUpgradeLosesNoConnection(t *testing.T) {
	for _, brk := range []string{"fail", "hang"} {
		t.Run(brk, func(t *testing.T) {
			p := startProc(t, []string{"FAULTAPP_UPGRADE_BREAK=" + brk}, nil, "-j", "2", "--upgrade-timeout", "2s")
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			fresh := loadclient.Start(ctx, loadclient.Config{Addr: p.addr, Path: "/ok", Workers: 4, Body: "ok"})
			kept := loadclient.Start(ctx, loadclient.Config{Addr: p.addr, Path: "/ok", Workers: 2, KeepAlive: true, Body: "ok"})
			testutil.WaitFor(t, 10*time.Second, "answers", func() bool { return fresh.Result().Count(loadclient.OK) > 100 })
			if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 30*time.Second, "the upgrade failed", func() bool {
				return strings.Contains(p.out.String(), "Binary upgrade failed")
			})
			before := fresh.Result().Count(loadclient.OK)
			testutil.WaitFor(t, 10*time.Second, "answers after the failed upgrade", func() bool {
				return fresh.Result().Count(loadclient.OK) > before+100
			})
			stop()
			for name, res := range map[string]*loadclient.Result{"new-connection": fresh.Wait(), "keep-alive": kept.Wait()} {
				if res.Failed() > 0 {
					t.Errorf("%s load through a failed upgrade (%s): %v", name, brk, res)
				}
			}
			p.mustServe(t, "after the failed upgrade")
			if code := p.stop(t, 15*time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, p.out)
			}
		})
	}
}

// TestSilentConnectionsYield: 400 connections that send their headers and
// then nothing, against a process limited to 256 descriptors (with and
// without --max-connections), do not lock a new client out: at the
// connection limit the longest silent connection yields to a new one, and
// a client beside them keeps getting answers.
func TestSilentConnectionsYield(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"no limit", []string{"-j", "2"}},
		{"max-connections", []string{"-j", "2", "--max-connections", "200"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProcWith(t, "ulimit -n 256;", nil, nil, c.args...)
			var silent []net.Conn
			for range 400 {
				s, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
				if err != nil {
					t.Fatalf("silent connection %d: %v", len(silent), err)
				}
				t.Cleanup(func() { s.Close() })
				fmt.Fprintf(s, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n") // and no body
				silent = append(silent, s)
			}
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			load := loadclient.Start(ctx, loadclient.Config{Addr: p.addr, Path: "/ok", Workers: 1, Body: "ok", Timeout: 10 * time.Second})
			testutil.WaitFor(t, 30*time.Second, "10 answers beside 400 silent connections", func() bool {
				return load.Result().Count(loadclient.OK) >= 10
			})
			stop()
			if res := load.Wait(); res.Failed() > 0 {
				t.Errorf("a client beside 400 silent connections: %v", res)
			}
			if !strings.Contains(p.out.String(), "closing connections silent") {
				t.Errorf("the yielding of silent connections is not logged:\n%s", p.out)
			}
			if code := p.stop(t, 20*time.Second); code != 0 {
				t.Errorf("exit code %d\n%s", code, p.out)
			}
		})
	}
}
