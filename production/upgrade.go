package production

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/cloudflare/tableflip"
)

// Binary upgrades go through cloudflare/tableflip, through its public API
// and in its documented pattern: the Upgrader is made when the process
// starts (here: when its Run starts), HasParent says whether an upgrade
// started the process, the listening sockets pass as named files
// (Fds.AddFile, Fds.File), Ready tells the old process that this one
// serves, Upgrade starts the new one and Stop ends the Upgrader.
//
// Upgrade starts the new executable (os.Args[0] with the same arguments and
// environment) with the listening sockets inherited, waits until it reports
// ready (or exits, or --upgrade-timeout passes, when it is killed), and only
// then lets the old process go. The old process then stops like on SIGTERM:
// every instance drains, and Run returns nil.
//
// tableflip.New succeeds once per process (a second call fails, even after
// Stop): the first Run of the process takes the Upgrader, at its start, and
// stops it when it returns. So only one Runner per process can upgrade: the
// one a program runs through Main; another Run of the same process serves
// as usual and its Upgrade says why it cannot.

// ErrUpgrade: a binary upgrade failed; the old process keeps serving.
var ErrUpgrade = errors.New("production: binary upgrade failed")

// upgraderTaken is set once a Run of this process has called tableflip.New
// (kept here, not learnt from New's error, whose text is tableflip's own).
var upgraderTaken atomic.Bool

// errUpgraderTaken is the reason a Run that is not the first of its process
// cannot upgrade.
var errUpgraderTaken = errors.New("another Run of this process took the upgrader (tableflip allows one per process: the first Run takes it, normally the one Main runs)")

func listenerName(i int) string { return "goangel-listener-" + strconv.Itoa(i) }

// adminListenerName names the admin listener's socket among those passed.
const adminListenerName = "goangel-admin-listener"

// openUpgrader makes the process's Upgrader, if this is the first Run of
// the process; else d.upgErr says why this Run cannot upgrade. In a process
// started by an upgrade (HasParent), the sockets of the old process are
// then in the Upgrader, and Ready is sent once every instance serves (see
// loop). In any other process there is no parent to tell, and Ready is
// called at once: tableflip refuses an Upgrade until its own loop has seen
// Ready, and its public API has no way to wait for that; called here,
// Ready precedes by the whole start-up the first Upgrade this package lets
// through (that one waits for Runner.Ready).
func (d *deploy) openUpgrader() {
	defer func() {
		if d.upg == nil || !d.upg.HasParent() {
			close(d.parentGone) // no old process to wait for
		}
	}()
	if !upgraderTaken.CompareAndSwap(false, true) {
		d.upgErr = errUpgraderTaken
		return
	}
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: d.rs.cfg.UpgradeTimeout})
	if err != nil {
		d.upgErr = fmt.Errorf("cannot set up binary upgrades: %w", err)
		d.log.WithError(err).Warn("Binary upgrades are not available in this process: cannot set up the upgrader; serving without")
		return
	}
	d.upg, d.child = upg, upg.HasParent()
	if d.child {
		d.parent = os.Getppid() // alive: it waits for this one's Ready
		return
	}
	if err := upg.Ready(); err != nil { // no parent: nothing to send, no file written
		d.upgErr = fmt.Errorf("cannot set up binary upgrades: %w", err)
		upg.Stop()
		d.upg = nil
	}
}

// tellParent, in a process started by an upgrade, tells the old process
// that this one serves: the old one then drains and exits.
func (d *deploy) tellParent() {
	if err := d.upg.Ready(); err != nil {
		d.log.WithError(err).Error("Binary upgrade: telling the old process that this one is ready failed; it will kill this one when its upgrade timeout passes")
	}
}

// awaitParent, in a process started by an upgrade, closes d.parentGone
// once the old process has exited (tableflip refuses an Upgrade before
// that); it returns then, or when ctx ends.
func (d *deploy) awaitParent(ctx context.Context) {
	err := d.upg.WaitForParent(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		d.log.WithError(err).Warnf("Binary upgrade: the old process (pid %d) ended abnormally: %v; this one serves on", d.parent, err)
	} else {
		d.log.Infof("Binary upgrade: the old process (pid %d) has exited; this one (pid %d) can be upgraded in turn", d.parent, os.Getpid())
	}
	close(d.parentGone)
}

