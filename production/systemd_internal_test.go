package production

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/internal/testutil"
)

// TestWatchdogStopsWhenStuck: the watchdog pings a real datagram socket
// while the supervisor loop answers its heartbeats, stops pinging (and says
// so once) while the loop is stuck, and pings again when it answers again.
// The loop is simulated here: the runner's own loop cannot be made stuck
// through the public API.
func TestWatchdogStopsWhenStuck(t *testing.T) {
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var msgs []string
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	defer func() { conn.Close(); <-readerDone }()
	t.Setenv("NOTIFY_SOCKET", path)
	count := func(what string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range msgs {
			if m == what {
				n++
			}
		}
		return n
	}
	marker := 0
	flush := func() { // every ping sent so far is recorded
		marker++
		m := "MARKER=" + string(rune('a'+marker))
		if _, err := daemon.SdNotify(false, m); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the marker", func() bool { return count(m) == 1 })
	}

	log := &testutil.Buffer{}
	logger := logrus.New()
	logger.SetOutput(log)
	d := &deploy{
		log:    logrus.NewEntry(logger),
		notify: func(s string) (bool, error) { return daemon.SdNotify(false, s) },
		beat:   make(chan chan struct{}),
	}
	var stuck atomic.Bool
	var checks atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	unstick := make(chan struct{})
	wg.Go(func() { // the supervisor loop
		for {
			select {
			case <-ctx.Done():
				return
			case reply := <-d.beat:
				if stuck.Load() {
					select { // stuck: never answers, takes no more beats
					case <-unstick:
					case <-ctx.Done():
						return
					}
				}
				answerBeat(reply)
			}
		}
	})
	healthy := func(ctx context.Context, timeout time.Duration) bool {
		checks.Add(1)
		return d.healthy(ctx, timeout)
	}
	wg.Go(func() { d.watchdog(ctx, 5*time.Millisecond, healthy) })

	testutil.WaitFor(t, 10*time.Second, "3 pings from a healthy loop", func() bool { return count("WATCHDOG=1") >= 3 })
	stuck.Store(true)
	testutil.WaitFor(t, 10*time.Second, "the watchdog to notice the stuck loop", func() bool {
		return strings.Contains(log.String(), "did not answer")
	})
	flush()
	before, from := count("WATCHDOG=1"), checks.Load()
	testutil.WaitFor(t, 10*time.Second, "5 more heartbeats", func() bool { return checks.Load() >= from+5 })
	flush()
	if after := count("WATCHDOG=1"); after != before {
		t.Errorf("%d watchdog pings while the supervisor loop was stuck", after-before)
	}
	stuck.Store(false)
	close(unstick)
	testutil.WaitFor(t, 10*time.Second, "pings again", func() bool { return count("WATCHDOG=1") >= before+2 })
	if !strings.Contains(log.String(), "answers again") {
		t.Errorf("log lacks the recovery:\n%s", log)
	}
}
