package production

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// acceptor owns the shared socket. One goroutine Accepts on it and hands each
// connection to an instance life's listenerView: to a new life's view first
// (fresh), then to the next live view, in round-robin order, that is waiting
// in Accept (a non-blocking send on the view's own unbuffered channel); when
// none is waiting, over the shared unbuffered channel to whichever view gets
// to Accept first. While no
// instance accepts (every one respawning) connections wait in the kernel's
// backlog, and none is refused.
type acceptor struct {
	ln    net.Listener
	conns chan net.Conn // the fallback: any waiting view takes it
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}
	// startOnce starts run (start), or, when close comes first, marks
	// the loop done without it.
	startOnce sync.Once

	// open holds every connection served, for yielding at the connection
	// limit (evictSilent); epoch is the zero of their lastIO stamps.
	openMu  sync.Mutex
	open    map[*limitedConn]struct{}
	clock   Clock
	epoch   time.Time
	evicted atomic.Uint64 // silent connections closed to make room
	log     *logrus.Entry
	emit    func(Event)   // may be nil
	errors  atomic.Uint64 // accept errors survived

	// slots holds one token per open connection under --max-connections
	// (nil: no limit); writeStall is --write-timeout (0: none). Both are
	// set by limit before run.
	slots      chan struct{}
	writeStall time.Duration

	// quiesce is closed by closeAfterQueue: the loop then takes only the
	// connections already waiting in the kernel's accept queue, and ends
	// once it finds the queue empty or at quiesceBy. dlMu orders the
	// listener deadlines set by closeAfterQueue and by the loop.
	quiesce     chan struct{}
	quiesceOnce sync.Once
	quiesceBy   time.Time
	// quiesceLeft is how many connections waited in the accept queue when
	// closeAfterQueue was called (-1: not known): once the loop has taken
	// that many it closes the socket, even while more keep arriving.
	quiesceLeft int
	dlMu        sync.Mutex

	mu    sync.Mutex                      // serialises changes to views (and requeue against close)
	views atomic.Pointer[[]*listenerView] // the open views, copy-on-write
	next  int                             // round-robin position; owned by the accept loop
	// fresh is the newest view until it takes its first connection: a new
	// life (a respawn, a reload, a scale-up) gets the next connection
	// instead of waiting its turn in the round-robin, so that a crashed
	// instance serves again on the first connection after its respawn,
	// not after one per other instance (issue 26: 3 polls of a client's
	// ~300 µs each at -j 4). It has no connection yet: it is also the
	// least loaded.
	fresh atomic.Pointer[listenerView]

	requeued sync.WaitGroup // connections a closed view handed back (requeue)

	// acceptHook, set by tests only (before any Accept), runs in each
	// Accept between its closed check and its wait.
	acceptHook func(*listenerView)
}

// maxProbe bounds how many views one handoff tries before it falls back to
// the shared channel, so that a handoff stays cheap with 1000 instances.
const maxProbe = 64

func newAcceptor(ln net.Listener, log *logrus.Entry, clock Clock) *acceptor {
	return &acceptor{
		ln:      ln,
		conns:   make(chan net.Conn),
		stop:    make(chan struct{}),
		quiesce: make(chan struct{}),
		done:    make(chan struct{}),
		log:     log,
		open:    map[*limitedConn]struct{}{},
		clock:   clock,
		epoch:   clock.Now(),
	}
}

