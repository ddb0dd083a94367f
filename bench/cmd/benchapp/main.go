// Command benchapp is goangel's side of the measurements from outside the
// process (bench/scripts/outside.sh): the ten-route chi app of the in-process
// benchmarks (bench/internal/workload) under a Runner with its default CLI
// policy, plus two routes for the respawn measurement: "/life" answers which
// life of which instance answered ("0.3": instance 0, life 3) and "/crash"
// answers the same, then ends that life (App.Crash). Flags are the Runner's:
// -p, -j, --http2, --ssl, ….
//
// With BENCHAPP_TRACE=FILE it also writes a trace of the respawn path to
// FILE, one line per step ("UNIX-NANOSECONDS STEP INSTANCE.LIFE"): crash
// (the /crash handler calls App.Crash), the Runner's events (ended,
// respawning, started), configure's start and end, and each life's first
// request. `outside trace` lines it up with the client's own trace
// (bench/scripts/respawn-trace.sh). BENCH_CPUPROFILE=FILE:SECONDS writes a
// CPU profile of the first SECONDS to FILE.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/production"
)

func main() {
	workload.ProfileFromEnv()
	var opts []production.Option
	if path := os.Getenv("BENCHAPP_TRACE"); path != "" {
		t, err := newTracer(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchapp:", err)
			os.Exit(1)
		}
		tr = t
		opts = append(opts, production.WithEventHook(func(ev production.Event) {
			switch ev.Kind {
			case production.EventEnded, production.EventRespawning, production.EventStarted:
				tr.at(ev.Time, ev.Kind.String(), ev.Instance, ev.Life)
			}
		}))
	}
	production.New("benchapp", configure, opts...).Main()
}

// tr is the trace (nil: off).
var tr *tracer

func configure(app *production.App) error {
	info := app.Info()
	tr.step("configure-start", info.Number, info.Life)
	id := fmt.Sprintf("%d.%d", info.Number, info.Life)
	var first atomic.Bool
	workload.RegisterRoutes(app.Router)
	app.Router.Get("/life", func(w http.ResponseWriter, _ *http.Request) {
		if first.CompareAndSwap(false, true) {
			tr.step("first-request", info.Number, info.Life)
		}
		io.WriteString(w, id)
	})
	app.Router.Get("/crash", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, id)
		tr.step("crash", info.Number, info.Life)
		app.Crash(errors.New("benchapp: /crash"))
	})
	tr.step("configure-end", info.Number, info.Life)
	return nil
}

// tracer writes trace lines from a goroutine of its own, so that a step
// costs a channel send, not a write.
type tracer struct{ lines chan string }

func newTracer(path string) (*tracer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("BENCHAPP_TRACE: %w", err)
	}
	t := &tracer{lines: make(chan string, 1<<16)}
	go func() {
		w := bufio.NewWriter(f)
		tick := time.NewTicker(100 * time.Millisecond)
		for {
			select {
			case l := <-t.lines:
				w.WriteString(l)
			case <-tick.C:
				w.Flush()
			}
		}
	}()
	return t, nil
}

func (t *tracer) step(what string, inst, life int) {
	if t != nil {
		t.at(time.Now(), what, inst, life)
	}
}

func (t *tracer) at(when time.Time, what string, inst, life int) {
	select {
	case t.lines <- fmt.Sprintf("%d %s %d.%d\n", when.UnixNano(), what, inst, life):
	default: // full: a step lost, never a stall of the path it traces
	}
}
