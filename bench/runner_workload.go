package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// Running is a production.Runner started by StartRunner.
type Running struct {
	*production.Runner
	URL  string // http://ADDR of the shared listener
	stop context.CancelFunc
	done chan error
}

// Stop stops the runner and waits for Run to return; a Run error fails tb.
func (r *Running) Stop(tb testing.TB) {
	tb.Helper()
	r.stop()
	select {
	case err := <-r.done:
		if err != nil {
			tb.Fatalf("runner: %v", err)
		}
	case <-time.After(30 * time.Second):
		tb.Fatal("runner did not stop within 30s")
	}
}

// BenchPolicy respawns at once, however often, so that benchmarks measure the
// respawn itself rather than the backoff that protects production from loops.
var BenchPolicy = production.RestartPolicy{MaxRestarts: 1 << 30, Window: time.Minute}

// StartRunner runs configure in a quiet Runner with the given number of
// instances on 127.0.0.1:0 and returns once every instance is serving.
func StartRunner(tb testing.TB, instances int, configure func(*production.App) error, args ...string) *Running {
	tb.Helper()
	r := production.New("bench", configure,
		production.WithOutput(io.Discard, io.Discard),
		production.WithRestartPolicy(BenchPolicy),
		production.WithLookupEnv(func(string) (string, bool) { return "", false }))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	argv := append([]string{"--quiet", "-a", "127.0.0.1", "-p", "0", "-j", strconv.Itoa(instances),
		"--max-restarts", strconv.Itoa(BenchPolicy.MaxRestarts)}, args...)
	go func() { done <- r.Run(ctx, argv) }()
	select {
	case <-r.Ready():
	case err := <-done:
		cancel()
		tb.Fatalf("runner ended before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		tb.Fatal("runner not ready within 60s")
	}
	return &Running{Runner: r, URL: "http://" + r.Addr().String(), stop: cancel, done: done}
}

// HelloApp is the benchmark app's configure: the ten benchmark routes.
func HelloApp(app *production.App) error {
	RegisterRoutes(app.Router)
	return nil
}

// WaitLife busy-waits until instance n runs life (and is serving), or the
// deadline passes. It is how the respawn benchmark sees "serving again".
func WaitLife(r *production.Runner, n, life int, deadline time.Time) error {
	for {
		st := r.Stats().Instances[n]
		if st.Up && st.Life >= life {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance #%d: life %d not serving by the deadline (now life %d, up %v)", n, life, st.Life, st.Up)
		}
		runtime.Gosched()
	}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of ds, sorting ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
