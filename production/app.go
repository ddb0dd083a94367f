package production

import (
	"context"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/pubsub"
)

// InstanceInfo describes one life of an instance. Each instance container
// holds one (resolve it with container.Make[production.InstanceInfo]).
type InstanceInfo struct {
	App         string // the Runner's name
	Number      int    // the instance number, 0 … Concurrency-1; the same in every life
	Life        int    // 1 for the first life of the instance, +1 for each respawn
	Concurrency int    // how many instances the runner ran when this life started (-j, then Scale); App.Concurrency is current
	ID          string // this life's pub/sub client id, e.g. "example/2#3@web1:4242" (see pubsub.InstanceID)
}

// App is what configure gets: one per life of an instance. Everything in it
// belongs to that life. configure is called again, with a fresh App, for each
// respawn.
//
// Only goroutines the framework starts are supervised: the instance's HTTP
// server, the functions given to Go, and the timers of AfterFunc. A panic on
// any other goroutine (one started with a bare go statement) kills the whole
// process, as in every Go program; use Go and AfterFunc instead.
type App struct {
	// Router is a fresh chi router, served on the shared listener once
	// configure returns.
	Router *chi.Mux
	// Container is this life's container, a child of the runner's. It holds
	// the InstanceInfo and the life's pubsub.Client; it is closed when the
	// life ends. Handlers reach it (or, with --use-zone, a per-request child
	// of it) with container.FromContext(r.Context()).
	Container *container.Container
	// Logger logs through the runner's logger with the fields app, instance
	// and life.
	Logger *logrus.Entry

	life *life
}

// Context returns this life's context. It stays valid while the life's last
// requests drain, and is canceled (with cause ErrLifeEnded, or the crash
// reason) once they have ended or the drain deadline passed, before the
// OnShutdown hooks run. While configure runs, it is canceled (cause
// ErrStopping) if the runner stops: a configure that waits on something
// should also wait on it. Request contexts derive from it.
func (a *App) Context() context.Context { return a.life.ctx }

// Concurrency returns how many instances the runner runs now: -j at start,
// then what Scale, SIGTTIN and SIGTTOU set. InstanceInfo.Concurrency is the
// count when the life started; a life that must follow changes reads this.
func (a *App) Concurrency() int { return int(a.life.rs.wanted.Load()) }

// OnDrain registers f to be called when this life starts to drain (it is
// replaced, removed, or the runner stops), before its requests have ended.
// It is the way to tell handlers of hijacked connections (WebSockets),
// which net/http does not track, to say goodbye: they then get the same
// deadline as ordinary requests (ctx's deadline, --drain-timeout), and the
// life (and the process) waits for them until then. ctx stays valid after f
// returned, until the life's drain ends (its last connection and handler
// are gone, or the deadline passed): hand it to the handlers that write
// their goodbye with it. f must not block.
func (a *App) OnDrain(f func(ctx context.Context)) {
	l := a.life
	l.hooksMu.Lock()
	l.drainHooks = append(l.drainHooks, f)
	l.hooksMu.Unlock()
}

// Info returns this life's InstanceInfo.
func (a *App) Info() InstanceInfo { return a.life.info }

// PubSub returns this life's pub/sub client: a message it publishes reaches
// every other instance's client (with --pubsub-url, in every process), never
// itself. It is closed when the life ends. The same client is in Container.
func (a *App) PubSub() pubsub.Client { return a.life.client }

// Go runs f on a supervised goroutine with this life's context. A panic in f,
// or an error returned by f before the context ends, ends this life as a crash
// (the instance is respawned unless --no-respawn). f must return once the
// context is done: the life's end waits for it (up to --drain-timeout). Go does
// nothing once the life has ended.
func (a *App) Go(f func(ctx context.Context) error) {
	a.life.goSupervised(f)
}

// AfterFunc calls f on a supervised goroutine once d has elapsed on the
// runner's clock, unless the returned Timer is stopped first or the life ends
// first. A panic in f ends this life as a crash.
func (a *App) AfterFunc(d time.Duration, f func()) Timer {
	return a.life.afterFunc(d, f)
}

// Crash ends this life on purpose, the Go analogue of Dart's
// Isolate.current.kill(): the instance stops accepting, drains, and is
// respawned unless --no-respawn. err is the reason that is logged; nil means
// the life ends cleanly (with --no-respawn it does not count as a crash).
// Crash returns at once; only the first reason of a life counts.
func (a *App) Crash(err error) { a.life.crash(CauseCrash, err) }

// OnShutdown registers f to run when this life ends, after its requests have
// drained and its context is canceled. Hooks run in reverse order of
// registration; they share the life's one teardown deadline (--drain-timeout
// from the start of the drain) with the drain and the goroutines, and their
// context ends then; a hook still running at the deadline is logged by name
// and left behind. Errors are logged.
func (a *App) OnShutdown(f func(ctx context.Context) error) {
	l := a.life
	l.hooksMu.Lock()
	l.hooks = append(l.hooks, f)
	l.hooksMu.Unlock()
}

// lifeTimer is the Timer of App.AfterFunc.
type lifeTimer struct {
	t       Timer
	done    func()
	unwatch func() bool
}

func (t *lifeTimer) Stop() bool {
	if t.t.Stop() {
		t.done()
		t.unwatch()
		return true
	}
	return false
}

type stoppedTimer struct{}

func (stoppedTimer) Stop() bool { return false }

func (l *life) afterFunc(d time.Duration, f func()) Timer {
	if !l.addGoroutine() {
		return stoppedTimer{}
	}
	var once sync.Once
	lt := &lifeTimer{done: func() { once.Do(l.goWG.Done) }}
	var mu sync.Mutex // orders the assignment of lt.t/lt.unwatch before their use
	mu.Lock()
	defer mu.Unlock()
	lt.t = l.rs.clock.AfterFunc(d, func() {
		defer lt.done()
		mu.Lock()
		unwatch := lt.unwatch
		mu.Unlock()
		unwatch()
		defer l.recoverCrash()
		if ctxDone(l.ctx) {
			return
		}
		f()
	})
	lt.unwatch = context.AfterFunc(l.ctx, func() {
		mu.Lock()
		t := lt.t
		mu.Unlock()
		if t.Stop() {
			lt.done()
		}
	})
	return lt
}
