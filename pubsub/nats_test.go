package pubsub_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/internal/testutil/natstest"
	"github.com/goangel/angel/pubsub"
)

func init() {
	extraBackends = append(extraBackends, func() backend {
		return backend{"nats", func(t *testing.T) pubsub.Broker {
			return newNATS(t, runServer(t, nil).ClientURL())
		}}
	})
	extraLimitBackends = append(extraLimitBackends, func() backend {
		return backend{"nats", func(t *testing.T) pubsub.Broker {
			return newNATS(t, runServer(t, nil).ClientURL(), pubsub.WithRetainLimit(2))
		}}
	})
}

// runServer starts a NATS server in the test process on 127.0.0.1, on a
// random port unless opts says otherwise, with JetStream (which keeps the
// retained messages) unless opts.StoreDir is "-"; it is shut down (and
// waited for) at cleanup.
func runServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	if !opts.JetStream && opts.StoreDir == "" {
		opts.JetStream, opts.StoreDir = true, t.TempDir()
	}
	if opts.StoreDir == "-" {
		opts.StoreDir = ""
	}
	return natstest.Start(t, opts)
}

func newNATS(t testing.TB, url string, opts ...pubsub.NATSOption) *pubsub.NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b, err := pubsub.NewNATS(ctx, url, opts...)
	if err != nil {
		t.Fatalf("NewNATS(%s): %v", url, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

// TestNATSTwoMachines: two brokers on one server stand for two machines
// (or two processes). Each runs two instances registered with the same ids
// as the other's, as two copies of one app would. A message reaches every
// instance on both machines but the sender.
func TestNATSTwoMachines(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	m1, m2 := newNATS(t, url, pubsub.WithName("m1")), newNATS(t, url, pubsub.WithName("m2"))
	type inst struct {
		c   pubsub.Client
		sub *pubsub.Typed[string]
	}
	ctx := context.Background()
	var all []inst
	for _, b := range []*pubsub.NATS{m1, m2} {
		for i := range 2 {
			c := register(t, b, fmt.Sprintf("example/%d#1", i))
			s, err := pubsub.SubscribeAs[string](ctx, c, "greeting")
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, inst{c, s})
		}
	}
	rctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for from := range all {
		text := fmt.Sprintf("hello from %d", from)
		if _, err := pubsub.PublishAs(ctx, all[from].c, "greeting", text); err != nil {
			t.Fatal(err)
		}
		for to := range all {
			if to == from {
				continue
			}
			g, m, err := all[to].sub.Receive(rctx)
			if err != nil || g != text || m.Sender != all[from].c.ID() {
				t.Fatalf("instance %d: %q from %q (%v), want %q from %q", to, g, m.Sender, err, text, all[from].c.ID())
			}
		}
	}
	// Nobody received its own message: each queue is empty, proven by a
	// marker from one more client, which must be the next message for all.
	marker := register(t, m1, "marker")
	publish(t, marker, "greeting", "marker")
	for i, in := range all {
		if g, _, err := in.sub.Receive(rctx); err != nil || g != "marker" {
			t.Errorf("instance %d: next is %q (%v), want the marker (it got its own message?)", i, g, err)
		}
	}
	if st := m2.Stats(); st.Published != 2 || st.Delivered != 2*3+2 {
		t.Errorf("m2 stats %+v, want 2 published, 8 delivered", st)
	}
}

// TestNATSOverflow: the same policies and counters as in memory, behind
// nats.go's delivery.
func TestNATSOverflow(t *testing.T) {
	for _, tc := range []struct {
		policy pubsub.Policy
		want   string
	}{
		{pubsub.DropNewest, "[1 2]"},
		{pubsub.DropOldest, "[4 5]"},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var ev events
			b := newNATS(t, runServer(t, nil).ClientURL(), pubsub.WithEventHook(ev.hook))
			p, r, fast := register(t, b, "p"), register(t, b, "r"), register(t, b, "fast")
			s := subscribe(t, r, "t", pubsub.WithQueueSize(2), pubsub.WithPolicy(tc.policy))
			// Shares the NATS subscription with s, and is not held up by it.
			f := subscribe(t, fast, "t", pubsub.WithQueueSize(10))
			for i := 1; i <= 5; i++ {
				publish(t, p, "t", i)
			}
			for i := 1; i <= 5; i++ {
				if v, err := pubsub.Decode[int](recv(t, f)); err != nil || v != i {
					t.Fatalf("fast got %d (%v), want %d", v, err, i)
				}
			}
			testutil.WaitFor(t, wait, "3 drops", func() bool { return s.Dropped() == 3 })
			if got := drainInts(t, s); fmt.Sprint(got) != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
			if f.Dropped() != 0 {
				t.Errorf("fast dropped %d", f.Dropped())
			}
			if st := b.Stats(); st.Dropped != 3 || st.Published != 5 {
				t.Errorf("stats %+v", st)
			}
			if k := ev.kinds(); len(k) != 1 || k[0] != pubsub.EventSlowConsumer {
				t.Errorf("events %v, want one slow-consumer", k)
			}
		})
	}
	t.Run("pending limits", func(t *testing.T) {
		var ev events
		b := newNATS(t, runServer(t, nil).ClientURL(), pubsub.WithEventHook(ev.hook), pubsub.WithPendingLimits(2, 0), pubsub.WithTopicStats("t"))
		p, r := register(t, b, "p"), register(t, b, "r")
		// A Block queue of 1 that nobody reads: at most one message in
		// it, one waiting for room and 2 pending in front; the others (16
		// to 18) are dropped and counted under their topic (nats.go,
		// which does not say which messages it drops, drops none).
		s := subscribe(t, r, "t", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.Block))
		for i := range 20 {
			publish(t, p, "t", i)
		}
		testutil.WaitFor(t, wait, "16 drops or more, each counted under topic t", func() bool {
			d := s.Dropped()
			ts := b.TopicStats()
			return d >= 16 && len(ts) == 1 && ts[0].Dropped == d && b.Stats().Dropped == d
		})
		testutil.WaitFor(t, wait, "slow-consumer event", func() bool {
			for _, k := range ev.kinds() {
				if k == pubsub.EventSlowConsumer {
					return true
				}
			}
			return false
		})
		if err := s.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		closed(t, s)
		if s.Dropped() < 10 {
			t.Errorf("drops forgotten after unsubscribe: %d", s.Dropped())
		}
	})
}

