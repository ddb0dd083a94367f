package production

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// stepClock is a Clock moved by hand whose timers fire in the order they
// fall due, one after the other, on the goroutine of step (not their own:
// each of the package's callbacks returns at once), so that what a test
// sees after step is settled.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []*stepTimer
}

type stepTimer struct {
	c  *stepClock
	at time.Time
	f  func()
}

func (t *stepTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, p := range t.c.pending {
		if p == t {
			t.c.pending = append(t.c.pending[:i], t.c.pending[i+1:]...)
			return true
		}
	}
	return false
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &stepTimer{c: c, at: c.now.Add(d), f: f}
	c.pending = append(c.pending, t)
	return t
}

// step moves the time forward by d, firing each timer as the time reaches it.
func (c *stepClock) step(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *stepTimer
		for _, t := range c.pending {
			if !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		for i, t := range c.pending {
			if t == next {
				c.pending = append(c.pending[:i], c.pending[i+1:]...)
				break
			}
		}
		c.now = next.at
		c.mu.Unlock()
		next.f()
	}
}

func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-ch:
		return t, true
	default:
		return time.Time{}, false
	}
}

// TestClockTimerAndTicker: the package's channel timer and ticker fire on
// the runner's clock, at the clock's time, and not after Stop.
func TestClockTimerAndTicker(t *testing.T) {
	c := &stepClock{now: time.Unix(1e9, 0)}
	t0 := c.Now()
	tm := newTimer(c, time.Second)
	c.step(999 * time.Millisecond)
	if _, ok := received(tm.C); ok {
		t.Fatal("timer fired before its second")
	}
	c.step(time.Millisecond)
	if at, ok := received(tm.C); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("timer: %v %v, want it fired at t0+1s", at, ok)
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	stopped := newTimer(c, time.Second)
	if !stopped.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	c.step(time.Hour)
	if _, ok := received(stopped.C); ok {
		t.Error("a stopped timer fired")
	}

	tk := newTicker(c, 10*time.Second)
	start := c.Now()
	for i := 1; i <= 3; i++ {
		c.step(10 * time.Second)
		if at, ok := received(tk.C); !ok || !at.Equal(start.Add(time.Duration(i)*10*time.Second)) {
			t.Fatalf("tick %d: %v %v, want one at start+%ds", i, at, ok, 10*i)
		}
	}
	c.step(30 * time.Second) // not taken meanwhile: one tick waits, the others are missed
	if _, ok := received(tk.C); !ok {
		t.Fatal("no tick waiting after 30s untaken")
	}
	if _, ok := received(tk.C); ok {
		t.Fatal("more than one tick waiting")
	}
	tk.Stop()
	c.step(time.Hour)
	if _, ok := received(tk.C); ok {
		t.Error("a tick after Stop")
	}
}

// TestWithDeadlineOnClock: withDeadline's context ends with
// DeadlineExceeded when the clock reaches the deadline (and reports it), or
// with Canceled when cancelled first; the earlier deadline of its parent wins.
func TestWithDeadlineOnClock(t *testing.T) {
	c := &stepClock{now: time.Unix(1e9, 0)}
	deadline := c.Now().Add(time.Minute)
	ctx, cancel := withDeadline(context.Background(), c, deadline)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Errorf("Deadline() = %v %v, want %v", d, ok, deadline)
	}
	c.step(time.Minute - time.Nanosecond)
	if ctx.Err() != nil {
		t.Fatalf("ended %v before the deadline", ctx.Err())
	}
	c.step(time.Nanosecond)
	if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Err() at the deadline = %v, want DeadlineExceeded", err)
	}
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	if child.Err() == nil {
		t.Error("a child of an ended context is not ended")
	}

	ctx2, cancel2 := withDeadline(context.Background(), c, c.Now().Add(time.Minute))
	cancel2()
	c.step(time.Hour)
	if err := ctx2.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err() after cancel = %v, want Canceled", err)
	}

	parent, cancelParent := withDeadline(context.Background(), c, c.Now().Add(time.Second))
	defer cancelParent()
	ctx3, cancel3 := withDeadline(parent, c, c.Now().Add(time.Hour))
	defer cancel3()
	if d, _ := ctx3.Deadline(); !d.Equal(c.Now().Add(time.Second)) {
		t.Errorf("Deadline() = %v, want the parent's earlier one", d)
	}
	c.step(time.Second)
	if err := ctx3.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err() at the parent's deadline = %v, want DeadlineExceeded", err)
	}
}
