package production

import (
	"context"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
)

// TestInPackageHooks: the hooks other parts of the package register
// (onEvent before Run, onReloadHook for SIGHUP) are called.
func TestInPackageHooks(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var started, reloads atomic.Int64
	r := New("test", func(*App) error { return nil }, WithOutput(io.Discard, io.Discard),
		WithLookupEnv(func(string) (string, bool) { return "", false }), WithSignals(sigs))
	r.onEvent(func(ev Event) {
		if ev.Kind == EventStarted {
			started.Add(1)
		}
	})
	r.onReloadHook(func() error { reloads.Add(1); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, []string{"-p", "0", "-j", "2"}) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	sigs <- syscall.SIGHUP
	testutil.WaitFor(t, 20*time.Second, "the reload hook and the reload", func() bool { return reloads.Load() == 1 && started.Load() == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