// TestNATSAuth: token and user/password, and a clear error without them.
func TestNATSAuth(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		server server.Options
		good   pubsub.NATSOption
		bad    pubsub.NATSOption
	}{
		{"token", server.Options{Authorization: "s3cret"}, pubsub.WithToken("s3cret"), pubsub.WithToken("wrong")},
		{"user", server.Options{Username: "app", Password: "pw"}, pubsub.WithUserInfo("app", "pw"), pubsub.WithUserInfo("app", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := runServer(t, &tc.server)
			url := s.ClientURL()
			if b, err := pubsub.NewNATS(ctx, url, tc.bad); err == nil {
				_ = b.Close(context.Background())
				t.Fatal("connected with bad credentials")
			}
			b := newNATS(t, url, tc.good)
			p, r := register(t, b, "p"), register(t, b, "r")
			sub := subscribe(t, r, "t")
			publish(t, p, "t", "ok")
			if got := recvString(t, sub); got != "ok" {
				t.Errorf("got %q", got)
			}
		})
	}
	t.Run("conflicting options", func(t *testing.T) {
		for i, o := range [][]pubsub.NATSOption{
			{pubsub.WithToken("a"), pubsub.WithUserInfo("b", "")},
			{pubsub.WithClientCert("c.pem", "")},
			{pubsub.WithCredsFile("x.creds"), pubsub.WithToken("t")},
			{pubsub.WithNamespace("bad..ns")},
		} {
			if _, err := pubsub.NewNATS(ctx, "nats://127.0.0.1:1", o...); !errors.Is(err, pubsub.ErrInvalidOptions) {
				t.Errorf("options #%d: %v, want ErrInvalidOptions", i, err)
			}
		}
	})
	t.Run("no server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		// A cluster list: every URL's credentials are hidden, not only the first's.
		url := "nats://user:pw@" + addr + ",nats://other:pw2@" + addr
		_, err = pubsub.NewNATS(ctx, url)
		if err == nil {
			t.Fatal("connected to nothing")
		}
		if msg := err.Error(); strings.Count(msg, "REDACTED@") != 2 || strings.Contains(msg, "pw@") || strings.Contains(msg, "pw2@") {
			t.Errorf("error %q should hide the credentials", err)
		}
	})
}

