package faults

import (
	"context"
	"errors"
	"strings"
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
