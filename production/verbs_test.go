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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/pubsub"
)

// eventLog collects events for a test.
type eventLog struct {
	mu     sync.Mutex
	events []production.Event
}

func (e *eventLog) hook(ev production.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
}

func (e *eventLog) count(k production.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (e *eventLog) find(k production.EventKind) (production.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if ev.Kind == k {
			return ev, true
		}
	}
	return production.Event{}, false
}

func (e *eventLog) all() []production.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]production.Event(nil), e.events...)
}

func lives(r *production.Runner) map[int]int {
	m := map[int]int{}
	for _, s := range r.Stats().Instances {
		m[s.Number] = s.Life
	}
	return m
}

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestReloadUnderLoad(t *testing.T) {
	var configures atomic.Int64
	configure := func(app *production.App) error {
		configures.Add(1)
		return hello(app)
	}
	var ev eventLog
	h := startRunner(t, configure, []string{"-j", "3", "--quiet"}, production.WithEventHook(ev.hook))
	load := startLoad(t, h.run.Addr().String(), "/", 4, 2)
	load.waitAnswered(t, 200)
	minServing := ev.watchServing()
	for round := range 2 {
		if err := h.run.Reload(bg(t)); err != nil {
			t.Fatalf("Reload %d: %v", round+1, err)
		}
		for num, life := range lives(h.run.Runner) {
			if life != round+2 {
				t.Errorf("after reload %d: instance #%d on life %d, want %d", round+1, num, life, round+2)
			}
		}
		if s := h.run.Stats(); s.Serving != 3 || s.Wanted != 3 || s.Reloading {
			t.Errorf("after reload: %+v", s)
		}
		load.waitAnswered(t, 200)
	}
	if m := minServing(); m < 3 {
		t.Errorf("%d instances serving at one point of the reloads, want never below 3", m)
	}
	load.finish(t, 400)
	if got := configures.Load(); got != 9 {
		t.Errorf("configure ran %d times, want 3 + 2×3 (a fresh configure per reloaded life)", got)
	}
	if ev.count(production.EventReloadStarted) != 2 || ev.count(production.EventReloadFinished) != 2 {
		t.Errorf("reload events: %d started, %d finished; want 2 and 2", ev.count(production.EventReloadStarted), ev.count(production.EventReloadFinished))
	}
}

func TestReloadConfigureFails(t *testing.T) {
	var broken atomic.Bool
	configure := func(app *production.App) error {
		if broken.Load() && app.Info().Number == 1 {
			return errors.New("config.yaml: line 3: bad indent")
		}
		return hello(app)
	}
	var ev eventLog
	h := startRunner(t, configure, []string{"-j", "3"}, production.WithEventHook(ev.hook))
	load := startLoad(t, h.run.Addr().String(), "/", 2, 1)
	load.waitAnswered(t, 100)
	broken.Store(true)
	err := h.run.Reload(bg(t))
	if err == nil || !strings.Contains(err.Error(), "bad indent") || !strings.Contains(err.Error(), "instance #1") {
		t.Fatalf("Reload = %v, want the configure error of instance #1", err)
	}
	load.waitAnswered(t, 100)
	load.finish(t, 200)
	if got := lives(h.run.Runner); got[0] != 2 || got[1] != 1 || got[2] != 1 {
		t.Errorf("lives after the aborted reload = %v, want #0 reloaded, #1 and #2 on their old lives", got)
	}
	if s := h.run.Stats(); s.Serving != 3 {
		t.Errorf("%d instances serving after the aborted reload, want 3", s.Serving)
	}
	if e, ok := ev.find(production.EventReloadAborted); !ok || !strings.Contains(fmt.Sprint(e.Err), "bad indent") {
		t.Errorf("no reload-aborted event with the reason: %v", e)
	}
	if out := h.run.Log(); !strings.Contains(out, "Reload aborted") || !strings.Contains(out, "bad indent") {
		t.Errorf("log does not say why the reload stopped:\n%s", out)
	}
	// Fixed: the next reload goes through.
	broken.Store(false)
	if err := h.run.Reload(bg(t)); err != nil {
		t.Fatal(err)
	}
}

