package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/goangel/angel/pubsub"
)

type events struct {
	mu  sync.Mutex
	evs []pubsub.Event
}

func (e *events) hook(ev pubsub.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) kinds() []pubsub.EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ks []pubsub.EventKind
	for _, ev := range e.evs {
		ks = append(ks, ev.Kind)
	}
	return ks
}

func drainInts(t *testing.T, s pubsub.Subscription) []int {
	t.Helper()
	var got []int
	for {
		select {
		case m := <-s.C():
			v, err := pubsub.Decode[int](m)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		default:
			return got
		}
	}
}

// TestOverflowPolicies: a queue of 2 receives 5 messages without reading.
func TestOverflowPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy    pubsub.Policy
		want      []int
		delivered []int // Publish's count for each of the 5
	}{
		{pubsub.DropNewest, []int{1, 2}, []int{2, 2, 1, 1, 1}},
		{pubsub.DropOldest, []int{4, 5}, []int{2, 2, 2, 2, 2}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var ev events
			b := pubsub.NewMemory(pubsub.WithEventHook(ev.hook))
			defer b.Close(context.Background())
			p, slow, fast := register(t, b, "p"), register(t, b, "slow"), register(t, b, "fast")
			s := subscribe(t, slow, "t", pubsub.WithQueueSize(2), pubsub.WithPolicy(tc.policy))
			f := subscribe(t, fast, "t", pubsub.WithQueueSize(10))
			for i := 1; i <= 5; i++ {
				if n := publish(t, p, "t", i); n != tc.delivered[i-1] {
					t.Errorf("publish %d delivered to %d, want %d", i, n, tc.delivered[i-1])
				}
			}
			if got := drainInts(t, s); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("slow got %v, want %v", got, tc.want)
			}
			// The slow one did not stall the other subscriber.
			if got := drainInts(t, f); fmt.Sprint(got) != "[1 2 3 4 5]" {
				t.Errorf("fast got %v", got)
			}
			if s.Dropped() != 3 || f.Dropped() != 0 {
				t.Errorf("dropped slow %d fast %d, want 3 and 0", s.Dropped(), f.Dropped())
			}
			st := b.Stats()
			wantDelivered := uint64(5)
			for _, n := range tc.delivered {
				wantDelivered += uint64(n) - 1
			}
			if st.Published != 5 || st.Dropped != 3 || st.Delivered != wantDelivered {
				t.Errorf("stats %+v, want 5 published, %d delivered, 3 dropped", st, wantDelivered)
			}
			// One report for the episode, however many drops.
			if k := ev.kinds(); len(k) != 1 || k[0] != pubsub.EventSlowConsumer {
				t.Fatalf("events %v, want one slow-consumer", k)
			}
			if e := ev.evs[0]; e.Client != "slow" || e.Pattern != "t" || e.Policy != tc.policy || e.Dropped != 1 {
				t.Errorf("event %+v", e)
			}
			// Drained: the next message finds the queue empty and ends the
			// episode; a new overflow is a new episode.
			publish(t, p, "t", 6)
			for i := 7; i <= 9; i++ {
				publish(t, p, "t", i)
			}
			want := []pubsub.EventKind{pubsub.EventSlowConsumer, pubsub.EventDrained, pubsub.EventSlowConsumer}
			if k := ev.kinds(); fmt.Sprint(k) != fmt.Sprint(want) {
				t.Errorf("events %v, want %v", k, want)
			}
			if s.Dropped() != 5 {
				t.Errorf("dropped %d, want 5", s.Dropped())
			}
			// Stats counts the episodes the events reported, not the drops.
			if n := b.Stats().SlowConsumers; n != 2 {
				t.Errorf("Stats().SlowConsumers = %d, want 2 (the episodes reported)", n)
			}
		})
	}
}

