package logrotate_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
)

// syncBuffer is shared with the other packages' tests.
type syncBuffer = testutil.Buffer

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	ns    atomic.Int64
	reads atomic.Int64
}

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time {
	c.reads.Add(1)
	return time.Unix(0, c.ns.Load()).UTC()
}

func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var start = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// logFiles lists the regular files in dir (not symlinks, not lock files).
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Type().IsRegular() && filepath.Ext(e.Name()) != ".tmp" && !bytes.HasSuffix([]byte(e.Name()), []byte("_lock")) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// lines counts every line of every log file in dir.
func lines(t *testing.T, dir string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, f := range logFiles(t, dir) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			m[sc.Text()]++
		}
		fh.Close()
	}
	return m
}