func TestReloadCoalesced(t *testing.T) {
	gate := make(chan struct{})
	var gated atomic.Bool
	configure := func(app *production.App) error {
		if gated.Load() && app.Info().Number == 0 {
			<-gate
		}
		return hello(app)
	}
	var ev eventLog
	h := startRunner(t, configure, []string{"-j", "2"}, production.WithEventHook(ev.hook))
	gated.Store(true)
	errs := make(chan error, 4)
	go func() { errs <- h.run.Reload(bg(t)) }()
	waitFor(t, 10*time.Second, "the first reload", func() bool { return h.run.Stats().Reloading })
	for range 3 {
		go func() { errs <- h.run.Reload(bg(t)) }()
	}
	waitFor(t, 10*time.Second, "the three later calls to wait for the first reload", func() bool {
		return strings.Count(h.run.Log(), "A reload is under way: one more runs after it") == 3
	})
	gated.Store(false)
	close(gate)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := ev.count(production.EventReloadStarted); n != 2 {
		t.Errorf("%d reloads ran for 4 calls during one, want 2 (the later three coalesced)", n)
	}
}

func TestScaleUnderLoad(t *testing.T) {
	var seen sync.Map // life ID -> App.Concurrency at the end
	configure := func(app *production.App) error {
		hello(app)
		app.Router.Get("/concurrency", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, app.Concurrency())
		})
		seen.Store(app.Info().ID, app.Info().Concurrency)
		return nil
	}
	var ev eventLog
	h := startRunner(t, configure, []string{"-j", "2", "--quiet"}, production.WithEventHook(ev.hook))
	load := startLoad(t, h.run.Addr().String(), "/", 4, 2)
	load.waitAnswered(t, 200)
	for _, n := range []int{5, 1, 3} {
		if err := h.run.Scale(bg(t), n); err != nil {
			t.Fatalf("Scale(%d): %v", n, err)
		}
		if s := h.run.Stats(); s.Wanted != n || len(s.Instances) != n {
			t.Fatalf("after Scale(%d): wanted %d, %d instances", n, s.Wanted, len(s.Instances))
		}
		if _, body, _, err := h.get("/concurrency"); err != nil || body != fmt.Sprint(n) {
			t.Errorf("App.Concurrency after Scale(%d) = %q %v", n, body, err)
		}
		load.waitAnswered(t, 200)
	}
	if _, ok := seen.Load(pubsub.InstanceID("test", 4, 1)); !ok {
		t.Error("instance #4 never started")
	}
	if c, _ := seen.Load(pubsub.InstanceID("test", 4, 1)); c != 5 {
		t.Errorf("InstanceInfo.Concurrency of a life started by Scale(5) = %v", c)
	}
	// Drain picks the instance; the last one cannot be drained.
	if err := h.run.Drain(bg(t), 1); err != nil {
		t.Fatal(err)
	}
	if got := lives(h.run.Runner); len(got) != 2 || got[1] != 0 {
		t.Errorf("instances after Drain(1): %v", got)
	}
	if err := h.run.Drain(bg(t), 7); !errors.Is(err, production.ErrNoInstance) {
		t.Errorf("Drain(7) = %v, want ErrNoInstance", err)
	}
	if err := h.run.Scale(bg(t), 0); !errors.Is(err, production.ErrLastInstance) {
		t.Errorf("Scale(0) = %v, want ErrLastInstance", err)
	}
	// Restart replaces one life.
	before := lives(h.run.Runner)[0]
	if err := h.run.Restart(bg(t), 0); err != nil {
		t.Fatal(err)
	}
	if after := lives(h.run.Runner)[0]; after != before+1 {
		t.Errorf("Restart(0): life %d -> %d", before, after)
	}
	load.waitAnswered(t, 100)
	load.finish(t, 800)
	if n := ev.count(production.EventScaled); n != 4 {
		t.Errorf("%d scaled events, want 4 (3 Scale, 1 Drain)", n)
	}
}

