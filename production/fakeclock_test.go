package production_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// fakeClock is the tests' Clock (production.WithClock): its time moves only
// when the test advances it, so that a drain deadline, a hang timeout, a
// crash-loop window or a restart backoff passes exactly when the test says,
// at no cost in real time. The runner's every timer and ticker is built on
// AfterFunc, so armed tells when the runner waits for one.
//
// With auto set, a timer of at most auto is no wait at all: AfterFunc moves
// the time forward by its duration and fires it (and whatever falls due
// meanwhile) at once; longer ones wait for advance. Keep auto below the
// runner's ticker periods (the stop's idle sweep: 250ms; --hang-timeout/4),
// or such a ticker fires without end while it runs.
type fakeClock struct {
	auto time.Duration

	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1e9, 0)} }

type fakeTimer struct {
	f     func()
	d     time.Duration // as armed
	at    time.Time
	state atomic.Int32 // 0 pending, 1 fired, 2 stopped
}

func (t *fakeTimer) Stop() bool { return t.state.CompareAndSwap(0, 2) }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) production.Timer {
	c.mu.Lock()
	t := &fakeTimer{f: f, d: d, at: c.now.Add(d)}
	c.pending = append(c.pending, t)
	c.mu.Unlock()
	if c.auto > 0 && d <= c.auto {
		c.advance(max(d, 0))
	}
	return t
}

// advance moves the time forward by d and fires, in the order they fall
// due, the timers due by then (each in its own goroutine, as
// production.Clock says). It returns how many fired.
func (c *fakeClock) advance(d time.Duration) int {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	c.pending = slices.DeleteFunc(c.pending, func(t *fakeTimer) bool {
		switch {
		case t.state.Load() != 0:
			return true
		case !t.at.After(c.now):
			due = append(due, t)
			return true
		}
		return false
	})
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	n := 0
	for _, t := range due {
		if t.state.CompareAndSwap(0, 1) {
			go t.f()
			n++
		}
	}
	return n
}

// armed returns how many timers armed with duration d wait to fire.
func (c *fakeClock) armed(d time.Duration) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.pending {
		if t.d == d && t.state.Load() == 0 {
			n++
		}
	}
	return n
}

// advanceWhenArmed waits until the runner arms a timer of duration d, then
// moves the clock forward by d: that timer fires exactly then.
func advanceWhenArmed(t testing.TB, c *fakeClock, d time.Duration, what string) {
	t.Helper()
	waitFor(t, 20*time.Second, what, func() bool { return c.armed(d) > 0 })
	c.advance(d)
}

// stopAdvancing stops h's runner while moving c forward by step every
// millisecond until Run returns, so that the stop's deadlines and idle
// sweeps pass at no cost in real time. Give the runner a --shutdown-timeout
// many steps longer than its --drain-timeout, so that the lives' deadlines
// pass long before the stop's.
func stopAdvancing(h *harness, c *fakeClock, step time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- h.stop() }()
	return advanceUntil(c, step, done)
}

// advanceUntil moves c forward by step every millisecond until done yields
// (a stop, which is bounded: productiontest.StartTimeout).
func advanceUntil(c *fakeClock, step time.Duration, done <-chan error) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			c.advance(step)
		}
	}
}
