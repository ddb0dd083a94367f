package faults

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// stormPolicy respawns at once, always: a storm is not a crash loop here.
var stormPolicy = production.WithRestartPolicy(production.RestartPolicy{StableAfter: time.Nanosecond})

// crashStormLives is how many lives the storm ends: 1,000, every kind in turn.
const crashStormLives = 1000

func restarts(r *productiontest.Runner) (n uint64) {
	for _, s := range r.Stats().Instances {
		n += s.Restarts
	}
	return n
}

// rssKiB reads this process's resident set size.
func rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// settled returns the RSS and the live heap (KiB) after a collection.
func settled(t *testing.T) (rss, heap int) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssKiB(t), int(ms.HeapAlloc >> 10)
}

// rawGet sends one GET on a fresh connection with the strict client and
// reads the whole answer; draining reports whether the answer said
// "Connection: close" (the life that answered was already ending).
func rawGet(addr, path string) (status int, draining bool, err error) {
	a, err := loadclient.Get(addr, path, 10*time.Second)
	return a.Status, a.Close, err
}

// TestCrashStorm: 1,000 lives ended in every supported way, each followed
// by a handler panic and a panic mid-body, under keep-alive and
// new-connection load. No load request fails, every panic before the answer
// is a 500 and every panic mid-body an aborted answer, the goroutines come
// back to their count before the storm, and the RSS stays flat.
func TestCrashStorm(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure,
		[]string{"-j", "4", "--quiet", "--max-restarts", "1000000", "--drain-timeout", "5s"}, stormPolicy)
	addr := r.Addr().String()
	goroutinesBefore := runtime.NumGoroutine()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// The load: plain requests on keep-alive and on new connections, and
	// the routes whose teardown is hardest: streams, slow answers and
	// hijacked connections.
	loads := []struct {
		name string
		cfg  loadclient.Config
		res  *loadclient.Result
	}{
		{name: "keep-alive", cfg: loadclient.Config{Path: "/count", Workers: 3, KeepAlive: true}},
		{name: "new-connection", cfg: loadclient.Config{Path: "/count", Workers: 2}},
		{name: "stream", cfg: loadclient.Config{Path: "/stream?n=50", Workers: 1, KeepAlive: true}},
		{name: "sleep", cfg: loadclient.Config{Path: "/sleep?d=2ms", Workers: 1, KeepAlive: true}},
		{name: "hijack", cfg: loadclient.Config{Path: "/hijack", Workers: 1, KeepAlive: true}},
	}
	var wg sync.WaitGroup
	for i := range loads {
		loads[i].cfg.Addr = addr
		wg.Go(func() { loads[i].res = loadclient.Run(ctx, loads[i].cfg) })
	}

	var rssWarm, heapWarm int
	var stale, panics500, aborted int
	for i := 0; i < crashStormLives; i++ {
		if i == crashStormLives/10 {
			rssWarm, heapWarm = settled(t)
		}
		kind := faultapp.CrashKinds[i%len(faultapp.CrashKinds)]
		before := restarts(r)
		code, draining, err := rawGet(addr, "/crash/"+kind)
		if err != nil || code != 200 {
			t.Fatalf("crash %d (%s): %d %v", i, kind, code, err)
		}
		if draining {
			// It reached a life that was already ending: no new crash.
			stale++
			i--
			continue
		}
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("crash %d (%s) respawned", i, kind), func() bool { return restarts(r) > before })

		if code, _, err := rawGet(addr, "/panic"); err != nil || code != 500 {
			t.Fatalf("GET /panic = %d %v, want 500", code, err)
		}
		panics500++
		if _, _, err := rawGet(addr, "/panic-mid-body"); loadclient.Classify(err) != loadclient.EOF {
			t.Fatalf("GET /panic-mid-body: %v, want the answer aborted (EOF)", err)
		}
		aborted++
	}
	stop()
	wg.Wait()
	t.Logf("crash storm: %d lives ended (%d crash requests reached a life already ending), %d panics answered 500, %d aborted mid-body",
		crashStormLives, stale, panics500, aborted)
	for _, l := range loads {
		t.Logf("%s load: %v", l.name, l.res)
		if l.res.Failed() != 0 || l.res.Requests == 0 {
			t.Errorf("%s load: %v: want every request answered 200", l.name, l.res)
		}
	}
	if got := restarts(r); got < crashStormLives {
		t.Errorf("%d respawns counted, want at least %d", got, crashStormLives)
	}

	// Back to the state before the storm: every drained life gone.
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("goroutines back to %d", goroutinesBefore), func() bool {
		return runtime.NumGoroutine() <= goroutinesBefore
	})
	rssAfter, heapAfter := settled(t)
	t.Logf("after %d lives: RSS %d KiB, heap %d KiB; after all %d: RSS %d KiB, heap %d KiB",
		crashStormLives/10, rssWarm, heapWarm, crashStormLives, rssAfter, heapAfter)
	// The live heap is what a leak would grow; the RSS also carries the
	// race detector's shadow memory (which grows with every goroutine ever
	// started), hence its wider bound.
	if heapAfter > heapWarm+4<<10 {
		t.Errorf("live heap grew from %d KiB to %d KiB over the storm", heapWarm, heapAfter)
	}
	if rssAfter > rssWarm+48<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB over the storm", rssWarm, rssAfter)
	}
	if code, _, err := rawGet(addr, "/ok"); err != nil || code != 200 {
		t.Fatalf("GET /ok after the storm = %d %v", code, err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}
