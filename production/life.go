package production

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/pubsub"
)

// life is one life of an instance: configure's App, its own chi router,
// container, pub/sub client and http.Server on a view of the shared listener.
type life struct {
	rs      *runState
	counts  *instanceCounts // its instance's, over all its lives
	info    InstanceInfo
	started time.Time
	log     *logrus.Entry

	ctx    context.Context
	cancel context.CancelCauseFunc
	labels context.Context // lifeLabels(info), set on each of its goroutines

	container *container.Container
	client    pubsub.Client
	app       *App

	srv       *http.Server
	view      *listenerView
	ln        net.Listener // view, or a TLS listener over it
	serveDone chan struct{}

	// draining: every response from now on carries "Connection: close".
	draining atomic.Bool
	// conns counts the connections this life's server owns (a hijacked one
	// is its handler's); handlers counts the requests in flight, including
	// the handlers of hijacked connections (WebSockets). changed is poked
	// when either drops to zero while draining.
	conns    atomic.Int64
	handlers atomic.Int64
	changed  chan struct{}
	// connMap tracks each connection's state, so that a stopping runner
	// closes only the connections idle for a while (drain.go).
	connMap sync.Map // net.Conn -> *connInfo
	// hijackedConns holds the connections handlers took over, until they
	// are closed: the drain deadline closes them (drain.go).
	hijackedConns sync.Map // *limitedConn -> struct{}

	// requests counts the requests this life served; recycle is poked once
	// it reaches recycleAt (--max-requests).
	requests  atomic.Uint64
	recycleAt uint64
	recycle   chan struct{}
	// inflight holds each request in flight (--hang-timeout).
	inflight sync.Map // uint64 -> *reqWatch
	reqSeq   atomic.Uint64

	doing atomic.Pointer[string] // what it does now (runState.track)

	endOnce    sync.Once
	ended      chan struct{}
	endErr     error      // the crash reason; nil for a clean end
	crashCause CrashCause // what kind of crash endErr is
	endedOnce  sync.Once
	// crashNoted: the crash that ended the life was counted (noteCrash).
	crashNoted atomic.Bool

	goMu     sync.Mutex
	goClosed bool
	goWG     sync.WaitGroup
	goCount  atomic.Int64 // supervised goroutines and timers not yet done (goWG's count)

	hooksMu    sync.Mutex
	hooks      []func(context.Context) error
	drainHooks []func(context.Context)
}

// newLife makes life number n of instance num; start starts it.
func newLife(rs *runState, num, n int, counts *instanceCounts) *life {
	l := &life{
		rs:     rs,
		counts: counts,
		info: InstanceInfo{
			App:         rs.r.name,
			Number:      num,
			Life:        n,
			Concurrency: int(rs.wanted.Load()),
			ID:          pubsub.InstanceID(rs.r.name, num, n),
		},
		started:   rs.clock.Now(),
		changed:   make(chan struct{}, 1),
		ended:     make(chan struct{}),
		recycle:   make(chan struct{}, 1),
		recycleAt: recycleAt(rs.cfg),
	}
	l.log = logging.Instance(rs.logs.Logger, rs.r.name, num, n)
	l.labels = lifeLabels(l.info)
	// The view exists before anything of the life runs, so that end (from
	// any of the life's goroutines) can take it out of the rotation.
	l.view = rs.acc.view()
	l.ctx, l.cancel = context.WithCancelCause(rs.baseCtx)
	l.container = rs.root.ChildNamed(fmt.Sprintf("instance #%d life %d", num, n))
	return l
}

