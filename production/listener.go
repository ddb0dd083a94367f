package production

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// acceptor owns the shared socket. One goroutine Accepts on it and hands each
// connection over an unbuffered channel to whichever instance's listenerView
// is waiting in Accept. Go queues blocked receivers in order, so the
// connections go round-robin over the live instances; while none is waiting
// (every instance respawning) connections wait in the kernel's backlog, and
// none is refused.
type acceptor struct {
	ln     net.Listener
	conns  chan net.Conn
	stop   chan struct{}
	once   sync.Once
	done   chan struct{}
	log    *logrus.Entry
	emit   func(Event)   // may be nil
	errors atomic.Uint64 // accept errors survived
}

func newAcceptor(ln net.Listener, log *logrus.Entry) *acceptor {
	return &acceptor{
		ln:    ln,
		conns: make(chan net.Conn),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		log:   log,
	}
}

// run supervises the accept loop: a panic in it is logged and the loop
// restarted; it returns once close was called.
func (a *acceptor) run() {
	defer close(a.done)
	for {
		err := a.safeLoop()
		if err == nil {
			return
		}
		a.log.WithError(err).WithField("stack", stackOf(err)).Error("Acceptor crashed; restarting it")
		select {
		case <-a.stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (a *acceptor) safeLoop() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newPanicError(p)
		}
	}()
	a.loop()
	return nil
}

func (a *acceptor) loop() {
	var delay time.Duration
	for {
		c, err := a.ln.Accept()
		if err != nil {
			select {
			case <-a.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				// Closed by someone else than close: nothing more to accept.
				a.log.WithError(err).Error("Shared listener closed")
				return
			}
			// EMFILE, ENFILE, ECONNABORTED, …: never end the listener; back
			// off like net/http does (5ms doubling up to 1s).
			a.errors.Add(1)
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			a.log.WithError(err).Warnf("Accept error; retrying in %v", delay)
			if a.emit != nil {
				a.emit(Event{Kind: EventAcceptError, Instance: -1, Err: err, Delay: delay})
			}
			t := time.NewTimer(delay)
			select {
			case <-a.stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		select {
		case a.conns <- c:
			// Let the instance that took c run now, so that it is back in
			// Accept (at the end of the queue of waiting instances) before
			// the next connection is handed over. Without this, the
			// scheduler's run-next slot resumes the LAST instance served
			// first, and the spread under load drifts from round-robin.
			runtime.Gosched()
		case <-a.stop:
			c.Close()
			return
		}
	}
}

// close stops the accept loop, closes the shared socket and waits for the
// loop to end. Idempotent.
func (a *acceptor) close() {
	a.once.Do(func() {
		close(a.stop)
		a.ln.Close()
	})
	<-a.done
}

// view returns a new listener view for one instance life.
func (a *acceptor) view() *listenerView {
	return &listenerView{conns: a.conns, addr: a.ln.Addr(), closed: make(chan struct{})}
}

// listenerView is one instance life's net.Listener on the shared socket.
// Accept takes the next connection the acceptor hands over; Close makes a
// pending and every later Accept return net.ErrClosed at once. Close is
// idempotent and never closes the shared socket, so http.Server.Serve,
// Shutdown and Close may call it freely.
type listenerView struct {
	conns  <-chan net.Conn
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
}

func (v *listenerView) Accept() (net.Conn, error) {
	select {
	case <-v.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-v.conns:
		return c, nil
	case <-v.closed:
		return nil, net.ErrClosed
	}
}

func (v *listenerView) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *listenerView) Addr() net.Addr { return v.addr }

// stackOf returns the stack of a *PanicError in err's chain, or "".
func stackOf(err error) string {
	var p *PanicError
	if errors.As(err, &p) {
		return string(p.Stack)
	}
	return ""
}

// ctxDone reports whether ctx is done, without blocking.
func ctxDone(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}
