package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/goangel/angel/pubsub"
)

// allBackends is extended by nats_test.go.
var extraBackends []func() backend

func allBackends() []backend {
	bs := memoryBackends()
	for _, f := range extraBackends {
		bs = append(bs, f())
	}
	return bs
}

// TestExceptSender: a message reaches every other client's matching
// subscriptions, never the sender's own unless IncludeSelf.
func TestExceptSender(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range []struct {
				name     string
				self     bool
				wantSelf bool
			}{
				{"default", false, false},
				{"include-self", true, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					b := be.new(t)
					a, bb, c := register(t, b, "a"), register(t, b, "b"), register(t, b, "c")
					var opts []pubsub.SubscribeOption
					if tc.self {
						opts = append(opts, pubsub.IncludeSelf())
					}
					sa := subscribe(t, a, "greeting", opts...)
					sb := subscribe(t, bb, "greeting")
					sc := subscribe(t, c, "greeting")
					publish(t, a, "greeting", "from a")
					publish(t, a, "greeting", "barrier a")
					publish(t, bb, "greeting", "from b")
					if got := recvString(t, sb); got != "from a" {
						t.Errorf("b got %q, want %q", got, "from a")
					}
					if got := recvString(t, sb); got != "barrier a" {
						t.Errorf("b got %q, want barrier", got)
					}
					for _, want := range []string{"from a", "barrier a", "from b"} {
						if got := recvString(t, sc); got != want {
							t.Errorf("c got %q, want %q", got, want)
						}
					}
					// a's first message tells whether it saw its own.
					first := recvString(t, sa)
					if tc.wantSelf && first != "from a" {
						t.Errorf("a (include-self) got %q first, want its own", first)
					}
					if !tc.wantSelf && first != "from b" {
						t.Errorf("a got %q first, want %q (never its own)", first, "from b")
					}
				})
			}
		})
	}
}

// TestSenderField: Message.Sender is the publisher's id, Topic the topic.
func TestSenderField(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			a, r := register(t, b, "app/0#1"), register(t, b, "app/1#1")
			s := subscribe(t, r, "user.>")
			publish(t, a, "user.42.login", "x")
			m := recv(t, s)
			if m.Sender != "app/0#1" || m.Topic != "user.42.login" {
				t.Errorf("got sender %q topic %q", m.Sender, m.Topic)
			}
		})
	}
}

// TestWildcards: exact topics and NATS-style wildcards in subscriptions.
func TestWildcards(t *testing.T) {
	cases := []struct {
		pattern string
		topic   string
		want    bool
	}{
		{"user", "user", true},
		{"user", "users", false},
		{"user.login", "user.login", true},
		{"user.*", "user.login", true},
		{"user.*", "user", false},
		{"user.*", "user.1.login", false},
		{"user.>", "user.1", true},
		{"user.>", "user.1.login", true},
		{"user.>", "user", false},
		{"*.login", "user.login", true},
		{"*.login", "user.logout", false},
		{"*.*.c", "a.b.c", true},
		{"a.*.>", "a.b.c.d", true},
		{"a.*.>", "a.b", false},
		{">", "anything.at.all", true},
		{"a*b", "a*b", true},
	}
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			pub := register(t, b, "pub")
			for i, tc := range cases {
				t.Run(fmt.Sprintf("%s~%s", tc.pattern, tc.topic), func(t *testing.T) {
					r := register(t, b, fmt.Sprintf("r%d", i))
					defer func() { _ = r.Close() }()
					s := subscribe(t, r, tc.pattern)
					// A marker that surely matches follows the topic; the
					// first message received tells whether the topic matched
					// (order is kept per publisher per subscription).
					toks := strings.Split(tc.pattern, ".")
					for i, tok := range toks {
						if tok == "*" || tok == ">" {
							toks[i] = "x"
						}
					}
					marker := strings.Join(toks, ".")
					publish(t, pub, tc.topic, "hit")
					publish(t, pub, marker, "marker")
					first := recvString(t, s)
					if tc.want && first != "hit" {
						t.Errorf("%q did not receive %q", tc.pattern, tc.topic)
					}
					if !tc.want && first != "marker" {
						t.Errorf("%q received %q, want no match", tc.pattern, tc.topic)
					}
				})
			}
		})
	}
}

