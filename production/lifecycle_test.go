package production_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// TestCancelDuringConfigure: canceling Run's context while configure runs
// reaches configure through App.Context, so Run returns without waiting
// for --drain-timeout.
func TestCancelDuringConfigure(t *testing.T) {
	entered := make(chan struct{})
	configure := func(app *production.App) error {
		close(entered)
		<-app.Context().Done()
		return context.Cause(app.Context())
	}
	r := production.New("test", configure, production.WithOutput(io.Discard, io.Discard), production.WithLookupEnv(noEnv))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"-p", "0", "-j", "1", "--drain-timeout", "1h"}) }()
	<-entered
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after a cancel during start-up", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was canceled during configure")
	}
}

// TestHungConfigureAtStop: a configure that never returns does not hold the
// stop past --shutdown-timeout, and is named. The stop's deadline is on the
// runner's clock: it passes when the test moves the clock, not before.
func TestHungConfigureAtStop(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	configure := func(app *production.App) error {
		close(entered)
		<-release
		return nil
	}
	clock := newFakeClock()
	r := production.New("test", configure, production.WithOutput(io.Discard, io.Discard), production.WithLookupEnv(noEnv), production.WithClock(clock))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, []string{"-p", "0", "-j", "1", "--drain-timeout", "1h", "--shutdown-timeout", "2h"})
	}()
	<-entered
	cancel()
	advanceWhenArmed(t, clock, 2*time.Hour, "the --shutdown-timeout timer")
	select {
	case err := <-done:
		if production.ExitCode(err) != production.ExitStopTimeout || !strings.Contains(fmt.Sprint(err), "configure") {
			t.Fatalf("Run = %v (exit %d), want exit %d naming configure", err, production.ExitCode(err), production.ExitStopTimeout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stop was not bounded by --shutdown-timeout")
	}
}

// TestHungHookBounded: an OnShutdown hook that ignores its context is left
// behind at the life's deadline, named, and the exit code says so.
func TestHungHookBounded(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	configure := func(app *production.App) error {
		app.OnShutdown(func(context.Context) error { <-release; return nil })
		return hello(app)
	}
	clock := newFakeClock()
	h := startRunner(t, configure, []string{"-j", "1", "--drain-timeout", "10s", "--shutdown-timeout", "1000h"}, production.WithClock(clock))
	err := stopAdvancing(h, clock, time.Second)
	if production.ExitCode(err) != production.ExitStopTimeout || !strings.Contains(fmt.Sprint(err), "left running past their drain deadline: instance #0 life 1: OnShutdown hook") {
		t.Fatalf("Run = %v (exit %d), want exit %d naming the hook", err, production.ExitCode(err), production.ExitStopTimeout)
	}
}

// TestOneTeardownDeadline: the goroutines and the hooks of a life share the
// deadline of its drain, not one --drain-timeout each: a goroutine that
// ignores its context uses up the drain deadline, and the hook then gets
// that same deadline, not a fresh one. On the runner's clock, exactly: the
// life's end plus --drain-timeout.
func TestOneTeardownDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var ended atomic.Int64 // unix nanos of the life's end
	var hookDeadline atomic.Int64
	configure := func(app *production.App) error {
		app.Go(func(context.Context) error { <-release; return nil })
		app.OnShutdown(func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			hookDeadline.Store(d.UnixNano())
			return nil
		})
		return hello(app)
	}
	clock := newFakeClock()
	h := startRunner(t, configure, []string{"-j", "1", "--drain-timeout", "3s", "--shutdown-timeout", "1000h"}, production.WithClock(clock), production.WithEventHook(func(ev production.Event) {
		if ev.Kind == production.EventEnded {
			ended.Store(ev.Time.UnixNano())
		}
	}))
	done := make(chan error, 1)
	go func() { done <- h.stop() }()
	// The clock stands still until the drain waits for its deadline: the
	// life ended at the time it read for it.
	advanceWhenArmed(t, clock, 3*time.Second, "the drain's deadline timer")
	err := advanceUntil(clock, 100*time.Millisecond, done)
	if production.ExitCode(err) != production.ExitStopTimeout || !strings.Contains(fmt.Sprint(err), "app.Go goroutines") {
		t.Errorf("Run = %v, want exit %d naming the goroutines left running", err, production.ExitStopTimeout)
	}
	end, deadline := time.Unix(0, ended.Load()), time.Unix(0, hookDeadline.Load())
	// Two deadlines would put the hook's at end + 6s or later.
	if d := deadline.Sub(end); d != 3*time.Second {
		t.Errorf("hook deadline %v after the end, want the life's one drain deadline (3s)", d)
	}
}

