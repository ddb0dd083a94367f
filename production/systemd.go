package production

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
)

// The systemd notify protocol (sd_notify(3)), spoken through go-systemd's
// daemon package. Everything here is a no-op when NOTIFY_SOCKET is not set
// (daemon.SdNotify then returns false, nil), i.e. outside systemd.
//
// What the service manager is told, and when:
//   - READY=1 (with STATUS=) once Runner.Ready is closed: the shared listener
//     is bound and every instance serves. A process started by a binary
//     upgrade says MAINPID=<its pid> first, so that systemd follows it (this
//     needs NotifyAccess=all in the unit).
//   - STATUS="N/M instances serving, K restarting", kept current from the
//     supervision events and Runner.Stats; "Reloading: …" while a reload
//     runs, and the current line again once it ended.
//   - RELOADING=1 and MONOTONIC_USEC= on EventReloadStarted, READY=1 on
//     EventReloadFinished or EventReloadAborted (Type=notify-reload).
//   - STOPPING=1 when the runner starts to stop (not after a binary upgrade:
//     the service goes on in the new process).
//   - WATCHDOG=1 every half WATCHDOG_USEC, only in the process WATCHDOG_PID
//     names (or the new main process after an upgrade), and only while the
//     supervisor loop is healthy. WATCHDOG_PID follows what systemd was told
//     last: a process that said MAINPID= sets it to its own pid, so that the
//     process its upgrade starts (whose parent it is) pings too, however long
//     the chain of upgrades.
//
// How health is judged: the watchdog sends a heartbeat (a channel) on
// runState.beat, which the runner's supervisor loop answers from its select
// (it does nothing else there). A loop that does not answer within half
// WATCHDOG_USEC is stuck: the ping is skipped (logged once), and systemd kills
// and restarts the service once WATCHDOG_USEC passes without one. Pings resume
// if the loop answers again.

// deploy is what a Run keeps for systemd and binary upgrades: the notifier,
// the watchdog, the listening sockets and the upgrader.
type deploy struct {
	rs     *runState
	log    *logrus.Entry
	notify func(state string) (bool, error)
	beat   chan chan struct{}
	cancel context.CancelFunc // ends Run: after a successful upgrade
	done   chan struct{}      // closed when loop has returned

	// child: this process was started by a binary upgrade (the
	// upgrader's HasParent), and takes the service over (MAINPID=) once
	// ready.
	child bool

	mu        sync.Mutex // orders the notifications; guards what follows
	ready     bool       // READY=1 was sent (and no reload is running)
	stopping  bool
	status    string // the last STATUS= sent
	notifyErr bool   // a failed notification was logged

	poke     chan struct{} // the status may have changed
	upgraded atomic.Bool   // a new process took over: say nothing more

	// The upgrader (upgrade.go), made when the Run starts; nil when this
	// Run cannot upgrade, and upgErr says why. Neither changes after.
	upg        *tableflip.Upgrader
	upgErr     error
	parent     int            // in a child: the old process's pid
	parentGone chan struct{}  // closed once no old process is left to wait for
	upgrades   sync.WaitGroup // Upgrade's goroutines: the stop waits for them

	upMu    sync.Mutex       // one upgrade at a time; guards what follows
	sockets int              // the listening sockets a new process inherits
	pending []passedListener // those of them the upgrader does not hold yet
}

// fileListener is a listening socket that can be passed to a new process.
type fileListener interface {
	File() (*os.File, error)
}

// passedListener is a listening socket a binary upgrade passes, and the name
// the new process finds it by.
type passedListener struct {
	name string
	ln   fileListener
}

