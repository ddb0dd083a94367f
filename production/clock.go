package production

import (
	"context"
	"time"
)

// Clock is the runner's source of time: the restart policy (backoff and
// intensity window), App.AfterFunc timers and the window in which a second
// stop signal is a copy of the first use it. Tests replace it with
// [WithClock] to drive time by hand; the default is the system clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, unless the
	// returned Timer is stopped first (like time.AfterFunc).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call scheduled by Clock.AfterFunc. *time.Timer is one.
type Timer interface {
	// Stop prevents the call; it reports false if the call already ran or started.
	Stop() bool
}

// SystemClock returns the Clock backed by package time.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// ctxDone reports whether ctx is done, without blocking.
func ctxDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}
