//go:build !goangel_sup

package production

// THROW-AWAY PLACEHOLDERS of the sup branch's contract, so that the admin
// branch compiles before sup lands. The lead deletes this file at merge; the
// admin code then runs on sup's real verbs, events and onEvent.

import (
	"context"
	"errors"
)

// Events the sup branch adds (values far from the real ones).
const (
	EventReloadStarted EventKind = 200 + iota
	EventReloadFinished
	EventReloadAborted
	EventScaled
	EventRecycled
	EventHung
	EventAbandoned
	EventCrashLoop
)

// errPlaceholder: the verb is not there until the sup branch lands. Tests of
// the admin branch that need a verb skip when they see this message.
var errPlaceholder = errors.New("placeholder: this verb comes with the sup branch")

func (r *Runner) Reload(ctx context.Context) error                { return errPlaceholder }
func (r *Runner) Scale(ctx context.Context, n int) error          { return errPlaceholder }
func (r *Runner) Restart(ctx context.Context, instance int) error { return errPlaceholder }
func (r *Runner) Drain(ctx context.Context, instance int) error   { return errPlaceholder }

// onEvent chains f after the single hook of today's WithEventHook. Called
// before Run starts the instances.
func (r *Runner) onEvent(f func(Event)) {
	prev := r.hook
	r.hook = func(ev Event) {
		if prev != nil {
			prev(ev)
		}
		f(ev)
	}
}

// The accessors of admin_contract.go (built with -tags goangel_sup, that
// is, once the sup branch has landed): here, what today's types give.
func eventCount(Event) int                      { return 0 }
func statsWanted(s Stats) int                   { return len(s.Instances) }
func statsReloading(Stats) bool                 { return false }
func instanceState(InstanceStats) string        { return "" }
func instanceLoad(InstanceStats) (int64, int64) { return 0, 0 }
