package production

import (
	"testing"
	"time"
)

func TestRestartTracker(t *testing.T) {
	p := RestartPolicy{MaxRestarts: 4, Window: time.Minute, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, StableAfter: 10 * time.Second}
	tr := newRestartTracker(p)
	tr.jitter = func(n int64) int64 { return n - 1 } // no jitter: the upper bound
	t0 := time.Unix(1000, 0)
	now := t0
	// Crashes right after starting: 0 (immediate), then 10, 20, 40 (capped) ms.
	for i, want := range []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
		d, ok := tr.next(now, now.Add(time.Second))
		if !ok || d != want {
			t.Fatalf("crash %d: next = %v, %v; want %v, true", i+1, d, ok, want)
		}
		now = now.Add(time.Second)
	}
	// A fifth crash within the window exceeds the intensity.
	if _, ok := tr.next(now, now.Add(time.Second)); ok {
		t.Fatal("5th restart within 1m allowed with MaxRestarts 4")
	}
	// A minute later the old restarts have left the window, and a life that
	// ran stably resets the backoff: respawn at once.
	later := t0.Add(2 * time.Minute)
	if d, ok := tr.next(later.Add(-time.Minute), later); !ok || d != 0 {
		t.Fatalf("after a stable life: next = %v, %v; want 0, true", d, ok)
	}
}

func TestBackoffJitter(t *testing.T) {
	p := DefaultRestartPolicy()
	p.MaxRestarts = 1000
	tr := newRestartTracker(p)
	now := time.Unix(1000, 0)
	for i := range 20 {
		d, ok := tr.next(now, now)
		if !ok {
			t.Fatal("gave up")
		}
		if i == 0 && d != 0 {
			t.Fatalf("first respawn after %v, want 0", d)
		}
		if d > p.MaxBackoff {
			t.Fatalf("backoff %v over the cap %v", d, p.MaxBackoff)
		}
		if i >= 1 && d < p.InitialBackoff/2 {
			t.Fatalf("crash %d: backoff %v under half the initial one", i+1, d)
		}
	}
}