// start starts the accept loop. The runner calls it once every instance
// serves: until then connections wait in the kernel's accept queue, where
// the old process of a binary upgrade still takes them, instead of being
// held by a new process that may fail to start (and reset them).
func (a *acceptor) start() { a.startOnce.Do(func() { go a.run() }) }

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
		t := newTimer(a.clock, 10*time.Millisecond)
		select {
		case <-a.stop:
			t.Stop()
			return
		case <-t.C:
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

// limit sets --max-connections (0: no limit) and --write-timeout (0: none)
// for every connection accepted from now on. Call it before run.
func (a *acceptor) limit(maxConns int, writeStall time.Duration) {
	if maxConns > 0 {
		a.slots = make(chan struct{}, maxConns)
	}
	a.writeStall = writeStall
}

// loop accepts and hands over connections until the acceptor stops, or,
// once quiescing (closeAfterQueue), until the stop's queue is taken.
func (a *acceptor) loop() {
	s := acceptLoop{a: a, left: -1}
	defer s.stopTimers()
	for {
		s.noteQuiesce()
		st := s.takeSlot()
		if st == proceed {
			st = s.quiesceStep()
		}
		var c net.Conn
		if st == proceed {
			c, st = s.accept()
		}
		switch st {
		case stopLoop:
			return
		case again:
			continue
		}
		if s.quiesceBy != nil && s.left > 0 {
			s.left--
		}
		if !a.hand(a.track(c), s.quiesceBy) {
			return
		}
	}
}

// acceptLoop is the accept loop's state between its steps.
type acceptLoop struct {
	a     *acceptor
	delay time.Duration // the backoff after an accept error
	// Quiescing (closeAfterQueue): quiesceBy fires at the last moment to
	// accept; left is how many connections of the stop's queue are not
	// taken yet (-1: not known); armed says this Accept has its own short
	// deadline.
	quiesceBy    <-chan time.Time
	quiesceTimer *clockTimer
	left         int
	armed        bool
	// Under --max-connections: yieldTick is time to look for a silent
	// connection; yielding says the last one yielded its slot, so the
	// next may too.
	yieldTick <-chan time.Time
	ticker    *clockTicker
	yielding  bool
}

// step is what a step of the loop says comes next.
type step int

const (
	proceed  step = iota // go on with this connection
	again                // start the next round
	stopLoop             // the loop ends
)

func (s *acceptLoop) stopTimers() {
	if s.quiesceTimer != nil {
		s.quiesceTimer.Stop()
	}
	if s.ticker != nil {
		s.ticker.Stop()
	}
}

// noteQuiesce starts quiescing once closeAfterQueue asked for it.
func (s *acceptLoop) noteQuiesce() {
	if s.quiesceBy != nil || !isClosed(s.a.quiesce) {
		return
	}
	t := newTimer(s.a.clock, s.a.quiesceBy.Sub(s.a.clock.Now()))
	s.quiesceTimer, s.quiesceBy = &t, t.C
	s.left = s.a.quiesceLeft
}

// takeSlot waits for a free slot under --max-connections: at the limit the
// acceptor stops accepting, so new connections wait in the kernel's backlog
// until one closes instead of taking descriptors up to EMFILE; meanwhile a
// connection silent for silentYield yields its slot.
func (s *acceptLoop) takeSlot() step {
	a := s.a
	if a.slots == nil {
		return proceed
	}
	if s.ticker == nil {
		s.ticker = newTicker(a.clock, silentYield/4)
		s.yieldTick = s.ticker.C
	}
	if s.yielding && len(a.slots) == cap(a.slots) {
		// The last yield made room for a connection that was waiting:
		// more may wait behind it.
		if s.yielding = a.evictSilent("--max-connections"); s.yielding {
			return again
		}
	}
	select {
	case a.slots <- struct{}{}:
		return proceed
	case <-a.stop:
		return stopLoop
	case <-s.yieldTick:
		if len(a.slots) == cap(a.slots) {
			s.yielding = a.evictSilent("--max-connections")
		}
		return again
	case <-a.quiesce:
		if s.quiesceBy == nil {
			return again // start quiescing, then wait for a slot again
		}
		select {
		case a.slots <- struct{}{}:
			return proceed
		case <-a.stop:
			return stopLoop
		case <-s.quiesceBy:
			return stopLoop
		}
	}
}

// quiesceStep, while quiescing, ends the loop once every connection queued
// at the stop was taken or the deadline passed (closing the socket now: a
// connection arriving later is refused, or, on a socket systemd holds,
// waits in the queue for the next process, instead of keeping this stop
// busy for as long as clients keep dialling); else it arms the next Accept.
func (s *acceptLoop) quiesceStep() step {
	if s.quiesceBy == nil {
		return proceed
	}
	done := s.left == 0
	select {
	case <-s.quiesceBy:
		done = true
	default:
	}
	if done {
		s.closeSocket()
		return stopLoop
	}
	s.armed = s.a.armQuiet()
	return proceed
}

// closeSocket closes the shared socket and gives back this round's slot.
func (s *acceptLoop) closeSocket() {
	s.a.ln.Close()
	s.releaseSlot()
}

func (s *acceptLoop) releaseSlot() {
	if s.a.slots != nil {
		<-s.a.slots
	}
}

// accept takes the next connection.
func (s *acceptLoop) accept() (net.Conn, step) {
	a := s.a
	c, err := a.ln.Accept()
	if err != nil && s.quiesceBy != nil && s.armed && isTimeout(err) {
		// No connection within queueQuiet; the runtime may not have
		// polled the socket meanwhile, so ask the kernel itself.
		var ok bool
		if c, ok = acceptQueued(a.ln); !ok {
			// The accept queue is empty: close the socket now, so that
			// a connection arriving after the check is refused rather
			// than queued and reset by a later close.
			s.closeSocket()
			return nil, stopLoop
		}
		err = nil
	}
	if err != nil {
		s.releaseSlot()
		return nil, s.survive(err)
	}
	s.delay = 0
	return c, proceed
}

// survive handles an accept error: EMFILE, ENFILE, ECONNABORTED, … never
// end the listener; the loop backs off like net/http does (5ms doubling up
// to 1s). Out of descriptors, a silent connection yields first: then the
// acceptor retries at once.
func (s *acceptLoop) survive(err error) step {
	a := s.a
	select {
	case <-a.stop:
		return stopLoop
	default:
	}
	if isTimeout(err) && isClosed(a.quiesce) {
		return again // woken by closeAfterQueue: arm, then accept
	}
	if errors.Is(err, net.ErrClosed) {
		// Closed by someone else than close: nothing more to accept.
		a.log.WithError(err).Error("Shared listener closed")
		return stopLoop
	}
	a.errors.Add(1)
	if (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && a.evictSilent("no file descriptor left") {
		s.delay = 0
		return again
	}
	if s.delay == 0 {
		s.delay = 5 * time.Millisecond
	} else if s.delay *= 2; s.delay > time.Second {
		s.delay = time.Second
	}
	a.log.WithError(err).Warnf("Accept error; retrying in %v", s.delay)
	if a.emit != nil {
		a.emit(Event{Kind: EventAcceptError, Instance: -1, Err: err, Delay: s.delay})
	}
	t := newTimer(a.clock, s.delay)
	defer t.Stop()
	select {
	case <-a.stop:
		return stopLoop
	case <-t.C:
		return again
	}
}

// hand gives c to the newest view if it waits in Accept and has taken no
// connection yet (fresh), else to the next view in round-robin order that is
// waiting in Accept, or else to the first view to get there. It reports
// false, having closed c, when giveUp fires first (the stop's queue draining
// reached its deadline), or when the acceptor stops and no view takes c
// within handoffGrace.
//
// Handing over by position rather than by the order in which views came back
// to Accept keeps the spread even under load without yielding the processor
// after every handoff (which cost about 5 % of new-connection throughput).
func (a *acceptor) hand(c net.Conn, giveUp <-chan time.Time) bool {
	if f := a.fresh.Load(); f != nil {
		select {
		case f.own <- c:
			a.fresh.CompareAndSwap(f, nil)
			return true
		default: // not in Accept yet: the round-robin
		}
	}
	if vs := a.views.Load(); vs != nil {
		n := len(*vs)
		for range min(n, maxProbe) {
			a.next++
			select {
			case (*vs)[a.next%n].own <- c:
				return true
			default:
			}
		}
	}
	select {
	case a.conns <- c:
		return true
	case <-a.stop:
		return a.handLate(c)
	case <-giveUp:
		// The stop's queue draining reached its deadline: the lives that
		// still serve take c within handoffGrace (their own deadline is
		// later), or it is closed.
		a.handLate(c)
		return false
	}
}

// handoffGrace bounds how long a connection accepted before the acceptor
// stopped waits for a live view: a binary upgrade stops the acceptor while
// every life still serves, and a client whose handshake the kernel already
// completed must be served, not reset.
const handoffGrace = time.Second

// handLate hands c, accepted before the acceptor stopped, to a view that
// still serves, or closes it when none takes it within handoffGrace.
func (a *acceptor) handLate(c net.Conn) bool {
	t := newTimer(a.clock, handoffGrace)
	defer t.Stop()
	select {
	case a.conns <- c:
		return true
	case <-t.C:
		c.Close()
		return false
	}
}

// requeue hands c, which a view took as it was being closed, to another
// view (through the fallback), or closes it once the acceptor stops.
func (a *acceptor) requeue(c net.Conn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.stop:
		c.Close()
		return
	default:
	}
	a.requeued.Go(func() {
		select {
		case a.conns <- c:
		case <-a.stop:
			a.handLate(c)
		}
	})
}

// queueQuiet is how long an Accept waits while the acceptor quiesces: one
// that finds no connection within it found the kernel's accept queue empty.
const queueQuiet = 5 * time.Millisecond

// closeAfterQueue stops accepting once the connections waiting in the
// kernel's accept queue at the call have been taken and handed to the lives
// (which, draining, answer them with "Connection: close"), or once an Accept
// finds the queue empty, or at deadline, then closes the shared socket.
// Closing it at once would reset every connection still in the queue;
// waiting until the queue is empty never ends while clients keep dialling a
// socket that outlives the process (systemd's), and the connections taken
// at the deadline were then cut by the lives' own. Idempotent; close may
// follow.
func (a *acceptor) closeAfterQueue(deadline time.Time) {
	started := true
	a.startOnce.Do(func() { started = false; close(a.done) })
	if !started || !canDeadline(a.ln) {
		a.close()
		return
	}
	a.quiesceOnce.Do(func() {
		a.dlMu.Lock()
		a.quiesceBy = deadline
		a.quiesceLeft = -1
		if n, ok := queueLen(a.ln); ok {
			a.quiesceLeft = n
		}
		close(a.quiesce)
		if d, ok := a.ln.(deadliner); ok {
			_ = d.SetDeadline(time.Now()) // wake the loop's Accept (a socket deadline: the real clock)
		}
		a.dlMu.Unlock()
	})
	select {
	case <-a.done:
	case <-a.stop:
	}
	a.close()
}

// armQuiet gives the next Accept a deadline queueQuiet away (the listener
// has deadlines: closeAfterQueue checked). The kernel times it: it stays
// on the real clock, whatever the runner's.
func (a *acceptor) armQuiet() bool {
	d, ok := a.ln.(deadliner)
	if !ok {
		return false
	}
	a.dlMu.Lock()
	defer a.dlMu.Unlock()
	return d.SetDeadline(time.Now().Add(queueQuiet)) == nil
}

type deadliner interface{ SetDeadline(time.Time) error }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func canDeadline(ln net.Listener) bool {
	_, ok := ln.(deadliner)
	return ok
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// close stops the accept loop, closes the shared socket and waits for the
// loop (and any requeued connection) to end. Idempotent.
func (a *acceptor) close() {
	a.once.Do(func() {
		a.mu.Lock()
		close(a.stop)
		a.mu.Unlock()
		a.ln.Close()
	})
	a.startOnce.Do(func() { close(a.done) }) // never started: nothing to wait for
	<-a.done
	a.requeued.Wait()
}

// view returns a new listener view for one instance life.
func (a *acceptor) view() *listenerView {
	v := &listenerView{acc: a, own: make(chan net.Conn), conns: a.conns, addr: a.ln.Addr(), closed: make(chan struct{})}
	a.mu.Lock()
	defer a.mu.Unlock()
	var vs []*listenerView
	if old := a.views.Load(); old != nil {
		vs = append(vs, *old...)
	}
	vs = append(vs, v)
	a.views.Store(&vs)
	a.fresh.Store(v)
	return v
}

// forget removes a closed view from the round-robin.
func (a *acceptor) forget(v *listenerView) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fresh.CompareAndSwap(v, nil)
	old := a.views.Load()
	if old == nil {
		return
	}
	vs := make([]*listenerView, 0, len(*old))
	for _, w := range *old {
		if w != v {
			vs = append(vs, w)
		}
	}
	a.views.Store(&vs)
}

// listenerView is one instance life's net.Listener on the shared socket.
// Accept takes the next connection the acceptor hands over; Close makes a
// pending and every later Accept return net.ErrClosed at once, and a closed
// view takes no connection (one it was offered as it closed goes to another
// view). Close is idempotent and never closes the shared socket, so
// http.Server.Serve, Shutdown and Close may call it freely.
type listenerView struct {
	acc    *acceptor
	own    chan net.Conn   // the round-robin handoff to this view
	conns  <-chan net.Conn // the shared fallback handoff
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
	// serveTaken: closed by closeDraining (set before closed is closed).
	serveTaken atomic.Bool
}

func (v *listenerView) Accept() (net.Conn, error) {
	select {
	case <-v.closed:
		return nil, net.ErrClosed
	default:
	}
	if v.acc.acceptHook != nil {
		v.acc.acceptHook(v)
	}
	var c net.Conn
	select {
	case c = <-v.own:
	case c = <-v.conns:
	case <-v.closed:
		return nil, net.ErrClosed
	}
	select {
	case <-v.closed:
		if v.serveTaken.Load() {
			// Closed by a life that drains: it answers what it took.
			return c, nil
		}
		// Closed while a connection was on offer too, and select took the
		// connection: a life that crashed serves no new connection.
		v.acc.requeue(c)
		return nil, net.ErrClosed
	default:
		return c, nil
	}
}

func (v *listenerView) Close() error {
	v.once.Do(func() {
		close(v.closed)
		v.acc.forget(v)
	})
	return nil
}

// closeDraining closes v for a life that ends cleanly and drains: a
// connection its Accept took as v closed is still served there (with
// "Connection: close") instead of handed back. When the runner stops, no
// other view may be left to take it.
func (v *listenerView) closeDraining() {
	v.serveTaken.Store(true)
	v.Close()
}

func (v *listenerView) Addr() net.Addr { return v.addr }

// open reports whether the view has not been closed.
func (v *listenerView) open() bool { return !isClosed(v.closed) }

// silentYield: at the connection limit (--max-connections, or no file
// descriptor left), a connection that has moved no byte either way for this
// long is closed to make room for a new one, the longest silent first: an
// idle keep-alive connection, or one that sent its headers and then nothing,
// must not lock new clients out. A connection that moves bytes (a download,
// an upload, a stream) is never silent.
const silentYield = time.Second

// now is the time in nanoseconds since a.epoch on the runner's clock
// (monotonic on the system clock).
func (a *acceptor) now() int64 { return int64(a.clock.Now().Sub(a.epoch)) }

// track wraps an accepted connection as a limitedConn and records it among
// the open ones.
func (a *acceptor) track(c net.Conn) net.Conn {
	lc := &limitedConn{Conn: c, slots: a.slots, stall: a.writeStall, acc: a}
	lc.lastIO.Store(a.now())
	lc.info.state.Store(1) // as newConnInfo: idle until its first request
	a.openMu.Lock()
	a.open[lc] = struct{}{}
	a.openMu.Unlock()
	return lc
}

// evictSilent closes the open connection that has been silent longest, if
// it has been silent for silentYield; it reports whether it closed one.
func (a *acceptor) evictSilent(why string) bool {
	now := a.now()
	var victim *limitedConn
	var at int64
	a.openMu.Lock()
	for c := range a.open {
		if t := c.lastIO.Load(); now-t >= int64(silentYield) && (victim == nil || t < at) {
			victim, at = c, t
		}
	}
	a.openMu.Unlock()
	if victim == nil {
		return false
	}
	if a.evicted.Add(1) == 1 {
		a.log.Warnf("At the connection limit (%s): closing connections silent for %v or more to make room for new ones, the longest silent first (counted in Stats.ConnectionsYielded); this is logged once", why, silentYield)
	}
	victim.Close()
	return true
}

// writeChunk is the most one stall-bounded write sends: a write of more waits
// for the client chunk by chunk, each within --write-timeout, so that a slow
// client that keeps reading is never cut while one that stops is.
const writeChunk = 64 << 10

// limitedConn is an accepted connection under --max-connections (its Close
// gives its slot back, once) and --write-timeout (each write of up to
// writeChunk bytes must be taken by the client within stall). A deadline
// set explicitly (http.ResponseController.SetWriteDeadline on HTTP/1, the TLS
// handshake) wins until it is cleared with the zero time, which net/http does
// after each answer: a handler's deadline holds for its own answer only.
//
// The stall deadline is moved only when it is older than stall/rearmEvery:
// setting a socket deadline costs a timer update (about 0.5 µs a request,
// 2-3 % of keep-alive throughput), and a write then still gets at least
// stall·(1-1/rearmEvery) to make progress (59 s of the default 60 s).
type limitedConn struct {
	net.Conn
	slots chan struct{}
	stall time.Duration
	acc   *acceptor
	// lastIO is when a byte last moved either way, in nanoseconds since
	// acc.epoch (evictSilent).
	lastIO atomic.Int64

	once   sync.Once
	mu     sync.Mutex
	pinned bool      // an explicit write deadline is set
	armed  time.Time // when the stall deadline was last set (zero: none is)

	// The life that serves it (set by its lifeListener's Accept, drain.go):
	// its state for closeIdle, and whether a handler hijacked it (then the
	// life holds it in hijackedConns until it is closed). One wrapper per
	// connection, not two: each layer is a stack frame on every write, and
	// HTTP/2 writes each frame from a new goroutine, whose stack then grows
	// (issue 26: 6 % of h2c throughput).
	l        *life
	hijacked atomic.Bool
	info     connInfo
}

// rearmEvery: the stall deadline is moved once it is stall/rearmEvery old.
const rearmEvery = 64

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastIO.Store(c.acc.now())
	}
	return n, err
}

