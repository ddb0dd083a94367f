package production

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// RestartPolicy says when a crashed instance is respawned, per instance. It
// tells an instance that cannot run from one that was unlucky:
//
//   - A life that started well (configure returned, and it answered at least
//     one request or ran StableAfter) and then crashed is respawned at once,
//     and its crash is not counted: a poison request or a rare panic must
//     not take the service down, however often it happens (gunicorn and
//     Erlang's supervisors also only halt on boot failures).
//   - A failed start (configure failed, or the life crashed before it
//     answered a request and before StableAfter) counts. Each further
//     consecutive failed start waits twice as long, from InitialBackoff up to
//     MaxBackoff, with jitter (a random delay in [d/2, d]); the first one
//     after a life that started well respawns at once.
//   - Intensity (Erlang's MaxR/MaxT): an instance may fail to start at most
//     MaxRestarts times within any Window. One more and the runner gives up:
//     it shuts every instance down cleanly and Run returns an error with code
//     [ExitGaveUp], so that systemd or the operator takes over. MaxRestarts
//     must be at least 1: an instance that can never start must end the
//     process rather than retry for ever. With the defaults, an instance
//     whose configure always fails gives up after its 11th failed start,
//     having waited at most 0+10+20+…+2560ms ≈ 5.1s in backoff (each
//     wait is jittered down to half).
//
// Every field is also a flag (--max-restarts, --restart-window,
// --restart-backoff, --restart-max-backoff, --restart-stable-after);
// [WithRestartPolicy] sets their defaults, and a field it is given as zero
// takes DefaultRestartPolicy's value: no zero field turns the limit off.
type RestartPolicy struct {
	MaxRestarts    int
	Window         time.Duration
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	StableAfter    time.Duration
}

// DefaultRestartPolicy is the policy used unless options or flags change it:
// 10 failed starts per minute per instance, backoff 0, 10ms, 20ms, … up to
// 5s; a life that answered a request or ran 10s started well.
func DefaultRestartPolicy() RestartPolicy {
	return RestartPolicy{
		MaxRestarts:    10,
		Window:         time.Minute,
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     5 * time.Second,
		StableAfter:    10 * time.Second,
	}
}

// withDefaults gives each field that is not positive the value of
// DefaultRestartPolicy (a MaxBackoff at least InitialBackoff).
func (p RestartPolicy) withDefaults() RestartPolicy {
	d := DefaultRestartPolicy()
	if p.MaxRestarts <= 0 {
		p.MaxRestarts = d.MaxRestarts
	}
	if p.Window <= 0 {
		p.Window = d.Window
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = d.InitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = max(d.MaxBackoff, p.InitialBackoff)
	}
	if p.StableAfter <= 0 {
		p.StableAfter = d.StableAfter
	}
	return p
}

// policyOf is the RestartPolicy the flags describe.
func policyOf(c *Config) RestartPolicy {
	return RestartPolicy{
		MaxRestarts:    c.MaxRestarts,
		Window:         c.RestartWindow,
		InitialBackoff: c.RestartBackoff,
		MaxBackoff:     c.RestartMaxBackoff,
		StableAfter:    c.RestartStableAfter,
	}
}

// validateSupervision checks the supervision flags Validate does not.
func (c *Config) validateSupervision() []error {
	var errs []error
	if c.DrainTimeout == 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout must be positive, got 0 (0 would cut every in-flight request; give a long duration for a patient drain)"))
	}
	if c.RestartStableAfter == 0 {
		errs = append(errs, fmt.Errorf("--restart-stable-after must be positive, got 0 (0 counts every life as started well, so an instance that crashes right after it starts would be respawned for ever and --max-restarts never applies; give 1ns to respawn every crash at once)"))
	}
	if c.RestartMaxBackoff < c.RestartBackoff {
		errs = append(errs, fmt.Errorf("--restart-max-backoff (%v) must not be shorter than --restart-backoff (%v)", c.RestartMaxBackoff, c.RestartBackoff))
	}
	if c.MaxRequests < 0 {
		errs = append(errs, fmt.Errorf("--max-requests must not be negative, got %d (0 turns recycling off)", c.MaxRequests))
	}
	if c.MaxRequestsJitter < 0 {
		errs = append(errs, fmt.Errorf("--max-requests-jitter must not be negative, got %d", c.MaxRequestsJitter))
	}
	if c.MaxRequestsJitter > 0 && c.MaxRequests == 0 {
		errs = append(errs, fmt.Errorf("--max-requests-jitter %d needs --max-requests", c.MaxRequestsJitter))
	}
	if c.MaxAbandoned < 0 {
		errs = append(errs, fmt.Errorf("--max-abandoned must not be negative, got %d", c.MaxAbandoned))
	}
	return errs
}

// shutdownTimeout is --shutdown-timeout, or its default.
func (c *Config) shutdownTimeout() time.Duration {
	if c.ShutdownTimeout > 0 {
		return c.ShutdownTimeout
	}
	return c.DrainTimeout + 5*time.Second
}

// restartTracker applies a RestartPolicy to one instance. It is owned by that
// instance's supervisor goroutine: not safe for concurrent use.
type restartTracker struct {
	policy      RestartPolicy
	failures    []time.Time // failed starts within the window, oldest first
	consecutive int         // failed starts since the last life that started well
	jitter      func(n int64) int64
}

func newRestartTracker(p RestartPolicy) *restartTracker {
	return &restartTracker{policy: p, jitter: rand.Int64N}
}

// startedWell records a life that started well: the next failed start is
// respawned at once.
func (t *restartTracker) startedWell() { t.consecutive = 0 }

// failed records a failed start at now, and returns how long to wait before
// the next start, or ok=false when the intensity limit is exceeded.
func (t *restartTracker) failed(now time.Time) (delay time.Duration, ok bool) {
	t.consecutive++
	cut := now.Add(-t.policy.Window)
	i := 0
	for i < len(t.failures) && !t.failures[i].After(cut) {
		i++
	}
	t.failures = append(t.failures[:0], t.failures[i:]...)
	if len(t.failures) >= t.policy.MaxRestarts {
		return 0, false
	}
	t.failures = append(t.failures, now)
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

// crashLoopWindow is the window in which crashes of every instance are
// counted to tell a crash loop.
const crashLoopWindow = 10 * time.Second

// crashRate watches the crashes of every instance: when more than two per
// wanted instance (and at least 10) happen within crashLoopWindow, it
// reports a crash loop, at most once per window. Its timestamps are a queue
// (head advances past the expired ones; the slice is compacted once half of
// it is expired), so a crash costs O(1) amortized even in a storm of tens
// of thousands per second.
type crashRate struct {
	mu       sync.Mutex
	crashes  []time.Time
	head     int // crashes[head:] are within the window
	reported time.Time
}

// crash records a crash at now and returns the crashes within the window
// when that is a crash loop to report now (else 0).
func (c *crashRate) crash(now time.Time, wanted int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := now.Add(-crashLoopWindow)
	for c.head < len(c.crashes) && !c.crashes[c.head].After(cut) {
		c.head++
	}
	if c.head > len(c.crashes)/2 {
		c.crashes = append(c.crashes[:0], c.crashes[c.head:]...)
		c.head = 0
	}
	c.crashes = append(c.crashes, now)
	n := len(c.crashes) - c.head
	if n < max(10, 2*wanted) || (!c.reported.IsZero() && now.Sub(c.reported) < crashLoopWindow) {
		return 0
	}
	c.reported = now
	return n
}
