package productiontest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func hello(app *production.App) error {
	app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Hello, production world!")
	})
	return nil
}

func TestStart(t *testing.T) {
	r := productiontest.Start(t, "hello", hello, []string{"-j", "2"})
	resp, err := http.Get(r.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello, production world!" {
		t.Fatalf("GET / = %d %q", resp.StatusCode, body)
	}
	if want := "Instance #1 listening at " + r.URL; !strings.Contains(r.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, r.Log())
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop = %v, want a clean stop", err)
	}
	if err := r.Stop(); err != nil { // idempotent
		t.Fatalf("second Stop = %v", err)
	}
	if _, err := http.Get(r.URL + "/"); err == nil {
		t.Error("the listener still answers after Stop")
	}
}

// Stop returns what Run returned: with --no-respawn, a crash is ErrCrashed.
func TestStopReturnsRunError(t *testing.T) {
	r := productiontest.Start(t, "crashy", func(app *production.App) error {
		app.Go(func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		})
		app.Router.Get("/crash", func(w http.ResponseWriter, _ *http.Request) {
			app.Crash(errors.New("on purpose"))
		})
		return nil
	}, []string{"-j", "1", "--no-respawn"})
	resp, err := http.Get(r.URL + "/crash")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	err = r.Stop()
	if !errors.Is(err, production.ErrCrashed) || production.ExitCode(err) != production.ExitCrashed {
		t.Fatalf("Stop = %v (exit %d), want ErrCrashed, exit %d", err, production.ExitCode(err), production.ExitCrashed)
	}
}

// Wait returns once the runner ends by itself: with --no-respawn, when its
// last instance has ended.
func TestWait(t *testing.T) {
	r := productiontest.Start(t, "ends", func(app *production.App) error {
		app.Router.Get("/end", func(w http.ResponseWriter, _ *http.Request) {
			app.Crash(nil) // a clean end: not a crash
		})
		return nil
	}, []string{"-j", "1", "--no-respawn"})
	resp, err := http.Get(r.URL + "/end")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := r.Wait(20 * time.Second); err != nil {
		t.Fatalf("Wait = %v, want nil after a clean end", err)
	}
}

// fakeTB records what Start reports, and runs its cleanups on demand.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatals   []string
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// A runner that cannot start fails Start once, with Run's error, and its
// cleanup neither reports it again nor leaves a goroutine (TestMain checks).
func TestStartFails(t *testing.T) {
	tb := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		productiontest.Start(tb, "broken", func(*production.App) error { return errors.New("no database") }, []string{"-j", "1"})
	}()
	<-done
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
	if len(tb.fatals) != 1 || !strings.Contains(tb.fatals[0], "ended before it was ready") || !strings.Contains(tb.fatals[0], "no database") {
		t.Errorf("Start reported %q, want one failure naming the configure error", tb.fatals)
	}
	if len(tb.errors) != 0 {
		t.Errorf("the cleanup reported again: %q", tb.errors)
	}
}

// Signal reaches the runner: SIGTTIN adds an instance, SIGTERM stops it.
func TestSignal(t *testing.T) {
	r := productiontest.Start(t, "hello", hello, []string{"-j", "1"})
	r.Signal(syscall.SIGTTIN)
	testutil.WaitFor(t, 20*time.Second, "SIGTTIN to add an instance", func() bool { return r.Stats().Serving == 2 })
	r.Signal(syscall.SIGTERM)
	if err := r.Wait(20 * time.Second); err != nil {
		t.Fatalf("Run after SIGTERM = %v", err)
	}
}