func TestRecycleUnderLoad(t *testing.T) {
	var ev eventLog
	h := startRunner(t, hello, []string{"-j", "3", "--quiet", "--max-requests", "150", "--max-requests-jitter", "20"}, production.WithEventHook(ev.hook))
	load := startLoad(t, h.run.Addr().String(), "/", 4, 2)
	// Never fewer than -j instances serving while lives are recycled.
	minServing := ev.watchServing()
	waitFor(t, 30*time.Second, "6 recycles", func() bool { return ev.count(production.EventRecycled) >= 6 })
	if m := minServing(); m < 3 {
		t.Errorf("%d instances serving at one point, want never below 3", m)
	}
	load.finish(t, 900)
	e, _ := ev.find(production.EventRecycled)
	if e.Count < 150 || e.Count > 200 {
		t.Errorf("a life recycled after %d requests, want about 150..170", e.Count)
	}
}

func TestRecycleLogLine(t *testing.T) {
	h := startRunner(t, hello, []string{"-j", "1", "--max-requests", "3"})
	for range 3 {
		if code, _, _, err := getWith(fresh(), h.run.URL+"/"); err != nil || code != 200 {
			t.Fatal(code, err)
		}
	}
	waitFor(t, 10*time.Second, "the recycle", func() bool { return lives(h.run.Runner)[0] == 2 })
	waitFor(t, 10*time.Second, "the log line", func() bool { return strings.Contains(h.run.Log(), "Instance #0 recycled after 3 requests.") })
}

// TestHungInstanceReplaced: a request without progress for --hang-timeout
// (on the runner's clock: exactly then) gets its life replaced, and its
// handler, still blocked at the old life's drain deadline, abandoned.
// hangForAMinute sends GET /block (blockingApp) and, once its handler runs,
// moves clock a minute on: one --hang-timeout 1m. The hang checks tick
// every --hang-timeout/4 and the one at --hang-timeout finds the request
// without progress for exactly that long. Each of the instances arms its
// ticker once its first life serves, which may come after the request: the
// clock moves only once all are armed.
func hangForAMinute(t *testing.T, h *harness, clock *fakeClock, entered <-chan struct{}, instances int) {
	t.Helper()
	go getBlock(h.run.URL)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("GET /block not in its handler within 20s")
	}
	waitFor(t, 20*time.Second, "the hang tickers armed", func() bool { return clock.armed(15*time.Second) >= instances })
	clock.advance(time.Minute)
}

func TestHungInstanceReplaced(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	configure := blockingApp(release, entered)
	var ev eventLog
	clock := newFakeClock()
	h := startRunner(t, configure, []string{"-j", "2", "--hang-timeout", "1m", "--drain-timeout", "1h", "--shutdown-timeout", "1000h", "--max-abandoned", "5"},
		production.WithClock(clock), production.WithEventHook(ev.hook))
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	hangForAMinute(t, h, clock, entered, 2)
	waitFor(t, 20*time.Second, "the hung life reported", func() bool { return ev.count(production.EventHung) == 1 })
	e, _ := ev.find(production.EventHung)
	if !strings.Contains(e.Stack, "blockedHandler") {
		t.Errorf("hung event's stack does not show the blocked handler:\n%s", e.Stack)
	}
	if e.Delay != time.Minute {
		t.Errorf("hung after %v without progress, want exactly --hang-timeout 1m", e.Delay)
	}
	waitFor(t, 20*time.Second, "the replacement", func() bool { return lives(h.run.Runner)[e.Instance] == 2 })
	advanceWhenArmed(t, clock, time.Hour, "the hung life's drain deadline")
	advanceWhenArmed(t, clock, 100*time.Millisecond, "the abandon grace")
	waitFor(t, 20*time.Second, "the abandoned handler counted", func() bool { return h.run.Stats().Abandoned == 1 })
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / after the hang = %d %v", code, err)
	}
	// Stats counts the abandoned handler just before the line is logged.
	waitFor(t, 20*time.Second, "the hang and the abandoned handler logged", func() bool {
		out := h.run.Log()
		return strings.Contains(out, "is hung") && strings.Contains(out, "abandoned")
	})
	releaseOnce()
	if err := stopAdvancing(h, clock, time.Minute); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestRecycledLifeAbandonsWithStack: a handler that hangs on a life that is
