package pubsub

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// feed is the buffer in front of a Block subscription's queue (its NATS
// subscription is its own). Waiting for room in a Block queue must not
// happen on nats.go's delivery goroutine: nats.go would then drop what
// piles up behind it under its pending limits, uncounted by topic (it
// does not say which messages). Instead nats.go's callback only appends
// here, bounded by the pending limits (WithPendingLimits, else nats.go's
// defaults), and drops what does not fit, counted under its topic; one
// goroutine per Block subscription waits for room in the queue.
type feed struct {
	e          *natsEntry
	maxMsgs    int
	maxBytes   int
	mu         sync.Mutex
	msgs       []*nats.Msg
	bytes      int
	wake, done chan struct{}
}

func newFeed(e *natsEntry, maxMsgs, maxBytes int) *feed {
	if maxMsgs <= 0 {
		maxMsgs = nats.DefaultSubPendingMsgsLimit
	}
	if maxBytes <= 0 {
		maxBytes = nats.DefaultSubPendingBytesLimit
	}
	return &feed{e: e, maxMsgs: maxMsgs, maxBytes: maxBytes, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// put is the NATS subscription's callback: it never waits.
func (f *feed) put(m *nats.Msg) {
	f.mu.Lock()
	if len(f.msgs) >= f.maxMsgs || f.bytes+len(m.Data) > f.maxBytes {
		f.mu.Unlock()
		f.drop(m)
		return
	}
	f.msgs = append(f.msgs, m)
	f.bytes += len(m.Data)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// drop counts m as dropped by the subscription, under its topic, and
// begins a slow episode (reported once) if none is on.
func (f *feed) drop(m *nats.Msg) {
	subs := *f.e.subs.Load()
	if len(subs) == 0 {
		return // unsubscribed meanwhile
	}
	q := subs[0].q
	topic := m.Subject[len(f.e.b.prefix):]
	q.drop(topic)
	if q.slow.CompareAndSwap(false, true) {
		if q.ts != nil {
			q.ts.slow(topic)
		}
		q.event(EventSlowConsumer)
	}
}

// run hands the buffered messages to the subscription, waiting for room
// in its queue, until the subscription goes.
func (f *feed) run() {
	for {
		select {
		case <-f.done:
			return
		case <-f.wake:
		}
		for {
			f.mu.Lock()
			if len(f.msgs) == 0 {
				f.mu.Unlock()
				break
			}
			m := f.msgs[0]
			f.msgs[0] = nil
			f.msgs = f.msgs[1:]
			f.bytes -= len(m.Data)
			f.mu.Unlock()
			select {
			case <-f.done:
				return
			default:
			}
			f.e.handle(m)
		}
	}
}
