package production

import (
	"fmt"
	"runtime/debug"
	"time"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventStarted: a life configured and its server is serving.
	EventStarted EventKind = iota + 1
	// EventEnded: a life ended; Err is the crash reason (nil: a clean end:
	// replaced, removed, or the runner stops). Its teardown (drain, hooks)
	// follows in the background. A life whose configure failed emits
	// EventEnded (Err says why) and EventStopped, never EventStarted.
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
	// EventReloadStarted: a rolling reload begins; Count is the number of
	// instances it replaces.
	EventReloadStarted
	// EventReloadFinished: every instance of the reload serves on a new life.
	EventReloadFinished
	// EventReloadAborted: a new life failed to start (Err); the instance
	// keeps its old life and the reload stops there.
	EventReloadAborted
	// EventScaled: the number of instances changed; Count is the number
	// now wanted.
	EventScaled
	// EventRecycled: a life was replaced after --max-requests; Count is the
	// number of requests it served.
	EventRecycled
	// EventHung: a life's oldest request has run longer than --hang-timeout
	// (Delay is its age); Stack holds the stacks of the life's goroutines
	// (its requests' and its app.Go functions'). The life is replaced.
	EventHung
	// EventAbandoned: a stopped life left Count handlers running past its
	// drain deadline (Go cannot kill a goroutine); Stack holds the stacks of
	// the life's goroutines still running, so that a handler that hung on a
	// life already leaving service (recycled, reloaded, scaled down, never
	// reported as EventHung) still shows where it is stuck.
	EventAbandoned
	// EventCrashLoop: lives crash at a high rate across the instances; Count
	// is the number of crashes within Delay. The runner keeps respawning.
	EventCrashLoop
)

var eventNames = [...]string{
	EventStarted:        "started",
	EventEnded:          "ended",
	EventRespawning:     "respawning",
	EventGaveUp:         "gave up",
	EventStopped:        "stopped",
	EventAcceptError:    "accept error",
	EventReloadStarted:  "reload started",
	EventReloadFinished: "reload finished",
	EventReloadAborted:  "reload aborted",
	EventScaled:         "scaled",
	EventRecycled:       "recycled",
	EventHung:           "hung",
	EventAbandoned:      "abandoned",
	EventCrashLoop:      "crash loop",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// CrashCause says why a life crashed: the cause label of
// goangel_crashes_total. The life's runner sets it where the crash happens,
// so that nobody has to tell causes apart by an error's text.
type CrashCause uint8

const (
	// CauseNone: the life did not crash (a clean end: replaced, removed,
	// the runner stops; or a start cut short by the runner's stop).
	CauseNone CrashCause = iota
	// CauseConfigure: the life failed to start: configure returned an error
	// or panicked (or its pub/sub client or container could not be made).
	CauseConfigure
	// CausePanic: a supervised goroutine (the server's, an app.Go
	// function's, an App.AfterFunc timer's) panicked.
	CausePanic
	// CauseError: an app.Go function or the server returned an error.
	CauseError
	// CauseCrash: the app called App.Crash.
	CauseCrash
)

// crashCauses are the causes of a crash, in order: each is a series of
// goangel_crashes_total, exposed at 0 from the start.
var crashCauses = []CrashCause{CauseConfigure, CausePanic, CauseError, CauseCrash}

var causeNames = [...]string{
	CauseNone:      "none",
	CauseConfigure: "configure",
	CausePanic:     "panic",
	CauseError:     "error",
	CauseCrash:     "crash",
}

// String returns the cause as goangel_crashes_total labels it: "configure",
// "panic", "error", "crash" ("none" for CauseNone).
func (c CrashCause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("CrashCause(%d)", uint8(c))
}

// Event is what the hooks of WithEventHook receive.
type Event struct {
	Kind     EventKind
	Instance int // -1 for events of the whole runner (accept error, reload, scale, crash loop)
	Life     int
	Err      error
	// Cause: on EventEnded and EventStopped, why the life crashed
	// (CauseNone when it did not, even if Err says why a start was cut
	// short by the runner's stop).
	Cause CrashCause
	Delay time.Duration
	Count int       // see each EventKind
	Stack string    // a crash's stack, or a hung or abandoning life's goroutines
	Time  time.Time // time of the event on the runner's clock (WithClock)
}

// onEvent registers an extra event hook from inside the package (admin,
// metrics). It must be called before Run starts the instances.
func (r *Runner) onEvent(f func(Event)) { r.hooks = append(r.hooks, f) }

func (rs *runState) emit(ev Event) {
	hooks := rs.r.hooks
	if len(hooks) == 0 {
		return
	}
	ev.Time = rs.clock.Now()
	if ev.Stack == "" && ev.Err != nil {
		ev.Stack = stackOf(ev.Err)
	}
	for _, h := range hooks {
		rs.callHook(h, ev)
	}
}

func (rs *runState) callHook(h func(Event), ev Event) {
	defer func() {
		if p := recover(); p != nil {
			rs.entry.WithField("stack", string(debug.Stack())).Errorf("An event hook panicked on a %q event: %v", ev.Kind, p)
		}
	}()
	h(ev)
}