// start builds the life (its container, pub/sub client and configure's
// App) and starts its server. On error the life has ended with the crash
// (CauseNone when the runner's stop cut configure short) and must be
// released. Canceling ctx (the runner stops) during configure cancels the
// App's context.
func (l *life) start(ctx context.Context) error {
	rs := l.rs
	rs.track(l, "starting")
	fail := func(err error) error {
		cause := CauseConfigure
		if ctxDone(ctx) {
			cause = CauseNone // cut short by the runner's stop: not a crash
		}
		l.crash(cause, err)
		return err
	}
	if err := container.Provide(l.container, l.info); err != nil {
		return fail(fmt.Errorf("instance container: %w", err))
	}
	client, err := rs.broker.Register(l.ctx, pubsub.ClientInfo{ID: l.info.ID, CanPublish: pubsub.AllowAll(), CanSubscribe: pubsub.AllowAll()})
	if err != nil {
		return fail(fmt.Errorf("pub/sub client %s: %w", l.info.ID, err))
	}
	l.client = client
	if err := container.Provide[pubsub.Client](l.container, client); err != nil {
		return fail(fmt.Errorf("instance container: %w", err))
	}
	router := chi.NewRouter()
	l.app = &App{Router: router, Container: l.container, Logger: l.log, life: l}
	rs.track(l, "configure")
	unwatch := context.AfterFunc(ctx, func() { l.cancel(ErrStopping) })
	err = l.configure()
	unwatch()
	if err == nil && ctxDone(ctx) {
		err = fmt.Errorf("configure: %w", ErrStopping)
	}
	if err != nil {
		return fail(err)
	}
	// configure may have replaced the router: serve the one it left.
	served := l.app.Router
	if served == nil {
		return fail(errors.New("configure: App.Router set to nil: leave it, or give it a *chi.Mux"))
	}
	l.startServer(served)
	return nil
}

// startServer serves h on the life's view of the shared listener.
func (l *life) startServer(h http.Handler) {
	rs := l.rs
	l.srv = &http.Server{
		Handler:           l.handler(h),
		ReadHeaderTimeout: rs.cfg.ReadHeaderTimeout,
		IdleTimeout:       rs.cfg.IdleTimeout,
		Protocols:         rs.protocols(), // tls.go: h2 over TLS, or h2c
		ErrorLog:          log.New(logWriter{l.log}, "", 0),
		ConnState:         l.connState,
		BaseContext: func(net.Listener) context.Context {
			return container.WithContext(l.ctx, l.container)
		},
	}
	l.srv.ConnState = l.countConns(l.srv.ConnState) // mw_metrics.go
	// drain.go: hijacked connections stay known.
	l.ln = lifeListener{l.view, l}
	if rs.tls != nil {
		// net/http adds its HTTP/2 settings to TLSConfig when Serve starts:
		// every life needs its own copy. The handshake runs on the
		// connection's goroutine, never on the acceptor's.
		l.srv.TLSConfig = rs.tls.Clone()
		l.ln = tls.NewListener(l.ln, l.srv.TLSConfig)
	}
	l.serveDone = make(chan struct{})
	go l.serve()
}

// emitEnded emits EventEnded once per life.
func (l *life) emitEnded() {
	l.endedOnce.Do(func() {
		l.rs.emit(Event{Kind: EventEnded, Instance: l.info.Number, Life: l.info.Life, Err: l.endErr, Cause: l.crashCause})
	})
}

// configure runs the app's configure with a recover boundary.
func (l *life) configure() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("configure: %w", newPanicError(p))
		}
	}()
	if err := l.rs.r.configure(l.app); err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return nil
}

// serve runs the server until the view is closed; any other end is a crash.
func (l *life) serve() {
	defer close(l.serveDone)
	defer l.recoverCrash()
	err := l.srv.Serve(l.ln)
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		l.crash(CauseError, fmt.Errorf("serve: %w", err))
	}
}

func (l *life) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.conns.Add(1)
		ci := infoOf(c)
		if ci == nil {
			ci = newConnInfo()
		}
		l.connMap.Store(c, ci)
	case http.StateActive, http.StateIdle:
		// Twice per request: the connection's own info when it is one of
		// the life's (no map lookup on the request path).
		if ci := infoOf(c); ci != nil {
			ci.set(s == http.StateIdle)
		} else if ci, ok := l.connMap.Load(c); ok {
			ci.(*connInfo).set(s == http.StateIdle)
		}
	case http.StateClosed, http.StateHijacked:
		l.connMap.Delete(c)
		if s == http.StateHijacked {
			l.hijacked(c)
		}
		if l.conns.Add(-1) == 0 {
			l.poke()
		}
	}
}

