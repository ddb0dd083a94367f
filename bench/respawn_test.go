package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// crashApp is HelloApp plus GET /life (which life answers) and a supervised
// goroutine that panics when its instance's trigger fires: the way the
// benchmarks crash an instance. Instances numbered past the triggers (a
// scale-up while an instance removed by a scale-down still drains takes the
// next free number) serve without a trigger.
type crashApp struct {
	triggers []chan struct{}
}

func newCrashApp(instances int) *crashApp {
	a := &crashApp{triggers: make([]chan struct{}, instances)}
	for i := range a.triggers {
		a.triggers[i] = make(chan struct{})
	}
	return a
}

func (a *crashApp) configure(app *production.App) error {
	workload.RegisterRoutes(app.Router)
	workload.RegisterLifeRoute(app.Router, app.Info().Number, app.Info().Life)
	if app.Info().Number >= len(a.triggers) {
		return nil
	}
	trigger := a.triggers[app.Info().Number]
	app.Go(func(ctx context.Context) error {
		select {
		case <-trigger:
			panic("bench: crash on purpose")
		case <-ctx.Done():
			return nil
		}
	})
	return nil
}

// BenchmarkRespawn measures, per iteration, the time from a panic in a
// supervised goroutine of instance 0 to the first HTTP answer of its next life
// (clock=http: GET /life on new connections, polled until the new life
// answers; its configure is the ten-route app), and reports p50 and p99. It
// runs with no restart policy to speak of (policy=none: workload.BenchPolicy,
// respawn at once however often) and with goangel's default policy
// (policy=default: the crashed life had answered a request, so it is
// respawned at once too and does not count toward giving up). With 4
// instances the poll goes round the instances (new connections are handed out
// round-robin), so it may count an answer or three of the other instances.
//
// policy=none also runs with clock=flag: the clock stops when the Runner's
// Stats first show the new life up (workload.WaitLife), the clock of the
// benchmark before the supervisor redesign (commit 79382f2), so that the
// two can be compared in one run (bench/scripts/respawn-ab.sh). Under the
// default policy that clock would crash lives that never answered (failed
// starts, backed off), so it runs with policy=none only.
func BenchmarkRespawn(b *testing.B) {
	for _, policy := range []string{"none", "default"} {
		for _, n := range []int{1, 4} {
			for _, clock := range []string{"http", "flag"} {
				if clock == "flag" && policy != "none" {
					continue
				}
				b.Run(fmt.Sprintf("policy=%s/instances=%d/clock=%s", policy, n, clock), func(b *testing.B) {
					app := newCrashApp(n)
					var r *productiontest.Runner
					if policy == "none" {
						r = workload.StartRunner(b, n, app.configure)
					} else {
						r = workload.StartRunnerDefaultPolicy(b, n, app.configure)
					}
					addr := r.Addr().String()
					// Life 1 of instance 0 answers first: a crash of a life that
					// never answered is a failed start under the default policy.
					if err := workload.WaitAnswer(addr, 0, 1, time.Now().Add(10*time.Second)); err != nil {
						b.Fatal(err)
					}
					wait := func(life int, deadline time.Time) error { return workload.WaitAnswer(addr, 0, life, deadline) }
					if clock == "flag" {
						wait = func(life int, deadline time.Time) error { return workload.WaitLife(r.Runner, 0, life, deadline) }
					}
					lats := make([]time.Duration, 0, b.N)
					b.ReportAllocs()
					b.ResetTimer()
					for i := range b.N {
						start := time.Now()
						app.triggers[0] <- struct{}{}
						if err := wait(i+2, start.Add(10*time.Second)); err != nil {
							b.Fatal(err)
						}
						lats = append(lats, time.Since(start))
					}
					b.StopTimer()
					b.ReportMetric(float64(workload.Percentile(lats, 50).Microseconds()), "p50-µs")
					b.ReportMetric(float64(workload.Percentile(lats, 99).Microseconds()), "p99-µs")
				})
			}
		}
	}
}

// BenchmarkCrashStorm measures what a crash storm costs the other instances:
// 8 keep-alive clients load 4 instances while (storm=on) instance 0 is crashed
// again as soon as it is back, or (storm=off) nothing crashes. It reports the
// clients' latency p50/p99 and the crashes per second; a failed request fails
// the benchmark (no request may be dropped by a respawn).
func BenchmarkCrashStorm(b *testing.B) {
	for _, storm := range []bool{false, true} {
		name := "storm=off"
		if storm {
			name = "storm=on"
		}
		b.Run(name, func(b *testing.B) {
			const instances = 4
			app := newCrashApp(instances)
			r := workload.StartRunner(b, instances, app.configure)

			stopStorm := make(chan struct{})
			var crashes atomic.Int64
			var stormErr error
			var stormWG sync.WaitGroup
			if storm {
				stormWG.Add(1)
				go func() {
					defer stormWG.Done()
					for life := 2; ; life++ {
						select {
						case app.triggers[0] <- struct{}{}:
						case <-stopStorm:
							return
						}
						crashes.Add(1)
						if err := workload.WaitLife(r.Runner, 0, life, time.Now().Add(10*time.Second)); err != nil {
							stormErr = err
							return
						}
					}
				}()
			}

			c := workload.Client(true)
			defer c.CloseIdleConnections()
			var mu sync.Mutex
			lats := make([]time.Duration, 0, b.N)
			var failed atomic.Int64
			var firstErr error
			var errOnce sync.Once
			b.ReportAllocs()
			workload.SetClients(b)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t := time.Now()
					if err := workload.Get(c, r.URL+"/"); err != nil {
						failed.Add(1)
						errOnce.Do(func() { firstErr = err })
						continue
					}
					local = append(local, time.Since(t))
				}
				mu.Lock()
				lats = append(lats, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			close(stopStorm)
			stormWG.Wait()
			if stormErr != nil {
				b.Fatal(stormErr)
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d requests failed during the crash storm; first: %v", n, b.N, firstErr)
			}
			b.ReportMetric(float64(workload.Percentile(lats, 50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(workload.Percentile(lats, 99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(crashes.Load())/elapsed.Seconds(), "crashes/s")
		})
	}
}

// BenchmarkInstances starts a Runner of N idle instances with the ten-route
// app and reports, per instance, the start time (Run to Ready), the heap, the
// heap plus goroutine stacks, and the goroutines it keeps. The runner's own
// fixed cost is shared out too, so the figures at 1 instance are the highest.
func BenchmarkInstances(b *testing.B) {
	for _, n := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			var startTotal time.Duration
			var heapPer, memPer, goroutinesPer float64
			b.ReportAllocs()
			for i := range b.N {
				b.StopTimer()
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				g0 := runtime.NumGoroutine()
				b.StartTimer()
				t := time.Now()
				r := workload.StartRunner(b, n, workload.HelloApp)
				startTotal += time.Since(t)
				b.StopTimer()
				if i == 0 {
					runtime.GC()
					var after runtime.MemStats
					runtime.ReadMemStats(&after)
					heapPer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
					// Heap plus goroutine stacks: all the memory an idle instance keeps.
					memPer = heapPer + float64(int64(after.StackInuse)-int64(before.StackInuse))/float64(n)
					goroutinesPer = float64(runtime.NumGoroutine()-g0) / float64(n)
				}
				if err := r.Stop(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(startTotal.Microseconds())/float64(b.N)/float64(n), "start-µs/instance")
			b.ReportMetric(heapPer, "heap-B/instance")
			b.ReportMetric(memPer, "mem-B/instance")
			b.ReportMetric(goroutinesPer, "goroutines/instance")
		})
	}
}
