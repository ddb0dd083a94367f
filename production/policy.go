package production

import (
	"math/rand/v2"
	"time"
)

// RestartPolicy says when a crashed instance is respawned, per instance:
//
//   - Backoff: the first crash after a stable period respawns at once (like
//     angel_production); each further consecutive crash waits twice as long,
//     from InitialBackoff up to MaxBackoff, with jitter (a random delay in
//     [d/2, d]). A life that ran at least StableAfter resets the sequence.
//   - Intensity (Erlang's MaxR/MaxT): an instance may be respawned at most
//     MaxRestarts times within any Window. One more crash and the runner gives
//     up: it shuts every instance down cleanly and Run returns an error with
//     code [ExitGaveUp].
//
// MaxRestarts and Window come from --max-restarts and --restart-window; the
// backoff fields from [WithRestartPolicy].
type RestartPolicy struct {
	MaxRestarts    int
	Window         time.Duration
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	StableAfter    time.Duration
}

// DefaultRestartPolicy is the policy used unless options or flags change it:
// 10 restarts per minute per instance, backoff 0, 10ms, 20ms, … up to 5s,
// reset after 10s of stable running.
func DefaultRestartPolicy() RestartPolicy {
	return RestartPolicy{
		MaxRestarts:    10,
		Window:         time.Minute,
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     5 * time.Second,
		StableAfter:    10 * time.Second,
	}
}

// restartTracker applies a RestartPolicy to one instance. It is owned by that
// instance's supervisor goroutine: not safe for concurrent use.
type restartTracker struct {
	policy      RestartPolicy
	restarts    []time.Time // respawn times within the window, oldest first
	consecutive int         // crashes since the last stable life
	jitter      func(n int64) int64
}

func newRestartTracker(p RestartPolicy) *restartTracker {
	return &restartTracker{policy: p, jitter: rand.Int64N}
}

// next records a crash at now of a life that started at started, and returns
// how long to wait before the respawn, or ok=false when the intensity limit
// is exceeded.
func (t *restartTracker) next(started, now time.Time) (delay time.Duration, ok bool) {
	if now.Sub(started) >= t.policy.StableAfter {
		t.consecutive = 0
	}
	t.consecutive++
	cut := now.Add(-t.policy.Window)
	i := 0
	for i < len(t.restarts) && !t.restarts[i].After(cut) {
		i++
	}
	t.restarts = append(t.restarts[:0], t.restarts[i:]...)
	if len(t.restarts) >= t.policy.MaxRestarts {
		return 0, false
	}
	t.restarts = append(t.restarts, now)
	return t.backoff(), true
}

func (t *restartTracker) backoff() time.Duration {
	if t.consecutive <= 1 || t.policy.InitialBackoff <= 0 {
		return 0
	}
	d := t.policy.InitialBackoff
	for i := 2; i < t.consecutive && d < t.policy.MaxBackoff; i++ {
		d *= 2
	}
	if t.policy.MaxBackoff > 0 && d > t.policy.MaxBackoff {
		d = t.policy.MaxBackoff
	}
	half := d / 2
	return half + time.Duration(t.jitter(int64(d-half)+1))
}