// TestOrderPerPublisher: two publishers interleave; each one's messages
// arrive in order on every subscription.
func TestOrderPerPublisher(t *testing.T) {
	const n = 500
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			p1, p2, r := register(t, b, "p1"), register(t, b, "p2"), register(t, b, "r")
			s := subscribe(t, r, "seq.*", pubsub.WithQueueSize(2*n))
			var wg sync.WaitGroup
			for _, p := range []pubsub.Client{p1, p2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range n {
						if _, err := pubsub.PublishAs(context.Background(), p, "seq."+p.ID(), i); err != nil {
							t.Errorf("publish: %v", err)
							return
						}
					}
				}()
			}
			next := map[string]int{}
			for range 2 * n {
				m := recv(t, s)
				v, err := pubsub.Decode[int](m)
				if err != nil {
					t.Fatal(err)
				}
				if v != next[m.Sender] {
					t.Fatalf("from %s got %d, want %d", m.Sender, v, next[m.Sender])
				}
				next[m.Sender]++
			}
			wg.Wait()
		})
	}
}

// TestPermissions: allow-lists for publishing and subscribing.
func TestPermissions(t *testing.T) {
	cases := []struct {
		name  string
		info  pubsub.ClientInfo
		pub   string
		sub   string
		pubOK bool
		subOK bool
	}{
		{"nil lists allow all", pubsub.ClientInfo{}, "a.b", "a.>", true, true},
		{"allow all", pubsub.ClientInfo{CanPublish: pubsub.AllowAll(), CanSubscribe: pubsub.AllowAll()}, "a.b", ">", true, true},
		{"deny all", pubsub.ClientInfo{CanPublish: pubsub.DenyAll(), CanSubscribe: pubsub.DenyAll()}, "a", "a", false, false},
		{"exact allowed", pubsub.ClientInfo{CanPublish: pubsub.Allow("greeting"), CanSubscribe: pubsub.Allow("greeting")}, "greeting", "greeting", true, true},
		{"exact denied", pubsub.ClientInfo{CanPublish: pubsub.Allow("greeting"), CanSubscribe: pubsub.Allow("greeting")}, "other", "other", false, false},
		{"wildcard covers", pubsub.ClientInfo{CanPublish: pubsub.Allow("user.*"), CanSubscribe: pubsub.Allow("user.>")}, "user.1", "user.*", true, true},
		{"star does not cover deeper", pubsub.ClientInfo{CanPublish: pubsub.Allow("user.*"), CanSubscribe: pubsub.Allow("user.*")}, "user.1.x", "user.>", false, false},
		{"literal does not cover star", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("user.1")}, "user.1", "user.*", true, false},
		{"star covers literal", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("*.login")}, "x", "user.login", true, true},
		{"one of several", pubsub.ClientInfo{CanPublish: pubsub.Allow("a", "b.>"), CanSubscribe: pubsub.Allow("a", "b.>")}, "b.c", "b.c.*", true, true},
		// Subscribe permissions are checked as a whole: the list's patterns
		// together may cover what none covers alone.
		{"together cover", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("user.*", "user.*.>")}, "x", "user.>", true, true},
		{"together cover everything", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("*", "*.>")}, "x", ">", true, true},
		{"together cover a star", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("a.*.c", "a.*.d")}, "x", "a.*.c", true, true},
		{"together leave a gap", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("user.*", "user.*.x")}, "x", "user.>", true, false},
		{"together leave deeper topics", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("*", "*.*")}, "x", ">", true, false},
		{"literals never cover a star", pubsub.ClientInfo{CanSubscribe: pubsub.Allow("a.b", "a.c", "a.d")}, "x", "a.*", true, false},
		{"allow nothing", pubsub.ClientInfo{CanPublish: pubsub.Allow(), CanSubscribe: pubsub.Allow()}, "a", "a", false, false},
	}
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					info := tc.info
					info.ID = fmt.Sprintf("c%d", i)
					c, err := b.Register(context.Background(), info)
					if err != nil {
						t.Fatal(err)
					}
					defer func() { _ = c.Close() }()
					_, err = c.Publish(context.Background(), tc.pub, "x")
					if tc.pubOK != (err == nil) || (err != nil && !errors.Is(err, pubsub.ErrPermission)) {
						t.Errorf("publish %q: err %v, want ok=%v or ErrPermission", tc.pub, err, tc.pubOK)
					}
					s, err := c.Subscribe(context.Background(), tc.sub)
					if tc.subOK != (err == nil) || (err != nil && !errors.Is(err, pubsub.ErrPermission)) {
						t.Errorf("subscribe %q: err %v, want ok=%v or ErrPermission", tc.sub, err, tc.subOK)
					}
					if s != nil {
						_ = s.Unsubscribe()
					}
				})
			}
		})
	}
}

