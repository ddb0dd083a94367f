package production

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/goangel/angel/pubsub"
)

// This file is the one drain path. Every life that leaves service (crash,
// reload, recycle, hung, scale-down, Drain, the runner's stop) ends here:
//
//  1. it stops accepting (end closed its listener view as soon as the life
//     ended, crashed or replaced: the acceptor hands new connections to the
//     other lives only). When the runner stops, a life that ends cleanly
//     keeps its view open until the acceptor has taken the connections
//     already waiting in the kernel's accept queue (acceptor.closeAfterQueue),
//     which would be reset if the socket closed with them in it;
//  2. from now on every response carries "Connection: close", so each
//     keep-alive client gets a full answer to the request it sent and moves
//     to a live instance for the next one (http.Server.Shutdown is not used:
//     it closes keep-alive connections that look idle while the client's
//     next request may already be on the wire);
//  3. the App.OnDrain hooks are called, so that handlers of connections they
//     took over (WebSockets) can say goodbye;
//  4. it waits until no connection and no handler is left. When the whole
//     runner stops no live instance is left to move to, so a connection idle
//     across two sweeps stopIdleSweep apart is closed (no request is in
//     flight on it);
//  5. at the life's one deadline (--drain-timeout from the start of the
//     drain) what is left is closed, hijacked connections included (so
//     that a handler blocked reading one returns); handlers still running
//     are abandoned (Go cannot stop a goroutine) and counted while they
//     run;
//  6. release: the context is canceled, the supervised goroutines are
//     awaited, the OnShutdown hooks run, the pub/sub client and the
//     container are closed, all within the same deadline.

// stopIdleSweep: once the runner stops, a connection found idle by two
// sweeps this far apart, with no request in between, is closed at once
// instead of waiting for its next request.
const stopIdleSweep = 250 * time.Millisecond

// connInfo is one connection's state, written only by its own goroutine (in
// ConnState) on each change: a change counter shifted left, and the low bit
// set while no request is being read or answered (no clock read per
// request). A new connection counts as idle until its first request.
type connInfo struct{ state atomic.Uint64 }

func newConnInfo() *connInfo {
	c := &connInfo{}
	c.state.Store(1)
	return c
}

func (c *connInfo) set(idle bool) {
	next := (c.state.Load()>>1 + 1) << 1
	if idle {
		next |= 1
	}
	c.state.Store(next)
}

// servesQueue reports whether the runner is stopping while its acceptor still
// hands over the connections queued in the kernel (closeAfterQueue): a life
// that ends cleanly then keeps its view open until the acceptor is done.
func (rs *runState) servesQueue() bool {
	return rs.stopping != nil && isClosed(rs.stopping) && !rs.handedOver() && !isClosed(rs.acc.done)
}

// drain takes the life out of service and releases it (see above).
func (l *life) drain() {
	rs := l.rs
	deadline := rs.clock.Now().Add(rs.cfg.DrainTimeout)
	l.end()
	rs.track(l, "draining")
	queued := l.viewUntilQueueServed()
	// The hooks' context carries the deadline until the drain ends, not
	// only while they run: a goodbye written later on a hijacked
	// connection with it must not fail with "context canceled".
	endHooks := l.callDrainHooks(deadline)
	if queued == nil {
		<-l.serveDone
	}
	l.waitIdle(deadline, queued)
	l.settleHandlers()
	if h := l.handlers.Load(); h > 0 {
		rs.abandon(l, int(h))
	}
	endHooks()
	l.release(deadline)
}

// viewUntilQueueServed closes the life's view, unless the runner stops and
// its acceptor still hands over the connections that were waiting in the
// kernel's accept queue (acceptor.closeAfterQueue): then the view stays
// open until it is done, so that they are answered (with "Connection:
// close") instead of reset, and the channel returned says when.
func (l *life) viewUntilQueueServed() (queued <-chan struct{}) {
	switch {
	case l.view.open() && l.rs.servesQueue():
		return l.rs.acc.done
	case isClosed(l.rs.stopping):
		l.view.closeDraining() // no other view may be left to take a connection
	default:
		l.view.Close() // end closed it already: a live view takes what it held
	}
	return nil
}

