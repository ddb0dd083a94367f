package production

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// flakyListener fails its first n Accepts with EMFILE, then accepts for real.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func TestAcceptorSurvivesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := newAcceptor(&flakyListener{Listener: ln, fails: 3}, quietLog(), SystemClock())
	acc.start()
	defer acc.close()
	v := acc.view()
	defer v.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan net.Conn, 1)
	go func() {
		sc, err := v.Accept()
		if err == nil {
			got <- sc
		}
	}()
	select {
	case sc := <-got:
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("no connection handed over after EMFILE errors")
	}
	if n := acc.errors.Load(); n != 3 {
		t.Errorf("accept errors counted: %d, want 3", n)
	}
}

// TestViewCloseKeepsSocket: a server on a view may Close (which closes every
// listener it serves) without closing the shared socket; Accept on a closed
// view returns at once.
func TestViewCloseKeepsSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := newAcceptor(ln, quietLog(), SystemClock())
	acc.start()
	defer acc.close()

	v1 := acc.view()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(v1) }()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	if err := v1.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := v1.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed view = %v", err)
	}

	// The shared socket still accepts, for another view.
	v2 := acc.view()
	defer v2.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial after a view's server closed: %v", err)
	}
	defer c.Close()
	sc, err := v2.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
}

// TestViewsRoundRobin: every connection reaches a view, views that wait in
// Accept get connections in turn, and a closed view leaves the round-robin at
// once: it is never handed another connection.
func TestViewsRoundRobin(t *testing.T) {
	t.Run("order", testRoundRobinOrder)
	t.Run("sockets", testRoundRobinSockets)
}

// testRoundRobinOrder drives hand directly (the accept loop does not run),
// with every view always ready to take a connection (a buffered handoff, the
// same as a view waiting in Accept), so the order is exact: 1, 2, 0, 1, …
func testRoundRobinOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := newAcceptor(ln, quietLog(), SystemClock())
	views := []*listenerView{acc.view(), acc.view(), acc.view()}
	for _, v := range views {
		v.own = make(chan net.Conn, 1)
	}
	handAll := func(n int) []int {
		var order []int
		for range n {
			c, _ := net.Pipe()
			if !acc.hand(c, nil) {
				t.Fatal("hand failed")
			}
			got := -1
			for i, v := range views {
				select {
				case <-v.own:
					got = i
				default:
				}
			}
			order = append(order, got)
		}
		return order
	}
	count := func(order []int) map[int]int {
		m := map[int]int{}
		for _, i := range order {
			m[i]++
		}
		return m
	}
	// The newest view (2) takes the first connection (fresh), then the
	// round-robin: 1, 2, 0, 1, …
	if order := handAll(1); order[0] != 2 {
		t.Fatalf("the first connection went to view %d, want the newest view, 2", order[0])
	}
	order := handAll(30)
	for k, i := range order {
		if want := (k + 1) % 3; i != want {
			t.Fatalf("connection %d went to view %d, want %d (order %v)", k, i, want, order)
		}
	}
	if m := count(order); m[0] != 10 || m[1] != 10 || m[2] != 10 {
		t.Errorf("30 connections over 3 views: %v, want 10 each", m)
	}
	views[1].Close()
	if m := count(handAll(20)); m[1] != 0 || m[0] != 10 || m[2] != 10 {
		t.Errorf("20 connections after closing view 1: %v, want 10 for views 0 and 2", m)
	}
	// A new view (a respawned life) takes the next connection, not its
	// turn after the others; one that is not in Accept yet is skipped.
	v3 := acc.view()
	v3.own = make(chan net.Conn, 1)
	views = append(views, v3)
	if order := handAll(1); order[0] != 3 {
		t.Errorf("the connection after a new view went to view %d, want the new view, 3", order[0])
	}
	v4 := acc.view() // never accepts: its unbuffered handoff never takes
	if order := handAll(1); order[0] == 4 || order[0] < 0 {
		t.Errorf("a view not in Accept was handed a connection (order %v)", order)
	}
	v4.Close()
	if acc.fresh.Load() != nil {
		t.Error("a closed view is still the fresh one")
	}
}

// testRoundRobinSockets: on real sockets and a running acceptor, every
// connection reaches a live view, and none a closed one.
func testRoundRobinSockets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := newAcceptor(ln, quietLog(), SystemClock())
	acc.start()
	defer acc.close()

	views := []*listenerView{acc.view(), acc.view(), acc.view()}
	got := make(chan int, 64)
	var wg sync.WaitGroup
	for i, v := range views {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := v.Accept()
				if err != nil {
					return
				}
				c.Close()
				got <- i
			}
		}()
	}
	defer func() {
		for _, v := range views {
			v.Close()
		}
		wg.Wait()
	}()
	dialAndCount := func(n int) map[int]int {
		t.Helper()
		counts := map[int]int{}
		for range n {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			select {
			case i := <-got:
				counts[i]++
			case <-time.After(10 * time.Second):
				t.Fatal("no view accepted the connection")
			}
			c.Close()
		}
		return counts
	}
	dialAndCount(30) // fails the test if a connection reaches no view
	views[1].Close()
	if n := len(*acc.views.Load()); n != 2 {
		t.Errorf("%d views in the round-robin after closing one, want 2", n)
	}
	if counts := dialAndCount(20); counts[1] != 0 || counts[0]+counts[2] != 20 {
		t.Errorf("20 connections after closing view 1: %v, want none for view 1", counts)
	}
}

// TestClosedViewTakesNoConnection: a view closed while a connection is on
// offer (both ready when its Accept waits, so select may take either) never
// returns the connection; it goes to a live view instead.
func TestClosedViewTakesNoConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc := newAcceptor(ln, quietLog(), SystemClock())
	// The view under test is made ready both ways just before it waits: a
	// connection in its (buffered) handoff, and closed.
	offers := map[*listenerView]net.Conn{}
	var mu sync.Mutex
	acc.acceptHook = func(v *listenerView) {
		mu.Lock()
		c, ok := offers[v]
		delete(offers, v)
		mu.Unlock()
		if ok {
			v.own <- c
			v.Close()
		}
	}
	acc.start()
	defer acc.close()

	live := acc.view()
	defer live.Close()
	taken := make(chan net.Conn)
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				close(taken)
				return
			}
			taken <- c
		}
	}()
	took := 0
	for i := range 50 {
		v := acc.view()
		v.own = make(chan net.Conn, 1)
		c, peer := net.Pipe()
		mu.Lock()
		offers[v] = c
		mu.Unlock()
		if got, err := v.Accept(); err == nil {
			t.Fatalf("try %d: a view closed with a connection on offer returned it (%v), want net.ErrClosed", i, got.RemoteAddr())
		} else if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("try %d: Accept = %v, want net.ErrClosed", i, err)
		}
		select {
		case left := <-v.own:
			// select chose closed: the connection was never taken (with
			// the real, unbuffered handoff the acceptor still holds it).
			left.Close()
			peer.Close()
			continue
		default:
		}
		took++
		select {
		case got := <-taken:
			if got != c {
				t.Fatalf("try %d: the live view got another connection", i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("try %d: the connection the closed view took as it closed reached no live view", i)
		}
		c.Close()
		peer.Close()
	}
	t.Logf("in %d of 50 tries select took the connection rather than the close", took)
}