// TestRegistration: ids are validated and unique among live clients.
func TestRegistration(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			ctx := context.Background()
			for _, tc := range []struct {
				info pubsub.ClientInfo
				want error
			}{
				{pubsub.ClientInfo{ID: ""}, pubsub.ErrInvalidID},
				{pubsub.ClientInfo{ID: " x"}, pubsub.ErrInvalidID},
				{pubsub.ClientInfo{ID: "ok", CanPublish: pubsub.Allow("bad..topic")}, pubsub.ErrInvalidTopic},
				{pubsub.ClientInfo{ID: "ok2", CanSubscribe: pubsub.Allow(">.a")}, pubsub.ErrInvalidTopic},
			} {
				if _, err := b.Register(ctx, tc.info); !errors.Is(err, tc.want) {
					t.Errorf("register %+v: err %v, want %v", tc.info, err, tc.want)
				}
			}
			c := register(t, b, "dup")
			if _, err := b.Register(ctx, pubsub.ClientInfo{ID: "dup"}); !errors.Is(err, pubsub.ErrDuplicateID) {
				t.Errorf("second register: err %v, want ErrDuplicateID", err)
			}
			// The id is free again once its client is closed (a respawn).
			_ = c.Close()
			register(t, b, "dup")
		})
	}
}

// TestInvalidTopics: malformed topics and patterns fail with ErrInvalidTopic.
func TestInvalidTopics(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			c := register(t, b, "c")
			ctx := context.Background()
			for _, topic := range []string{"", "a..b", ".a", "a.", "a b", "a.*", "a.>", "*", ">"} {
				if _, err := c.Publish(ctx, topic, 1); !errors.Is(err, pubsub.ErrInvalidTopic) {
					t.Errorf("publish %q: err %v, want ErrInvalidTopic", topic, err)
				}
			}
			for _, p := range []string{"", "a..b", "a.>.b", ">.a", "a\tb"} {
				if _, err := c.Subscribe(ctx, p); !errors.Is(err, pubsub.ErrInvalidTopic) {
					t.Errorf("subscribe %q: err %v, want ErrInvalidTopic", p, err)
				}
			}
		})
	}
}