// waitIdle waits until no connection and no handler is left (and the
// queue, when queued is not nil, was served). When the runner stops, idle
// connections are closed (closeIdle): no live instance is left to move to;
// after a binary upgrade's handover the new process serves, and they are
// drained like a crash's. At deadline what is left is closed, hijacked
// connections included.
func (l *life) waitIdle(deadline time.Time, queued <-chan struct{}) {
	rs := l.rs
	stopping := rs.stopping
	if rs.handedOver() {
		stopping = nil
	}
	timer := newTimer(rs.clock, deadline.Sub(rs.clock.Now()))
	defer timer.Stop()
	var sweep <-chan time.Time
	seen := map[net.Conn]idleSeen{}
	for queued != nil || l.busy() {
		select {
		case <-queued:
			queued = nil
			l.view.closeDraining()
			<-l.serveDone
		case <-l.changed:
		case <-stopping:
			stopping = nil
			t := newTicker(rs.clock, stopIdleSweep)
			defer t.Stop()
			sweep = t.C
			l.closeIdle(seen)
		case <-sweep:
			l.closeIdle(seen)
		case <-timer.C:
			if queued != nil {
				l.view.closeDraining()
				<-l.serveDone
			}
			if n, h := l.conns.Load(), l.handlers.Load(); n > 0 || h > 0 {
				l.log.Warnf("Instance #%d life %d: %d connection(s) and %d request(s) still open after --drain-timeout %v: closing them and ending the context", l.info.Number, l.info.Life, n, h, rs.cfg.DrainTimeout)
				l.srv.Close()
				l.closeHijacked()
			}
			return
		}
	}
}

// settleHandlers, when handlers still run at the end of the wait, ends
// the life's context (handlers that watch it return) and gives them
// abandonGrace before they count as abandoned.
func (l *life) settleHandlers() {
	if l.handlers.Load() == 0 {
		return
	}
	l.cancel(l.endCause())
	grace := newTimer(l.rs.clock, abandonGrace)
	defer grace.Stop()
	for l.handlers.Load() > 0 {
		select {
		case <-l.changed:
		case <-grace.C:
			return
		}
	}
}

// abandonGrace is how long handlers get to return after their context ended
// (and their hijacked connections were closed) at the drain deadline, before
// they count as abandoned.
const abandonGrace = 100 * time.Millisecond

// lifeListener hands out the life's connections (the acceptor's
// *limitedConn, listener.go) marked as the life's, so that one a handler
// hijacks stays known to the life until it is closed.
type lifeListener struct {
	net.Listener
	l *life
}

func (ll lifeListener) Accept() (net.Conn, error) {
	c, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc, ok := c.(*limitedConn)
	if !ok { // every view hands over the acceptor's connections
		c.Close()
		return nil, fmt.Errorf("internal error: a listener view handed over a %T, not the acceptor's *limitedConn", c)
	}
	lc.l = ll.l
	return lc, nil
}

// infoOf returns the connInfo of one of a life's connections (under TLS
// too), or nil for another net.Conn.
func infoOf(c net.Conn) *connInfo {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		return &lc.info
	}
	return nil
}

// hijacked records that a handler took c over (ConnState), until it is closed.
func (l *life) hijacked(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitedConn); ok {
		lc.hijacked.Store(true)
		l.hijackedConns.Store(lc, struct{}{})
	}
}

// closeHijacked closes the connections the life's handlers took over, so
// that a handler blocked reading one (a WebSocket waiting for its client)
// returns at the drain deadline instead of being abandoned.
func (l *life) closeHijacked() {
	l.hijackedConns.Range(func(k, _ any) bool {
		k.(*limitedConn).Close()
		return true
	})
}

// endCause is the cause App.Context is canceled with: the crash reason, or
// ErrLifeEnded.
func (l *life) endCause() error {
	if l.endErr != nil {
		return l.endErr
	}
	return ErrLifeEnded
}

// closeIdle closes the connections that were idle at the previous sweep and
// have had no request since; it records what it saw in seen.
//
// A connection that has not had its first request yet (state 1) is given
// newConnSweeps sweeps instead of two: its client connected to send one, and
// may be slow to write it on a busy machine (the acceptor still hands over
// the connections queued in the kernel at the stop).
func (l *life) closeIdle(seen map[net.Conn]idleSeen) {
	l.connMap.Range(func(k, v any) bool {
		c, st := k.(net.Conn), v.(*connInfo).state.Load()
		prev := seen[c]
		if st&1 == 1 && prev.state == st {
			prev.sweeps++
			if st != 1 || prev.sweeps >= newConnSweeps {
				c.Close()
			}
		} else {
			prev = idleSeen{state: st, sweeps: 1}
		}
		seen[c] = prev
		return true
	})
}

