package production

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goangel/angel/internal/logging"
	"github.com/sirupsen/logrus"
)

// This file is the supervision tree below the Runner:
//
//   - The runner's loop (runLoop) owns the set of instances. Run feeds it the
//     end of each instance's supervisor and the verbs (Reload, Scale,
//     Restart, Drain); it alone adds and removes instances.
//   - Each instance's supervisor (instance.supervise) owns that instance's
//     lives, its restart tracker and its desired state. It receives typed
//     commands (replace the life, remove the instance) and watches its life
//     (crashed, wants recycling, hung). Request goroutines only count and
//     report; they never decide.
//
// Every verb ends in the one transition "replace (or remove) a life"
// (instance.replace, instance.retire): start the new life, wait until it
// serves, then drain the old one in the background (drain.go). A crash, a
// reload, a recycle, a hung life and a restart replace; a scale-down, Drain
// and the runner's stop remove.

// InstanceState is where an instance is (InstanceStats.State). Its
// supervisor sets it; Stats, the admin listener and systemd's STATUS= read
// it from there.
type InstanceState int32

const (
	// InstanceStarting: its first life is being configured.
	InstanceStarting InstanceState = iota
	// InstanceServing: a life serves.
	InstanceServing
	// InstanceDraining: its life has left the rotation and drains (a
	// crash being replaced, a removal by Scale or Drain, the runner's stop).
	InstanceDraining
	// InstanceBackoff: it waits for its restart backoff after a failed start.
	InstanceBackoff
	// InstanceStopped: it ended (--no-respawn, gave up, the runner stopped).
	InstanceStopped
)

var stateNames = [...]string{
	InstanceStarting: "starting",
	InstanceServing:  "serving",
	InstanceDraining: "draining",
	InstanceBackoff:  "backoff",
	InstanceStopped:  "stopped",
}

// String returns "starting", "serving", "draining", "backoff" or "stopped".
func (s InstanceState) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("InstanceState(%d)", int32(s))
}