// TestBlockPolicy: Block waits for room, honours the publisher's ctx, and
// is released by Unsubscribe.
func TestBlockPolicy(t *testing.T) {
	t.Run("waits for the reader", func(t *testing.T) {
		b := pubsub.NewMemory()
		defer b.Close(context.Background())
		p, r := register(t, b, "p"), register(t, b, "r")
		s := subscribe(t, r, "t", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.Block))
		done := make(chan error, 1)
		go func() {
			for i := range 100 {
				if _, err := p.Publish(context.Background(), "t", i); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for i := range 100 {
			m := recv(t, s)
			if v, _ := pubsub.Decode[int](m); v != i {
				t.Fatalf("got %d, want %d", v, i)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(wait):
			t.Fatal("publisher did not finish")
		}
		if s.Dropped() != 0 {
			t.Errorf("dropped %d", s.Dropped())
		}
	})
	t.Run("publisher ctx ends the wait", func(t *testing.T) {
		var ev events
		b := pubsub.NewMemory(pubsub.WithEventHook(ev.hook))
		defer b.Close(context.Background())
		p, r, other := register(t, b, "p"), register(t, b, "r"), register(t, b, "o")
		s := subscribe(t, r, "t", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.Block))
		o := subscribe(t, other, "t")
		publish(t, p, "t", 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		n, err := p.Publish(ctx, "t", 2)
		if !errors.Is(err, context.DeadlineExceeded) || n != 1 {
			t.Errorf("publish into a full Block queue: n=%d err=%v, want 1 and DeadlineExceeded", n, err)
		}
		if s.Dropped() != 1 || b.Stats().Dropped != 1 {
			t.Errorf("dropped %d / %d, want 1", s.Dropped(), b.Stats().Dropped)
		}
		if got := drainInts(t, o); fmt.Sprint(got) != "[1 2]" {
			t.Errorf("other subscriber got %v", got)
		}
		if k := ev.kinds(); len(k) != 1 || k[0] != pubsub.EventSlowConsumer {
			t.Errorf("events %v", k)
		}
	})
	t.Run("unsubscribe releases a blocked publisher", func(t *testing.T) {
		blocked := make(chan struct{}, 1)
		b := pubsub.NewMemory(pubsub.WithEventHook(func(ev pubsub.Event) {
			if ev.Kind == pubsub.EventSlowConsumer {
				blocked <- struct{}{}
			}
		}))
		defer b.Close(context.Background())
		p, r := register(t, b, "p"), register(t, b, "r")
		s := subscribe(t, r, "t", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.Block))
		publish(t, p, "t", 1)
		res := make(chan error, 1)
		go func() {
			_, err := p.Publish(context.Background(), "t", 2)
			res <- err
		}()
		select {
		case <-blocked:
		case <-time.After(wait):
			t.Fatal("publisher never blocked")
		}
		// The event fires just before the publisher waits; Unsubscribe
		// releases it whether it is already waiting or not.
		if err := s.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-res:
			if err != nil {
				t.Errorf("publish released by unsubscribe: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("publisher still blocked after unsubscribe")
		}
		closed(t, s)
	})
}

// TestKnownClients: with WithKnownClients only listed ids register, and
// the broker's allow-lists apply on top of the client's.
func TestKnownClients(t *testing.T) {
	b := pubsub.NewMemory(pubsub.WithKnownClients(
		pubsub.ClientInfo{ID: "a", CanPublish: pubsub.Allow("greeting")},
		pubsub.ClientInfo{ID: "b"},
	))
	defer b.Close(context.Background())
	ctx := context.Background()
	if _, err := b.Register(ctx, pubsub.ClientInfo{ID: "z"}); !errors.Is(err, pubsub.ErrUnknownClient) {
		t.Errorf("unknown id: %v, want ErrUnknownClient", err)
	}
	a := register(t, b, "a")
	if _, err := a.Publish(ctx, "other", 1); !errors.Is(err, pubsub.ErrPermission) {
		t.Errorf("publish outside the broker's list: %v, want ErrPermission", err)
	}
	if _, err := a.Publish(ctx, "greeting", 1); err != nil {
		t.Errorf("publish inside: %v", err)
	}
	// Register may narrow, never widen.
	bb, err := b.Register(ctx, pubsub.ClientInfo{ID: "b", CanPublish: pubsub.Allow("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bb.Publish(ctx, "y", 1); !errors.Is(err, pubsub.ErrPermission) {
		t.Errorf("narrowed publish: %v, want ErrPermission", err)
	}
}

// TestLogger: a slow episode is logged once, as a warning naming the
// client, the pattern and the drops; its end once, as info.
func TestLogger(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	b := pubsub.NewMemory(pubsub.WithLogger(logger))
	defer b.Close(context.Background())
	p, r := register(t, b, "p"), register(t, b, "app/1#1")
	s := subscribe(t, r, "t", pubsub.WithQueueSize(1))
	for i := range 10 {
		publish(t, p, "t", i)
	}
	entries := hook.AllEntries()
	if len(entries) != 1 || entries[0].Level != logrus.WarnLevel {
		t.Fatalf("log entries %v, want one warning", entries)
	}
	f := entries[0].Data
	if f["client"] != "app/1#1" || f["pattern"] != "t" || f["dropped"] != uint64(1) || f["policy"] != "drop-newest" {
		t.Errorf("fields %v", f)
	}
	drainInts(t, s)
	publish(t, p, "t", 10)
	if entries := hook.AllEntries(); len(entries) != 2 || entries[1].Level != logrus.InfoLevel {
		t.Errorf("log entries %v, want the warning then one info", entries)
	}
}

// TestCanceledContext: a ctx that already ended fails every call.
func TestCanceledContext(t *testing.T) {
	b := pubsub.NewMemory()
	defer b.Close(context.Background())
	c := register(t, b, "c")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Publish(ctx, "t", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("publish: %v", err)
	}
	if _, err := c.Subscribe(ctx, "t"); !errors.Is(err, context.Canceled) {
		t.Errorf("subscribe: %v", err)
	}
	if _, err := b.Register(ctx, pubsub.ClientInfo{ID: "d"}); !errors.Is(err, context.Canceled) {
		t.Errorf("register: %v", err)
	}
}

// TestPublishAllocs: at most one allocation per publish whatever the
// fan-out (boxing a non-constant payload into any; an int from 0 to 255 or
// a pointer costs nothing), measured on the delivery path: every message
// reaches every subscription's queue (none is dropped).
func TestPublishAllocs(t *testing.T) {
	const runs = 1000
	for _, k := range []int{1, 16} {
		b := pubsub.NewMemory()
		p := register(t, b, "p")
		for i := range k {
			// Room for every message AllocsPerRun publishes (runs + 1).
			subscribe(t, register(t, b, fmt.Sprint("r", i)), "t", pubsub.WithQueueSize(runs+1))
		}
		ctx := context.Background()
		payload := "some payload"
		n := 0
		allocs := testing.AllocsPerRun(runs, func() {
			n++
			_, _ = p.Publish(ctx, "t", payload+string(rune('a' + n%26))[:0])
		})
		if st := b.Stats(); st.Dropped != 0 || st.Delivered != uint64(k*(runs+1)) {
			t.Fatalf("K=%d: stats %+v, want every message delivered to all %d subscriptions", k, st, k)
		}
		if allocs > 1 {
			t.Errorf("K=%d: %.1f allocs per delivered publish, want <= 1", k, allocs)
		}
		_ = b.Close(context.Background())
	}
}

// BenchmarkPublish: one publish delivered to K subscriptions whose
// receivers read every message (the delivery path, not the drop path).
// ns/op and allocs/op are per publish.
func BenchmarkPublish(b *testing.B) {
	for _, k := range []int{1, 4, 16} {
		b.Run(fmt.Sprint("K=", k), func(b *testing.B) {
			br := pubsub.NewMemory()
			defer br.Close(context.Background())
			p := register(b, br, "p")
			var wg sync.WaitGroup
			for i := range k {
				s := subscribe(b, register(b, br, fmt.Sprint("r", i)), "t", pubsub.WithQueueSize(1024), pubsub.WithPolicy(pubsub.Block))
				wg.Go(func() {
					for range s.C() {
					}
				})
			}
			ctx := context.Background()
			v := new(int)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Publish(ctx, "t", v); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if st := br.Stats(); st.Dropped != 0 {
				b.Fatalf("dropped %d", st.Dropped)
			}
			_ = br.Close(context.Background())
			wg.Wait()
		})
	}
}

// BenchmarkRetainedPublish: a retained publish beside a plain one (target:
// within 1.5x), one receiver reading.
func BenchmarkRetainedPublish(b *testing.B) {
	for _, retain := range []bool{false, true} {
		b.Run(fmt.Sprint("retain=", retain), func(b *testing.B) {
			br := pubsub.NewMemory()
			defer br.Close(context.Background())
			p := register(b, br, "p")
			s := subscribe(b, register(b, br, "r"), "t", pubsub.WithQueueSize(1024), pubsub.WithPolicy(pubsub.Block))
			var wg sync.WaitGroup
			wg.Go(func() {
				for range s.C() {
				}
			})
			var opts []pubsub.PublishOption
			if retain {
				opts = append(opts, pubsub.Retain())
			}
			ctx := context.Background()
			v := new(int)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Publish(ctx, "t", v, opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = br.Close(context.Background())
			wg.Wait()
		})
	}
}

// BenchmarkRequestReply: the round trip of Request to one responder
// (target: p50 within 20 µs; ns/op is the mean).
func BenchmarkRequestReply(b *testing.B) {
	br := pubsub.NewMemory()
	defer br.Close(context.Background())
	req := register(b, br, "req")
	s := subscribe(b, register(b, br, "srv"), "q")
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range s.C() {
			_ = m.Respond(context.Background(), m.Payload)
		}
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := req.Request(ctx, "q", 1); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = br.Close(context.Background())
	wg.Wait()
}

// TestHookMayUnsubscribe: the event hook runs outside every lock, so it
// may even unsubscribe the slow subscription.
func TestHookMayUnsubscribe(t *testing.T) {
	for _, p := range []pubsub.Policy{pubsub.DropNewest, pubsub.DropOldest, pubsub.Block} {
		t.Run(p.String(), func(t *testing.T) {
			var s pubsub.Subscription
			b := pubsub.NewMemory(pubsub.WithEventHook(func(ev pubsub.Event) {
				if ev.Kind == pubsub.EventSlowConsumer {
					_ = s.Unsubscribe()
				}
			}))
			defer b.Close(context.Background())
			pub, r := register(t, b, "p"), register(t, b, "r")
			s = subscribe(t, r, "t", pubsub.WithQueueSize(1), pubsub.WithPolicy(p))
			for i := range 3 {
				if _, err := pub.Publish(context.Background(), "t", i); err != nil {
					t.Fatal(err)
				}
			}
			closed(t, s)
		})
	}
}

// TestAllowListImmutable: an AllowList keeps its own copy of the patterns.
func TestAllowListImmutable(t *testing.T) {
	patterns := []string{"news.>"}
	l := pubsub.Allow(patterns...)
	patterns[0] = ">"
	l.Patterns()[0] = ">"
	if got := l.Patterns(); len(got) != 1 || got[0] != "news.>" || l.All() {
		t.Fatalf("Allow changed from outside: %v (all %v)", got, l.All())
	}
	b := pubsub.NewMemory()
	defer b.Close(context.Background())
	c, err := b.Register(context.Background(), pubsub.ClientInfo{ID: "c", CanPublish: l})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(context.Background(), "weather", 1); !errors.Is(err, pubsub.ErrPermission) {
		t.Errorf("publish outside the list: %v, want ErrPermission", err)
	}
	if !pubsub.AllowAll().All() || pubsub.DenyAll().All() || (pubsub.AllowList{}).Patterns() != nil {
		t.Error("AllowAll/DenyAll/zero value")
	}
}

// TestNATSOnlyOptions: NewMemory takes Option, the options of both
// brokers; every NATS-only option is a NATSOption that is not an Option,
// so passing one to NewMemory does not compile (it once panicked at
// start-up). NewNATS takes both.
func TestNATSOnlyOptions(t *testing.T) {
	option := reflect.TypeFor[pubsub.Option]()
	natsOption := reflect.TypeFor[pubsub.NATSOption]()
	if in := reflect.TypeOf(pubsub.NewMemory).In(0); in != reflect.SliceOf(option) {
		t.Errorf("NewMemory takes %v, want ...pubsub.Option", in)
	}
	if in := reflect.TypeOf(pubsub.NewNATS).In(2); in != reflect.SliceOf(natsOption) {
		t.Errorf("NewNATS takes %v, want ...pubsub.NATSOption", in)
	}
	if !option.Implements(natsOption) {
		t.Error("an Option is not a NATSOption: NewNATS cannot take the shared options")
	}
	for name, f := range map[string]any{
		"WithRetainReplicas": pubsub.WithRetainReplicas, "WithName": pubsub.WithName, "WithNamespace": pubsub.WithNamespace,
		"WithToken": pubsub.WithToken, "WithUserInfo": pubsub.WithUserInfo, "WithCredsFile": pubsub.WithCredsFile,
		"WithNKeyFile": pubsub.WithNKeyFile, "WithCAFile": pubsub.WithCAFile, "WithClientCert": pubsub.WithClientCert,
		"WithTLSConfig": pubsub.WithTLSConfig, "WithConnectTimeout": pubsub.WithConnectTimeout, "WithReconnect": pubsub.WithReconnect,
		"WithPendingLimits": pubsub.WithPendingLimits, "WithNATSOptions": pubsub.WithNATSOptions,
	} {
		if out := reflect.TypeOf(f).Out(0); out != natsOption || out.AssignableTo(option) {
			t.Errorf("%s returns %v, want pubsub.NATSOption (not assignable to pubsub.Option)", name, out)
		}
	}
	if _, ok := pubsub.WithToken("x").(pubsub.Option); ok {
		t.Error("WithToken's value is an Option: NewMemory(opt.(pubsub.Option)) would take it")
	}
}

// The broker's counters stay exact under concurrent publishers, across the
// many internal flushes of 160,000 publishes, with subscriptions coming and
// going meanwhile (each Unsubscribe quiesces publishers): Published counts
// every publish, Delivered every message a receiver got.
func TestMemoryStatsExactUnderConcurrency(t *testing.T) {
	b := pubsub.NewMemory()
	defer b.Close(context.Background())
	const (
		publishers = 4
		each       = 40_000 // 160,000 publishes: one parity word at least takes more than its field holds (2^16) unflushed
		k          = 3
	)
	var received sync.WaitGroup
	var got [k + 1]int
	for i := range k {
		s := subscribe(t, register(t, b, fmt.Sprint("r", i)), "t", pubsub.WithQueueSize(256), pubsub.WithPolicy(pubsub.Block))
		received.Go(func() {
			for range s.C() {
				got[i]++
			}
		})
	}
	// A subscription that comes and goes all along, on its own topic (its
	// messages are counted too).
	churn := register(t, b, "churn")
	stop := make(chan struct{})
	var churned sync.WaitGroup
	churned.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s, err := churn.Subscribe(context.Background(), "u", pubsub.WithQueueSize(1<<16))
			if err != nil {
				t.Error(err)
				return
			}
			if err := s.Unsubscribe(); err != nil {
				t.Error(err)
			}
			for range s.C() {
				got[k]++
			}
		}
	})
	var pubs sync.WaitGroup
	var delivered [publishers]int
	for p := range publishers {
		c := register(t, b, fmt.Sprint("p", p))
		pubs.Go(func() {
			ctx := context.Background()
			for j := range each {
				topic := "t"
				if j%10 == 0 {
					topic = "u"
				}
				n, err := c.Publish(ctx, topic, j)
				if err != nil {
					t.Error(err)
					return
				}
				delivered[p] += n
			}
		})
	}
	pubs.Wait()
	close(stop)
	churned.Wait()
	_ = b.Close(context.Background())
	received.Wait()
	want := 0
	for _, n := range delivered {
		want += n
	}
	sum := 0
	for _, n := range got {
		sum += n
	}
	st := b.Stats()
	if st.Published != publishers*each || st.Delivered != uint64(want) || sum != want || st.Dropped != 0 {
		t.Fatalf("stats %+v, Publish returned %d deliveries, receivers got %d; want %d published, the three equal, none dropped",
			st, want, sum, publishers*each)
	}
}
