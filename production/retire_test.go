package production_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// TestRetiredLifeTakesNoConnection: one instance, whose life crashed while
// configure fails (slowly: a database that does not answer), so that no
// life serves, first while the replacement configures, then through the
// respawn backoff. New connections made meanwhile wait (in the backlog, or
// held by the acceptor) and are answered by the next life that serves,
// never by the crashed life nor by one that failed to start: a life that
// ends leaves the rotation at once, the shared fallback handoff included.
func TestRetiredLifeTakesNoConnection(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round+1), testRetiredLifeTakesNoConnection)
	}
}

func testRetiredLifeTakesNoConnection(t *testing.T) {
	clock := newFakeClock() // the respawn backoff lasts exactly as long as the test wants
	var failing atomic.Bool
	configuring := make(chan struct{}, 16) // a failing configure began
	fail := make(chan struct{})            // closed: failing configures return
	configure := func(app *production.App) error {
		if failing.Load() {
			configuring <- struct{}{}
			<-fail
			return errors.New("database unreachable")
		}
		if err := hello(app); err != nil {
			return err
		}
		app.Router.Get("/crash", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "bye")
			app.Crash(errors.New("out of memory"))
		})
		return nil
	}
	var ev eventLog
	h := startRunner(t, configure, []string{"-j", "1", "--quiet"}, production.WithClock(clock), production.WithEventHook(ev.hook))
	defer func() {
		select {
		case <-fail:
		default:
			close(fail)
		}
	}()
	addr := h.run.Addr().String()
	// Life 1 serves (so its crash respawns at once), then crashes.
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / = %d %v", code, err)
	}
	failing.Store(true)
	if code, _, _, err := getWith(fresh(), h.run.URL+"/crash"); err != nil || code != 200 {
		t.Fatalf("GET /crash = %d %v", code, err)
	}
	// Gap 1: life 2 configures (and will fail); life 1 has crashed.
	select {
	case <-configuring:
	case <-time.After(10 * time.Second):
		t.Fatal("no respawn began within 10s of the crash")
	}
	conns := sendInGap(t, addr, 4)
	// Gap 2: life 2 fails, life 3 (at once: the first failed start after a
	// life that started well) fails too, and the instance backs off, held
	// by the clock.
	close(fail)
	var failed int
	waitFor(t, 10*time.Second, "a failed start and a backoff", func() bool {
		for _, e := range ev.all() {
			if e.Kind == production.EventRespawning && e.Delay > 0 {
				failed = e.Life
				return true
			}
		}
		return false
	})
	conns = append(conns, sendInGap(t, addr, 4)...)
	// End the gap: configure works again, the backoff ends, the next life
	// serves and answers every request sent in the gaps.
	failing.Store(false)
	waitFor(t, 10*time.Second, "the backoff timer", func() bool { return clock.advance(time.Hour) > 0 })
	next := strconv.Itoa(failed + 1)
	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("connection %d made in a gap: %v, want an answer from life %s", i, err, next)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if life := resp.Header.Get("X-Life"); resp.StatusCode != 200 || life != next {
			t.Errorf("connection %d made in a gap: %d from life %q, want 200 from life %s (lives 1 to %d had ended)", i, resp.StatusCode, life, next, failed)
		}
		c.Close()
	}
	// No connection is left for the stop's idle sweeps, which run on the
	// held clock.
	h.tr.CloseIdleConnections()
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// sendInGap opens n connections and sends a request on each; the answers
// are read later.
func sendInGap(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial %d while no life serves: %v (connections must wait, not be refused)", i, err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns
}

// TestCrashThatTipsARecycleCounts: with --max-requests 1 every request asks
// for a recycle as it starts, so a /crash lands on a life already being
// replaced. Whichever wins, Stats and the EventEnded that
// goangel_crashes_total counts agree: a crash that ended the life before
// the recycle retired it counts once in both (before, only the event said
// it crashed); an App.Crash after the clean retire ended nothing and counts
// in neither. It crashes until three crashes counted, so that the first
// case is met on a machine however loaded.
func TestCrashThatTipsARecycleCounts(t *testing.T) {
	var ev eventLog
	configure := func(app *production.App) error {
		if err := hello(app); err != nil {
			return err
		}
		app.Router.Get("/crash", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "crashing")
			app.Crash(errors.New("crash requested"))
		})
		return nil
	}
	h := startRunner(t, configure, []string{"-j", "1", "--max-requests", "1"}, production.WithEventHook(ev.hook))
	crashEnds := func() (lives, crashed int) {
		for _, e := range ev.all() {
			if e.Kind == production.EventEnded {
				lives++
				if e.Err != nil {
					crashed++
				}
			}
		}
		return lives, crashed
	}
	sent := 0
	for ; sent < 50; sent++ {
		if _, crashed := crashEnds(); crashed >= 3 {
			break
		}
		life := h.run.Stats().Instances[0].Life
		if code, _, _, err := getWith(fresh(), h.run.URL+"/crash"); err != nil || code != 200 {
			t.Fatalf("GET /crash #%d = %d, %v", sent+1, code, err)
		}
		waitFor(t, 10*time.Second, "the next life and the old one's end", func() bool {
			s := h.run.Stats()
			lives, _ := crashEnds()
			return s.Serving == 1 && s.Instances[0].Life > life && lives >= life
		})
	}
	_, crashed := crashEnds()
	if crashed < 3 {
		t.Fatalf("%d of %d /crash requests ended a life with the crash", crashed, sent)
	}
	if got := h.run.Stats().Instances[0].Crashes; got != uint64(crashed) {
		t.Errorf("Stats: %d crashes, EventEnded: %d lives ended by a crash (%d /crash sent); they must agree", got, crashed, sent)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}
