package production

import (
	"context"
	"testing"
	"time"

	"github.com/goangel/angel/container"
)

// A life that ran no supervised goroutine leaves none behind at its
// release, even with its drain deadline spent: there is nothing to wait
// for, so nothing is waited for. Before, release spawned a goroutine to
// wait on the empty set and gave it 10 ms; under stress-ng the process was
// not scheduled within them and TestSilentConnectionsYield exited 124 for
// "app.Go goroutines" that never existed (an OS scheduling delay a test in
// one process cannot reproduce; this one pins the rule).
func TestReleaseWithoutGoroutinesLeavesNone(t *testing.T) {
	for i := range 5 {
		rs := &runState{r: &Runner{}, cfg: &Config{}, clock: SystemClock()}
		c := container.NewNamed("life")
		info := InstanceInfo{Number: 0, Life: i + 1}
		l := &life{rs: rs, counts: &instanceCounts{}, info: info, log: quietLog(), container: c,
			changed: make(chan struct{}, 1), recycle: make(chan struct{}, 1), labels: lifeLabels(info)}
		l.ctx, l.cancel = context.WithCancelCause(context.Background())
		if i%2 == 1 { // a timer and a goroutine that were done before the end count for nothing
			done := make(chan struct{})
			l.goSupervised(func(context.Context) error { close(done); return nil })
			<-done
			l.afterFunc(time.Hour, func() {}).Stop()
		}
		l.release(time.Now().Add(-time.Second)) // the deadline is spent
		if left := rs.stillLeft(); len(left) > 0 {
			t.Fatalf("release %d left %v running: the life had no goroutine running", i+1, left)
		}
	}
}
