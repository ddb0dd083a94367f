package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/pubsub"
)

// TestStress publishes, subscribes, unsubscribes and closes clients
// concurrently under every policy (run it with -race). It checks that
// nothing panics (no send on a closed channel), every channel is closed in
// the end, every error is an expected one, and the counters add up.
func TestStress(t *testing.T) {
	b := pubsub.NewMemory(pubsub.WithDefaultQueueSize(4), pubsub.WithEventHook(func(pubsub.Event) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 6*wait)
	defer cancel()
	const (
		workers = 8
		rounds  = 300
	)
	policies := []pubsub.Policy{pubsub.DropNewest, pubsub.DropOldest, pubsub.Block}
	topics := []string{"a", "a.b", "a.c", "b.x.y"}
	patterns := []string{"a", "a.*", "a.>", ">", "b.*.y", "a.b"}
	var received atomic.Uint64
	var wg, closers sync.WaitGroup
	var life atomic.Int64
	var unreadMu sync.Mutex
	var unread []pubsub.Subscription // checked closed at the end
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				id := fmt.Sprintf("w%d#%d", w, life.Add(1))
				c, err := b.Register(ctx, pubsub.ClientInfo{ID: id})
				if err != nil {
					t.Errorf("register: %v", err)
					return
				}
				var readers sync.WaitGroup
				var subs []pubsub.Subscription
				for i := range 3 {
					opts := []pubsub.SubscribeOption{pubsub.WithPolicy(policies[(w+i)%len(policies)]), pubsub.WithQueueSize(1 + i)}
					if (w+r+i)%4 == 0 {
						opts = append(opts, pubsub.InGroup("g"))
					}
					s, err := c.Subscribe(ctx, patterns[(w+r+i)%len(patterns)], opts...)
					if err != nil {
						t.Errorf("subscribe: %v", err)
						return
					}
					subs = append(subs, s)
					if i == 2 { // the third one is never read: it overflows
						unreadMu.Lock()
						unread = append(unread, s)
						unreadMu.Unlock()
					} else {
						readers.Add(1)
						go func() {
							defer readers.Done()
							for m := range s.C() {
								received.Add(1)
								if m.IsRequest() {
									_ = m.Respond(ctx, "ok")
								}
							}
						}()
					}
				}
				for i := range 10 {
					pctx, pcancel := context.WithTimeout(ctx, time.Millisecond)
					var err error
					switch i % 5 {
					case 3:
						_, err = c.Publish(pctx, topics[(i+w)%len(topics)], i, pubsub.Retain())
					case 4:
						if r%4 != 0 { // a request unanswered waits for pctx: a few are enough
							break
						}
						if _, err = c.Request(pctx, topics[(i+w)%len(topics)], i); errors.Is(err, pubsub.ErrNoResponders) {
							err = nil
						}
					default:
						_, err = c.Publish(pctx, topics[(i+w)%len(topics)], i)
					}
					pcancel()
					if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, pubsub.ErrClosed) {
						t.Errorf("publish: %v", err)
					}
				}
				switch r % 3 {
				case 0:
					for _, s := range subs {
						_ = s.Unsubscribe()
					}
					_ = c.Close()
				case 1:
					_ = subs[0].Unsubscribe()
					_ = c.Close()
				default:
					closers.Go(func() { _ = c.Close() }) // close racing the next round
				}
				readers.Wait()
			}
		}()
	}
	wg.Wait()
	closers.Wait()
	_ = b.Close(context.Background())
	for _, s := range unread {
		closed(t, s)
	}
	st := b.Stats()
	if st.Delivered < received.Load() {
		t.Errorf("delivered %d < received %d", st.Delivered, received.Load())
	}
	if st.Published == 0 || st.Delivered == 0 {
		t.Errorf("nothing happened: %+v", st)
	}
	t.Logf("stats %+v, received by readers %d", st, received.Load())
}

// TestStressNATS: the same churn on the NATS backend, whose subscriptions
// share NATS subscriptions per pattern.
func TestStressNATS(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	b := newNATS(t, url, pubsub.WithDefaultQueueSize(4))
	other := newNATS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 6*wait)
	defer cancel()
	patterns := []string{"a", "a.*", ">", "a.b"}
	topics := []string{"a", "a.b", "a.c"}
	policies := []pubsub.Policy{pubsub.DropNewest, pubsub.DropOldest, pubsub.Block}
	remote := register(t, other, "remote")
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	pubs.Add(1)
	go func() { // a publisher on another "machine", meanwhile
		defer pubs.Done()
		for i := range 3000 {
			select {
			case <-stop:
				return
			default:
			}
			var opts []pubsub.PublishOption
			if i%10 == 0 {
				opts = append(opts, pubsub.Retain())
			}
			if _, err := remote.Publish(ctx, topics[i%len(topics)], i, opts...); err != nil {
				t.Errorf("remote publish: %v", err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 40 {
				c, err := b.Register(ctx, pubsub.ClientInfo{ID: fmt.Sprintf("w%d#%d", w, r)})
				if err != nil {
					t.Errorf("register: %v", err)
					return
				}
				var readers sync.WaitGroup
				for i := range 3 {
					opts := []pubsub.SubscribeOption{pubsub.WithPolicy(policies[(w+i)%len(policies)])}
					if (w+r+i)%4 == 0 {
						opts = append(opts, pubsub.InGroup("g"))
					}
					s, err := c.Subscribe(ctx, patterns[(w+r+i)%len(patterns)], opts...)
					if err != nil {
						t.Errorf("subscribe: %v", err)
						return
					}
					if i != 2 {
						readers.Add(1)
						go func() {
							defer readers.Done()
							for m := range s.C() {
								if m.IsRequest() {
									_ = m.Respond(ctx, "ok")
								}
							}
						}()
					}
					if r%2 == 0 {
						defer func() { _ = s.Unsubscribe() }()
					}
				}
				for i := range 5 {
					if _, err := c.Publish(ctx, topics[i%len(topics)], i); err != nil {
						t.Errorf("publish: %v", err)
					}
				}
				rctx, rcancel := context.WithTimeout(ctx, 50*time.Millisecond)
				if _, err := c.Request(rctx, topics[r%len(topics)], r); err != nil && !errors.Is(err, pubsub.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("request: %v", err)
				}
				rcancel()
				_ = c.Close()
				readers.Wait()
			}
		}()
	}
	wg.Wait()
	close(stop)
	pubs.Wait()
	t.Logf("stats %+v", b.Stats())
}
