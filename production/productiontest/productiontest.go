// Package productiontest runs a goangel production.Runner inside a Go test or
// benchmark, the way the tests of goangel itself do: on 127.0.0.1 and a free
// port, with no environment variables, its log captured, and stopped (with
// every instance drained) when the test ends.
//
//	func TestHello(t *testing.T) {
//		r := productiontest.Start(t, "hello", configure, []string{"-j", "4"})
//		resp, err := http.Get(r.URL + "/")
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer resp.Body.Close()
//		if resp.StatusCode != http.StatusOK {
//			t.Errorf("GET / = %s, want 200 OK", resp.Status)
//		}
//	}
//
// Start returns once every instance serves, so requests can be sent at once;
// Stop stops the runner earlier than the test's end and returns what Run
// returned, and Wait waits for a runner that ends by itself.
package productiontest

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// StartTimeout bounds how long Start waits for every instance to serve, and
// Stop for the runner to return.
const StartTimeout = 30 * time.Second

// Runner is a production.Runner started by Start.
type Runner struct {
	*production.Runner
	// URL is http://ADDR of the shared listener (https:// with --ssl).
	URL string

	tb      testing.TB
	log     *testutil.Buffer
	signals chan os.Signal
	cancel  context.CancelFunc
	ended   chan struct{} // closed when Run has returned (err then holds its error)
	err     error
	once    sync.Once
	seen    atomic.Bool // the test called Stop or Wait, and so saw err
}

// Start runs configure in a Runner named name with the command-line args
// (after "-a 127.0.0.1 -p 0", so args may override them) and the options,
// and returns once every instance serves. It fails tb if the runner ends or
// does not get ready within StartTimeout. The runner is stopped when the
// test ends; call Stop to stop it earlier and see what Run returned.
//
// Unless opts say otherwise, the runner reads no environment variables and
// writes its help, usage errors and log to a buffer that Log returns.
func Start(tb testing.TB, name string, configure func(*production.App) error, args []string, opts ...production.Option) *Runner {
	tb.Helper()
	r := &Runner{tb: tb, log: &testutil.Buffer{}, ended: make(chan struct{}), signals: make(chan os.Signal, 4)}
	opts = append([]production.Option{
		production.WithOutput(r.log, r.log),
		production.WithLookupEnv(func(string) (string, bool) { return "", false }),
		production.WithSignals(r.signals),
	}, opts...)
	r.Runner = production.New(name, configure, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	argv := append([]string{"-a", "127.0.0.1", "-p", "0"}, args...)
	go func() {
		r.err = r.Run(ctx, argv)
		close(r.ended)
	}()
	// Registered before the wait, so that Run is stopped and awaited on
	// every way out of Start, a failed one included.
	tb.Cleanup(func() {
		// An error the test did not see through Stop fails it here.
		if err := r.stop(); err != nil && !r.seen.Load() {
			tb.Errorf("productiontest: %s: %v", name, err)
		}
	})
	select {
	case <-r.Ready():
	case <-r.ended:
		r.seen.Store(true) // reported here, not again by the cleanup
		tb.Fatalf("productiontest: %s ended before it was ready: %v\n%s", name, r.err, r.log)
	case <-time.After(StartTimeout):
		r.seen.Store(true)
		tb.Fatalf("productiontest: %s not ready within %v\n%s", name, StartTimeout, r.log)
	}
	scheme := "http://"
	for _, a := range args {
		if a == "--ssl" {
			scheme = "https://"
		}
	}
	r.URL = scheme + r.Addr().String()
	return r
}

// Stop stops the runner as SIGTERM would (every instance drains) and returns
// what Run returned: nil for a clean stop. It fails the test if Run does not
// return within StartTimeout. Stop is idempotent.
func (r *Runner) Stop() error {
	r.seen.Store(true)
	return r.stop()
}

func (r *Runner) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.ended:
		case <-time.After(StartTimeout):
			r.tb.Errorf("productiontest: the runner did not stop within %v\n%s", StartTimeout, r.log)
		}
	})
	select {
	case <-r.ended:
		return r.err
	default:
		return nil
	}
}

// Wait waits until the runner ends by itself (with --no-respawn, once every
// instance has ended; or past the restart intensity) and returns what Run
// returned. It fails the test if that takes longer than timeout.
func (r *Runner) Wait(timeout time.Duration) error {
	r.tb.Helper()
	select {
	case <-r.ended:
		r.seen.Store(true)
		return r.err
	case <-time.After(timeout):
		r.tb.Fatalf("productiontest: the runner did not end by itself within %v\n%s", timeout, r.log)
		return nil
	}
}

// Signal delivers s to the runner as if the process had received it
// (SIGHUP reloads, SIGTTIN/SIGTTOU scale, SIGTERM stops; see the README's
// table), unless opts gave Start their own WithSignals. It does not wait for
// the runner to act.
func (r *Runner) Signal(s os.Signal) {
	r.tb.Helper()
	select {
	case r.signals <- s:
	case <-r.ended:
		r.tb.Errorf("productiontest: Signal(%v) after the runner ended", s)
	case <-time.After(StartTimeout):
		r.tb.Fatalf("productiontest: the runner took no signal within %v", StartTimeout)
	}
}

// Done is closed once Run has returned (Stop or Wait then give its error).
func (r *Runner) Done() <-chan struct{} { return r.ended }

// Log returns what the runner has written so far (log lines, unless
// --quiet; help and usage errors), when WithOutput was not given to Start.
func (r *Runner) Log() string { return r.log.String() }