// TestNATSTLS: tls:// with a CA file, and mutual TLS with a client cert.
func TestNATSTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, dir)
	ca.WriteCert(t, dir, "server", true)
	ca.WriteCert(t, dir, "client", false)
	tlsCfg, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
		CaFile:   filepath.Join(dir, "ca.pem"),
		Verify:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := runServer(t, &server.Options{TLSConfig: tlsCfg, TLS: true, TLSVerify: true, TLSTimeout: 5})
	url := fmt.Sprintf("tls://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	ctx := context.Background()
	if b, err := pubsub.NewNATS(ctx, url, pubsub.WithCAFile(filepath.Join(dir, "ca.pem"))); err == nil {
		_ = b.Close(context.Background())
		t.Fatal("connected without the client certificate the server requires")
	}
	b := newNATS(t, url,
		pubsub.WithCAFile(filepath.Join(dir, "ca.pem")),
		pubsub.WithClientCert(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")),
	)
	if !b.Conn().TLSRequired() {
		t.Error("connection is not TLS")
	}
	p, r := register(t, b, "p"), register(t, b, "r")
	sub := subscribe(t, r, "t")
	publish(t, p, "t", "over tls")
	if got := recvString(t, sub); got != "over tls" {
		t.Errorf("got %q", got)
	}
}

// TestNATSReconnect: the server restarts on the same port; subscriptions
// come back and the events are reported.
func TestNATSReconnect(t *testing.T) {
	s1 := runServer(t, nil)
	port := s1.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	seen := map[pubsub.EventKind]int{}
	b := newNATS(t, s1.ClientURL(),
		pubsub.WithReconnect(20*time.Millisecond, 0),
		pubsub.WithEventHook(func(ev pubsub.Event) {
			mu.Lock()
			seen[ev.Kind]++
			mu.Unlock()
		}),
	)
	count := func(k pubsub.EventKind) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[k]
	}
	p, r := register(t, b, "p"), register(t, b, "r")
	sub := subscribe(t, r, "t")
	s1.Shutdown()
	s1.WaitForShutdown()
	testutil.WaitFor(t, wait, "disconnected event", func() bool { return count(pubsub.EventDisconnected) > 0 })
	// Subscribing while NATS is away works: the interest is sent on
	// reconnect. Publishing is buffered by nats.go meanwhile.
	during := subscribe(t, r, "during")
	runServer(t, &server.Options{Port: port})
	testutil.WaitFor(t, wait, "reconnected event", func() bool { return count(pubsub.EventReconnected) > 0 })
	// The subscription was re-created on the new connection; a flush
	// makes sure the server has it before we publish.
	fctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Conn().FlushWithContext(fctx); err != nil {
		t.Fatal(err)
	}
	publish(t, p, "t", "after restart")
	if got := recvString(t, sub); got != "after restart" {
		t.Errorf("got %q", got)
	}
	publish(t, p, "during", "subscribed while away")
	if got := recvString(t, during); got != "subscribed while away" {
		t.Errorf("got %q", got)
	}
}

