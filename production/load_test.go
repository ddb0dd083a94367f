package production_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/goangel/angel/internal/loadclient"
)

// strictLoad is the verb tests' load: internal/loadclient's strict client
// (no retry, every failure sorted), keepAlive workers that keep their
// connection until an answer says "Connection: close" and fresh workers
// that dial for every request.
type strictLoad struct {
	cancel context.CancelFunc
	loads  []*loadclient.Load
}

// startLoad starts keepAlive + fresh workers against addr.
func startLoad(t *testing.T, addr, path string, keepAlive, fresh int) *strictLoad {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &strictLoad{cancel: cancel}
	cfg := loadclient.Config{Addr: addr, Path: path}
	if keepAlive > 0 {
		ka := cfg
		ka.Workers, ka.KeepAlive = keepAlive, true
		l.loads = append(l.loads, loadclient.Start(ctx, ka))
	}
	if fresh > 0 {
		nc := cfg
		nc.Workers = fresh
		l.loads = append(l.loads, loadclient.Start(ctx, nc))
	}
	t.Cleanup(l.halt)
	return l
}

func (l *strictLoad) halt() {
	l.cancel()
	for _, ld := range l.loads {
		ld.Wait()
	}
}

func (l *strictLoad) sum(f func(*loadclient.Result) int) int {
	n := 0
	for _, ld := range l.loads {
		n += f(ld.Result())
	}
	return n
}

// ok is the number of requests answered in full.
func (l *strictLoad) ok() int {
	return l.sum(func(r *loadclient.Result) int { return r.Count(loadclient.OK) })
}

// closes is the number of answers on keep-alive connections that said
// "Connection: close".
func (l *strictLoad) closes() int { return l.sum((*loadclient.Result).CloseCount) }

// finish stops the load and fails t on any failed request, or if too few
// requests were answered for the test to mean anything.
func (l *strictLoad) finish(t *testing.T, atLeast int) {
	t.Helper()
	l.halt()
	if failed := l.sum((*loadclient.Result).Failed); failed > 0 {
		t.Errorf("%d failed requests: %s", failed, l)
	}
	if ok := l.ok(); ok < atLeast {
		t.Errorf("only %d requests answered, want at least %d", ok, atLeast)
	}
}

func (l *strictLoad) String() string {
	s := ""
	for i, ld := range l.loads {
		if i > 0 {
			s += "; "
		}
		s += ld.Result().String()
	}
	return s
}

// stopping marks that the runner is about to stop (loadclient.Load.Stopping).
func (l *strictLoad) stopping() {
	for _, ld := range l.loads {
		ld.Stopping()
	}
}

// waitAnswered waits until n more requests were answered, so that a verb
// runs under load.
func (l *strictLoad) waitAnswered(t *testing.T, n int) {
	t.Helper()
	target := l.ok() + n
	waitFor(t, 20*time.Second, fmt.Sprintf("%d requests answered", n), func() bool { return l.ok() >= target })
}