// leaving service anyway (here recycled by --max-requests, so hang detection,
// which watches the serving life, never reports it) is abandoned at the drain
// deadline, and that report carries the stack of the goroutines left running.
func TestRecycledLifeAbandonsWithStack(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	configure := blockingApp(release, entered)
	var ev eventLog
	clock := newFakeClock()
	h := startRunner(t, configure, []string{"-j", "1", "--max-requests", "1", "--drain-timeout", "1h", "--shutdown-timeout", "1000h", "--max-abandoned", "5"},
		production.WithClock(clock), production.WithEventHook(ev.hook))
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	go getBlock(h.run.URL)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("GET /block not in its handler within 20s")
	}
	advanceWhenArmed(t, clock, time.Hour, "the recycled life's drain deadline")
	advanceWhenArmed(t, clock, 100*time.Millisecond, "the abandon grace")
	waitFor(t, 20*time.Second, "the abandoned handler reported", func() bool { return ev.count(production.EventAbandoned) == 1 })
	e, _ := ev.find(production.EventAbandoned)
	if !strings.Contains(e.Stack, "blockedHandler") {
		t.Errorf("the abandoned event's stack does not show the blocked handler:\n%s", e.Stack)
	}
	if n := ev.count(production.EventHung); n != 0 {
		t.Errorf("%d hung events without --hang-timeout", n)
	}
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / after the recycle = %d %v", code, err)
	}
	releaseOnce()
	if err := stopAdvancing(h, clock, time.Minute); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// blockingApp serves hello and /block, whose handler sends on entered once
// it runs (the request is then watched since the clock's time), then blocks
// until release is closed.
func blockingApp(release chan struct{}, entered chan<- struct{}) func(*production.App) error {
	return func(app *production.App) error {
		hello(app)
		app.Router.Get("/block", func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			blockedHandler(release)
		})
		return nil
	}
}

// getBlock sends GET /block on a new connection and ignores its outcome
// (the handler blocks; the tests watch the runner, not the answer).
func getBlock(url string) {
	if resp, err := fresh().Get(url + "/block"); err == nil {
		resp.Body.Close()
	}
}

// blockedHandler blocks until release is closed (its name is looked for in
// the hung stack).
func blockedHandler(release chan struct{}) { <-release }

func TestMaxAbandonedExits(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{}, 1)
	clock := newFakeClock()
	h := startRunner(t, blockingApp(release, entered), []string{"-j", "1", "--hang-timeout", "1m", "--drain-timeout", "1h", "--max-abandoned", "0"}, production.WithClock(clock))
	hangForAMinute(t, h, clock, entered, 1) // hung: the life is replaced and drains
	advanceWhenArmed(t, clock, time.Hour, "the hung life's drain deadline")
	advanceWhenArmed(t, clock, 100*time.Millisecond, "the abandon grace")
	err := h.run.Wait(20 * time.Second)
	if production.ExitCode(err) != production.ExitAbandoned || !errors.Is(err, production.ErrAbandoned) {
		t.Fatalf("Run = %v (exit %d), want ErrAbandoned, exit %d", err, production.ExitCode(err), production.ExitAbandoned)
	}
}

// sigRunner starts a runner fed signals through a channel.
func sigRunner(t *testing.T, configure func(*production.App) error, args []string, opts ...production.Option) (*harness, chan os.Signal) {
	sigs := make(chan os.Signal, 4)
	return startRunner(t, configure, args, append(opts, production.WithSignals(sigs))...), sigs
}