// Upgrade replaces the running executable without dropping a request: it
// starts the executable at os.Args[0] again (the new binary, once it has
// been installed over the old one) with the same arguments and environment
// and the listening socket(s) inherited, waits until the new process reports
// ready (every instance of it serves), then makes Run return nil after every
// instance drained, as a stop does. A new process that fails to start, exits,
// or is not ready within --upgrade-timeout is killed, and this one keeps
// serving; the error wraps ErrUpgrade. Under systemd the new process becomes
// the service's main process (MAINPID=; the unit needs NotifyAccess=all).
// A process started by an upgrade can upgrade once the old one has exited
// (it logs when). Only the first Run of a process can upgrade: tableflip
// allows one upgrader per process.
//
// One upgrade runs at a time; ctx bounds only the wait (the upgrade itself
// is bounded by --upgrade-timeout and goes on if ctx ends first).
func (r *Runner) Upgrade(ctx context.Context) error {
	d := r.sys.Load()
	if d == nil {
		return fmt.Errorf("%w: the runner is not running", ErrUpgrade)
	}
	if d.upg == nil {
		return fmt.Errorf("%w: %w", ErrUpgrade, d.upgErr)
	}
	select {
	case <-r.ready:
	default:
		return fmt.Errorf("%w: the runner is not ready yet (an upgrade starts once every instance serves)", ErrUpgrade)
	}
	select {
	case <-d.parentGone:
	default:
		// tableflip's loop learns of the exit from the same pipe that
		// WaitForParent reads, on its own goroutine: an Upgrade in the
		// moment between the two is refused by tableflip alike, and
		// changes nothing either.
		return fmt.Errorf("%w: the old process (pid %d) this one took over from has not exited yet; upgrade again once it has drained", ErrUpgrade, d.parent)
	}
	if !d.upMu.TryLock() {
		return fmt.Errorf("%w: an upgrade is already running", ErrUpgrade)
	}
	result := make(chan error, 1)
	d.upgrades.Go(func() { // owned by d: its stop waits for it
		defer d.upMu.Unlock()
		result <- d.upgrade()
	})
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w (the upgrade goes on)", ErrUpgrade, context.Cause(ctx))
	}
}

// upgrade runs one upgrade; d.upMu is held.
func (d *deploy) upgrade() error {
	if d.upgraded.Load() {
		return fmt.Errorf("%w: already upgraded; this process is draining", ErrUpgrade)
	}
	for len(d.pending) > 0 {
		ln := d.pending[0]
		f, err := ln.ln.File()
		if err != nil {
			return fmt.Errorf("%w: listening socket %s: %w", ErrUpgrade, ln.name, err)
		}
		err = d.upg.Fds.AddFile(ln.name, f) // a dup: the upgrader holds it from now on
		f.Close()
		if err != nil {
			return fmt.Errorf("%w: listening socket %s: %w", ErrUpgrade, ln.name, err)
		}
		d.pending = d.pending[1:]
	}
	d.log.Infof("Binary upgrade: starting %s (pid %d hands over %d listening socket(s); --upgrade-timeout %v)", os.Args[0], os.Getpid(), d.sockets, d.rs.cfg.UpgradeTimeout)
	if err := d.upg.Upgrade(); err != nil {
		d.log.WithError(err).Errorf("Binary upgrade failed: the new process did not become ready (%v); it was killed if it still ran, and this process (pid %d) keeps serving", err, os.Getpid())
		return reported(fmt.Errorf("%w: %w", ErrUpgrade, err)) // signals.go: logged once, here
	}
	d.upgraded.Store(true)
	d.log.Infof("Binary upgrade: the new process is ready and serves; this process (pid %d) drains and exits", os.Getpid())
	// Stop accepting while every life still serves, so that the last
	// connection accepted still finds a live view to serve it: the stop
	// that follows closes the views while the acceptor stops, and a
	// connection the acceptor holds when no view is left is closed (reset).
	d.rs.acc.close()
	d.cancel()
	return nil
}

// keep records a listening socket of this Run for the next binary upgrade
// to pass on as name. inherited: it came from the old process, and the
// upgrader holds it already (under that name).
func (d *deploy) keep(name string, ln net.Listener, inherited bool) {
	if d == nil || d.upg == nil {
		return
	}
	f, ok := ln.(fileListener)
	if !ok {
		return
	}
	d.upMu.Lock()
	defer d.upMu.Unlock()
	d.sockets++
	if !inherited {
		d.pending = append(d.pending, passedListener{name, f})
	}
}

// inherit takes the listening sockets the old process passed.
func (d *deploy) inherit() ([]net.Listener, error) {
	var lns []net.Listener
	for i := 0; ; i++ {
		ln, err := d.inheritOne(listenerName(i))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		if ln == nil {
			break
		}
		d.log.Infof("Binary upgrade: pid %d serves on the socket inherited from the old process (%s %s)", os.Getpid(), ln.Addr().Network(), ln.Addr())
		lns = append(lns, ln)
	}
	if len(lns) == 0 {
		return nil, fmt.Errorf("binary upgrade: the old process passed no listening socket")
	}
	return lns, nil
}

// inheritOne takes the listening socket the old process passed as name; nil
// when it passed none by that name (tableflip closes those not taken when
// this process is ready).
func (d *deploy) inheritOne(name string) (net.Listener, error) {
	f, err := d.upg.Fds.File(name)
	if err != nil || f == nil {
		if err != nil {
			err = fmt.Errorf("binary upgrade: inherited socket %s: %w", name, err)
		}
		return nil, err
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("binary upgrade: inherited socket %s: %w", name, err)
	}
	return ln, nil
}
