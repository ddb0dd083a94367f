package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
)

// queue is one subscription's bounded queue: a buffered channel that is
// also the channel the receiver reads, so an in-memory delivery is one
// channel send, with no goroutine per message or per subscription.
//
// The channel is closed while publishers may be about to send to it, so
// every send is fenced:
//
//   - closed (atomic) is set first; a sender checks it after announcing
//     itself and skips a closed queue.
//   - Non-blocking sends (tryPut) are fenced by the caller: the in-memory
//     broker's publish fence (see gate), or mu.RLock for NATS.
//   - Blocking sends (blockPut, the Block policy) hold mu.RLock for the
//     wait; done is closed first to wake them, then close takes mu.Lock.
type queue struct {
	ch       chan Message
	policy   Policy
	done     chan struct{}
	closed   atomic.Bool
	mu       sync.RWMutex
	chClosed bool // guarded by mu
	slow     atomic.Bool
	dropped  atomic.Uint64
	global   *atomic.Uint64 // the broker's Dropped counter
	report   func(k EventKind, dropped uint64)
	ts       *topicStats // per-topic counters, nil when off
}

func newQueue(sc subConfig, global *atomic.Uint64, report func(EventKind, uint64), ts *topicStats) *queue {
	return &queue{
		ch:     make(chan Message, sc.size),
		policy: sc.policy,
		done:   make(chan struct{}),
		global: global,
		report: report,
		ts:     ts,
	}
}

// tryPut hands m over without blocking. ok says whether m was queued; ev is
// an event for the caller to report once it is outside its fence. full
// means the queue was full and the policy is Block: the caller goes on with
// blockPut. The caller guarantees the channel is not closed meanwhile.
func (q *queue) tryPut(m Message) (ok, full bool, ev EventKind) {
	select {
	case q.ch <- m:
		// A message that finds the queue empty ends a slow episode.
		if q.slow.Load() && len(q.ch) <= 1 && q.slow.CompareAndSwap(true, false) {
			ev = EventDrained
		}
		return true, false, ev
	default:
	}
	if q.slow.CompareAndSwap(false, true) {
		ev = EventSlowConsumer
		if q.ts != nil {
			q.ts.slow(m.Topic)
		}
	}
	switch q.policy {
	case Block:
		return false, true, ev
	case DropOldest:
		for {
			select {
			case old := <-q.ch:
				q.drop(old.Topic)
			default:
			}
			select {
			case q.ch <- m:
				return true, false, ev
			default:
			}
		}
	default: // DropNewest
		q.drop(m.Topic)
		return false, false, ev
	}
}

// blockPut waits for room (Block policy) until ctx ends or the queue is
// closed. A message that ctx gave up on counts as dropped.
func (q *queue) blockPut(ctx context.Context, m Message) (ok bool, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.chClosed {
		return false, nil
	}
	select {
	case q.ch <- m:
		return true, nil
	case <-q.done:
		return false, nil
	case <-ctx.Done():
		q.drop(m.Topic)
		return false, ctx.Err()
	}
}

// lockedPut is put for callers without a fence of their own (NATS).
func (q *queue) lockedPut(ctx context.Context, m Message) bool {
	q.mu.RLock()
	if q.chClosed {
		q.mu.RUnlock()
		return false
	}
	ok, full, ev := q.tryPut(m)
	q.mu.RUnlock()
	q.event(ev)
	if full {
		ok, _ = q.blockPut(ctx, m)
	}
	return ok
}

// putNow is lockedPut that never waits: a full Block queue drops m
// (counted), as when a subscription's retained messages do not fit in it.
func (q *queue) putNow(m Message) bool {
	q.mu.RLock()
	if q.chClosed {
		q.mu.RUnlock()
		return false
	}
	ok, full, ev := q.tryPut(m)
	if full {
		q.drop(m.Topic)
	}
	q.mu.RUnlock()
	q.event(ev)
	return ok
}

// drop counts one message of topic dropped.
func (q *queue) drop(topic string) {
	q.dropped.Add(1)
	q.global.Add(1)
	if q.ts != nil {
		q.ts.dropped(topic)
	}
}

func (q *queue) event(k EventKind) {
	if k != 0 && q.report != nil {
		q.report(k, q.dropped.Load())
	}
}

// markClosed is the first step of closing: no new send starts, blocked
// senders wake. It reports whether this call closed the queue.
func (q *queue) markClosed() bool {
	if !q.closed.CompareAndSwap(false, true) {
		return false
	}
	close(q.done)
	return true
}

// closeCh is the last step, once no tryPut can be running (the caller's
// fence): it waits out blockPut callers and closes the channel.
func (q *queue) closeCh() {
	q.mu.Lock()
	if !q.chClosed {
		q.chClosed = true
		close(q.ch)
	}
	q.mu.Unlock()
}
