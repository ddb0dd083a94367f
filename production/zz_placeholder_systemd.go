package production

// THROW-AWAY PLACEHOLDERS for the sup branch's contract, so that the systemd
// branch compiles and its tests run before sup lands. The lead deletes this
// file at merge; the real definitions come from sup.

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

const (
	EventReloadStarted EventKind = 200 + iota
	EventReloadFinished
	EventReloadAborted
)

// onEvent chains f after the hook of WithEventHook (placeholder).
func (r *Runner) onEvent(f func(Event)) {
	prev := r.hook
	r.hook = func(ev Event) {
		if prev != nil {
			prev(ev)
		}
		f(ev)
	}
}

var placeholderReloadHooks = map[*Runner][]func() error{}

// onReloadHook registers f to run on Reload (placeholder: not safe for
// concurrent Runners registering at once; enough for the branch's tests).
func (r *Runner) onReloadHook(f func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	placeholderReloadHooks[r] = append(placeholderReloadHooks[r], f)
}

// Reload (placeholder): emits EventReloadStarted, runs the reload hooks,
// emits EventReloadFinished. It replaces no instance.
func (r *Runner) Reload(ctx context.Context) error {
	r.mu.Lock()
	hooks := placeholderReloadHooks[r]
	r.mu.Unlock()
	emit := func(k EventKind) {
		if r.hook != nil {
			r.hook(Event{Kind: k, Instance: -1})
		}
	}
	emit(EventReloadStarted)
	var errs []error
	for _, h := range hooks {
		errs = append(errs, h())
	}
	emit(EventReloadFinished)
	return errors.Join(errs...)
}

// placeholderSignals calls Upgrade on SIGUSR2 and Reload on SIGHUP, as the
// sup branch's signals.go will; the returned func stops it.
func (r *Runner) placeholderSignals() func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case s := <-ch:
				if s == syscall.SIGUSR2 {
					_ = r.Upgrade(context.Background())
				} else {
					_ = r.Reload(context.Background())
				}
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
