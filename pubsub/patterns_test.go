package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/pubsub"
)

// The conformance cases of issue 15's three patterns (retained messages,
// request/reply, queue groups), run on every backend.

func publishRetained(t *testing.T, c pubsub.Client, topic string, v any) {
	t.Helper()
	if _, err := c.Publish(context.Background(), topic, v, pubsub.Retain()); err != nil {
		t.Fatalf("%s publish %q retained: %v", c.ID(), topic, err)
	}
}

// TestRetained: a new subscription gets the last retained message of each
// topic it matches, first, once, then the live ones.
func TestRetained(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			a := register(t, b, "app/0#1")
			publishRetained(t, a, "greeting", "Hello")
			publishRetained(t, a, "greeting", "Howdy") // replaces Hello
			publishRetained(t, a, "cfg.color", "blue")
			publishRetained(t, a, "cfg.size", "xl")
			publish(t, a, "greeting", "live, not retained") // nobody listens; Howdy stays

			r := register(t, b, "app/1#1")
			sg := subscribe(t, r, "greeting")
			scfg := subscribe(t, r, "cfg.*")
			m := recv(t, sg)
			if v, _ := pubsub.Decode[string](m); v != "Howdy" || !m.Retained() || m.Sender != "app/0#1" || m.Topic != "greeting" {
				t.Errorf("first on greeting: %q retained=%v sender %q topic %q, want Howdy retained from app/0#1", v, m.Retained(), m.Sender, m.Topic)
			}
			for _, want := range []string{"blue", "xl"} {
				if m := recv(t, scfg); !m.Retained() {
					t.Errorf("cfg.*: %+v not retained", m)
				} else if v, _ := pubsub.Decode[string](m); v != want {
					t.Errorf("cfg.*: %q, want %q (oldest first)", v, want)
				}
			}
			publish(t, a, "greeting", "Hi")
			if m := recv(t, sg); m.Retained() || recvDecoded(t, m) != "Hi" {
				t.Errorf("live after retained: %+v", m)
			}
			empty(t, scfg)

			// The sender's own new subscription does not get its own
			// retained message; its next life (a new client) does.
			own := subscribe(t, a, "greeting")
			publishRetained(t, register(t, b, "app/2#1"), "greeting", "Salut")
			if v := recvString(t, own); v != "Salut" {
				t.Errorf("sender's own subscription got %q first, want the live Salut (never its own retained Howdy)", v)
			}
			_ = a.Close()
			next := register(t, b, "app/0#2")
			if m := recv(t, subscribe(t, next, "cfg.color")); recvDecoded(t, m) != "blue" || !m.Retained() || m.Sender != "app/0#1" {
				t.Errorf("next life: %+v, want its predecessor's retained blue", m)
			}
			// A queue-group member gets no retained message.
			g := subscribe(t, register(t, b, "worker"), "greeting", pubsub.InGroup("workers"))
			publish(t, next, "greeting", "to the group")
			if v := recvString(t, g); v != "to the group" {
				t.Errorf("group member got %q first, want the live message only", v)
			}
		})
	}
}

func recvDecoded(t *testing.T, m pubsub.Message) string {
	t.Helper()
	v, err := pubsub.Decode[string](m)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRetainedRace: subscriptions made while retained messages are
// published get each message once (retained or live), in order.
func TestRetainedRace(t *testing.T) {
	const n = 200
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			p := register(t, b, "p")
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					if _, err := p.Publish(context.Background(), "counter", i, pubsub.Retain()); err != nil {
						t.Errorf("publish: %v", err)
						return
					}
				}
			})
			var subs []pubsub.Subscription
			for i := range 5 {
				subs = append(subs, subscribe(t, register(t, b, fmt.Sprint("r", i)), "counter", pubsub.WithQueueSize(2*n)))
			}
			wg.Wait()
			for i, s := range subs {
				last := -1
				for last != n-1 {
					v, err := pubsub.Decode[int](recv(t, s))
					if err != nil {
						t.Fatal(err)
					}
					if v <= last {
						t.Fatalf("subscription %d: %d after %d (a duplicate or out of order)", i, v, last)
					}
					last = v
				}
			}
		})
	}
}

// TestRetainLimit: past the limit a retained publish is delivered, not
// retained, and counted; replacing a retained topic still works.
func TestRetainLimit(t *testing.T) {
	for _, be := range limitBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			p, r := register(t, b, "p"), register(t, b, "r")
			live := subscribe(t, r, "t.>")
			publishRetained(t, p, "t.1", 1)
			publishRetained(t, p, "t.2", 2)
			n, err := p.Publish(context.Background(), "t.3", 3, pubsub.Retain())
			if !errors.Is(err, pubsub.ErrRetainLimit) || n != 1 {
				t.Errorf("third retained topic: %d %v, want 1 and ErrRetainLimit", n, err)
			}
			publishRetained(t, p, "t.1", 11)
			for _, want := range []int{1, 2, 3, 11} {
				if v, _ := pubsub.Decode[int](recv(t, live)); v != want {
					t.Errorf("live got %d, want %d", v, want)
				}
			}
			s := subscribe(t, register(t, b, "late"), "t.>")
			for _, want := range []int{2, 11} {
				if v, _ := pubsub.Decode[int](recv(t, s)); v != want {
					t.Errorf("late subscriber got %d, want %d", v, want)
				}
			}
			if st := b.Stats(); st.RetainRejected != 1 {
				t.Errorf("stats %+v, want RetainRejected 1", st)
			}
		})
	}
}

