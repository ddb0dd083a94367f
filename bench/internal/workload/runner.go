package workload

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// BenchPolicy respawns at once, however often, so that benchmarks measure the
// respawn itself rather than the backoff that protects production from loops.
var BenchPolicy = production.RestartPolicy{MaxRestarts: 1 << 30, Window: time.Minute, StableAfter: time.Nanosecond}

// StartRunner runs configure in a quiet Runner with the given number of
// instances on 127.0.0.1:0 and returns once every instance is serving; it is
// stopped when the benchmark ends, or by its Stop.
func StartRunner(tb testing.TB, instances int, configure func(*production.App) error, args ...string) *productiontest.Runner {
	tb.Helper()
	argv := append([]string{"--quiet", "-j", strconv.Itoa(instances), "--max-restarts", strconv.Itoa(BenchPolicy.MaxRestarts)}, args...)
	return productiontest.Start(tb, "bench", configure, argv,
		production.WithOutput(io.Discard, io.Discard), production.WithRestartPolicy(BenchPolicy))
}

// StartRunnerDefaultPolicy is StartRunner with goangel's default restart
// policy (that of a user who sets no flag), plus opts: the policy that backs
// off and gives up on lives that fail to start.
func StartRunnerDefaultPolicy(tb testing.TB, instances int, configure func(*production.App) error, opts ...production.Option) *productiontest.Runner {
	tb.Helper()
	opts = append([]production.Option{production.WithOutput(io.Discard, io.Discard)}, opts...)
	return productiontest.Start(tb, "bench", configure, []string{"--quiet", "-j", strconv.Itoa(instances)}, opts...)
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