// TestNATSCodec: a pluggable codec, used by Decode on the receiving side.
func TestNATSCodec(t *testing.T) {
	b := newNATS(t, runServer(t, nil).ClientURL(), pubsub.WithCodec(upperCodec{}))
	p, r := register(t, b, "p"), register(t, b, "r")
	sub := subscribe(t, r, "t")
	publish(t, p, "t", "shout")
	m := recv(t, sub)
	raw, ok := m.Payload.(pubsub.Raw)
	if !ok || string(raw.Data) != "SHOUT" {
		t.Fatalf("payload %#v", m.Payload)
	}
	if v, err := pubsub.Decode[string](m); err != nil || v != "shout" {
		t.Errorf("decode: %q %v", v, err)
	}
	// A Raw is sent as it is.
	publish(t, p, "t", pubsub.Raw{Data: []byte("RAW")})
	if v, err := pubsub.Decode[string](recv(t, sub)); err != nil || v != "raw" {
		t.Errorf("raw: %q %v", v, err)
	}
}

type upperCodec struct{}

func (upperCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("upperCodec: %T", v)
	}
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 32
		}
	}
	return b, nil
}

func (upperCodec) Decode(data []byte, v any) error {
	p, ok := v.(*string)
	if !ok {
		return fmt.Errorf("upperCodec: %T", v)
	}
	b := []byte(string(data))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	*p = string(b)
	return nil
}

// TestNATSRetainedOutlivesProcesses: the retained message lives in the
// NATS server (JetStream), not in any process: a broker that starts after
// the publisher's has closed still gets it.
func TestNATSRetainedOutlivesProcesses(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	first := newNATS(t, url, pubsub.WithNamespace("example"))
	publishRetained(t, register(t, first, "example/0#1"), "greeting", "Howdy")
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := newNATS(t, url, pubsub.WithNamespace("example"))
	m := recv(t, subscribe(t, register(t, second, "example/0#1"), "greeting"))
	if v := recvDecoded(t, m); v != "Howdy" || !m.Retained() || m.Sender != "example/0#1" {
		t.Errorf("got %q retained=%v from %q, want Howdy retained from example/0#1", v, m.Retained(), m.Sender)
	}
	// Another namespace has its own retained messages.
	other := newNATS(t, url, pubsub.WithNamespace("shop"))
	s := subscribe(t, register(t, other, "shop/0#1"), "greeting")
	publish(t, register(t, other, "shop/1#1"), "greeting", "live")
	if v := recvString(t, s); v != "live" {
		t.Errorf("namespace shop got %q first, want no retained message of example's", v)
	}
}

