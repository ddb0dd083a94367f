package logrotate_test

import (
	"sync/atomic"
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

// logFiles and lines are shared with the other packages' tests.
var (
	logFiles = testutil.LogFiles
	lines    = testutil.LogLines
)