// TestLifecycle: unsubscribe, client close, broker close, respawn.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			t.Run("unsubscribe closes the channel", func(t *testing.T) {
				b := be.new(t)
				p, r := register(t, b, "p"), register(t, b, "r")
				s := subscribe(t, r, "t")
				if err := s.Unsubscribe(); err != nil {
					t.Fatal(err)
				}
				closed(t, s)
				if err := s.Unsubscribe(); err != nil {
					t.Errorf("second unsubscribe: %v", err)
				}
				if _, err := p.Publish(ctx, "t", 1); err != nil {
					t.Errorf("publish with no subscriber: %v", err)
				}
			})
			t.Run("client close removes its subscriptions", func(t *testing.T) {
				b := be.new(t)
				p, r := register(t, b, "p"), register(t, b, "r")
				s1, s2 := subscribe(t, r, "t"), subscribe(t, r, "u.>")
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
				closed(t, s1)
				closed(t, s2)
				if err := r.Close(); err != nil {
					t.Errorf("second close: %v", err)
				}
				if _, err := r.Publish(ctx, "t", 1); !errors.Is(err, pubsub.ErrClosed) {
					t.Errorf("publish on closed client: %v, want ErrClosed", err)
				}
				if _, err := r.Subscribe(ctx, "t"); !errors.Is(err, pubsub.ErrClosed) {
					t.Errorf("subscribe on closed client: %v, want ErrClosed", err)
				}
				if err := s1.Unsubscribe(); err != nil {
					t.Errorf("unsubscribe after client close: %v", err)
				}
				// The others publish on as before to the closed client's topics.
				if _, err := p.Publish(ctx, "t", 1); err != nil {
					t.Errorf("publish to a closed client's topic: %v", err)
				}
			})
			t.Run("broker close closes every client", func(t *testing.T) {
				b := be.new(t)
				p, r := register(t, b, "p"), register(t, b, "r")
				s := subscribe(t, r, "t")
				if err := b.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				closed(t, s)
				for _, c := range []pubsub.Client{p, r} {
					if _, err := c.Publish(ctx, "t", 1); !errors.Is(err, pubsub.ErrClosed) {
						t.Errorf("publish after broker close: %v, want ErrClosed", err)
					}
				}
				if _, err := b.Register(ctx, pubsub.ClientInfo{ID: "x"}); !errors.Is(err, pubsub.ErrClosed) {
					t.Errorf("register after close: %v, want ErrClosed", err)
				}
				if err := b.Close(context.Background()); err != nil {
					t.Errorf("second broker close: %v", err)
				}
			})
			t.Run("respawn gets a fresh client", func(t *testing.T) {
				b := be.new(t)
				p := register(t, b, "app/0#1")
				old := register(t, b, "app/1#1")
				oldSub := subscribe(t, old, "greeting")
				// The replacement starts before the old life is torn down.
				fresh := register(t, b, "app/1#2")
				freshSub := subscribe(t, fresh, "greeting")
				_ = old.Close()
				closed(t, oldSub)
				publish(t, p, "greeting", "hi")
				if got := recvString(t, freshSub); got != "hi" {
					t.Errorf("fresh got %q", got)
				}
			})
		})
	}
}

// TestTyped: PublishAs / SubscribeAs / Decode give the same app code on
// every backend.
func TestTyped(t *testing.T) {
	type greeting struct {
		Text string `json:"text"`
		N    int    `json:"n"`
	}
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			ctx := context.Background()
			p, r := register(t, b, "p"), register(t, b, "r")
			s, err := pubsub.SubscribeAs[greeting](ctx, r, "greeting")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pubsub.PublishAs(ctx, p, "greeting", greeting{"hello", 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := pubsub.PublishAs(ctx, p, "greeting", &greeting{"ptr", 2}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Publish(ctx, "greeting", 42); err != nil {
				t.Fatal(err)
			}
			if _, err := pubsub.PublishAs(ctx, p, "greeting", greeting{"after", 3}); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			for _, want := range []greeting{{"hello", 1}, {"ptr", 2}} {
				g, m, err := s.Receive(rctx)
				if err != nil || g != want || m.Sender != "p" {
					t.Errorf("receive: %+v %+v %v, want %+v", g, m, err, want)
				}
			}
			if _, _, err := s.Receive(rctx); !errors.Is(err, pubsub.ErrDecode) {
				t.Errorf("receive an int as greeting: %v, want ErrDecode", err)
			}
			if g, _, err := s.Receive(rctx); err != nil || g.Text != "after" {
				t.Errorf("after a decode error: %+v %v", g, err)
			}
			_ = s.Unsubscribe()
			if _, _, err := s.Receive(rctx); !errors.Is(err, pubsub.ErrClosed) {
				t.Errorf("receive after unsubscribe: %v, want ErrClosed", err)
			}
		})
	}
}

// TestNilRawPayload: a nil *Raw is published like any nil pointer (it used
// to panic on every backend that encodes).
func TestNilRawPayload(t *testing.T) {
	for _, be := range allBackends() {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			p, r := register(t, b, "p"), register(t, b, "r")
			s := subscribe(t, r, "t")
			publish(t, p, "t", (*pubsub.Raw)(nil))
			if m := recv(t, s); m.Sender != "p" {
				t.Errorf("got %+v", m)
			}
		})
	}
}