// TestNATSWithoutJetStream: a server without JetStream is reported at
// start-up; retained publishes are delivered and fail with
// ErrRetainUnavailable; everything else works.
func TestNATSWithoutJetStream(t *testing.T) {
	var ev events
	b := newNATS(t, runServer(t, &server.Options{StoreDir: "-"}).ClientURL(), pubsub.WithEventHook(ev.hook))
	if k := ev.kinds(); len(k) != 1 || k[0] != pubsub.EventError || !errors.Is(ev.evs[0].Err, pubsub.ErrRetainUnavailable) {
		t.Errorf("events %v, want one error saying the server has no JetStream", ev.evs)
	}
	p, r := register(t, b, "p"), register(t, b, "r")
	s := subscribe(t, r, "t")
	n, err := p.Publish(context.Background(), "t", "x", pubsub.Retain())
	if n != 1 || !errors.Is(err, pubsub.ErrRetainUnavailable) {
		t.Errorf("retained publish: %d %v, want 1 and ErrRetainUnavailable", n, err)
	}
	if v := recvString(t, s); v != "x" {
		t.Errorf("got %q", v)
	}
	if st := b.Stats(); st.RetainRejected != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestNATSNamespaces: two apps on one server do not see each other's
// messages unless they share a namespace; Message.Topic has no prefix.
func TestNATSNamespaces(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	shop, blog, blog2 := newNATS(t, url, pubsub.WithNamespace("shop")), newNATS(t, url, pubsub.WithNamespace("blog")), newNATS(t, url, pubsub.WithNamespace("blog"))
	sShop := subscribe(t, register(t, shop, "shop/0#1"), ">")
	sBlog := subscribe(t, register(t, blog2, "blog/0#1"), ">")
	publish(t, register(t, blog, "blog/1#1"), "greeting", "from blog")
	publish(t, register(t, shop, "shop/1#1"), "greeting", "from shop")
	if m := recv(t, sShop); recvDecoded(t, m) != "from shop" || m.Topic != "greeting" {
		t.Errorf("shop got %+v first, want its own app's message on topic greeting", m)
	}
	if m := recv(t, sBlog); recvDecoded(t, m) != "from blog" || m.Topic != "greeting" {
		t.Errorf("blog got %+v, want blog's message", m)
	}
}

// TestNATSQueueGroupAcrossProcesses: a group spans brokers; a broker
// whose only members are the sender's own hands the server's pick back,
// and the copies handed back are for that group only.
func TestNATSQueueGroupAcrossProcesses(t *testing.T) {
	// The sender's member is the group's only member: the server picks it
	// every time, so the hand-back happens on every run. It is bounded (16
	// hand-backs, then the message is dropped, counted and reported), and
	// the plain subscriptions, on both brokers, get the message once.
	t.Run("only the sender's member", func(t *testing.T) {
		url := runServer(t, nil).ClientURL()
		var ev events
		m1, m2 := newNATS(t, url, pubsub.WithEventHook(ev.hook)), newNATS(t, url)
		raw, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		wire, err := raw.SubscribeSync("jobs")
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Flush(); err != nil {
			t.Fatal(err)
		}
		pub := register(t, m1, "pub")
		own := subscribe(t, pub, "jobs", pubsub.InGroup("w"))
		near := subscribe(t, register(t, m1, "near"), "jobs", pubsub.WithQueueSize(100))
		far := subscribe(t, register(t, m2, "far"), "jobs", pubsub.WithQueueSize(100))
		publish(t, pub, "jobs", 1)
		publish(t, pub, "jobs", 1)
		testutil.WaitFor(t, wait, "both messages dropped after their hand-backs", func() bool { return m1.Stats().Dropped == 2 })
		// Reported once, not once per message.
		ev.mu.Lock()
		if len(ev.evs) != 1 || ev.evs[0].Kind != pubsub.EventError || ev.evs[0].Pattern != "jobs" || !strings.Contains(ev.evs[0].Err.Error(), `queue group "w"`) {
			t.Errorf("events %v, want one error naming the queue group", ev.evs)
		}
		ev.mu.Unlock()
		// The marker follows every hand-back on m1's connection.
		publish(t, register(t, m1, "marker"), "jobs", -1)
		copies := 0
		for {
			m, err := wire.NextMsg(wait)
			if err != nil {
				t.Fatalf("on the wire after %d copies: %v", copies, err)
			}
			if string(m.Data) == "-1" {
				break
			}
			copies++
		}
		if copies != 2*(1+16) {
			t.Errorf("on the wire: %d copies, want each message and its 16 hand-backs (34)", copies)
		}
		for _, s := range []pubsub.Subscription{near, far} {
			for range 2 {
				if v, _ := pubsub.Decode[int](recv(t, s)); v != 1 {
					t.Fatalf("plain subscription got %d, want 1", v)
				}
			}
			if v, _ := pubsub.Decode[int](recv(t, s)); v != -1 {
				t.Errorf("plain subscription got %d after the message, want the marker (a handed-back copy)", v)
			}
		}
		// The member never got its own client's message; the marker,
		// from another client, it takes.
		if v, _ := pubsub.Decode[int](recv(t, own)); v != -1 {
			t.Errorf("the sender's member got %d, want the marker only", v)
		}
	})
	// Two members: the server picks the sender's in about half the cases
	// (the chance that it never does in 20 messages is 2^-20), and that
	// member's broker hands the message back until the other takes it.
	t.Run("another member", func(t *testing.T) {
		const n = 20
		url := runServer(t, nil).ClientURL()
		m1, m2 := newNATS(t, url), newNATS(t, url)
		pub := register(t, m1, "pub")
		own := subscribe(t, pub, "jobs", pubsub.InGroup("w"))
		w := subscribe(t, register(t, m2, "worker"), "jobs", pubsub.InGroup("w"), pubsub.WithQueueSize(n))
		// Room for every copy, so that a copy handed back is not hidden by
		// a drop.
		plain := subscribe(t, register(t, m2, "plain"), "jobs", pubsub.WithQueueSize(100*n))
		for i := range n {
			publish(t, pub, "jobs", i)
		}
		seen := map[int]bool{}
		for i := range n {
			v, err := pubsub.Decode[int](recv(t, w))
			if err != nil || v < 0 || v >= n || seen[v] {
				t.Fatalf("worker message %d: %v %v (seen before: %v)", i, v, err, seen[v])
			}
			seen[v] = true
		}
		empty(t, own)
		// Every hand-back is on m1's connection before the marker.
		publish(t, register(t, m1, "marker"), "jobs", -1)
		for i := range n {
			if v, _ := pubsub.Decode[int](recv(t, plain)); v != i {
				t.Fatalf("plain got %d, want %d", v, i)
			}
		}
		if v, _ := pubsub.Decode[int](recv(t, plain)); v != -1 {
			t.Errorf("plain got %d after the %d messages, want the marker (a handed-back copy)", v, n)
		}
		if st := m1.Stats(); st.Dropped != 0 {
			t.Errorf("m1 stats %+v, want nothing dropped", st)
		}
	})
}

// The reply subjects of a plain publish and of a request on the wire
// (pubsub's senderReplyPrefix and requestReplyPrefix, unexported): other
// NATS clients see them, so TestNATSWireFormat pins them.
const (
	senderReplyPrefix  = "_GOANGEL.S."
	requestReplyPrefix = "_GOANGEL.R."
)

// TestNATSWireFormat: what other NATS clients see and send. A plain
// publish carries no header: its sender is in its reply subject (any id,
// spaces and all, comes back as Message.Sender), and it is not a request.
// A foreign message has Sender ""; a foreign request (a reply inbox of its
// own) is a request goangel can answer.
func TestNATSWireFormat(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	b1 := newNATS(t, url, pubsub.WithNamespace("ns"))
	b2 := newNATS(t, url, pubsub.WithNamespace("ns"))
	raw, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	seen, err := raw.SubscribeSync("ns.t")
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Flush(); err != nil {
		t.Fatal(err)
	}
	const id = "app/0#1 ünïcode.and spaces"
	p := register(t, b1, id)
	s := subscribe(t, register(t, b2, "r"), "t")

	publish(t, p, "t", "hi")
	m := recv(t, s)
	if m.Sender != id || m.IsRequest() {
		t.Errorf("goangel got sender %q, request %v; want %q, not a request", m.Sender, m.IsRequest(), id)
	}
	if err := m.Respond(context.Background(), "no"); !errors.Is(err, pubsub.ErrNotRequest) {
		t.Errorf("Respond to a plain message: %v, want ErrNotRequest", err)
	}
	w, err := seen.NextMsg(wait)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Header) != 0 || !strings.HasPrefix(w.Reply, senderReplyPrefix) || string(w.Data) != `"hi"` {
		t.Errorf("on the wire: header %v, reply %q, data %s; want no header, a reply subject starting %q", w.Header, w.Reply, w.Data, senderReplyPrefix)
	}

	// A foreign publish, then a foreign request.
	if err := raw.Publish("ns.t", []byte(`"plain"`)); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, s); m.Sender != "" || m.IsRequest() {
		t.Errorf("foreign publish: sender %q, request %v", m.Sender, m.IsRequest())
	}
	type answer struct {
		m   *nats.Msg
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		m, err := raw.Request("ns.t", []byte(`"ping"`), wait)
		answered <- answer{m, err}
	}()
	q := recv(t, s)
	if q.Sender != "" || !q.IsRequest() {
		t.Errorf("foreign request: sender %q, request %v", q.Sender, q.IsRequest())
	}
	if err := q.Respond(context.Background(), "pong"); err != nil {
		t.Fatal(err)
	}
	if a := <-answered; a.err != nil || string(a.m.Data) != `"pong"` {
		t.Errorf("foreign request: %v, answer %+v", a.err, a.m)
	}

	// A goangel request carries no header: its requester is in its reply
	// subject, and so is the responder of its answer.
	for range 2 { // the foreign publish and request, seen on the wire
		if _, err := seen.NextMsg(wait); err != nil {
			t.Fatal(err)
		}
	}
	type reply struct {
		m   pubsub.Message
		err error
	}
	replied := make(chan reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		m, err := p.Request(ctx, "t", "ask")
		replied <- reply{m, err}
	}()
	q = recv(t, s)
	if q.Sender != id || !q.IsRequest() {
		t.Errorf("goangel request: sender %q, request %v; want %q, a request", q.Sender, q.IsRequest(), id)
	}
	if err := q.Respond(context.Background(), "answer"); err != nil {
		t.Fatal(err)
	}
	if r := <-replied; r.err != nil || r.m.Sender != "r" || recvDecoded(t, r.m) != "answer" {
		t.Errorf("goangel request: %v, answer %+v from %q; want \"answer\" from r", r.err, r.m, r.m.Sender)
	}
	w, err = seen.NextMsg(wait)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Header) != 0 || !strings.HasPrefix(w.Reply, requestReplyPrefix) || !strings.HasSuffix(w.Reply, "."+base64.RawURLEncoding.EncodeToString([]byte(id))) {
		t.Errorf("a request on the wire: header %v, reply %q; want no header, a reply subject %s... ending with the id", w.Header, w.Reply, requestReplyPrefix)
	}
}

