package production

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime/debug"
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
	in      *instance
	info    InstanceInfo
	started time.Time
	log     *logrus.Entry

	ctx    context.Context
	cancel context.CancelCauseFunc

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

	endOnce sync.Once
	ended   chan struct{}
	endErr  error // the crash reason; nil for a clean end

	goMu     sync.Mutex
	goClosed bool
	goWG     sync.WaitGroup

	hooksMu sync.Mutex
	hooks   []func(context.Context) error
}

// start builds and starts life number n of instance in: configure, then the
// server. On error everything it built is released again.
func (in *instance) start(n int) (*life, error) {
	rs := in.rs
	l := &life{
		rs: rs,
		in: in,
		info: InstanceInfo{
			App:         rs.r.name,
			Number:      in.num,
			Life:        n,
			Concurrency: rs.cfg.Concurrency,
			ID:          pubsub.InstanceID(rs.r.name, in.num, n),
		},
		started: rs.clock.Now(),
		changed: make(chan struct{}, 1),
		ended:   make(chan struct{}),
	}
	l.log = logging.Instance(rs.logs.Logger, rs.r.name, in.num, n)
	l.ctx, l.cancel = context.WithCancelCause(rs.baseCtx)
	l.container = rs.root.ChildNamed(fmt.Sprintf("instance #%d life %d", in.num, n))
	if err := container.Provide(l.container, l.info); err != nil {
		l.release()
		return nil, fmt.Errorf("instance container: %w", err)
	}
	client, err := rs.broker.Register(l.ctx, pubsub.ClientInfo{ID: l.info.ID, CanPublish: pubsub.AllowAll(), CanSubscribe: pubsub.AllowAll()})
	if err != nil {
		l.release()
		return nil, fmt.Errorf("pub/sub client %s: %w", l.info.ID, err)
	}
	l.client = client
	if err := container.Provide[pubsub.Client](l.container, client); err != nil {
		l.release()
		return nil, fmt.Errorf("instance container: %w", err)
	}
	router := chi.NewRouter()
	l.app = &App{Router: router, Container: l.container, Logger: l.log, life: l}
	if err := l.configure(); err != nil {
		l.end(err)
		l.release()
		return nil, err
	}

	l.srv = &http.Server{
		Handler:           l.handler(router),
		ReadHeaderTimeout: rs.cfg.ReadHeaderTimeout,
		IdleTimeout:       rs.cfg.IdleTimeout,
		ErrorLog:          log.New(logWriter{l.log}, "", 0),
		ConnState:         l.connState,
		BaseContext: func(net.Listener) context.Context {
			return container.WithContext(l.ctx, l.container)
		},
	}
	l.view = rs.acc.view()
	l.ln = l.view
	if rs.tls != nil {
		// net/http adds its HTTP/2 settings to TLSConfig when Serve starts:
		// every life needs its own copy. The handshake runs on the
		// connection's goroutine, never on the acceptor's.
		l.srv.TLSConfig = rs.tls.Clone()
		l.ln = tls.NewListener(l.view, l.srv.TLSConfig)
	}
	l.serveDone = make(chan struct{})
	go l.serve()
	in.up.Store(true)
	in.life.Store(int64(n))
	l.log.Infof("Instance #%d listening at %s://%s", in.num, rs.scheme, rs.addr)
	rs.emit(Event{Kind: EventStarted, Instance: in.num, Life: n})
	return l, nil
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
		l.end(fmt.Errorf("serve: %w", err))
	}
}

func (l *life) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		l.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
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

// handler wraps the router: per-request counting, "Connection: close" while
// draining, the recover boundary, and the optional zone and access log.
func (l *life) handler(router http.Handler) http.Handler {
	h := router
	if l.rs.logs.Access != nil {
		base := logrus.Fields{"app": l.info.App, "instance": l.info.Number, "life": l.info.Life}
		h = middleware.RequestID(logging.AccessLog(l.rs.logs.Access, base)(h))
	}
	if l.rs.cfg.UseZone {
		h = l.zone(h)
	}
	in := l.in
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.requests.Add(1)
		l.handlers.Add(1)
		defer l.done()
		if l.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		defer l.recoverRequest(w, r)
		h.ServeHTTP(w, r)
	})
}

// zone gives each request a child container of the life's container,
// reachable with container.FromContext(r.Context()) and closed when the
// request ends (--use-zone). Its recover boundary is handler's, which wraps
// every request.
func (l *life) zone(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := l.container.ChildNamed("request")
		defer func() {
			if err := c.Close(); err != nil {
				l.log.WithError(err).Warn("Closing a request container failed")
			}
		}()
		next.ServeHTTP(w, r.WithContext(container.WithContext(r.Context(), c)))
	})
}

