package production

import (
	"fmt"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventStarted: a life configured and its server is serving.
	EventStarted EventKind = iota + 1
	// EventEnded: a life ended; Err is the crash reason (nil: a clean end).
	// Its teardown (drain, hooks) follows in the background.
	EventEnded
	// EventRespawning: the instance will be respawned after Delay.
	EventRespawning
	// EventGaveUp: the instance exceeded the restart intensity; the runner
	// shuts down.
	EventGaveUp
	// EventStopped: an ended life has drained and released everything.
	EventStopped
	// EventAcceptError: the shared listener's Accept failed (Err); the
	// acceptor retries after Delay.
	EventAcceptError
)

func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventEnded:
		return "ended"
	case EventRespawning:
		return "respawning"
	case EventGaveUp:
		return "gave up"
	case EventStopped:
		return "stopped"
	case EventAcceptError:
		return "accept error"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is what the hook of WithEventHook receives.
type Event struct {
	Kind     EventKind
	Instance int // -1 for EventAcceptError
	Life     int
	Err      error
	Delay    time.Duration
	Time     time.Time // wall-clock time of the event
}

// WithEventHook calls f for every supervision event (for metrics, tests,
// benchmarks). f is called synchronously from the runner's goroutines, maybe
// concurrently: it must be safe for concurrent use, fast, and not block.
func WithEventHook(f func(Event)) Option { return func(r *Runner) { r.hook = f } }

func (rs *runState) emit(ev Event) {
	if h := rs.r.hook; h != nil {
		ev.Time = time.Now()
		h(ev)
	}
}