func TestEventHookPanicRecovered(t *testing.T) {
	var calls atomic.Int64
	h := startRunner(t, hello, []string{"-j", "2"},
		production.WithEventHook(func(production.Event) { panic("metrics exploded") }),
		production.WithEventHook(func(production.Event) { calls.Add(1) }))
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	if calls.Load() < 2 {
		t.Errorf("the second hook was called %d times, want every event", calls.Load())
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.run.Log(), "An event hook panicked") || !strings.Contains(h.run.Log(), "metrics exploded") {
		t.Errorf("the hook's panic is not reported:\n%s", h.run.Log())
	}
}

// TestLifeEventsInOrder: every life emits started, ended, stopped once and in
// that order, whether a crash, the runner's stop or a reload ends it; a life
// whose configure fails emits ended and stopped.
func TestLifeEventsInOrder(t *testing.T) {
	var ev eventLog
	var failNext atomic.Bool
	configure := func(app *production.App) error {
		if failNext.CompareAndSwap(true, false) {
			return errors.New("flaky dependency")
		}
		return crashy(app)
	}
	h := startRunner(t, configure, []string{"-j", "2", "--restart-backoff", "1ms"}, production.WithEventHook(ev.hook))
	failNext.Store(true)
	if code, _, _, err := getWith(fresh(), h.run.URL+"/crash/crash"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	waitFor(t, 10*time.Second, "the respawn", func() bool { return h.run.Stats().Serving == 2 && ev.count(production.EventStopped) >= 1 })
	if err := h.run.Reload(bg(t)); err != nil {
		t.Fatal(err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	seq := map[string][]string{}
	for _, e := range ev.all() {
		if e.Instance < 0 {
			continue
		}
		k := fmt.Sprintf("#%d.%d", e.Instance, e.Life)
		seq[k] = append(seq[k], e.Kind.String())
	}
	failed := 0
	for k, s := range seq {
		got := strings.Join(s, ",")
		switch {
		case got == "started,ended,stopped":
		case got == "ended,stopped,respawning":
			failed++ // the configure that failed
		case strings.HasPrefix(got, "started,ended,respawning,stopped"):
		default:
			t.Errorf("life %s: events %s", k, got)
		}
	}
	if failed != 1 || len(seq) < 6 {
		t.Errorf("%d lives, %d failed configures: %v", len(seq), failed, seq)
	}
}

// TestRouterReplaced: a router assigned to App.Router in configure is the one
// served.
func TestRouterReplaced(t *testing.T) {
	h := startRunner(t, func(app *production.App) error {
		r := chi.NewRouter()
		r.Get("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "mine") })
		app.Router = r
		return nil
	}, []string{"-j", "1"})
	if code, body, _, err := h.get("/"); err != nil || code != 200 || body != "mine" {
		t.Fatalf("GET / = %d %q %v, want the replaced router's answer", code, body, err)
	}
}

// TestConfigInContainer: the Config an app reaches hides its secrets when
// printed, and changing it does not change the runner.
func TestConfigInContainer(t *testing.T) {
	printed := make(chan string, 4)
	configure := func(app *production.App) error {
		cfg := container.MustMake[*production.Config](app.Container)
		printed <- fmt.Sprintf("%v %+v %#v %s", cfg, cfg, *cfg, *cfg)
		cfg.Respawn = false // must not stop the runner from respawning
		return crashy(app)
	}
	p := newPKI(t)
	c, k := p.issue("server", false)
	cert, _ := p.files("server", c, k)
	key := p.pkcs8Encrypted("pkcs8", k, "pw-s3cret")
	h := startRunner(t, configure, []string{"-j", "1", "--ssl", "--certificate-file", cert, "--key-file", key, "--key-password", "pw-s3cret",
		"--admin-address", "127.0.0.1:0", "--admin-token", "tok-s3cret"})
	if s := <-printed; strings.Contains(s, "s3cret") || !strings.Contains(s, "[redacted]") {
		t.Errorf("Config printed with its secrets: %s", s)
	}
	// The NATS secrets need --pubsub-url (and a server): print a Config.
	cfg := production.Config{PubSubToken: "tok-s3cret", PubSubPassword: "pw-s3cret", CertificatePassword: "cert-s3cret"}
	if s := fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg); strings.Contains(s, "s3cret") {
		t.Errorf("Config printed with its secrets: %s", s)
	}
	if code, _, _, err := getWith(tlsClient(p, nil), h.run.URL+"/crash/crash"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	waitFor(t, 10*time.Second, "the respawn", func() bool { return lives(h.run.Runner)[0] == 2 })
}

// TestCrashLoopKeepsServing: every instance crashing on the same poison
// request, for longer than --restart-window and more often than
// --max-restarts, with the default policy: the runner never gives up, every
// life serves, and the crash loop is reported.
func TestCrashLoopKeepsServing(t *testing.T) {
	var ev eventLog
	h := startRunner(t, crashy, []string{"-j", "2", "--max-restarts", "3", "--restart-window", "1m"}, production.WithEventHook(ev.hook))
	for i := range 24 {
		if code, _, _, err := getWith(fresh(), h.run.URL+"/crash/crash"); err != nil || code != 200 {
			t.Fatalf("crash %d: %d %v", i+1, code, err)
		}
		// The crashed life leaves the round-robin once its replacement
		// serves: wait for it to be gone, or the next crash request may
		// land on it and not count.
		waitFor(t, 10*time.Second, "the respawn", func() bool {
			return ev.count(production.EventStarted) == 2+i+1 && ev.count(production.EventStopped) == i+1
		})
	}
	if code, _, _, err := getWith(fresh(), h.run.URL+"/"); err != nil || code != 200 {
		t.Fatalf("GET / after the crash loop = %d %v", code, err)
	}
	if n := ev.count(production.EventGaveUp); n != 0 {
		t.Fatalf("the runner gave up on a crash loop of lives that served")
	}
	if n := ev.count(production.EventCrashLoop); n != 1 {
		t.Errorf("%d crash-loop events, want 1", n)
	}
	out := h.run.Log()
	for _, want := range []string{"Crash loop: ", "Respawning at once: life 1 served 1 request."} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestSupervisionUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--drain-timeout", "0"}, "--drain-timeout must be positive"},
		{[]string{"--max-restarts", "0"}, "--max-restarts must be at least 1"},
		{[]string{"--max-requests=-1"}, "--max-requests must not be negative"},
		{[]string{"--max-requests-jitter", "5"}, "--max-requests-jitter 5 needs --max-requests"},
		{[]string{"--restart-backoff", "1s", "--restart-max-backoff", "10ms"}, "--restart-max-backoff"},
		{[]string{"--hang-timeout=-1s"}, "--hang-timeout must not be negative"},
	} {
		out, err := runToEnd(t, hello, c.args)
		if production.ExitCode(err) != production.ExitUsage || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d, output lacks %q:\n%s", c.args, production.ExitCode(err), c.want, out)
		}
	}
}

// TestSignalsReopenLogFile: the current log file moved away by an external
// logrotate is recreated under its name on SIGHUP (with a reload) and on
// SIGUSR1 (without one: every instance keeps its life), and the next lines
// go there.
func TestSignalsReopenLogFile(t *testing.T) {
	for _, c := range []struct {
		sig    syscall.Signal
		line   string // a line logged after the reopening
		reload bool
	}{
		{syscall.SIGHUP, "Reloaded 1 instances.", true},
		{syscall.SIGUSR1, "Received SIGUSR1: reopened the log files.", false},
	} {
		t.Run(c.sig.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log") // a symlink to the current file
			h, sigs := sigRunner(t, hello, []string{"-j", "1", "--log-file", path})
			current, err := filepath.EvalSymlinks(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(current, current+".rotated"); err != nil {
				t.Fatal(err)
			}
			sigs <- c.sig
			waitFor(t, 20*time.Second, "the log file recreated with "+c.line, func() bool {
				b, err := os.ReadFile(path)
				return err == nil && strings.Contains(string(b), c.line)
			})
			reloaded := h.run.Stats().Instances[0].Life != 1
			if reloaded != c.reload {
				t.Errorf("%v: reloaded %v, want %v\n%s", c.sig, reloaded, c.reload, h.run.Log())
			}
		})
	}
}

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestConsoleWriteFailures: console writes that fail are counted and
// reported once, never per line, and the runner serves on.
func TestConsoleWriteFailures(t *testing.T) {
	stderr := &syncBuffer{}
	r := productiontest.Start(t, "test", crashy, []string{"-j", "2"}, production.WithOutput(brokenPipe{}, stderr))
	for range 3 {
		if code, _, _, err := getWith(fresh(), r.URL+"/crash/crash"); err != nil || code != 200 {
			t.Fatal(code, err)
		}
	}
	waitFor(t, 10*time.Second, "failures counted", func() bool { return r.Stats().ConsoleWriteErrors >= 4 })
	if n := strings.Count(stderr.String(), "writing the console (stdout) failed"); n != 1 {
		t.Errorf("console failure reported %d times, want once:\n%s", n, stderr)
	}
}

// TestBackoffStateBeforeItsEvent: when EventRespawning announces a backoff,
// Stats already shows the instance in it. STATUS= and the admin listener
// refresh on events, and none follows until the backoff ends: a state
// stored after its event stayed stale for the whole backoff
// (TestNotifyStatus saw "1 draining" instead of "1 restarting" under load).
func TestBackoffStateBeforeItsEvent(t *testing.T) {
	var run atomic.Pointer[production.Runner]
	seen := make(chan string, 1)
	hook := func(ev production.Event) {
		if ev.Kind != production.EventRespawning || ev.Delay == 0 {
			return
		}
		if r := run.Load(); r != nil {
			for _, s := range r.Stats().Instances {
				if s.Number == ev.Instance {
					select {
					case seen <- s.State.String():
					default:
					}
				}
			}
		}
	}
	failRespawns := func(app *production.App) error {
		if app.Info().Life > 1 {
			return errors.New("not now")
		}
		return crashy(app)
	}
	h := startRunner(t, failRespawns, []string{"-j", "1", "--quiet"}, production.WithEventHook(hook),
		production.WithRestartPolicy(production.RestartPolicy{MaxRestarts: 10, Window: time.Hour, InitialBackoff: time.Hour, MaxBackoff: time.Hour, StableAfter: time.Hour}))
	run.Store(h.run.Runner)
	if code, _, _, err := getWith(fresh(), h.run.URL+"/crash/crash"); err != nil || code != 200 {
		t.Fatalf("GET /crash/crash = %d %v", code, err)
	}
	select {
	case st := <-seen:
		if st != "backoff" {
			t.Errorf("instance state when its backoff was announced: %q, want \"backoff\"", st)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no backoff announced within 20s")
	}
}
