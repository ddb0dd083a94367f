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
	// Failed starts: 0 (immediate), then 10, 20, 40 (capped) ms.
	for i, want := range []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
		d, ok := tr.failed(now)
		if !ok || d != want {
			t.Fatalf("crash %d: next = %v, %v; want %v, true", i+1, d, ok, want)
		}
		now = now.Add(time.Second)
	}
	// A fifth crash within the window exceeds the intensity.
	if _, ok := tr.failed(now); ok {
		t.Fatal("5th restart within 1m allowed with MaxRestarts 4")
	}
	// A minute later the old failures have left the window, and a life that
	// started well resets the backoff: respawn at once.
	later := t0.Add(2 * time.Minute)
	tr.startedWell()
	if d, ok := tr.failed(later); !ok || d != 0 {
		t.Fatalf("after a stable life: next = %v, %v; want 0, true", d, ok)
	}
}

func TestBackoffJitter(t *testing.T) {
	p := DefaultRestartPolicy()
	p.MaxRestarts = 1000
	tr := newRestartTracker(p)
	now := time.Unix(1000, 0)
	for i := range 20 {
		d, ok := tr.failed(now)
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

func TestCrashRate(t *testing.T) {
	var c crashRate
	now := time.Unix(1000, 0)
	got := 0
	for i := range 30 {
		if n := c.crash(now.Add(time.Duration(i)*100*time.Millisecond), 4); n > 0 {
			if got != 0 {
				t.Fatalf("crash loop reported twice within the window (crash %d)", i+1)
			}
			got = i + 1
			if n != 10 {
				t.Errorf("reported %d crashes, want 10", n)
			}
		}
	}
	if got != 10 {
		t.Fatalf("crash loop reported at crash %d, want 10 (max(10, 2*4))", got)
	}
	if n := c.crash(now.Add(20*time.Second), 4); n != 0 {
		t.Errorf("one crash after a quiet window reported as a loop of %d", n)
	}
}

// TestCrashRateWindow: crashes older than the window stop counting, through
// the queue's compactions.
func TestCrashRateWindow(t *testing.T) {
	var c crashRate
	start := time.Unix(1000, 0)
	// 600 crashes 100 ms apart: never more than 100 within 10 s, under the
	// threshold of 200 (2 per wanted instance).
	for i := range 600 {
		if n := c.crash(start.Add(time.Duration(i)*100*time.Millisecond), 100); n != 0 {
			t.Fatalf("crash %d reported a loop of %d", i+1, n)
		}
	}
	// 150 more at once, 100 ms after the last: the window (the last 10 s)
	// holds 99 of the earlier ones and these.
	now := start.Add(60 * time.Second)
	got := 0
	for range 150 {
		if n := c.crash(now, 100); n > 0 {
			got = n
		}
	}
	if got != 200 {
		t.Errorf("reported %d crashes in the window, want the loop reported at 200", got)
	}
}

// TestRestartPolicyZeroFieldsKeepTheLimit: a RestartPolicy that names only
// MaxRestarts and Window still gives up on a life that crashes right after
// configure (issue 20: StableAfter 0 counted every life as started well, and
// the instance was respawned for ever).
func TestRestartPolicyZeroFieldsKeepTheLimit(t *testing.T) {
	p := RestartPolicy{MaxRestarts: 2, Window: time.Hour}.withDefaults()
	d := DefaultRestartPolicy()
	want := RestartPolicy{MaxRestarts: 2, Window: time.Hour, InitialBackoff: d.InitialBackoff, MaxBackoff: d.MaxBackoff, StableAfter: d.StableAfter}
	if p != want {
		t.Errorf("withDefaults = %+v, want %+v", p, want)
	}
	if p := (RestartPolicy{InitialBackoff: time.Minute}).withDefaults(); p.MaxBackoff != time.Minute {
		t.Errorf("MaxBackoff = %v with InitialBackoff 1m, want 1m", p.MaxBackoff)
	}
}