// TestSignalDuringStartUp: a SIGHUP and a SIGTTIN that come while the
// instances still start (the process was just started) are acted on once
// every instance serves, not ignored.
func TestSignalDuringStartUp(t *testing.T) {
	release := make(chan struct{})
	configure := func(app *production.App) error {
		if app.Info().Number == 1 && app.Info().Life == 1 {
			<-release // the first life of instance #1 starts slowly
		}
		hello(app)
		return nil
	}
	var ev eventLog
	var out testutil.Buffer
	sigs := make(chan os.Signal, 4)
	r := production.New("test", configure, production.WithSignals(sigs), production.WithEventHook(ev.hook), production.WithOutput(&out, &out))
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background(), []string{"-a", "127.0.0.1", "-p", "0", "-j", "2"}) }()
	waitFor(t, 20*time.Second, "instance #0 serving", func() bool { return ev.count(production.EventStarted) == 1 })
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGTTIN
	waitFor(t, 20*time.Second, "both signals received", func() bool {
		return strings.Contains(out.String(), "Received SIGHUP") && strings.Contains(out.String(), "Received SIGTTIN")
	})
	close(release)
	waitFor(t, 20*time.Second, "the reload and the third instance", func() bool {
		return ev.count(production.EventReloadFinished) == 1 && r.Stats().Serving == 3
	})
	if strings.Contains(out.String(), "ignored") {
		t.Errorf("a verb signal was ignored during start-up:\n%s", out.String())
	}
	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after SIGTERM = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after SIGTERM")
	}
}

func TestSignals(t *testing.T) {
	var ev eventLog
	h, sigs := sigRunner(t, hello, []string{"-j", "2"}, production.WithEventHook(ev.hook))
	load := startLoad(t, h.run.Addr().String(), "/", 3, 1)
	load.waitAnswered(t, 100)
	sigs <- syscall.SIGHUP
	waitFor(t, 20*time.Second, "the reload", func() bool { return ev.count(production.EventReloadFinished) == 1 })
	sigs <- syscall.SIGTTIN
	waitFor(t, 20*time.Second, "3 instances", func() bool { return h.run.Stats().Serving == 3 })
	sigs <- syscall.SIGTTOU
	sigs <- syscall.SIGTTOU
	sigs <- syscall.SIGTTOU // never below 1
	waitFor(t, 20*time.Second, "1 instance", func() bool { s := h.run.Stats(); return s.Wanted == 1 && len(s.Instances) == 1 })
	// SIGUSR2 (a binary upgrade) would start this test binary again: the
	// example's TestBinaryUpgrade sends it to a real process.
	load.waitAnswered(t, 100)
	load.stopping()
	sigs <- syscall.SIGTERM
	err := h.run.Wait(20 * time.Second)
	load.finish(t, 200)
	if err != nil {
		t.Fatalf("Run after SIGTERM = %v, want nil", err)
	}
	if s := h.run.Stats(); s.Wanted != 1 {
		t.Errorf("wanted %d after three SIGTTOU from 3, want 1", s.Wanted)
	}
}

// skewClock is the system clock, moved forward by hand.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) Now() time.Time { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) AfterFunc(d time.Duration, f func()) production.Timer {
	return time.AfterFunc(d, f)
}
func (c *skewClock) advance(d time.Duration) { c.skew.Add(int64(d)) }

func TestSecondSignalExits130(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	configure := func(app *production.App) error {
		app.OnShutdown(func(context.Context) error { <-release; return nil })
		return hello(app)
	}
	clock := &skewClock{}
	h, sigs := sigRunner(t, configure, []string{"-j", "1", "--drain-timeout", "1h"}, production.WithClock(clock))
	sigs <- syscall.SIGTERM
	waitFor(t, 10*time.Second, "the stop", func() bool { return strings.Contains(h.run.Log(), "Stopping") })
	clock.advance(time.Second) // past the window of a copy
	sigs <- syscall.SIGINT
	err := h.run.Wait(20 * time.Second)
	if production.ExitCode(err) != production.ExitInterrupted {
		t.Fatalf("Run = %v (exit %d), want exit %d", err, production.ExitCode(err), production.ExitInterrupted)
	}
}

