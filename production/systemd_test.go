package production_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// notifySocket is a datagram socket standing in for systemd's NOTIFY_SOCKET:
// it records every notification, in order.
type notifySocket struct {
	conn *net.UnixConn
	path string
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

// listenNotify creates the socket and points NOTIFY_SOCKET at it for the test.
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short path: sun_path holds 108 bytes, t.TempDir() may be longer.
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "notify"), done: make(chan struct{})}
	s.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.conn.Close(); <-s.done })
	t.Setenv("NOTIFY_SOCKET", s.path)
	t.Setenv("WATCHDOG_USEC", "")
	t.Setenv("WATCHDOG_PID", "")
	return s
}

func (s *notifySocket) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// sync sends a marker through the socket and waits until the reader got
// it: every notification sent before is then recorded (one queue, FIFO).
func (s *notifySocket) sync(t *testing.T) {
	t.Helper()
	marker := "MARKER=" + strconv.FormatInt(time.Now().UnixNano(), 10)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(marker)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the marker notification", func() bool {
		for _, m := range s.all() {
			if m == marker {
				return true
			}
		}
		return false
	})
}

// field returns the value of KEY= in a notification, and whether it is set.
func field(msg, key string) (string, bool) {
	for l := range strings.SplitSeq(msg, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestNotifySequence checks what systemd is told over a real datagram
// socket: READY=1 (with the status) once every instance serves, then, for a
// reload, RELOADING=1 with MONOTONIC_USEC, READY=1, and STOPPING=1 at the
// end, in this order.
func TestNotifySequence(t *testing.T) {
	sock := listenNotify(t)
	h := startRunner(t, hello, []string{"-j", "3"})
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / = %d, %v", code, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.run.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sock.sync(t)

	var seq []string
	set := func(m, key string) bool { v, ok := field(m, key); return ok && v == "1" }
	for _, m := range sock.all() {
		switch {
		case set(m, "READY"):
			seq = append(seq, "READY")
			if len(seq) == 1 {
				if st, _ := field(m, "STATUS"); st != "3/3 instances serving, 0 restarting" {
					t.Errorf("first READY=1 carries STATUS=%q, want %q (whole message %q)", st, "3/3 instances serving, 0 restarting", m)
				}
			}
		case set(m, "RELOADING"):
			seq = append(seq, "RELOADING")
			usec, ok := field(m, "MONOTONIC_USEC")
			if n, err := strconv.ParseUint(usec, 10, 64); !ok || err != nil || n == 0 {
				t.Errorf("RELOADING=1 without a valid MONOTONIC_USEC: %q", m)
			}
		case set(m, "STOPPING"):
			seq = append(seq, "STOPPING")
		case strings.HasPrefix(m, "STATUS="), strings.HasPrefix(m, "MARKER="):
		default:
			t.Errorf("unexpected notification %q", m)
		}
	}
	if got, want := strings.Join(seq, " "), "READY RELOADING READY STOPPING"; got != want {
		t.Errorf("notifications %s, want %s; all of them:\n%q", got, want, sock.all())
	}
}

// TestNotifyNoSocket: outside systemd (no NOTIFY_SOCKET) the notifier is a
// no-op and the runner works as usual.
func TestNotifyNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	h := startRunner(t, hello, []string{"-j", "1"})
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / = %d, %v", code, err)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Contains(h.run.Log(), "notification failed") {
		t.Errorf("log:\n%s", h.run.Log())
	}
}

