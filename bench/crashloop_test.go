package bench

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/production"
)

// crashLoopTick is the load time of one iteration of BenchmarkCrashLoop
// (-benchtime=200x: 5s of load), crashLoopEvery the time between two crashes
// of every instance with loop=500ms.
const (
	crashLoopTick  = 25 * time.Millisecond
	crashLoopEvery = 500 * time.Millisecond
)

// poisonApp is HelloApp in which the current life of every instance can be
// armed: the next request an armed life serves is answered and then ends that
// life (app.Crash), as a poison request or a rare panic would. The life has
// answered requests, so under the default policy it started well. A life is
// armed by its number, so that an old life still draining its keep-alive
// connections does not take the poison meant for its successor.
type poisonApp struct {
	armed   []atomic.Int64 // per instance: the life to crash (0: none)
	current []atomic.Int64 // per instance: its newest life (from EventStarted)
}

func newPoisonApp(instances int) *poisonApp {
	return &poisonApp{armed: make([]atomic.Int64, instances), current: make([]atomic.Int64, instances)}
}

func (a *poisonApp) configure(app *production.App) error {
	armed, life := &a.armed[app.Info().Number], int64(app.Info().Life)
	app.Router.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			if armed.CompareAndSwap(life, 0) {
				app.Crash(errors.New("bench: poison request"))
			}
		})
	})
	workload.RegisterRoutes(app.Router)
	return nil
}

// armAll arms the newest life of every instance.
func (a *poisonApp) armAll() {
	for i := range a.armed {
		a.armed[i].Store(a.current[i].Load())
	}
}

// BenchmarkCrashLoop measures a crash loop of every instance under load with
// goangel's default restart policy (the one a user gets without flags): 8
// clients of internal/loadclient (strict: never retry, every failure counts)
// load 4 instances with keep-alive or new connections while every instance
// crashes on its next request (a poison request, answered, then the life
// ends): never (loop=off, the baseline), every 0.5s (loop=500ms), or again
// as soon as its new life starts (loop=backtoback). One iteration is 25ms of
// load (crashLoopTick). It reports requests/s (compare with loop=off), crashes/s, the failed
// requests (target 0) and up (1 if the runner was still serving at the end,
// never gave up); failed requests or a runner that went down fail it.
func BenchmarkCrashLoop(b *testing.B) {
	for _, conn := range []string{"keepalive", "new"} {
		for _, loop := range []string{"off", "500ms", "backtoback"} {
			b.Run("conn="+conn+"/loop="+loop, func(b *testing.B) { benchCrashLoop(b, conn == "keepalive", loop) })
		}
	}
}

func benchCrashLoop(b *testing.B, keepAlive bool, loop string) {
	const instances = 4
	app := newPoisonApp(instances)
	var crashes atomic.Int64
	var gaveUp atomic.Bool
	hook := production.WithEventHook(func(e production.Event) {
		switch e.Kind {
		case production.EventEnded:
			if e.Err != nil {
				crashes.Add(1)
			}
		case production.EventStarted:
			app.current[e.Instance].Store(int64(e.Life))
			if loop == "backtoback" && e.Life > 1 {
				app.armed[e.Instance].Store(int64(e.Life))
			}
		case production.EventGaveUp:
			gaveUp.Store(true)
		}
	})
	r := workload.StartRunnerDefaultPolicy(b, instances, app.configure, hook)
	addr := r.Addr().String()

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.N)*crashLoopTick)
	defer cancel()
	var wg sync.WaitGroup
	switch loop {
	case "500ms":
		wg.Go(func() {
			t := time.NewTicker(crashLoopEvery)
			defer t.Stop()
			for {
				app.armAll()
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
			}
		})
	case "backtoback":
		app.armAll() // then each new life is armed as it starts (the hook)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	res := loadclient.Run(ctx, loadclient.Config{Addr: addr, Path: "/", Workers: workload.Clients, KeepAlive: keepAlive, Timeout: 5 * time.Second})
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	for i := range app.armed { // so the check below is not itself a crash
		app.armed[i].Store(0)
	}
	n := crashes.Load()
	c := workload.Client(false)
	up := !gaveUp.Load() && workload.Get(c, r.URL+"/") == nil
	c.CloseIdleConnections()
	b.ReportMetric(float64(res.Requests)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "crashes/s")
	b.ReportMetric(float64(res.Failed()), "failed")
	upMetric := 0.0
	if up {
		upMetric = 1
	}
	b.ReportMetric(upMetric, "up")
	if !up {
		b.Fatalf("the runner went down in the crash loop (gave up: %v) after %d crashes; load: %v", gaveUp.Load(), n, res)
	}
	if res.Failed() > 0 {
		b.Fatalf("%d of %d requests failed in the crash loop (%d crashes): %v", res.Failed(), res.Requests, n, res)
	}
	if loop != "off" && n == 0 {
		b.Fatal("no instance crashed: the crash loop did not run")
	}
}