// recoverRequest is deferred around every request: it turns a handler panic
// into a 500 answer, logs it with its stack and counts it. http.ErrAbortHandler
// goes through to net/http, which aborts the response silently.
func (l *life) recoverRequest(w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
		panic(p)
	}
	l.in.panics.Add(1)
	l.log.WithFields(logrus.Fields{
		"method": r.Method,
		"path":   r.URL.Path,
		"stack":  string(debug.Stack()),
	}).Errorf("Recovered from a panic in a handler: %v", p)
	if r.Header.Get("Connection") != "Upgrade" {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// recoverCrash is deferred by supervised goroutines: a panic ends the life.
func (l *life) recoverCrash() {
	if p := recover(); p != nil {
		l.end(newPanicError(p))
	}
}

// end ends the life with reason err (nil: cleanly); the first call wins. From
// now on the life's responses carry "Connection: close".
func (l *life) end(err error) {
	l.endOnce.Do(func() {
		l.draining.Store(true)
		l.endErr = err
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
	return true
}

func (l *life) goSupervised(f func(ctx context.Context) error) {
	if !l.addGoroutine() {
		l.log.Debug("app.Go after the life ended: ignored")
		return
	}
	go func() {
		defer l.goWG.Done()
		defer l.recoverCrash()
		if err := f(l.ctx); err != nil {
			if ctxDone(l.ctx) {
				if !errors.Is(err, context.Canceled) {
					l.log.WithError(err).Debug("app.Go function failed after its life ended")
				}
				return
			}
			l.end(fmt.Errorf("app.Go: %w", err))
		}
	}()
}

// stop tears a crashed life down while its replacement serves: stop
// accepting, let in-flight requests finish and answer the next request on
// every keep-alive connection with "Connection: close" (closing connections
// still open at --drain-timeout), so that clients move to the live instances
// without an error; then release.
//
// http.Server.Shutdown is not used here: it closes a keep-alive connection
// that looks idle although the client's next request may already be on its
// way, and that request fails.
func (l *life) stop() {
	l.end(nil)
	l.view.Close()
	<-l.serveDone
	grace := l.rs.cfg.DrainTimeout
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
wait:
	for l.busy() {
		select {
		case <-l.changed:
		case <-l.rs.stopping:
			// The runner stops: no live instance is left to move to.
			l.shutdown()
			return
		case <-deadline.C:
			if n, h := l.conns.Load(), l.handlers.Load(); n > 0 || h > 0 {
				l.log.Warnf("Instance #%d: %d connection(s) and %d request(s) still open after %v: closing them and ending the context", l.info.Number, n, h, grace)
				l.srv.Close()
			}
			break wait
		}
	}
	l.release()
}

// shutdown stops the life when the whole runner stops: the process is going
// away, so idle keep-alive connections are closed at once
// (http.Server.Shutdown) and in-flight requests get up to --drain-timeout.
func (l *life) shutdown() {
	l.end(nil) // from now on every response says "Connection: close"
	ctx, cancel := context.WithTimeout(context.Background(), l.rs.cfg.DrainTimeout)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		l.log.WithError(err).Warnf("Instance #%d: closing the connections still open after %v", l.info.Number, l.rs.cfg.DrainTimeout)
		l.srv.Close()
	}
	<-l.serveDone
	l.release()
}

// release cancels the context, waits for the goroutines (bounded), runs the
// hooks, closes the client and the container. Safe on a half-built life.
func (l *life) release() {
	cause := l.endErr
	if cause == nil {
		cause = ErrLifeEnded
	}
	l.cancel(cause)
	l.goMu.Lock()
	l.goClosed = true
	l.goMu.Unlock()
	waited := make(chan struct{})
	go func() {
		l.goWG.Wait()
		close(waited)
	}()
	grace := l.rs.cfg.DrainTimeout
	t := time.NewTimer(grace)
	select {
	case <-waited:
	case <-t.C:
		l.log.Errorf("Instance #%d life %d: supervised goroutines still running %v after the end of their context; leaving them", l.info.Number, l.info.Life, grace)
	}
	t.Stop()

	l.hooksMu.Lock()
	hooks := l.hooks
	l.hooks = nil
	l.hooksMu.Unlock()
	var errs []error
	if len(hooks) > 0 {
		ctx, cancel := context.WithTimeout(l.rs.baseCtx, grace)
		for i := len(hooks) - 1; i >= 0; i-- {
			if err := l.runHook(ctx, hooks[i]); err != nil {
				errs = append(errs, err)
			}
		}
		cancel()
	}
	if l.client != nil {
		if err := l.client.Close(); err != nil && !errors.Is(err, pubsub.ErrClosed) {
			errs = append(errs, fmt.Errorf("pub/sub client: %w", err))
		}
	}
	if err := l.container.Close(); err != nil {
		errs = append(errs, fmt.Errorf("container: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		l.log.WithError(err).Warn("Shutting the instance down reported errors")
	}
	l.rs.emit(Event{Kind: EventStopped, Instance: l.info.Number, Life: l.info.Life, Err: l.endErr})
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