// MarshalText encodes the state as its String, so that Stats in JSON says
// "serving", not 1.
func (s InstanceState) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("production: no such instance state: %d", int32(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes what MarshalText encodes.
func (s *InstanceState) UnmarshalText(b []byte) error {
	for i, name := range stateNames {
		if string(b) == name {
			*s = InstanceState(i)
			return nil
		}
	}
	return fmt.Errorf("production: no such instance state: %q (want one of starting, serving, draining, backoff, stopped)", b)
}

// stateVar is an instance's state, written by its supervisor and read by
// Stats.
type stateVar struct{ v atomic.Int32 }

func (v *stateVar) Load() InstanceState   { return InstanceState(v.v.Load()) }
func (v *stateVar) Store(s InstanceState) { v.v.Store(int32(s)) }

// ErrNotRunning: a verb (Reload, Scale, Restart, Drain) was called while the
// runner is not serving (before Ready, or once it stops).
var ErrNotRunning = errors.New("production: the runner is not serving")

// ErrNoInstance: Restart or Drain named an instance the runner does not run.
var ErrNoInstance = errors.New("production: no such instance")

// ErrLastInstance: Drain or Scale would leave no instance.
var ErrLastInstance = errors.New("production: an app needs at least one instance")

// ErrTooManyInstances: Scale (POST /scale, SIGTTIN) asked for more instances
// than --max-instances.
var ErrTooManyInstances = errors.New("production: more instances than --max-instances")

// instance is one instance's supervisor. Its fields below cmds are written by
// its own goroutine only; the atomics are read by Stats.
type instance struct {
	rs    *runState
	num   int
	first int // the number of its first life

	replaceCh chan replaceCmd
	remove    chan struct{} // closed: drain the life and end
	removeMu  sync.Once
	done      chan struct{} // closed when supervise returned

	state     stateVar
	life      atomic.Int64
	started   atomic.Int64 // the current life's start, unix nanoseconds
	cur       atomic.Pointer[life]
	lastCrash atomic.Pointer[crashInfo]
	instanceCounts
	crashes  atomic.Uint64
	restarts atomic.Uint64
}

// instanceCounts is what an instance's lives count, over all of them: a
// life gets a pointer to it and knows nothing else of its instance.
type instanceCounts struct {
	requests atomic.Uint64
	panics   atomic.Uint64
}

// crashInfo is the last crash of an instance; its strings are made when
// Stats asks (PanicError caches them), not on the respawn path.
type crashInfo struct {
	err error
	at  time.Time
}

// replaceCmd asks an instance for a new life; the reply is nil once the new
// life serves, or why it could not start (the old life then keeps serving).
type replaceCmd struct {
	why   string // "reload", "restart"
	reply chan error
}

func newInstance(rs *runState, num, firstLife int) *instance {
	in := &instance{rs: rs, num: num, first: firstLife, replaceCh: make(chan replaceCmd), remove: make(chan struct{}), done: make(chan struct{})}
	in.life.Store(int64(firstLife))
	return in
}

// removedAndDrained reports whether the instance was removed (Drain, Scale
// down) and its supervisor has returned.
func (in *instance) removedAndDrained() bool {
	select {
	case <-in.remove:
	default:
		return false
	}
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// removed reports whether the instance was removed (Drain, Scale down).
func (in *instance) removed() bool {
	select {
	case <-in.remove:
		return true
	default:
		return false
	}
}

// doRemove asks the instance to drain its life and end. Idempotent.
func (in *instance) doRemove() { in.removeMu.Do(func() { close(in.remove) }) }

// replace asks the instance for a new life (surge-first).
func (in *instance) replace(ctx context.Context, why string) error {
	cmd := replaceCmd{why: why, reply: make(chan error, 1)}
	select {
	case in.replaceCh <- cmd:
	case <-in.done:
		return fmt.Errorf("%w: instance #%d is gone", ErrNoInstance, in.num)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-cmd.reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// instResult is how an instance's supervisor ended.
type instResult struct {
	in          *instance
	err         error
	startFailed bool // its first life failed to start
}

// supervise runs the lives of the instance, one serving at a time. It reports
// the start of the first life on started (exactly once). It returns nil when
// ctx ends or the instance is removed, an error wrapping ErrCrashed when a
// life crashed under --no-respawn, or one wrapping ErrGaveUp past the restart
// intensity.
func (in *instance) supervise(ctx context.Context, started chan<- error) (res instResult) {
	defer close(in.done)
	defer in.state.Store(InstanceStopped)
	res.in = in
	rs := in.rs
	tracker := newRestartTracker(rs.policy)
	n := in.first
	l, err := in.startLife(ctx, n)
	if err != nil {
		err = fmt.Errorf("instance #%d: %w", in.num, err)
	}
	started <- err
	if err != nil {
		res.err, res.startFailed = err, true
		return res
	}
	var hangTick <-chan time.Time
	if rs.cfg.HangTimeout > 0 {
		t := newTicker(rs.clock, max(rs.cfg.HangTimeout/4, 5*time.Millisecond))
		defer t.Stop()
		hangTick = t.C
	}
	st := &lifeState{l: l, n: n}
	for {
		var token chan struct{}
		if st.recyclePending {
			token = rs.recycling // one recycle at a time, runner-wide
		}
		select {
		case <-ctx.Done():
			in.retire(st.l, "the runner stops")
			return res
		case <-in.remove:
			in.removeLife(st.l)
			return res
		case cmd := <-in.replaceCh:
			cmd.reply <- in.next(ctx, st, cmd.why)
		case <-st.l.recycle:
			st.recyclePending = true
		case token <- struct{}{}:
			in.recycle(ctx, st)
		case <-hangTick:
			in.checkHung(ctx, st)
		case <-st.l.ended:
			var gone bool
			st.l, st.n, gone, res.err = in.crashed(ctx, tracker, st.l, st.n)
			if gone {
				return res
			}
			st.recyclePending = false
		}
	}
}

// lifeState is what an instance's supervisor keeps between its events: the
// serving life, the last life number used (never reused, not even after a
// failed start) and whether --max-requests asked for a recycle.
type lifeState struct {
	l              *life
	n              int
	recyclePending bool
}

// next replaces the serving life by a new one (surge-first), for why; when
// the new life cannot start, the old one keeps serving and the error says
// why.
func (in *instance) next(ctx context.Context, st *lifeState, why string) error {
	nl, err := in.surge(ctx, st.l, st.n+1, why)
	st.n++
	if err != nil {
		return err
	}
	st.l, st.recyclePending = nl, false
	return nil
}

// removeLife drains the serving life of an instance that Drain or Scale
// removed: here, not in the background, so that the instance stays in
// Stats as "draining", and Drain and Scale return, once its last request
// has been answered.
func (in *instance) removeLife(l *life) {
	l.log.Infof("Instance #%d removed: draining it.", in.num)
	in.state.Store(InstanceDraining)
	l.end()
	in.noteCrash(l)
	l.emitEnded()
	l.drain()
}

// recycle replaces a life that reached --max-requests, holding the
// runner-wide recycle token; a failed start keeps the old life serving.
func (in *instance) recycle(ctx context.Context, st *lifeState) {
	rs, old := in.rs, st.l
	served := old.requests.Load()
	err := in.next(ctx, st, "recycle")
	<-rs.recycling
	st.recyclePending = false
	if err != nil {
		old.log.WithError(err).Warnf("Instance #%d: recycling failed, it keeps its life %d", in.num, old.info.Life)
		return
	}
	rs.entry.WithFields(logrus.Fields{"instance": in.num, "life": old.info.Life}).Infof("Instance #%d recycled after %s requests.", in.num, thousands(served))
	rs.emit(Event{Kind: EventRecycled, Instance: in.num, Life: old.info.Life, Count: int(served)})
}

// checkHung replaces the serving life when one of its requests has made no
// progress for --hang-timeout (Go cannot stop the hung goroutines).
func (in *instance) checkHung(ctx context.Context, st *lifeState) {
	rs, l := in.rs, st.l
	age, ok := l.stalledRequest(rs.clock.Now())
	if !ok || age < rs.cfg.HangTimeout {
		return
	}
	stack := l.goroutines()
	l.log.WithField("stack", stack).Errorf("Instance #%d is hung: a request has made no progress (no byte of its body read, none of its answer written) for %v (--hang-timeout %v). Replacing it; Go cannot stop the hung goroutines.", in.num, age.Round(time.Millisecond), rs.cfg.HangTimeout)
	rs.emit(Event{Kind: EventHung, Instance: in.num, Life: l.info.Life, Delay: age, Stack: stack})
	if err := in.next(ctx, st, "hung"); err != nil {
		l.log.WithError(err).Errorf("Instance #%d: replacing the hung life failed", in.num)
	}
}

// startLife starts life number n of the instance (life.go builds and
// configures it) and makes it the instance's current life. A life that
// fails to start is counted as a crash, ended and released; the error
// says why.
func (in *instance) startLife(ctx context.Context, n int) (*life, error) {
	rs := in.rs
	if in.cur.Load() == nil {
		in.state.Store(InstanceStarting)
	}
	l := newLife(rs, in.num, n, &in.instanceCounts)
	if err := l.start(ctx); err != nil {
		in.noteCrash(l)
		l.emitEnded()
		l.release(rs.clock.Now().Add(rs.cfg.DrainTimeout))
		return nil, err
	}
	in.cur.Store(l)
	in.life.Store(int64(n))
	in.started.Store(l.started.UnixNano())
	in.state.Store(InstanceServing)
	rs.track(l, "serving")
	l.log.Infof("Instance #%d listening at %s://%s", in.num, rs.scheme, rs.addr)
	rs.emit(Event{Kind: EventStarted, Instance: in.num, Life: n})
	return l, nil
}

// surge is the one replace transition: start life n, and once it serves,
// take old out of service and drain it in the background. When life n cannot
// start, old keeps serving and the error says why.
func (in *instance) surge(ctx context.Context, old *life, n int, why string) (*life, error) {
	nl, err := in.startLife(ctx, n)
	if err != nil {
		in.state.Store(InstanceServing)
		in.cur.Store(old)
		in.life.Store(int64(old.info.Life))
		in.started.Store(old.started.UnixNano())
		return nil, err
	}
	in.restarts.Add(1)
	in.retire(old, why)
	return nl, nil
}

// crashed handles the end of the serving life l (a crash, Crash, an app.Go
// error): respawn at once (the life started well), after a backoff (it did
// not), or give up. It returns the new serving life, or gone=true when the
// instance ends (with err: --no-respawn crash, gave up).
func (in *instance) crashed(ctx context.Context, tracker *restartTracker, l *life, last int) (_ *life, _ int, gone bool, err error) {
	rs := in.rs
	n := l.info.Life
	in.state.Store(InstanceDraining)
	in.noteCrash(l)
	l.emitEnded()
	what, log := "exited", rs.entry.WithFields(logrus.Fields{"instance": in.num, "life": n})
	if reason := l.endErr; reason != nil {
		what = "crashed: " + reason.Error()
		if s := stackOf(reason); s != "" {
			log = log.WithField("stack", s)
		}
	}
	if !rs.cfg.Respawn {
		return nil, n, true, in.notRespawned(l, what, log)
	}
	// The rule that applies: a life that started well is respawned at once
	// and not counted; a failed start backs off and counts.
	served := l.requests.Load()
	var delay time.Duration
	if served > 0 || rs.clock.Now().Sub(l.started) >= rs.policy.StableAfter {
		tracker.startedWell()
		log.Warnf("Instance #%d %s. Respawning at once: life %d served %s.", in.num, what, n, requestsServed(served))
	} else {
		var ok bool
		if delay, ok = tracker.failed(rs.clock.Now()); !ok {
			return nil, n, true, in.giveUp(l, n, what, l.endErr)
		}
		log.Warnf("Instance #%d %s. Respawning %s: life %d failed to start.", in.num, what, inDelay(delay), n)
	}
	return in.respawn(ctx, tracker, l, delay, last)
}

// notRespawned ends an instance whose life ended under --no-respawn: a
// crash is an error (the instance is gone for good: an operator alerts on
// it), a clean end is not.
func (in *instance) notRespawned(l *life, what string, log *logrus.Entry) error {
	reason := l.endErr
	if reason != nil {
		log.Errorf("Instance #%d %s. Not respawned (--no-respawn).", in.num, what)
	} else {
		log.Infof("Instance #%d %s.", in.num, what)
	}
	in.retire(l, "ended")
	if reason != nil {
		return fmt.Errorf("%w: instance #%d: %w", ErrCrashed, in.num, reason)
	}
	return nil
}

// respawn starts the lives after crashed life prev, after delay (then
// doubled by the tracker at each failed start), until one serves, the
// restart intensity is exceeded (gave up) or the runner stops. last is the
// last life number used.
func (in *instance) respawn(ctx context.Context, tracker *restartTracker, prev *life, delay time.Duration, last int) (_ *life, n int, gone bool, err error) {
	rs := in.rs
	// respawning announces the respawn of life n after delay. A backoff's
	// state is stored before its event: STATUS= and the admin listener
	// refresh on events, and no event follows until the backoff ends.
	respawning := func(n int, err error) {
		if delay > 0 {
			in.retire(prev, "crashed")
			prev = nil
			in.state.Store(InstanceBackoff)
		}
		rs.emit(Event{Kind: EventRespawning, Instance: in.num, Life: n, Err: err, Delay: delay})
	}
	respawning(prev.info.Life, prev.endErr)
	n = last
	for {
		if delay > 0 && !in.backoff(ctx, delay) {
			return nil, n, true, nil
		}
		if ctxDone(ctx) {
			in.retire(prev, "the runner stops") // nil once retired
			return nil, n, true, nil
		}
		n++
		in.restarts.Add(1)
		nl, err := in.startLife(ctx, n)
		// Surge-first: the replacement serves (or failed); now drain the
		// crashed life in the background.
		in.retire(prev, "crashed")
		prev = nil
		if err == nil {
			return nl, n, false, nil
		}
		if ctxDone(ctx) {
			return nil, n, true, nil
		}
		var ok bool
		if delay, ok = tracker.failed(rs.clock.Now()); !ok {
			return nil, n, true, in.giveUp(nil, n, "failed to start: "+err.Error(), err)
		}
		rs.entry.WithFields(logrus.Fields{"instance": in.num, "life": n}).Warnf("Instance #%d: %v. Respawning %s: life %d failed to start.", in.num, err, inDelay(delay), n)
		respawning(n, err)
	}
}

// backoff waits d on the runner's clock; a replace command meanwhile is
// answered at once (the respawn configures afresh anyway). It reports false
// when the instance must end instead (stop, removal).
func (in *instance) backoff(ctx context.Context, d time.Duration) bool {
	fired := make(chan struct{})
	t := in.rs.clock.AfterFunc(d, func() { close(fired) })
	defer t.Stop()
	for {
		select {
		case <-fired:
			return true
		case <-ctx.Done():
			return false
		case <-in.remove:
			return false
		case cmd := <-in.replaceCh:
			cmd.reply <- nil
		}
	}
}

func (in *instance) giveUp(l *life, n int, what string, reason error) error {
	rs := in.rs
	rs.entry.WithFields(logrus.Fields{"instance": in.num, "life": n}).Errorf("Instance #%d %s. It failed to start %d times within %v: giving up", in.num, what, rs.policy.MaxRestarts, rs.policy.Window)
	rs.emit(Event{Kind: EventGaveUp, Instance: in.num, Life: n, Err: reason})
	if l != nil {
		in.retire(l, "gave up")
	}
	return fmt.Errorf("%w: instance #%d failed to start %d times within %v, then %s", ErrGaveUp, in.num, rs.policy.MaxRestarts, rs.policy.Window, what)
}

// retire takes l out of service (ended, if not yet) and drains and releases
// it in the background; the runner waits for it before Run returns.
func (in *instance) retire(l *life, why string) {
	if l == nil {
		return
	}
	if in.cur.Load() == l {
		in.state.Store(InstanceDraining)
	}
	l.end()
	if l.crashCause != CauseNone && !l.crashNoted.Load() {
		// It crashed as it was being retired (a /crash that tipped a
		// recycle): the crash counts, though the replacement was started
		// for another reason.
		l.log.WithError(l.endErr).Warnf("Instance #%d life %d crashed as it was retired (%s): %v", in.num, l.info.Life, why, l.endErr)
		in.noteCrash(l)
	}
	l.emitEnded()
	l.log.Debugf("Instance #%d life %d retired: %s", in.num, l.info.Life, why)
	in.rs.bg.Go(l.drain)
}

// noteCrash counts the crash that ended l, once, whichever path took l out
// of service (the crash path, a failed start, or a recycle, replacement,
// removal or stop that retired it as it crashed): in Stats (Crashes,
// LastCrash) and, for a life that had started, in the crash-loop watch
// (failed starts back off instead). The EventEnded that follows carries the
// same cause, so that goangel_crashes_total agrees with Stats.
func (in *instance) noteCrash(l *life) {
	if l.crashCause == CauseNone || !l.crashNoted.CompareAndSwap(false, true) {
		return
	}
	rs := in.rs
	now := rs.clock.Now()
	in.crashes.Add(1)
	in.lastCrash.Store(&crashInfo{err: l.endErr, at: now})
	if l.crashCause == CauseConfigure {
		return
	}
	if c := rs.crashes.crash(now, int(rs.wanted.Load())); c > 0 {
		rs.entry.Warnf("Crash loop: %d crashes within %v across %d instance(s) (%.1f/s). Lives that started well are still respawned at once.", c, crashLoopWindow, rs.wanted.Load(), float64(c)/crashLoopWindow.Seconds())
		rs.emit(Event{Kind: EventCrashLoop, Instance: -1, Count: c, Delay: crashLoopWindow})
	}
}

func inDelay(d time.Duration) string {
	if d <= 0 {
		return "at once"
	}
	return "in " + logging.Round(d).String()
}

// requestsServed says "1 request" or "10,012 requests".
func requestsServed(n uint64) string {
	if n == 1 {
		return "1 request"
	}
	return thousands(n) + " requests"
}

// thousands prints n with commas: 10,012.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// recycleAt is the request count after which a new life is recycled (0: never).
func recycleAt(c *Config) uint64 {
	if c.MaxRequests <= 0 {
		return 0
	}
	n := uint64(c.MaxRequests)
	if c.MaxRequestsJitter > 0 {
		n += uint64(rand.IntN(c.MaxRequestsJitter + 1))
	}
	return n
}