// poke wakes the drain when a counter reached zero while draining.
func (l *life) poke() {
	if l.draining.Load() {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
}

// busy reports whether connections or handlers are still in flight.
func (l *life) busy() bool { return l.conns.Load() > 0 || l.handlers.Load() > 0 }

// done is deferred by every request: the handler has returned.
func (l *life) done() {
	if l.handlers.Add(-1) == 0 {
		l.poke()
	}
}

// handler chains the life's middlewares (one per mw_*.go file) around the
// router, outermost first: accounting (counting, in-flight, "Connection:
// close" while draining, and in the same frame the recover boundary and the
// body timeout), metrics, the request timeout, the zone, the access log.
func (l *life) handler(router http.Handler) http.Handler {
	h := router
	if l.rs.logs.Access != nil {
		base := logrus.Fields{"app": l.info.App, "instance": l.info.Number, "life": l.info.Life}
		h = middleware.RequestID(logging.AccessLog(l.rs.logs.Access, base)(h))
	}
	if l.rs.cfg.UseZone {
		h = zone(l.container, l.log)(h)
	}
	if d := l.rs.cfg.RequestTimeout; d > 0 {
		h = requestTimeout(d)(h)
	}
	h = l.metrics(h) // mw_metrics.go
	// The recover boundary and --read-timeout's body bound are in
	// accounting's own frame.
	return l.accounting(h) // mw_draining.go
}

// recoverCrash is deferred by supervised goroutines: a panic ends the life.
func (l *life) recoverCrash() {
	if p := recover(); p != nil {
		l.crash(CausePanic, newPanicError(p))
	}
}

// end ends the life cleanly (see crash).
func (l *life) end() { l.crash(CauseNone, nil) }

// crash ends the life with reason err (nil: cleanly) and the cause the
// caller knows it by; the first call (of crash or end) wins. The life leaves
// the rotation at once: its listener view is closed before crash returns, so
// the acceptor hands it no new connection (they go to the other lives, or
// wait in the backlog while a replacement starts); only while the runner's
// stop serves the kernel's accept queue does a life that ends cleanly keep
// it until drain closes it. From now on the life's responses carry
// "Connection: close".
func (l *life) crash(cause CrashCause, err error) {
	if err == nil {
		cause = CauseNone
	}
	l.endOnce.Do(func() {
		l.draining.Store(true)
		l.endErr, l.crashCause = err, cause
		switch {
		case err != nil || !isClosed(l.rs.stopping):
			// Crashed, or replaced while the others serve: a connection
			// its view took as it closed goes to a live one.
			l.view.Close()
		case !l.rs.servesQueue():
			// The runner stops: no other view may be left to take it.
			l.view.closeDraining()
		} // else drain closes it once the accept queue is served
		close(l.ended)
	})
}

// addGoroutine registers one more supervised goroutine, unless the life has
// stopped its goroutines.
func (l *life) addGoroutine() bool {
	l.goMu.Lock()
	defer l.goMu.Unlock()
	if l.goClosed {
		return false
	}
	l.goWG.Add(1)
	l.goCount.Add(1)
	return true
}

// goDone marks one supervised goroutine or timer done.
func (l *life) goDone() {
	l.goCount.Add(-1)
	l.goWG.Done()
}

func (l *life) goSupervised(f func(ctx context.Context) error) {
	if !l.addGoroutine() {
		l.log.Debug("app.Go after the life ended: ignored")
		return
	}
	go func() {
		defer l.goDone()
		defer l.recoverCrash()
		// Labelled, so that a hung life's report shows its goroutines.
		pprof.SetGoroutineLabels(l.labels)
		if err := f(l.ctx); err != nil {
			if ctxDone(l.ctx) {
				if !errors.Is(err, context.Canceled) {
					l.log.WithError(err).Debug("app.Go function failed after its life ended")
				}
				return
			}
			l.crash(CauseError, fmt.Errorf("app.Go: %w", err))
		}
	}()
}

func (l *life) runHook(ctx context.Context, f func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("OnShutdown hook: %w", newPanicError(p))
		}
	}()
	return f(ctx)
}

// logWriter sends http.Server.ErrorLog lines to logrus (at warning level). It
// starts no goroutine, unlike logrus' WriterLevel.
type logWriter struct{ log *logrus.Entry }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
