package production

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/goangel/angel/pubsub"
)

// This file is the one drain path. Every life that leaves service (crash,
// reload, recycle, hung, scale-down, Drain, the runner's stop) ends here:
//
//  1. it stops accepting (end closed its listener view as soon as the life
//     ended, crashed or replaced: the acceptor hands new connections to the
//     other lives only);
//  2. from now on every response carries "Connection: close", so each
//     keep-alive client gets a full answer to the request it sent and moves
//     to a live instance for the next one (http.Server.Shutdown is not used:
//     it closes keep-alive connections that look idle while the client's
//     next request may already be on the wire);
//  3. the App.OnDrain hooks are called, so that handlers of connections they
//     took over (WebSockets) can say goodbye;
//  4. it waits until no connection and no handler is left. When the whole
//     runner stops no live instance is left to move to, so a connection idle
//     across two sweeps stopIdleSweep apart is closed (no request is in
//     flight on it);
//  5. at the life's one deadline (--drain-timeout from the start of the
//     drain) what is left is closed; handlers still running are abandoned
//     (Go cannot stop a goroutine) and counted;
//  6. release: the context is canceled, the supervised goroutines are
//     awaited, the OnShutdown hooks run, the pub/sub client and the
//     container are closed, all within the same deadline.

// stopIdleSweep: once the runner stops, a connection found idle by two
// sweeps this far apart, with no request in between, is closed at once
// instead of waiting for its next request.
const stopIdleSweep = 250 * time.Millisecond

// connInfo is one connection's state, written only by its own goroutine (in
// ConnState) on each change: a change counter shifted left, and the low bit
// set while no request is being read or answered (no clock read per
// request). A new connection counts as idle until its first request.
type connInfo struct{ state atomic.Uint64 }

func newConnInfo() *connInfo {
	c := &connInfo{}
	c.state.Store(1)
	return c
}

func (c *connInfo) set(idle bool) {
	next := (c.state.Load()>>1 + 1) << 1
	if idle {
		next |= 1
	}
	c.state.Store(next)
}

// drain takes the life out of service and releases it (see above).
func (l *life) drain() {
	rs := l.rs
	deadline := time.Now().Add(rs.cfg.DrainTimeout)
	l.end(nil)
	rs.track(l, "draining")
	l.callDrainHooks(deadline)
	<-l.serveDone

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var sweep <-chan time.Time
	stopping := rs.stopping
	if rs.handedOver() {
		// A binary upgrade's new process serves: clients move there, so
		// idle connections are drained like a crash's, not closed.
		stopping = nil
	}
	seen := map[net.Conn]uint64{}
wait:
	for l.busy() {
		select {
		case <-l.changed:
		case <-stopping:
			stopping = nil
			t := time.NewTicker(stopIdleSweep)
			defer t.Stop()
			sweep = t.C
			l.closeIdle(seen)
		case <-sweep:
			l.closeIdle(seen)
		case <-timer.C:
			if n, h := l.conns.Load(), l.handlers.Load(); n > 0 || h > 0 {
				l.log.Warnf("Instance #%d life %d: %d connection(s) and %d request(s) still open after --drain-timeout %v: closing them and ending the context", l.info.Number, l.info.Life, n, h, rs.cfg.DrainTimeout)
				l.srv.Close()
			}
			break wait
		}
	}
	if l.handlers.Load() > 0 {
		// Handlers that watch their context return once it ends: end it
		// now and give them a moment before calling them abandoned.
		l.cancel(l.endCause())
		grace := time.NewTimer(abandonGrace)
		defer grace.Stop()
	settle:
		for l.handlers.Load() > 0 {
			select {
			case <-l.changed:
			case <-grace.C:
				break settle
			}
		}
	}
	if h := l.handlers.Load(); h > 0 {
		rs.abandon(l, int(h))
	}
	l.release(deadline)
}

// abandonGrace is how long handlers get to return after their context ended
// at the drain deadline, before they count as abandoned.
const abandonGrace = 100 * time.Millisecond