// idleSeen is what closeIdle saw of a connection: its state, and in how many
// sweeps in a row.
type idleSeen struct {
	state  uint64
	sweeps int
}

// newConnSweeps is how many sweeps in a row a connection without a request
// yet must be seen idle at the stop before it is closed (1s).
const newConnSweeps = 5

// release cancels the context, waits for the goroutines, runs the hooks,
// closes the client and the container, all bounded by deadline. Safe on a
// half-built life.
func (l *life) release(deadline time.Time) {
	rs := l.rs
	l.cancel(l.endCause())
	l.goMu.Lock()
	l.goClosed = true
	l.goMu.Unlock()
	rs.track(l, "waiting for its app.Go goroutines")
	// goClosed is set: the count only goes down now, and none running is
	// no wait (a goroutine spawned to find that out could be scheduled
	// too late on a loaded machine, after a deadline already spent).
	if l.goCount.Load() > 0 {
		if ok, done := waitUntil(rs.clock, deadline, l.goWG.Wait); !ok {
			rs.leave(fmt.Sprintf("instance #%d life %d: app.Go goroutines", l.info.Number, l.info.Life), done)
			l.log.Errorf("Instance #%d life %d: supervised goroutines still running at the drain deadline; leaving them", l.info.Number, l.info.Life)
		}
	}

	l.hooksMu.Lock()
	hooks := l.hooks
	l.hooks = nil
	l.hooksMu.Unlock()
	var errs []error
	if len(hooks) > 0 {
		ctx, cancel := withDeadline(rs.baseCtx, rs.clock, deadline)
		for i := len(hooks) - 1; i >= 0; i-- {
			name := funcName(hooks[i])
			rs.track(l, "OnShutdown hook "+name)
			var err error
			if ok, done := waitUntil(rs.clock, deadline, func() { err = l.runHook(ctx, hooks[i]) }); !ok {
				rs.leave(fmt.Sprintf("instance #%d life %d: OnShutdown hook %s", l.info.Number, l.info.Life, name), done)
				errs = append(errs, fmt.Errorf("OnShutdown hook %s still running at the drain deadline: left running", name))
				break
			}
			if err != nil {
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
	rs.untrack(l)
	rs.emit(Event{Kind: EventStopped, Instance: l.info.Number, Life: l.info.Life, Err: l.endErr, Cause: l.crashCause})
}

// waitUntil runs f on its own goroutine and waits for it until deadline on
// c (at least abandonGrace, so that a step that ends at once, or once the
// context it watches ended, is not reported for a deadline already spent,
// even on a loaded machine). It reports false when f was left running;
// done is closed when f returns.
func waitUntil(c Clock, deadline time.Time, f func()) (ok bool, done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		f()
	}()
	t := newTimer(c, max(deadline.Sub(c.Now()), abandonGrace))
	defer t.Stop()
	select {
	case <-ch:
		return true, ch
	case <-t.C:
		return false, ch
	}
}

func funcName(f any) string {
	if fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer()); fn != nil {
		return fn.Name()
	}
	return "?"
}

// callDrainHooks tells the app (App.OnDrain) that the life drains. The
// context it gives the hooks lives until the returned function is called,
// when the drain ends (or its deadline passes).
func (l *life) callDrainHooks(deadline time.Time) (end func()) {
	l.hooksMu.Lock()
	hooks := l.drainHooks
	l.hooksMu.Unlock()
	if len(hooks) == 0 {
		return func() {}
	}
	ctx, cancel := withDeadline(l.ctx, l.rs.clock, deadline)
	for _, f := range hooks {
		func() {
			defer func() {
				if p := recover(); p != nil {
					l.log.WithField("stack", string(newPanicError(p).Stack)).Errorf("An OnDrain hook panicked: %v", p)
				}
			}()
			f(ctx)
		}()
	}
	return cancel
}