// TestNATSRetainedLoadFails: a subscription whose retained messages cannot
// be read (here the stream is gone) is made all the same, with its live
// messages; the failure is reported once and counted; when the stream
// answers again the retained messages come, except for the topics that
// got a newer live message meanwhile.
func TestNATSRetainedLoadFails(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	var ev events
	b := newNATS(t, url, pubsub.WithNamespace("app"), pubsub.WithEventHook(ev.hook))
	raw, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	js, err := jetstream.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := js.DeleteStream(ctx, "GOANGEL_RETAINED_app"); err != nil {
		t.Fatal(err)
	}
	r := register(t, b, "r")
	st := subscribe(t, r, "t")
	su := subscribe(t, r, "u")
	if got := b.Stats().RetainLoadFailed; got != 2 {
		t.Errorf("RetainLoadFailed %d, want 2", got)
	}
	if k := ev.kinds(); len(k) != 1 || k[0] != pubsub.EventError {
		t.Errorf("events %v, want one error for both failures", ev.evs)
	}
	// Live messages flow meanwhile.
	other := newNATS(t, url, pubsub.WithNamespace("app")) // makes the stream again, empty
	// Made at once, or by other's reloader: just after the delete the server
	// may answer "error creating store for stream" (10049), which is not
	// permanent: the broker starts, degraded, and sets the stream up again.
	testutil.WaitFor(t, wait, "the stream made again", func() bool {
		_, err := js.Stream(ctx, "GOANGEL_RETAINED_app")
		return err == nil
	})
	p := register(t, other, "p")
	publish(t, p, "u", "live u")
	if v := recvString(t, su); v != "live u" {
		t.Fatalf("got %q, want the live message", v)
	}
	// Stored without a live copy: what the stream holds when it answers.
	for topic, v := range map[string]string{"t": "stored t", "u": "stored u (older than the live one)"} {
		if _, err := js.Publish(ctx, "_goangel_retained.app."+topic, []byte(`"`+v+`"`)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, wait, "retained messages restored", func() bool {
		for _, k := range ev.kinds() {
			if k == pubsub.EventRetainRestored {
				return true
			}
		}
		return false
	})
	if m := recv(t, st); !m.Retained() || recvDecoded(t, m) != "stored t" {
		t.Errorf("t got %+v, want the stored message, retained", m)
	}
	publish(t, p, "u", "marker")
	if v := recvString(t, su); v != "marker" {
		t.Errorf("u got %q, want the marker (its stored message is older than the live one it got)", v)
	}
}

// TestNATSRetainReplicas: a single server keeps one replica by default;
// more than the cluster has, or outside 1..5, is a clear error.
func TestNATSRetainReplicas(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	if r := newNATS(t, url).RetainReplicas(); r != 1 {
		t.Errorf("replicas %d on one server, want 1", r)
	}
	ctx := context.Background()
	if _, err := pubsub.NewNATS(ctx, url, pubsub.WithRetainReplicas(3)); err == nil || !strings.Contains(err.Error(), "cannot have 3 replicas") {
		t.Errorf("3 replicas on one server: %v, want an error saying so", err)
	}
	if _, err := pubsub.NewNATS(ctx, url, pubsub.WithRetainReplicas(7)); !errors.Is(err, pubsub.ErrInvalidOptions) {
		t.Errorf("7 replicas: %v, want ErrInvalidOptions", err)
	}
}

// TestNATSRetainedAfterReconnect: core NATS keeps nothing for a client
// that is away, so a retained message whose live copy was lost (here:
// stored by another client without one) reaches a subscription when its
// connection comes back, once, from the stream.
func TestNATSRetainedAfterReconnect(t *testing.T) {
	dir := t.TempDir()
	s1 := runServer(t, &server.Options{JetStream: true, StoreDir: dir})
	port := s1.Addr().(*net.TCPAddr).Port
	var ev events
	b := newNATS(t, s1.ClientURL(), pubsub.WithReconnect(10*time.Millisecond, 0), pubsub.WithEventHook(ev.hook))
	sub := subscribe(t, register(t, b, "r"), "t")
	raw, err := nats.Connect(s1.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := js.Publish(ctx, "_goangel_retained.t", []byte(`"missed live"`)); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	empty(t, sub)
	s1.Shutdown()
	s1.WaitForShutdown()
	runServer(t, &server.Options{Port: port, JetStream: true, StoreDir: dir})
	m := recv(t, sub)
	if !m.Retained() || recvDecoded(t, m) != "missed live" {
		t.Fatalf("after the reconnect got %+v, want the stored message, retained", m)
	}
	publish(t, register(t, b, "p"), "t", "marker")
	if v := recvString(t, sub); v != "marker" {
		t.Errorf("got %q, want the marker (the stored message twice?)", v)
	}
}

// TestNATSRequestOnlySelfTwoMachines: when the requester's own
// subscription is the only one on its machine, a subscription on another
// machine (broker), plain or in a group, still answers; a topic no other
// machine subscribes to fails with ErrNoResponders without waiting for
// ctx.
func TestNATSRequestOnlySelfTwoMachines(t *testing.T) {
	url := runServer(t, nil).ClientURL()
	m1, m2 := newNATS(t, url, pubsub.WithName("m1")), newNATS(t, url, pubsub.WithName("m2"))
	// Far longer than an answer takes: the defect waited for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := register(t, m1, "app/0#1")
	own := subscribe(t, req, "svc.>")
	srv := register(t, m2, "app/0#1") // the same app's instance on the other machine
	for _, s := range []pubsub.Subscription{subscribe(t, srv, "svc.time"), subscribe(t, srv, "svc.queue", pubsub.InGroup("clocks"))} {
		go func() {
			if m, ok := <-s.C(); ok {
				_ = m.Respond(ctx, "noon")
			}
		}()
		topic := s.Pattern()
		if got, _, err := pubsub.RequestAs[string](ctx, req, topic, "now?"); err != nil || got != "noon" {
			t.Errorf("request to %s, answered on the other machine: %q (%v), want noon", topic, got, err)
		}
	}
	if _, err := req.Request(ctx, "svc.date", "today?"); !errors.Is(err, pubsub.ErrNoResponders) {
		t.Errorf("request to a topic only the requester subscribes to: %v, want ErrNoResponders", err)
	}
	empty(t, own)
}
