package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
)

// queue is one subscription's bounded queue: a buffered channel that is
// also the channel the receiver reads (so an in-memory delivery is one
// channel send, with no goroutine per message or per subscription).
//
// Closing while publishers send: a publisher holds mu.RLock for the whole
// send and checks closed; close first closes done (which wakes Block
// publishers), then takes mu.Lock, so no send can race with close(ch).
type queue struct {
	ch      chan Message
	policy  Policy
	done    chan struct{}
	mu      sync.RWMutex
	closed  bool
	closing atomic.Bool
	slow    atomic.Bool
	dropped atomic.Uint64
	global  *atomic.Uint64 // the broker's Dropped counter
	report  func(k EventKind, dropped uint64)
}

func newQueue(sc subConfig, global *atomic.Uint64, report func(EventKind, uint64)) *queue {
	return &queue{
		ch:     make(chan Message, sc.size),
		policy: sc.policy,
		done:   make(chan struct{}),
		global: global,
		report: report,
	}
}

// put hands m to the queue under its policy and reports whether it was
// queued. Events are reported through q.report holding no lock, so a hook
// may even Unsubscribe.
func (q *queue) put(ctx context.Context, m Message) (ok bool, err error) {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return false, nil
	}
	select {
	case q.ch <- m:
		// A message that found the queue empty ends a slow episode.
		drained := len(q.ch) <= 1 && q.slow.Load() && q.slow.CompareAndSwap(true, false)
		q.mu.RUnlock()
		if drained {
			q.event(EventDrained)
		}
		return true, nil
	default:
	}
	episode := q.slow.CompareAndSwap(false, true)
	switch q.policy {
	case DropOldest:
		for !ok {
			select {
			case <-q.ch:
				q.drop()
			default:
			}
			select {
			case q.ch <- m:
				ok = true
			default:
			}
		}
		q.mu.RUnlock()
	case Block:
		if episode {
			// Report before waiting, without the lock.
			q.mu.RUnlock()
			q.event(EventSlowConsumer)
			episode = false
			q.mu.RLock()
			if q.closed {
				q.mu.RUnlock()
				return false, nil
			}
		}
		select {
		case q.ch <- m:
			ok = true
		case <-q.done:
		case <-ctx.Done():
			q.drop()
			err = ctx.Err()
		}
		q.mu.RUnlock()
	default: // DropNewest
		q.drop()
		q.mu.RUnlock()
	}
	if episode {
		q.event(EventSlowConsumer)
	}
	return ok, err
}

func (q *queue) event(k EventKind) {
	if q.report != nil {
		q.report(k, q.dropped.Load())
	}
}

func (q *queue) drop() {
	q.dropped.Add(1)
	q.global.Add(1)
}

// close closes the channel once; it reports whether this call closed it.
func (q *queue) close() bool {
	if !q.closing.CompareAndSwap(false, true) {
		return false
	}
	close(q.done)
	q.mu.Lock()
	q.closed = true
	close(q.ch)
	q.mu.Unlock()
	return true
}
