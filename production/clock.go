package production

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Clock is the runner's source of time. Every timer and every reading of
// the time in the runner goes through it: the restart policy (backoff and
// intensity window), the crash-loop watch, the drain deadline and its
// sweeps, --hang-timeout, --shutdown-timeout, the acceptor's waits,
// App.AfterFunc timers, event times and the window in which a second stop
// signal is a copy of the first. Tests replace it with [WithClock] to drive
// time by hand; the default is the system clock. What the kernel, net/http
// or another process times stays on the real clock: socket deadlines
// (--write-timeout, --read-timeout, --read-header-timeout, --idle-timeout,
// the acceptor's short wait for its queue), --request-timeout (a context per
// request), the request latency metric, systemd's watchdog, tableflip's
// --upgrade-timeout and the NATS connection.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, unless the
	// returned Timer is stopped first (like time.AfterFunc).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled by Clock.AfterFunc. *time.Timer is one.
type Timer interface {
	// Stop prevents the call; it reports false if the call already ran or started.
	Stop() bool
}

// SystemClock returns the Clock backed by package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// The runner's channel timers, tickers and deadline contexts, built on its
// Clock's AfterFunc and Now so that a test's clock drives them. On the system
// clock they are the runtime's own (time.NewTimer, time.NewTicker,
// context.WithDeadline): the same behaviour without a goroutine per tick.

// clockTimer is a one-shot timer on a Clock: C receives the clock's time
// once d has elapsed on it, unless Stop comes first (like time.Timer).
type clockTimer struct {
	C <-chan time.Time
	t Timer
}

func newTimer(c Clock, d time.Duration) clockTimer {
	if _, ok := c.(systemClock); ok {
		t := time.NewTimer(d)
		return clockTimer{C: t.C, t: t}
	}
	ch := make(chan time.Time, 1) // fires once: the send never blocks
	return clockTimer{C: ch, t: c.AfterFunc(d, func() { ch <- c.Now() })}
}

// Stop prevents the timer from firing; false if it fired already.
func (t clockTimer) Stop() bool { return t.t.Stop() }

// clockTicker sends the clock's time on C every d of it (like time.Ticker:
// a receiver that lags misses ticks), re-arming Clock.AfterFunc after each.
type clockTicker struct {
	C  <-chan time.Time
	rt *time.Ticker // on the system clock

	c       Clock
	d       time.Duration
	ch      chan time.Time
	mu      sync.Mutex
	t       Timer // the pending tick
	stopped bool
}

func newTicker(c Clock, d time.Duration) *clockTicker {
	if _, ok := c.(systemClock); ok {
		t := time.NewTicker(d)
		return &clockTicker{C: t.C, rt: t}
	}
	tk := &clockTicker{c: c, d: d, ch: make(chan time.Time, 1)}
	tk.C = tk.ch
	tk.arm()
	return tk
}

// arm schedules the next tick. Clock.AfterFunc is called without the lock
// held, so that a clock that fires at once cannot deadlock it.
func (tk *clockTicker) arm() {
	t := tk.c.AfterFunc(tk.d, tk.tick)
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.stopped {
		t.Stop()
		return
	}
	tk.t = t
}

func (tk *clockTicker) tick() {
	tk.mu.Lock()
	if tk.stopped {
		tk.mu.Unlock()
		return
	}
	select {
	case tk.ch <- tk.c.Now():
	default: // the last tick was not taken yet
	}
	tk.mu.Unlock()
	tk.arm()
}

// Stop ends the ticks: none is sent once it returns.
func (tk *clockTicker) Stop() {
	if tk.rt != nil {
		tk.rt.Stop()
		return
	}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.stopped = true
	if tk.t != nil {
		tk.t.Stop()
	}
}

// withDeadline is context.WithDeadline with deadline read on c: the context
// ends with context.DeadlineExceeded once c reaches it.
func withDeadline(parent context.Context, c Clock, deadline time.Time) (context.Context, context.CancelFunc) {
	if _, ok := c.(systemClock); ok {
		return context.WithDeadline(parent, deadline)
	}
	ctx, cancel := context.WithCancelCause(parent)
	t := c.AfterFunc(deadline.Sub(c.Now()), func() { cancel(context.DeadlineExceeded) })
	return deadlineCtx{ctx, deadline}, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// deadlineCtx reports the deadline of withDeadline on a clock other than the
// system's, and DeadlineExceeded once it passed.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c deadlineCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// ctxDone reports whether ctx is done, without blocking.
func ctxDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}
