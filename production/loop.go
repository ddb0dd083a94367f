package production

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// The runner's loop: the verbs (Reload, Scale, Restart, Drain), the set of
// instances, and Run's phases that drive them (start, serve, stop). Each
// instance supervises its own lives (supervisor.go).

// Runner verbs, served by the runner's loop.

type verbKind int

const (
	verbReload verbKind = iota
	verbScale
	verbScaleBy
	verbRestart
	verbDrain
)

type verb struct {
	kind  verbKind
	n     int
	reply chan error
}

// Reload replaces every instance's life, one instance at a time, each by a new
// life with a fresh configure (surge-first: the new life serves before the
// old one drains, so capacity never drops below the instance count). A new
// life that fails configure aborts the reload: that instance keeps its old
// life, the later ones are not reloaded, and Reload returns the error. A
// Reload called while one runs is coalesced into one more reload after it.
// SIGHUP calls Reload.
func (r *Runner) Reload(ctx context.Context) error { return r.do(ctx, verb{kind: verbReload}) }

// Scale sets the number of instances to n (1 to --max-instances). New
// instances serve before Scale returns; removed ones (the highest numbers)
// leave the round-robin at once and drain (shown in Stats as "draining");
// Scale returns once they have drained, or when ctx ends. A stop of the
// runner meanwhile is not delayed: the instances still starting are ended
// and Scale returns ErrNotRunning or the cause of ctx. SIGTTIN and SIGTTOU
// scale by one.
func (r *Runner) Scale(ctx context.Context, n int) error {
	if n < 1 {
		return fmt.Errorf("%w: Scale(%d)", ErrLastInstance, n)
	}
	return r.do(ctx, verb{kind: verbScale, n: n})
}

// Restart replaces the life of instance number instance (surge-first), as a
// reload of that one instance.
func (r *Runner) Restart(ctx context.Context, instance int) error {
	return r.do(ctx, verb{kind: verbRestart, n: instance})
}

// Drain takes instance number instance out of the round-robin, drains it and
// removes it: a scale-down that picks the instance. It returns once the
// instance has drained (or when ctx ends). The last instance cannot be
// drained.
func (r *Runner) Drain(ctx context.Context, instance int) error {
	return r.do(ctx, verb{kind: verbDrain, n: instance})
}