// TestRequestReply: the first answer from another client, never from the
// requester itself; Respond only on requests.
func TestRequestReply(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req, srv := register(t, b, "app/0#1"), register(t, b, "app/1#1")
			if _, err := req.Request(ctx, "time", "now?"); !errors.Is(err, pubsub.ErrNoResponders) {
				t.Errorf("request with no subscription: %v, want ErrNoResponders", err)
			}
			own := subscribe(t, req, "time", pubsub.IncludeSelf())
			s := subscribe(t, srv, "time")
			answered := make(chan error, 1)
			go func() {
				m, ok := <-s.C()
				if !ok || !m.IsRequest() || m.Sender != "app/0#1" {
					answered <- fmt.Errorf("server got %+v (open %v), want a request from app/0#1", m, ok)
					return
				}
				answered <- m.Respond(ctx, "noon")
			}()
			got, m, err := pubsub.RequestAs[string](ctx, req, "time", "now?")
			if err != nil || got != "noon" || m.Sender != "app/1#1" {
				t.Fatalf("request: %q from %q (%v), want noon from app/1#1", got, m.Sender, err)
			}
			if err := <-answered; err != nil {
				t.Fatal(err)
			}
			empty(t, own) // never delivered to the requester itself

			// A plain message cannot be answered.
			publish(t, req, "time", "tick")
			if m := recv(t, s); m.IsRequest() || !errors.Is(m.Respond(ctx, "x"), pubsub.ErrNotRequest) {
				t.Errorf("Respond on a plain message: want ErrNotRequest")
			}

			// No answer: ctx ends the wait.
			short, cancelShort := context.WithCancel(ctx)
			go func() {
				<-s.C()
				cancelShort()
			}()
			if _, err := req.Request(short, "time", "again?"); !errors.Is(err, context.Canceled) {
				t.Errorf("unanswered request: %v, want context.Canceled", err)
			}
		})
	}
}

// TestRequestOnlySelf: a request whose only matching subscriptions are
// the requester's own (which never get its requests) fails with
// ErrNoResponders on every backend, without waiting for ctx, whatever the
// kind of subscription; another client's subscription answers again.
func TestRequestOnlySelf(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			// Far longer than an answer takes: the defect waited for it.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req := register(t, b, "app/0#1")
			for _, tc := range []struct {
				name, pattern string
				opts          []pubsub.SubscribeOption
			}{
				{"plain", "svc.time", nil},
				{"include-self", "svc.time", []pubsub.SubscribeOption{pubsub.IncludeSelf()}},
				{"wildcard", "svc.*", nil},
				{"group", "svc.time", []pubsub.SubscribeOption{pubsub.InGroup("clocks")}},
				{"block", "svc.time", []pubsub.SubscribeOption{pubsub.WithPolicy(pubsub.Block)}},
			} {
				own := subscribe(t, req, tc.pattern, tc.opts...)
				if _, err := req.Request(ctx, "svc.time", "now?"); !errors.Is(err, pubsub.ErrNoResponders) {
					t.Errorf("%s: request with only the requester's own subscription: %v, want ErrNoResponders", tc.name, err)
				}
				empty(t, own)
				_ = own.Unsubscribe()
			}

			own := subscribe(t, req, "svc.time")
			srv := subscribe(t, register(t, b, "app/1#1"), "svc.time")
			go func() {
				if m, ok := <-srv.C(); ok {
					_ = m.Respond(ctx, "noon")
				}
			}()
			if got, m, err := pubsub.RequestAs[string](ctx, req, "svc.time", "now?"); err != nil || got != "noon" || m.Sender != "app/1#1" {
				t.Errorf("request with another client's subscription too: %q from %q (%v), want noon from app/1#1", got, m.Sender, err)
			}
			empty(t, own)
		})
	}
}

// TestRequestFirstAnswer: with two responders, one answer is returned and
// the later Respond is dropped without error.
func TestRequestFirstAnswer(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			req := register(t, b, "req")
			var wg sync.WaitGroup
			for i := range 2 {
				s := subscribe(t, register(t, b, fmt.Sprint("srv", i)), "q")
				wg.Go(func() {
					m := recv(t, s)
					if err := m.Respond(ctx, i); err != nil {
						t.Errorf("respond %d: %v", i, err)
					}
				})
			}
			m, err := req.Request(ctx, "q", nil)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := pubsub.Decode[int](m); err != nil || m.Sender != fmt.Sprint("srv", v) {
				t.Errorf("answer %v from %q (%v)", v, m.Sender, err)
			}
			wg.Wait()
		})
	}
}

