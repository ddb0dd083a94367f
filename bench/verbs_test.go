package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkVerbs measures what operating a running app costs its clients: 8
// clients (keep-alive, then new connection per request) load 4 instances
// while one verb runs again and again: nothing (verb=none, the baseline),
// a rolling Reload of every instance, recycling (--max-requests 500, so a
// life is replaced every few hundred requests), a scale-down and back up
// (Scale 3, Scale 4), or a crash of instance 0 (the crash storm, for
// comparison). It reports requests/s (the dip is its ratio to verb=none),
// the verbs done per second and the failed requests; any failed request
// fails the benchmark.
func BenchmarkVerbs(b *testing.B) {
	for _, keepAlive := range []bool{true, false} {
		conn := "keepalive"
		if !keepAlive {
			conn = "newconn"
		}
		for _, verb := range []string{"none", "reload", "recycle", "scaledown", "crash"} {
			b.Run(conn+"/verb="+verb, func(b *testing.B) { benchVerb(b, keepAlive, verb) })
		}
	}
}

func benchVerb(b *testing.B, keepAlive bool, verb string) {
	const instances = 4
	app := newCrashApp(instances)
	var args []string
	if verb == "recycle" {
		args = []string{"--max-requests", "500"}
	}
	r := workload.StartRunner(b, instances, app.configure, args...)
	c := workload.Client(keepAlive)
	defer c.CloseIdleConnections()
	if err := workload.Get(c, r.URL+"/"); err != nil {
		b.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var verbs atomic.Int64
	var verbErr error
	var verbWG sync.WaitGroup
	verbWG.Go(func() {
		life := 2
		for ctx.Err() == nil {
			var err error
			switch verb {
			case "none", "recycle":
				return
			case "reload":
				err = r.Reload(ctx)
			case "scaledown":
				if err = r.Scale(ctx, instances-1); err == nil {
					err = r.Scale(ctx, instances)
				}
			case "crash":
				select {
				case app.triggers[0] <- struct{}{}:
				case <-ctx.Done():
					return
				}
				err = workload.WaitLife(r.Runner, 0, life, time.Now().Add(10*time.Second))
				life++
			}
			if err != nil && ctx.Err() == nil {
				verbErr = err
				return
			}
			verbs.Add(1)
		}
	})

	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	b.ReportAllocs()
	workload.SetClients(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := workload.Get(c, r.URL+"/"); err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	verbWG.Wait()
	if verbErr != nil {
		b.Fatal(verbErr)
	}
	if verb == "recycle" {
		var restarts uint64
		for _, s := range r.Stats().Instances {
			restarts += s.Restarts
		}
		verbs.Store(int64(restarts))
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(verbs.Load())/elapsed.Seconds(), "verbs/s")
	b.ReportMetric(float64(failed.Load()), "failed")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed during verb=%s; first: %v", n, b.N, verb, firstErr)
	}
}