// TestWatchdogPings: with WATCHDOG_USEC and WATCHDOG_PID naming this process,
// the runner pings the watchdog while its supervisor loop answers; another
// STOPPING=1 ends them.
func TestWatchdogPings(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "20000") // 20ms: a ping every 10ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	h := startRunner(t, hello, []string{"-j", "2"})
	pings := func() int {
		n := 0
		for _, m := range sock.all() {
			if m == "WATCHDOG=1" {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "5 watchdog pings", func() bool { return pings() >= 5 })
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	sock.sync(t)
	msgs := sock.all()
	for i, m := range msgs {
		if strings.Contains(m, "STOPPING=1") {
			for _, later := range msgs[i:] {
				if later == "WATCHDOG=1" {
					t.Errorf("a watchdog ping after STOPPING=1: %q", msgs)
				}
			}
		}
	}
}

// TestNotifyStatus: STATUS= follows the instances: one waiting in its
// restart backoff shows as restarting.
func TestNotifyStatus(t *testing.T) {
	sock := listenNotify(t)
	// A life that served is respawned at once; lives after the first fail
	// to start, and the second failed start waits an hour.
	failRespawns := func(app *production.App) error {
		if app.Info().Life > 1 {
			return errors.New("not now")
		}
		return crashy(app)
	}
	h := startRunner(t, failRespawns, []string{"-j", "2", "--quiet"},
		production.WithRestartPolicy(production.RestartPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Hour, StableAfter: time.Hour}))
	down := func() int {
		n := 0
		for _, s := range h.run.Stats().Instances {
			if !s.Up {
				n++
			}
		}
		return n
	}
	// Crash until one instance waits.
	waitFor(t, 20*time.Second, "an instance in its restart backoff", func() bool {
		if down() > 0 {
			return true
		}
		getWith(fresh(), h.run.URL+"/crash/crash")
		return false
	})
	// The last STATUS= sent (a datagram may carry READY=1 with it: the
	// crash can come before every instance served).
	var last string
	waitFor(t, 10*time.Second, "a STATUS= naming the instance that waits", func() bool {
		d := down()
		want := fmt.Sprintf("%d/2 instances serving, %d restarting", 2-d, d)
		for _, m := range sock.all() {
			if v, ok := field(m, "STATUS"); ok {
				last = v
			}
		}
		return d > 0 && last == want
	})
}

// TestNotifyReadyWaitsForEveryInstance: READY=1 is not sent while one
// instance is still configuring, although another already serves.
func TestNotifyReadyWaitsForEveryInstance(t *testing.T) {
	sock := listenNotify(t)
	release := make(chan struct{})
	started := make(chan int, 4)
	configure := func(app *production.App) error {
		if app.Info().Number == 1 && app.Info().Life == 1 {
			<-release
		}
		return hello(app)
	}
	out := &syncBuffer{}
	r := production.New("test", configure, production.WithOutput(out, out), production.WithLookupEnv(noEnv),
		production.WithEventHook(func(ev production.Event) {
			if ev.Kind == production.EventStarted {
				started <- ev.Instance
			}
		}))
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- r.Run(ctx, []string{"-a", "127.0.0.1", "-p", "0", "-j", "2"}) }()
	defer func() {
		cancel()
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return\n%s", out)
		}
	}()
	select {
	case n := <-started:
		if n != 0 {
			t.Fatalf("instance #%d started first, want #0", n)
		}
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatalf("instance #0 did not start\n%s", out)
	}
	sock.sync(t)
	for _, m := range sock.all() {
		if v, _ := field(m, "READY"); v == "1" {
			t.Errorf("READY=1 while instance #1 was still configuring: %q", sock.all())
		}
	}
	close(release)
	waitFor(t, 30*time.Second, "READY=1 once both instances serve", func() bool {
		for _, m := range sock.all() {
			if v, _ := field(m, "READY"); v == "1" {
				st, _ := field(m, "STATUS")
				return st == "2/2 instances serving, 0 restarting"
			}
		}
		return false
	})
}

// TestNotifyStatusAfterReload: after each reload (RELOADING=1 … READY=1) the
// status systemd shows is the current one again, not the reload's.
func TestNotifyStatusAfterReload(t *testing.T) {
	sock := listenNotify(t)
	h := startRunner(t, hello, []string{"-j", "2"})
	status := func() string { // what systemctl status shows now
		st := ""
		for _, m := range sock.all() {
			if v, ok := field(m, "STATUS"); ok {
				st = v
			}
		}
		return st
	}
	const want = "2/2 instances serving, 0 restarting"
	waitFor(t, 10*time.Second, "STATUS="+want, func() bool { return status() == want })
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := h.run.Reload(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Reload #%d: %v", i+1, err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("STATUS=%s after reload #%d", want, i+1), func() bool { return status() == want })
		sock.sync(t)
		reloading := false
		for _, m := range sock.all() {
			if v, _ := field(m, "RELOADING"); v == "1" {
				reloading = true
			}
			if v, _ := field(m, "READY"); v == "1" {
				reloading = false
			}
			if st, ok := field(m, "STATUS"); ok && !reloading && strings.HasPrefix(st, "Reloading") {
				t.Errorf("STATUS=%q outside a reload; notifications: %q", st, sock.all())
			}
		}
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
