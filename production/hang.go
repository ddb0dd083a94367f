package production

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/goangel/angel/internal/goroutines"
)

// Hang detection (--hang-timeout): each request in flight is watched for
// progress; the instance's supervisor replaces a life whose request made
// none for the timeout (supervisor.go, checkHung), and reports its
// goroutines by their labels.

// watchRequest records a request for --hang-timeout. It returns the
// request's watch (the request's respWriter and watchBody count each byte
// written or read as progress) and the function that forgets the request.
func (l *life) watchRequest() (*reqWatch, func()) {
	id := l.reqSeq.Add(1)
	rw := &reqWatch{l: l, id: id, seenAt: l.rs.clock.Now().UnixNano()}
	l.inflight.Store(id, rw)
	return rw, rw.forget
}

// lifeLabels returns a context holding the goroutine labels of life info
// (internal/goroutines: the one scheme), for pprof.SetGoroutineLabels.
func lifeLabels(info InstanceInfo) context.Context {
	return goroutines.Labels(info.ID, info.Number, info.Life)
}

// reqWatch is one request in flight under --hang-timeout. A request is hung
// when it makes no progress (no byte of its body read, none of its answer
// written) for --hang-timeout, not when it is old: a long download or upload
// that moves is never hung.
type reqWatch struct {
	l   *life
	id  uint64
	ops atomic.Uint64 // reads of the body and writes of the answer
	// Owned by the supervisor's hang check (stalledRequest): the ops it
	// saw last, and since when (unix nanoseconds).
	seen   uint64
	seenAt int64
}

func (rw *reqWatch) progress() { rw.ops.Add(1) }

// forget stops watching the request (it ended, or its connection was
// hijacked).
func (rw *reqWatch) forget() { rw.l.inflight.Delete(rw.id) }

// watchBody returns r with each read of its body counted as progress.
func (rw *reqWatch) watchBody(r *http.Request) *http.Request {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &progressBody{progressReader{r.Body, rw}, r.Body}
	}
	return r
}

// progressBody is a request body whose reads count as progress.
type progressBody struct {
	progressReader
	io.Closer
}

// progressReader counts each read of a request body, or of an answer's
// source, as progress.
type progressReader struct {
	io.Reader
	rw *reqWatch
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if n > 0 {
		r.rw.progress()
	}
	return n, err
}

// stalledRequest returns how long the request in flight that has gone
// longest without progress has gone without it. Called by the instance's
// supervisor only (it owns the watches' seen fields).
func (l *life) stalledRequest(now time.Time) (time.Duration, bool) {
	var stalled time.Duration
	found := false
	l.inflight.Range(func(_, v any) bool {
		rw := v.(*reqWatch)
		if ops := rw.ops.Load(); ops != rw.seen {
			rw.seen, rw.seenAt = ops, now.UnixNano()
		}
		if d := now.Sub(time.Unix(0, rw.seenAt)); !found || d > stalled {
			stalled, found = d, true
		}
		return true
	})
	return stalled, found
}

// goroutines returns the stacks of the goroutines labelled with this life.
func (l *life) goroutines() string {
	_, stacks, err := goroutines.Stacks(goroutines.LifeID, l.info.ID)
	if err != nil {
		return err.Error()
	}
	return stacks
}