// TestStopSignalCopyIsOneStop: the same stop signal delivered twice at once
// (GNU timeout signals the process and then its group) is one stop, which
// drains; it is not the "second signal" that exits 130 (issue 20).
func TestStopSignalCopyIsOneStop(t *testing.T) {
	release := make(chan struct{})
	configure := func(app *production.App) error {
		app.OnShutdown(func(context.Context) error { <-release; return nil })
		return hello(app)
	}
	h, sigs := sigRunner(t, configure, []string{"-j", "2", "--drain-timeout", "1h"})
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGTERM
	waitFor(t, 10*time.Second, "the copy noticed", func() bool {
		return strings.Contains(h.run.Log(), "Received SIGTERM again within 1s of the first stop signal: the same stop")
	})
	select {
	case <-h.run.Done():
		t.Fatalf("the runner ended on the copy of SIGTERM before its lives drained:\n%s", h.run.Log())
	default:
	}
	close(release)
	if err := h.run.Wait(20 * time.Second); err != nil {
		t.Fatalf("Run = %v (exit %d), want a clean stop", err, production.ExitCode(err))
	}
}

// TestStopKeepAliveLoad: SIGTERM under keep-alive load answers every request
// that reached the server (the last one on each connection with
// "Connection: close"); no connection is reset.
func TestStopKeepAliveLoad(t *testing.T) {
	h, sigs := sigRunner(t, hello, []string{"-j", "2", "--quiet"})
	load := startLoad(t, h.run.Addr().String(), "/", 8, 0)
	load.waitAnswered(t, 500)
	load.stopping()
	sigs <- syscall.SIGTERM
	if err := h.run.Wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Every connection open at SIGTERM got a full answer to each request it
	// sent, the last one with "Connection: close".
	load.finish(t, 500)
	if load.closes() < 8 {
		t.Errorf("%d connections were told Connection: close, want 8", load.closes())
	}
}

// TestHijackedDrainedAtStop: a handler that took over its connection is told
// (OnDrain) when the runner stops, and the runner waits for it; the context
// OnDrain gave stays valid (with the drain deadline) after the hook returned,
// for the goodbye written with it (issue 20: it was canceled at once).
func TestHijackedDrainedAtStop(t *testing.T) {
	finish := make(chan struct{})
	var told atomic.Bool
	configure := func(app *production.App) error {
		hello(app)
		app.Router.Get("/ws", func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			goodbye := make(chan context.Context, 1)
			app.OnDrain(func(ctx context.Context) {
				told.Store(true)
				goodbye <- ctx
			})
			io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\nhello\n")
			ctx := <-goodbye
			<-finish // the handler needs a while to say goodbye
			dl, ok := ctx.Deadline()
			if !ok {
				t.Error("OnDrain context without the drain deadline")
			}
			if err := ctx.Err(); err != nil {
				t.Errorf("OnDrain context ended (%v) while its life still drains", err)
			}
			conn.SetWriteDeadline(dl)
			io.WriteString(conn, "goodbye\n")
			brw.Flush()
		})
		return nil
	}
	h, sigs := sigRunner(t, configure, []string{"-j", "1", "--drain-timeout", "30s"})
	conn, err := dialRaw(h.run.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	br := newReader(conn)
	if line := readUntil(t, br, "hello"); line == "" {
		t.Fatal("no hello")
	}
	sigs <- syscall.SIGTERM
	waitFor(t, 10*time.Second, "the drain notice", told.Load)
	select {
	case <-h.run.Done():
		t.Fatal("the runner ended while a hijacked handler was still saying goodbye")
	default:
	}
	close(finish)
	readUntil(t, br, "goodbye")
	if err := h.run.Wait(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func dialRaw(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

func newReader(c net.Conn) *bufio.Reader {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	return bufio.NewReader(c)
}

// readUntil reads lines until one is want.
func readUntil(t *testing.T, br *bufio.Reader, want string) string {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading until %q: %v", want, err)
		}
		if strings.TrimSpace(line) == want {
			return line
		}
	}
}

// watchServing returns a function that reports the fewest instances
// serving at any point from now on, replayed from the events (so no moment
// is missed, and nothing polls): an instance serves while one of its lives
// has started and not ended. One instance's events come in order from its
// supervisor's goroutine (a replacement's EventStarted before the old
// life's EventEnded), and the log keeps the order in which they came.
func (e *eventLog) watchServing() func() int {
	e.mu.Lock()
	from := len(e.events)
	e.mu.Unlock()
	return func() int {
		events := e.all()
		live := map[int]map[int]bool{} // instance -> its lives started and not ended
		serving := func() int {
			n := 0
			for _, lives := range live {
				if len(lives) > 0 {
					n++
				}
			}
			return n
		}
		lowest := -1
		for i, ev := range events {
			switch ev.Kind {
			case production.EventStarted:
				if live[ev.Instance] == nil {
					live[ev.Instance] = map[int]bool{}
				}
				live[ev.Instance][ev.Life] = true
			case production.EventEnded:
				delete(live[ev.Instance], ev.Life)
			}
			if i+1 >= from {
				if s := serving(); lowest < 0 || s < lowest {
					lowest = s
				}
			}
		}
		return lowest
	}
}

// TestScaleUpConfigureFails: an instance added by Scale whose configure
// fails is reported by Scale and not kept; the others serve on.
func TestScaleUpConfigureFails(t *testing.T) {
	configure := func(app *production.App) error {
		if app.Info().Number >= 2 {
			return errors.New("no more database connections")
		}
		return hello(app)
	}
	h := startRunner(t, configure, []string{"-j", "2"})
	err := h.run.Scale(bg(t), 3)
	if err == nil || !strings.Contains(err.Error(), "no more database connections") || !strings.Contains(err.Error(), "instance #2") {
		t.Fatalf("Scale(3) = %v, want instance #2's configure error", err)
	}
	waitFor(t, 10*time.Second, "the failed instance dropped", func() bool { s := h.run.Stats(); return s.Wanted == 2 && len(s.Instances) == 2 })
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / = %d %v", code, err)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v: a failed scale-up must not fail the runner", err)
	}
}