func (r *Runner) do(ctx context.Context, v verb) error {
	if ctx == nil {
		panic("production: a verb called with a nil Context")
	}
	select {
	case <-r.ready:
	default:
		return ErrNotRunning
	}
	v.reply = make(chan error, 1)
	select {
	case r.verbs <- v:
	case <-r.finished:
		return ErrNotRunning
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case err := <-v.reply:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// runLoop is the runner's own state: the set of instances.
type runLoop struct {
	rs      *runState
	ctx     context.Context // ends every instance's supervisor
	results chan instResult
	running int // supervisors that have not returned
	insts   []*instance
	leaving []*instance // removed (Drain, Scale down), still draining
	ended   []*instance // ended by themselves (--no-respawn, gave up): Stats keeps their counts
	lives   map[int]int // the last life number used per instance number

	reloading   bool
	reloadNext  []chan error // Reload calls coalesced into the next reload
	reloadDone  chan error
	reloadWaits []chan error
	side        sync.WaitGroup // goroutines the loop started (reloads, waits)
}

// add starts a supervisor for each new instance numbered in nums, all
// reporting their first life's start on started; one sort and one publish
// for the lot, so that Scale(n) costs O(n log n) on the loop, not more.
func (lp *runLoop) add(nums []int, started chan error) {
	if len(lp.ended) > 0 {
		fresh := make(map[int]bool, len(nums))
		for _, num := range nums {
			fresh[num] = true
		}
		lp.ended = slices.DeleteFunc(lp.ended, func(x *instance) bool { return fresh[x.num] })
	}
	for _, num := range nums {
		in := newInstance(lp.rs, num, lp.lives[num]+1)
		lp.insts = append(lp.insts, in)
		lp.running++
		go func() { lp.results <- in.supervise(lp.ctx, started) }()
	}
	slices.SortFunc(lp.insts, func(a, b *instance) int { return a.num - b.num })
	lp.publish()
}

// drop forgets in (ended, or its supervisor returned); its results still
// arrive.
func (lp *runLoop) drop(in *instance) {
	is := func(x *instance) bool { return x == in }
	lp.insts = slices.DeleteFunc(lp.insts, is)
	lp.leaving = slices.DeleteFunc(lp.leaving, is)
	lp.lives[in.num] = max(lp.lives[in.num], int(in.life.Load()))
	lp.publish()
}

// remove takes in out of the wanted set and asks it to drain; it stays
// visible to Stats (as draining) until its supervisor returns.
func (lp *runLoop) remove(in *instance) {
	lp.drop(in)
	lp.leaving = append(lp.leaving, in)
	lp.publish()
	in.doRemove()
}

// publish makes the set visible to Stats: the wanted instances, those
// still draining after their removal, and those that ended by themselves,
// by number.
func (lp *runLoop) publish() {
	all := append(append(slices.Clone(lp.insts), lp.leaving...), lp.ended...)
	slices.SortStableFunc(all, func(a, b *instance) int { return a.num - b.num })
	r := lp.rs.r
	r.mu.Lock()
	r.instances = all
	r.mu.Unlock()
}

func (lp *runLoop) find(num int) *instance {
	for _, in := range lp.insts {
		if in.num == num {
			return in
		}
	}
	return nil
}

// freeNumbers returns the k lowest instance numbers not in use (nor
// draining), in one pass over the instances.
func (lp *runLoop) freeNumbers(k int) []int {
	used := make(map[int]bool, len(lp.insts)+len(lp.leaving))
	for _, in := range lp.insts {
		used[in.num] = true
	}
	for _, in := range lp.leaving {
		used[in.num] = true
	}
	nums := make([]int, 0, k)
	for n := 0; len(nums) < k; n++ {
		if !used[n] {
			nums = append(nums, n)
		}
	}
	return nums
}

// handle serves one verb; long work runs on side goroutines that reply.
func (lp *runLoop) handle(v verb) {
	rs := lp.rs
	switch v.kind {
	case verbReload:
		if lp.reloading {
			lp.reloadNext = append(lp.reloadNext, v.reply)
			rs.entry.Infof("A reload is under way: one more runs after it (%d call(s) waiting for it).", len(lp.reloadNext))
			return
		}
		lp.startReload([]chan error{v.reply})
	case verbScaleBy:
		if v.n > 0 && len(lp.insts) >= rs.cfg.MaxInstances {
			v.reply <- fmt.Errorf("%w: %d instances run, the most --max-instances allows; raise --max-instances to run more", ErrTooManyInstances, len(lp.insts))
			return
		}
		if len(lp.insts)+v.n < 1 {
			v.reply <- fmt.Errorf("%w: only %d runs", ErrLastInstance, len(lp.insts))
			return
		}
		v.n = len(lp.insts) + v.n
		fallthrough
	case verbScale:
		if v.n > rs.cfg.MaxInstances {
			v.reply <- fmt.Errorf("%w: Scale(%d) asks for more than --max-instances %d; want at most %d, or raise --max-instances to run more", ErrTooManyInstances, v.n, rs.cfg.MaxInstances, rs.cfg.MaxInstances)
			return
		}
		lp.scale(v)
	case verbRestart:
		in := lp.find(v.n)
		if in == nil {
			v.reply <- fmt.Errorf("%w: #%d (running: %s)", ErrNoInstance, v.n, lp.numbers())
			return
		}
		lp.side.Go(func() { v.reply <- in.replace(lp.ctx, "restart") })
	case verbDrain:
		in := lp.find(v.n)
		switch {
		case in == nil:
			v.reply <- fmt.Errorf("%w: #%d (running: %s)", ErrNoInstance, v.n, lp.numbers())
			return
		case len(lp.insts) == 1:
			v.reply <- fmt.Errorf("%w: cannot drain instance #%d, the only one", ErrLastInstance, v.n)
			return
		}
		lp.remove(in)
		rs.wanted.Store(int64(len(lp.insts)))
		rs.entry.Infof("Draining instance #%d: %d instance(s) left.", v.n, len(lp.insts))
		rs.emit(Event{Kind: EventScaled, Instance: -1, Count: len(lp.insts)})
		lp.side.Go(func() { <-in.done; v.reply <- nil })
	}
}

func (lp *runLoop) numbers() string {
	s := ""
	for i, in := range lp.insts {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("#%d", in.num)
	}
	return s
}

func (lp *runLoop) scale(v verb) {
	rs := lp.rs
	have := len(lp.insts)
	switch {
	case v.n == have:
		v.reply <- nil
		return
	case v.n > have:
		rs.entry.Infof("Scaling up from %d to %d instances...", have, v.n)
		rs.wanted.Store(int64(v.n)) // before the new lives read it
		k := v.n - have
		started := make(chan error, k)
		lp.add(lp.freeNumbers(k), started)
		rs.emit(Event{Kind: EventScaled, Instance: -1, Count: v.n})
		lp.side.Go(func() {
			var errs []error
			for range k {
				if err := <-started; err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) > 0 && ctxDone(lp.ctx) {
				// The runner stopped during the scale: the lives still
				// starting were ended, not failed.
				v.reply <- ErrNotRunning
				return
			}
			v.reply <- errors.Join(errs...)
		})
	default:
		rs.entry.Infof("Scaling down from %d to %d instances...", have, v.n)
		rs.wanted.Store(int64(v.n))
		gone := slices.Clone(lp.insts[v.n:])
		lp.insts = lp.insts[:v.n]
		lp.leaving = append(lp.leaving, gone...)
		for _, in := range gone {
			lp.lives[in.num] = max(lp.lives[in.num], int(in.life.Load()))
			in.doRemove()
		}
		lp.publish()
		rs.emit(Event{Kind: EventScaled, Instance: -1, Count: v.n})
		lp.side.Go(func() {
			for _, in := range gone {
				<-in.done
			}
			v.reply <- nil
		})
	}
}

func (lp *runLoop) startReload(waits []chan error) {
	rs := lp.rs
	lp.reloading, lp.reloadWaits = true, waits
	rs.reloading.Store(true)
	insts := slices.Clone(lp.insts)
	rs.entry.Infof("Reloading %d instances...", len(insts))
	rs.emit(Event{Kind: EventReloadStarted, Instance: -1, Count: len(insts)})
	// The reload hooks (the TLS certificate, tls.go) come first: one that
	// fails aborts the reload before any instance is replaced, so that a
	// bad configuration changes nothing.
	var hookErrs []error
	for _, f := range rs.r.onReload {
		if err := f(); err != nil {
			hookErrs = append(hookErrs, err)
		}
	}
	lp.side.Go(func() {
		if err := errors.Join(hookErrs...); err != nil {
			lp.reloadDone <- fmt.Errorf("reload: %w", err)
			return
		}
		var err error
		for _, in := range insts {
			if e := in.replace(lp.ctx, "reload"); e != nil && !errors.Is(e, ErrNoInstance) {
				err = fmt.Errorf("reload: instance #%d: %w", in.num, e)
				break
			}
		}
		lp.reloadDone <- err
	})
}

func (lp *runLoop) reloaded(err error) {
	rs := lp.rs
	switch {
	case err != nil && ctxDone(lp.ctx):
		// The runner stops: not the reload's fault.
	case err != nil:
		if !isReported(err) { // a reload hook (the certificate) said why already
			rs.entry.WithError(err).Errorf("Reload aborted: %v. The instances not reloaded keep serving on their old lives.", err)
		}
		rs.emit(Event{Kind: EventReloadAborted, Instance: -1, Err: err})
		err = reported(err) // signals.go: SIGHUP does not log it again
	default:
		rs.entry.Infof("Reloaded %d instances.", len(lp.insts))
		rs.emit(Event{Kind: EventReloadFinished, Instance: -1, Count: len(lp.insts)})
	}
	// Stats says the reload is over before any caller of Reload hears it.
	rs.reloading.Store(false)
	for _, w := range lp.reloadWaits {
		w <- err
	}
	lp.reloading, lp.reloadWaits = false, nil
	if next := lp.reloadNext; len(next) > 0 && !ctxDone(lp.ctx) {
		lp.reloadNext = nil
		lp.startReload(next)
	}
}

// failPending answers the verbs still waiting when the loop ends.
func (lp *runLoop) failPending() {
	for _, w := range append(lp.reloadWaits, lp.reloadNext...) {
		w <- ErrNotRunning
	}
	lp.reloadWaits, lp.reloadNext = nil, nil
}

// startAll is phase 1: it starts every instance and waits until each has
// configured its first life. It returns the first failed start, or
// interrupted when a stop came first.
func (lp *runLoop) startAll(stopCtx context.Context) (failed error, interrupted bool) {
	rs := lp.rs
	started := make(chan error, rs.cfg.Concurrency)
	lp.add(lp.freeNumbers(rs.cfg.Concurrency), started)
	for n := 0; n < rs.cfg.Concurrency && failed == nil && !interrupted; {
		select {
		case err := <-started:
			n++
			switch {
			case err == nil:
			case ctxDone(stopCtx) && (errors.Is(err, ErrStopping) || errors.Is(err, context.Canceled)):
				// A configure that the stop itself ended (App.Context) is
				// the stop, not a failed start. Checked here too, not only
				// by the case below: select picks at random when both are
				// ready (after a watchdog beat, say).
				interrupted = true
			default:
				failed = err
			}
		case <-stopCtx.Done():
			interrupted = true
		case reply := <-rs.beat:
			answerBeat(reply)
		}
	}
	return failed, interrupted
}

// beginStop is phase 3: the acceptor first takes the connections already
// waiting in the kernel's accept queue (closing the socket would reset
// them): the lives, draining, answer them with "Connection: close", and
// keep their views open until it is done (drain.go). After a binary
// upgrade the new process accepts from the same socket and serves the
// queue: this one only lets go of its descriptor (its lives closed their
// views as they ended; a connection it took now would find no life to
// serve it). quiesced is closed when the acceptor is done.
func (lp *runLoop) beginStop(cancelSup context.CancelFunc) (quiesced <-chan struct{}) {
	rs := lp.rs
	if lp.running > 0 {
		rs.entry.Infof("Stopping `%s` application...", rs.r.name)
	}
	q := make(chan struct{})
	go func() {
		defer close(q)
		if rs.handedOver() {
			rs.acc.close()
			return
		}
		// Half the drain deadline at most: the last connection taken
		// still has the other half to be answered.
		rs.acc.closeAfterQueue(rs.clock.Now().Add(rs.cfg.DrainTimeout / 2))
	}()
	close(rs.stopping)
	cancelSup()
	lp.failPending()
	return q
}

// awaitStop is phase 4: it waits for every instance, every background
// teardown and the acceptor, within --shutdown-timeout, and returns the
// crashes of --no-respawn counted meanwhile. A second stop signal (abort)
// or the timeout end the wait with the error Run returns.
func (lp *runLoop) awaitStop(quiesced, abort <-chan struct{}, failed error, crashed []error) ([]error, error) {
	rs := lp.rs
	all := make(chan struct{})
	go func() {
		defer close(all)
		for ; lp.running > 0; lp.running-- {
			if res := <-lp.results; res.err != nil && failed == nil && errors.Is(res.err, ErrCrashed) {
				crashed = append(crashed, res.err)
			}
		}
		lp.side.Wait()
		rs.bg.Wait()
		<-quiesced
	}()
	limit := newTimer(rs.clock, rs.cfg.shutdownTimeout())
	defer limit.Stop()
	select {
	case <-all:
		return crashed, nil
	case <-abort:
		rs.entry.Errorf("Second stop signal: exiting now. Still running: %s", strings.Join(rs.stillRunning(), "; "))
		return nil, exitError(ExitInterrupted, ErrInterrupted)
	case <-limit.C:
		still := rs.stillRunning()
		return nil, exitError(ExitStopTimeout, fmt.Errorf("%w: still running after --shutdown-timeout %v: %s", ErrStopTimeout, rs.cfg.shutdownTimeout(), strings.Join(still, "; ")))
	}
}

// serve is phase 2 of Run: the runner's loop. It returns the crashes of
// --no-respawn and the error that ends the runner (gave up, too many
// abandoned).
func (lp *runLoop) serve(ctx context.Context) (crashed []error, failed error) {
	rs := lp.rs
	for lp.running > 0 {
		select {
		case <-ctx.Done():
			return crashed, nil
		case err := <-rs.fatal:
			return crashed, err
		case reply := <-rs.beat: // the watchdog's heartbeat (systemd.go)
			answerBeat(reply)
		case v := <-rs.r.verbs:
			lp.handle(v)
		case err := <-lp.reloadDone:
			lp.reloaded(err)
		case res := <-lp.results:
			lp.running--
			lp.drop(res.in)
			if !res.startFailed && !res.in.removed() {
				// Ended by itself (--no-respawn, gave up): Stats keeps
				// what it counted, also once Run has returned.
				lp.ended = append(lp.ended, res.in)
				lp.publish()
			}
			switch {
			case errors.Is(res.err, ErrGaveUp):
				return crashed, res.err
			case res.startFailed:
				// An instance added by Scale that could not start: Scale
				// reports it; the others serve on.
			case res.err != nil:
				crashed = append(crashed, res.err)
			}
			rs.wanted.Store(int64(len(lp.insts)))
		}
	}
	return crashed, nil
}