// endCause is the cause App.Context is canceled with: the crash reason, or
// ErrLifeEnded.
func (l *life) endCause() error {
	if l.endErr != nil {
		return l.endErr
	}
	return ErrLifeEnded
}

// closeIdle closes the connections that were idle at the previous sweep and
// have had no request since; it records what it saw in seen.
func (l *life) closeIdle(seen map[net.Conn]uint64) {
	l.connMap.Range(func(k, v any) bool {
		c, st := k.(net.Conn), v.(*connInfo).state.Load()
		if st&1 == 1 && seen[c] == st {
			c.Close()
		}
		seen[c] = st
		return true
	})
}

// release cancels the context, waits for the goroutines, runs the hooks,
// closes the client and the container, all bounded by deadline. Safe on a
// half-built life.
func (l *life) release(deadline time.Time) {
	rs := l.rs
	l.cancel(l.endCause())
	l.goMu.Lock()
	l.goClosed = true
	l.goMu.Unlock()
	rs.track(l, "waiting for its app.Go goroutines")
	if !waitUntil(deadline, l.goWG.Wait) {
		rs.leave(fmt.Sprintf("instance #%d life %d: app.Go goroutines", l.info.Number, l.info.Life))
		l.log.Errorf("Instance #%d life %d: supervised goroutines still running at the drain deadline; leaving them", l.info.Number, l.info.Life)
	}

	l.hooksMu.Lock()
	hooks := l.hooks
	l.hooks = nil
	l.hooksMu.Unlock()
	var errs []error
	if len(hooks) > 0 {
		ctx, cancel := context.WithDeadline(rs.baseCtx, deadline)
		for i := len(hooks) - 1; i >= 0; i-- {
			name := funcName(hooks[i])
			rs.track(l, "OnShutdown hook "+name)
			var err error
			if !waitUntil(deadline, func() { err = l.runHook(ctx, hooks[i]) }) {
				rs.leave(fmt.Sprintf("instance #%d life %d: OnShutdown hook %s", l.info.Number, l.info.Life, name))
				errs = append(errs, fmt.Errorf("OnShutdown hook %s still running at the drain deadline: left running", name))
				break
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		cancel()
	}
	if l.client != nil {
		if err := l.client.Close(); err != nil && !errors.Is(err, pubsub.ErrClosed) {
			errs = append(errs, fmt.Errorf("pub/sub client: %w", err))
		}
	}
	if err := l.container.Close(); err != nil {
		errs = append(errs, fmt.Errorf("container: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		l.log.WithError(err).Warn("Shutting the instance down reported errors")
	}
	rs.untrack(l)
	rs.emit(Event{Kind: EventStopped, Instance: l.info.Number, Life: l.info.Life, Err: l.endErr})
}

// waitUntil runs f on its own goroutine and waits for it until deadline (at
// least a few milliseconds, so that a step that ends at once is not
// reported for a deadline already spent). It reports false when f was left
// running.
func waitUntil(deadline time.Time, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(max(time.Until(deadline), 10*time.Millisecond))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func funcName(f any) string {
	if fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer()); fn != nil {
		return fn.Name()
	}
	return "?"
}

// callDrainHooks tells the app (App.OnDrain) that the life drains.
func (l *life) callDrainHooks(deadline time.Time) {
	l.hooksMu.Lock()
	hooks := l.drainHooks
	l.hooksMu.Unlock()
	if len(hooks) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(l.ctx, deadline)
	defer cancel()
	for _, f := range hooks {
		func() {
			defer func() {
				if p := recover(); p != nil {
					l.log.WithField("stack", string(newPanicError(p).Stack)).Errorf("An OnDrain hook panicked: %v", p)
				}
			}()
			f(ctx)
		}()
	}
}

// wantRecycle asks the supervisor for a recycle (--max-requests).
func (l *life) wantRecycle() {
	select {
	case l.recycle <- struct{}{}:
	default:
	}
}

// track records the start of request r for --hang-timeout and labels the
// goroutine with the life, so its stack can be told from the others'. It
// returns the function that forgets the request.
func (l *life) track(r *http.Request) func() {
	id := l.reqSeq.Add(1)
	l.inflight.Store(id, time.Now().UnixNano())
	pprof.SetGoroutineLabels(pprof.WithLabels(r.Context(), pprof.Labels(lifeLabel, l.info.ID)))
	return func() { l.inflight.Delete(id) }
}

const lifeLabel = "goangel_life"

// oldestRequest returns the age of the oldest request in flight.
func (l *life) oldestRequest(now time.Time) (time.Duration, bool) {
	oldest := int64(0)
	l.inflight.Range(func(_, v any) bool {
		if t := v.(int64); oldest == 0 || t < oldest {
			oldest = t
		}
		return true
	})
	if oldest == 0 {
		return 0, false
	}
	return now.Sub(time.Unix(0, oldest)), true
}

// goroutines returns the stacks of the goroutines labelled with this life.
func (l *life) goroutines() string {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return "goroutine profile: " + err.Error()
	}
	want := fmt.Sprintf("%q:%q", lifeLabel, l.info.ID)
	var out strings.Builder
	// debug=1 prints blocks separated by blank lines, each with a
	// "# labels: {...}" line when its goroutines have labels.
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var block []string
	flush := func() {
		for _, line := range block {
			if strings.HasPrefix(line, "# labels:") && strings.Contains(line, want) {
				out.WriteString(strings.Join(block, "\n"))
				out.WriteString("\n\n")
				break
			}
		}
		block = block[:0]
	}
	for sc.Scan() {
		if line := sc.Text(); line == "" {
			flush()
		} else {
			block = append(block, line)
		}
	}
	flush()
	return out.String()
}

// track and untrack keep what each life is doing, to name what still runs
// when the stop deadline passes.
// track records what l is doing now, for stillRunning; the first call adds
// l to the lives not yet released (one map store per life, not per step).
func (rs *runState) track(l *life, what string) {
	if l.doing.Swap(&what) == nil {
		rs.active.Store(l, struct{}{})
	}
}

func (rs *runState) untrack(l *life) { rs.active.Delete(l) }

// stillRunning lists the lives not yet released and what they are doing.
func (rs *runState) stillRunning() []string {
	var out []string
	rs.active.Range(func(k, _ any) bool {
		l := k.(*life)
		out = append(out, fmt.Sprintf("instance #%d life %d: %s", l.info.Number, l.info.Life, *l.doing.Load()))
		return true
	})
	return out
}

// leave records something left running past a life's deadline.
func (rs *runState) leave(what string) {
	rs.leftMu.Lock()
	rs.left = append(rs.left, what)
	rs.leftMu.Unlock()
}

// abandon counts n handlers left running by l; past --max-abandoned the
// runner exits with ExitAbandoned.
func (rs *runState) abandon(l *life, n int) {
	total := rs.abandoned.Add(int64(n))
	l.log.Errorf("Instance #%d life %d: %d handler(s) still running at the drain deadline were abandoned (%d in all; Go cannot stop a goroutine)", l.info.Number, l.info.Life, n, total)
	rs.emit(Event{Kind: EventAbandoned, Instance: l.info.Number, Life: l.info.Life, Count: n})
	select {
	case <-rs.stopping:
		// Left running by the stop itself: Run's error names them (124).
		rs.leave(fmt.Sprintf("instance #%d life %d: %d handler(s)", l.info.Number, l.info.Life, n))
	default:
	}
	if total > int64(rs.cfg.MaxAbandoned) {
		select {
		case rs.fatal <- exitError(ExitAbandoned, fmt.Errorf("%w: %d handlers left running, more than --max-abandoned %d", ErrAbandoned, total, rs.cfg.MaxAbandoned)):
		default:
		}
	}
}