func (c *limitedConn) Write(p []byte) (int, error) {
	if c.stall > 0 {
		if len(p) > writeChunk {
			return c.writeChunks(p)
		}
		c.arm()
	}
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.lastIO.Store(c.acc.now())
	}
	return n, err
}

// writeChunks writes p of more than writeChunk bytes chunk by chunk, each
// with its stall deadline.
func (c *limitedConn) writeChunks(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		c.arm()
		n, err := c.Conn.Write(chunk)
		written += n
		if n > 0 {
			c.lastIO.Store(c.acc.now())
		}
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// arm gives the next write its stall deadline, unless an explicit one is
// set or the one set less than stall/rearmEvery ago still stands.
func (c *limitedConn) arm() {
	now := time.Now() // a socket deadline: the real clock, whatever the runner's
	c.mu.Lock()
	if !c.pinned && (c.armed.IsZero() || now.Sub(c.armed) >= c.stall/rearmEvery) {
		_ = c.Conn.SetWriteDeadline(now.Add(c.stall))
		c.armed = now
	}
	c.mu.Unlock()
}

func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() && !c.pinned {
		// net/http clears the write deadline after every answer, in case
		// a handler set one; none is set: the stall deadline stands
		// (clearing it, then setting it again at the next answer, cost
		// two timer updates a request).
		return nil
	}
	c.pinned, c.armed = !t.IsZero(), time.Time{}
	return c.Conn.SetWriteDeadline(t)
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinned, c.armed = !t.IsZero(), time.Time{}
	return c.Conn.SetDeadline(t)
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.hijacked.Load() {
		c.l.hijackedConns.Delete(c)
	}
	c.once.Do(func() {
		c.acc.openMu.Lock()
		delete(c.acc.open, c)
		c.acc.openMu.Unlock()
		if c.slots != nil {
			<-c.slots
		}
	})
	return err
}

// CloseWrite keeps net/http's half-close after an error answer (it lets the
// client read the answer before the connection goes).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