// TestLateGoroutineIsNotLeftAtStop: an app.Go goroutine that outlives its
// life's drain deadline is reported then, but once it has returned the
// stop is clean (exit 0, not 124): only what still runs when the stop ends
// is left running.
func TestLateGoroutineIsNotLeftAtStop(t *testing.T) {
	returned := make(chan struct{}, 8)
	finish := make(chan struct{}) // the app's own slow clean-up ends when the test says
	var finishOnce sync.Once
	release := func() { finishOnce.Do(func() { close(finish) }) }
	t.Cleanup(release)
	configure := func(app *production.App) error {
		hello(app)
		slow := app.Info().Life == 1 // the life the test replaces; the stop's is quick
		app.Go(func(ctx context.Context) error {
			<-ctx.Done()
			if slow {
				<-finish
				returned <- struct{}{}
			}
			return nil
		})
		return nil
	}
	clock := newFakeClock()
	h := startRunner(t, configure, []string{"-j", "1", "--drain-timeout", "1m", "--shutdown-timeout", "1000h"}, production.WithClock(clock))
	if err := h.run.Restart(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	advanceWhenArmed(t, clock, time.Minute, "life 1's drain deadline for its goroutines")
	waitFor(t, 20*time.Second, "the goroutine reported left at the drain deadline", func() bool {
		return strings.Contains(h.run.Log(), "still running at the drain deadline; leaving them")
	})
	if n := h.run.Stats().Left; n != 1 {
		t.Errorf("Stats.Left = %d while the late goroutine runs, want 1", n)
	}
	release()
	select {
	case <-returned:
	case <-time.After(20 * time.Second):
		t.Fatal("the late goroutine never returned")
	}
	// It said so just before returning: wait until the runner saw it end.
	waitFor(t, 10*time.Second, "Stats.Left back to 0", func() bool { return h.run.Stats().Left == 0 })
	if err := stopAdvancing(h, clock, time.Second); err != nil {
		t.Errorf("Run = %v, want a clean stop: the late goroutine had returned", err)
	}
}