// startDeploy sets up the notifier and the watchdog of one Run (see above)
// and returns the context Run must use from now on: it is canceled when a
// binary upgrade has handed the service over to a new process. stop must be
// called when Run returns.
func (rs *runState) startDeploy(ctx context.Context) (context.Context, func()) {
	d := &deploy{
		rs:     rs,
		log:    rs.entry,
		notify: func(s string) (bool, error) { return daemon.SdNotify(false, s) },
		beat:   make(chan chan struct{}),
		done:   make(chan struct{}),
		poke:   make(chan struct{}, 1),

		parentGone: make(chan struct{}),
	}
	d.openUpgrader() // upgrade.go: before the listeners, which a child inherits
	rs.beat = d.beat
	ctx, d.cancel = context.WithCancel(ctx)
	if os.Getenv("NOTIFY_SOCKET") != "" {
		// Outside systemd nothing listens to STATUS= or RELOADING=: no
		// hook, so no event wakes loop to recompute the status (every
		// respawn would pay for a Stats call otherwise).
		rs.r.onEvent(d.event)
	}
	rs.r.sys.Store(d)
	go d.loop(ctx)
	return ctx, func() {
		d.cancel()
		<-d.done
		if d.upg != nil {
			d.upg.Stop() // also ends an upgrade under way: its new process is killed
		}
		// An Upgrade whose caller gave up (its ctx ended) may still run:
		// Stop made it return, or refuse to start.
		d.upgrades.Wait()
		rs.r.sys.CompareAndSwap(d, nil)
	}
}

// send sends one notification; d.mu must be held. A failure is logged once:
// a broken NOTIFY_SOCKET must not flood the log.
func (d *deploy) send(state string) {
	if _, err := d.notify(state); err != nil && !d.notifyErr {
		d.notifyErr = true
		d.log.WithError(err).Warnf("systemd notification failed (NOTIFY_SOCKET=%s); further failures are not logged", os.Getenv("NOTIFY_SOCKET"))
	}
}

// event is the runner's in-package event hook: reloads are told at once, in
// order; anything else may change the status, which loop then recomputes
// (Stats is not called from the hook, which runs on supervisor goroutines).
func (d *deploy) event(ev Event) {
	switch ev.Kind {
	case EventReloadStarted:
		d.mu.Lock()
		if d.ready && !d.stopping && !d.upgraded.Load() {
			d.ready = false
			// Kept as the last status sent, so that loop sends the
			// current one once the reload ends (it sends only changes).
			d.status = "Reloading: replacing every instance, one at a time"
			d.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec() + "STATUS=" + d.status)
		}
		d.mu.Unlock()
	case EventReloadFinished, EventReloadAborted:
		d.mu.Lock()
		if !d.ready && !d.stopping && !d.upgraded.Load() && d.status != "" {
			d.ready = true
			d.send(daemon.SdNotifyReady)
		}
		d.mu.Unlock()
	}
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// statusLine says how many of the wanted instances serve, and how many are
// on their way back (starting, in a restart backoff) or draining.
func statusLine(s Stats) string {
	restarting, draining := 0, 0
	for _, in := range s.Instances {
		switch in.State {
		case InstanceStarting, InstanceBackoff:
			restarting++
		case InstanceDraining:
			draining++
		}
	}
	line := fmt.Sprintf("%d/%d instances serving, %d restarting", s.Serving, s.Wanted, restarting)
	if draining > 0 {
		line += fmt.Sprintf(", %d draining", draining)
	}
	return line
}

