package production

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/cloudflare/tableflip"
)

// Binary upgrades go through cloudflare/tableflip: it starts the new
// executable (os.Args[0] with the same arguments and environment) with the
// listening sockets inherited, waits until it reports ready (or exits, or
// --upgrade-timeout passes, when it is killed), and only then lets the old
// process go. The old process then stops like on SIGTERM: every instance
// drains, and Run returns nil.
//
// tableflip allows one Upgrader per process; the runner makes it on the first
// Upgrade (or at start, in a process started by an upgrade), so only one
// Runner per process can upgrade: the one a program runs through Main.

// upgradeChildEnv is the variable tableflip sets in the new process.
const upgradeChildEnv = "TABLEFLIP_HAS_PARENT_7DIU3"

// ErrUpgrade: a binary upgrade failed; the old process keeps serving.
var ErrUpgrade = errors.New("production: binary upgrade failed")

func listenerName(i int) string { return "goangel-listener-" + strconv.Itoa(i) }

// adminListenerName names the admin listener's socket among those passed.
const adminListenerName = "goangel-admin-listener"

// Upgrade replaces the running executable without dropping a request: it
// starts the executable at os.Args[0] again (the new binary, once it has
// been installed over the old one) with the same arguments and environment
// and the listening socket(s) inherited, waits until the new process reports
// ready (every instance of it serves), then makes Run return nil after every
// instance drained, as a stop does. A new process that fails to start, exits,
// or is not ready within --upgrade-timeout is killed, and this one keeps
// serving; the error wraps ErrUpgrade. Under systemd the new process becomes
// the service's main process (MAINPID=; the unit needs NotifyAccess=all).
//
// One upgrade runs at a time; ctx bounds only the wait (the upgrade itself
// is bounded by --upgrade-timeout and goes on if ctx ends first).
func (r *Runner) Upgrade(ctx context.Context) error {
	d := r.sys.Load()
	if d == nil {
		return fmt.Errorf("%w: the runner is not running", ErrUpgrade)
	}
	select {
	case <-r.ready:
	default:
		return fmt.Errorf("%w: the runner is not ready yet (an upgrade starts once every instance serves)", ErrUpgrade)
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
	upg := d.upg.Load()
	if upg == nil {
		var err error
		upg, err = tableflip.New(tableflip.Options{UpgradeTimeout: d.rs.cfg.UpgradeTimeout})
		if err != nil {
			d.log.WithError(err).Error("Binary upgrade failed: cannot set it up; still serving")
			return reported(fmt.Errorf("%w: %w", ErrUpgrade, err)) // signals.go: logged once, here
		}
		if err := upg.Ready(); err != nil { // this process serves: no parent to tell
			upg.Stop()
			return fmt.Errorf("%w: %w", ErrUpgrade, err)
		}
		d.upg.Store(upg)
	}
	for _, ln := range d.listeners[d.passed:] {
		f, err := ln.ln.File()
		if err != nil {
			return fmt.Errorf("%w: listening socket %s: %w", ErrUpgrade, ln.name, err)
		}
		err = upg.Fds.AddFile(ln.name, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%w: listening socket %s: %w", ErrUpgrade, ln.name, err)
		}
		d.passed++
	}
	d.log.Infof("Binary upgrade: starting %s (pid %d hands over %d listening socket(s); --upgrade-timeout %v)", os.Args[0], os.Getpid(), len(d.listeners), d.rs.cfg.UpgradeTimeout)
	err := upg.Upgrade()
	for i := 0; err != nil && err.Error() == "process is not ready yet" && i < 1000; i++ {
		// tableflip's loop has not yet seen the Ready of an Upgrader made
		// just above (its select may take the upgrade request first).
		time.Sleep(time.Millisecond)
		err = upg.Upgrade()
	}
	if err != nil {
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

// inherit takes the listening sockets the old process passed.
func (d *deploy) inherit() ([]net.Listener, error) {
	upg, err := tableflip.New(tableflip.Options{UpgradeTimeout: d.rs.cfg.UpgradeTimeout})
	if err != nil {
		return nil, fmt.Errorf("binary upgrade: cannot take over from the old process: %w", err)
	}
	d.upg.Store(upg)
	var lns []net.Listener
	for i := 0; ; i++ {
		ln, err := d.inheritOne(listenerName(i))
		if err != nil {
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
// when it passed none by that name.
func (d *deploy) inheritOne(name string) (net.Listener, error) {
	f, err := d.upg.Load().Fds.File(name)
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