// TestQueueGroups: each message reaches one member of each group (spread
// evenly, never the sender's own member) and every ordinary subscription.
func TestQueueGroups(t *testing.T) {
	const n = 30
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			pub := register(t, b, "pub")
			// The publisher is a member too: it never gets its own messages.
			own := subscribe(t, pub, "jobs.*", pubsub.InGroup("workers"))
			var workers, auditors []pubsub.Subscription
			for i := range 3 {
				workers = append(workers, subscribe(t, register(t, b, fmt.Sprint("w", i)), "jobs.*", pubsub.InGroup("workers"), pubsub.WithQueueSize(n)))
			}
			for i := range 2 {
				auditors = append(auditors, subscribe(t, register(t, b, fmt.Sprint("a", i)), "jobs.>", pubsub.InGroup("auditors"), pubsub.WithQueueSize(n)))
			}
			plain := subscribe(t, register(t, b, "log"), "jobs.*", pubsub.WithQueueSize(n))
			for i := range n {
				publish(t, pub, "jobs.build", i)
			}
			counts := func(subs []pubsub.Subscription) []int {
				c := make([]int, len(subs))
				for i, s := range subs {
					c[i] = len(s.C())
				}
				return c
			}
			sum := func(c []int) int {
				t := 0
				for _, x := range c {
					t += x
				}
				return t
			}
			testutil.WaitFor(t, wait, "every message to reach each group and the plain subscription", func() bool {
				return sum(counts(workers)) == n && sum(counts(auditors)) == n && len(plain.C()) == n
			})
			if nc, ok := b.(*pubsub.NATS); ok {
				fctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				if err := nc.Conn().FlushWithContext(fctx); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range [][]int{counts(workers), counts(auditors)} {
				if sum(c) != n {
					t.Errorf("group got %v: %d messages, want each of %d once", c, sum(c), n)
				}
				for _, x := range c {
					if x < n/len(c)/2 {
						t.Errorf("group spread %v: uneven", c)
					}
				}
			}
			empty(t, own)
			// A request to the group is answered by one member.
			go func() {
				for m := range workers[0].C() {
					if m.IsRequest() {
						_ = m.Respond(context.Background(), "w0")
					}
				}
			}()
			go func() {
				for m := range workers[1].C() {
					if m.IsRequest() {
						_ = m.Respond(context.Background(), "w1")
					}
				}
			}()
			go func() {
				for m := range workers[2].C() {
					if m.IsRequest() {
						_ = m.Respond(context.Background(), "w2")
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if v, m, err := pubsub.RequestAs[string](ctx, pub, "jobs.urgent", 1); err != nil || v != m.Sender {
				t.Errorf("request to the group: %q from %q (%v)", v, m.Sender, err)
			}
		})
	}
}

// TestRetainedOverflow: retained messages that do not fit a new
// subscription's queue are dropped and counted, whatever its policy: a
// Block subscription must not stall its own Subscribe (nobody reads yet).
func TestRetainedOverflow(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			p := register(t, b, "p")
			for _, topic := range []string{"t.1", "t.2", "t.3"} {
				publishRetained(t, p, topic, topic)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			s, err := register(t, b, "r").Subscribe(ctx, "t.*", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.Block))
			if err != nil {
				t.Fatal(err)
			}
			if v := recvString(t, s); v != "t.1" || s.Dropped() != 2 {
				t.Errorf("got %q, dropped %d; want the oldest and 2 dropped", v, s.Dropped())
			}
		})
	}
}

// TestGroupPrefersRoom: a group member whose queue is full is passed over
// while another has room; only when every member is full does the
// policy drop (counted).
func TestGroupPrefersRoom(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			p := register(t, b, "p")
			stuck := subscribe(t, register(t, b, "stuck"), "jobs", pubsub.InGroup("w"), pubsub.WithQueueSize(1))
			free := subscribe(t, register(t, b, "free"), "jobs", pubsub.InGroup("w"), pubsub.WithQueueSize(10))
			for i := range 11 {
				publish(t, p, "jobs", i)
			}
			testutil.WaitFor(t, wait, "the 11 jobs to be queued", func() bool { return len(stuck.C())+len(free.C()) == 11 })
			if stuck.Dropped()+free.Dropped() != 0 {
				t.Errorf("dropped %d and %d with room in the group", stuck.Dropped(), free.Dropped())
			}
			publish(t, p, "jobs", 11) // every member is full now
			testutil.WaitFor(t, wait, "the 12th job to be dropped", func() bool { return stuck.Dropped()+free.Dropped() == 1 })
		})
	}
}

// TestRequestPermission: a request needs the right to publish to its topic.
func TestRequestPermission(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			c, err := b.Register(context.Background(), pubsub.ClientInfo{ID: "c", CanPublish: pubsub.Allow("ask.*")})
			if err != nil {
				t.Fatal(err)
			}
			subscribe(t, register(t, b, "srv"), ">")
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := c.Request(ctx, "tell.x", 1); !errors.Is(err, pubsub.ErrPermission) {
				t.Errorf("request outside CanPublish: %v, want ErrPermission", err)
			}
		})
	}
}