// loop sends READY=1 once every instance serves, keeps STATUS= current, runs
// the watchdog, and sends STOPPING=1 when ctx ends.
func (d *deploy) loop(ctx context.Context) {
	defer close(d.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Read now: in a process started by an upgrade, the parent (the
	// watched process) may be gone soon after this one is ready.
	every := d.watchdogInterval()
	watchdog := func() {
		if every > 0 {
			wg.Go(func() { d.watchdog(ctx, every/2, d.healthy) })
		}
	}
	if !d.child {
		// The watchdog runs from the start: a configure that hangs is
		// the start timeout's business, a stuck supervisor the watchdog's.
		watchdog()
	}
	select {
	case <-ctx.Done():
		d.stop()
		return
	case <-d.rs.r.ready:
	}
	if d.child {
		// Tell the parent (which then drains and exits) before telling
		// systemd which process is the service now.
		d.tellParent() // upgrade.go
		wg.Go(func() { d.awaitParent(ctx) })
		d.sendReady()
	} // else announceReady sent it
	if d.child {
		if os.Getenv("WATCHDOG_USEC") != "" {
			// systemd now watches this process (MAINPID=): say so to
			// the process the next upgrade starts, which inherits this
			// environment and checks WATCHDOG_PID against its parent.
			// The WATCHDOG_PID systemd set names the first process of an
			// upgrade chain, not this one's parent.
			os.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
		}
		watchdog()
	}
	for {
		select {
		case <-ctx.Done():
			d.stop()
			return
		case <-d.poke:
			d.refreshStatus()
		}
	}
}

// announceReady sends READY=1 in a first process (not one started by an
// upgrade: its loop tells the parent first) from the runner's goroutine, as
// every instance serves and before Run's ready channel is closed: a verb
// cannot run before that, so a reload's RELOADING=1 and a stop's STOPPING=1
// always come after READY=1. When loop sent it, a stop or a reload that came
// at once could go first: under load its goroutine ran late, and systemd
// was told STOPPING=1 without ever READY=1 (TestNotifySequence, 1 run in 6
// beside stress-ng).
func (rs *runState) announceReady() {
	if d := rs.r.sys.Load(); d != nil && !d.child {
		d.sendReady()
	}
}

// sendReady says READY=1 with the first STATUS= (and, in a process started
// by an upgrade, MAINPID=: systemd watches this process from now on).
func (d *deploy) sendReady() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status = statusLine(d.rs.r.Stats())
	msg := daemon.SdNotifyReady + "\nSTATUS=" + d.status
	if d.child {
		msg = "MAINPID=" + strconv.Itoa(os.Getpid()) + "\n" + msg
	}
	d.ready = true
	d.send(msg)
}

// refreshStatus sends STATUS= when what it says changed (not once the
// process stops or a new process took the service over).
func (d *deploy) refreshStatus() {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := statusLine(d.rs.r.Stats())
	if !d.ready { // a reload runs
		s = "Reloading: " + s
	}
	if s != d.status && !d.stopping && !d.upgraded.Load() {
		d.status = s
		d.send("STATUS=" + s)
	}
}

// stop says STOPPING=1, unless a new process took the service over.
func (d *deploy) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopping = true
	if !d.upgraded.Load() {
		d.send(daemon.SdNotifyStopping + "\nSTATUS=Stopping: draining every instance")
	}
}

// watchdogInterval is WATCHDOG_USEC when this process is the one systemd
// watches (WATCHDOG_PID), or, in a process started by a binary upgrade, when
// the parent was; 0 when there is no watchdog.
func (d *deploy) watchdogInterval() time.Duration {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.WithError(err).Error("systemd watchdog: cannot read WATCHDOG_USEC/WATCHDOG_PID; sending no watchdog pings")
		return 0
	}
	if every == 0 && d.child && os.Getenv("WATCHDOG_PID") == strconv.Itoa(os.Getppid()) {
		// The parent was the watched process; this one is about to
		// become the main PID.
		if usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 {
			every = time.Duration(usec) * time.Microsecond
		}
	}
	return every
}

// watchdog pings every interval while healthy says the supervisor loop is
// healthy; it returns when ctx ends.
func (d *deploy) watchdog(ctx context.Context, every time.Duration, healthy func(context.Context, time.Duration) bool) {
	t := time.NewTicker(every) // systemd's WatchdogSec runs on the real clock
	defer t.Stop()
	sick := false
	for {
		if healthy(ctx, every) {
			if ctx.Err() != nil || d.upgraded.Load() {
				return
			}
			if sick {
				sick = false
				d.log.Warn("systemd watchdog: the supervisor loop answers again; pinging the watchdog again")
			}
			d.mu.Lock()
			if !d.stopping {
				d.send(daemon.SdNotifyWatchdog)
			}
			d.mu.Unlock()
		} else if ctx.Err() == nil && !sick {
			sick = true
			d.log.Errorf("systemd watchdog: the supervisor loop did not answer within %v; no more watchdog pings, so that systemd restarts the service once WatchdogSec passes", every)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthy sends a heartbeat to the supervisor loop and reports whether the
// loop answered it within timeout.
func (d *deploy) healthy(ctx context.Context, timeout time.Duration) bool {
	t := time.NewTimer(timeout) // within systemd's WatchdogSec: the real clock
	defer t.Stop()
	reply := make(chan struct{})
	select {
	case d.beat <- reply:
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-reply:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// answerBeat is what the supervisor loop does with a heartbeat.
func answerBeat(reply chan struct{}) { close(reply) }

// handedOver reports whether a binary upgrade handed the service over to a
// new process: stopping lives then drain fully (clients move to the new
// process) instead of closing idle connections at once.
func (rs *runState) handedOver() bool {
	d := rs.r.sys.Load()
	return d != nil && d.upgraded.Load()
}
