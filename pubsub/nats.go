package pubsub

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// headerSender is the header that carries the sender of a retained
// message (its live copy and its stored copy): "<uid> <id>", the
// unique id (a 22-character nuid) of the publishing client object, a space,
// and its ClientInfo.ID (which becomes Message.Sender). A subscription drops
// messages carrying its own client's uid. One header, not two: nats.go
// decodes headers into a map for every message received, and each key
// costs allocations on every delivery.
//
// A plain publish carries no header: its sender travels in its reply
// subject, senderReplyPrefix + "<uid>.<id in unpadded base64url>". Encoding
// the header on publish and decoding it on receipt was a sixth of the
// backend's CPU per message (fan-out to four subscriptions); a reply
// subject costs neither. Nothing subscribes to it, and the messages of
// other NATS clients (no header, no such reply subject) have Sender "".
// A request and a response carry no header either (see
// requestReplyPrefix); a response's reply subject is its responder's
// senderReplyPrefix one.
const headerSender = "Goangel-Sender"

// senderReplyPrefix begins the reply subject of a plain publish (see
// headerSender); such a message is not a request, and Respond on it fails
// like on any other message that is not a request.
const senderReplyPrefix = "_GOANGEL.S."

// headerRetained marks the live copy of a retained message with its
// sequence number in the stream, so that a subscription that gets it both
// live and from the stream keeps one, and keeps the retained messages of
// a topic in order.
const headerRetained = "Goangel-Retained"

// headerRedirect marks a queue-group message handed back to the server
// because the member that got it was the sender's own: "<group> <hops>".
// Only members of that group take it.
const headerRedirect = "Goangel-Redirect"

// maxRedirects bounds how often a queue-group message is handed back.
const maxRedirects = 16

// retainedPrefix is the first token of the subjects the retained messages
// are stored under, in the stream named by retainedStream.
const retainedPrefix = "_goangel_retained"

// NATS is the broker over a NATS server, for apps on many machines.
// Create it with NewNATS; it implements Broker. All its clients share one
// connection (and a second one, without echo, that a request uses to ask
// whether other brokers listen: see Client.Request).
type NATS struct {
	cfg      config
	nc       *nats.Conn
	peers    *nats.Conn                        // without echo, for requests (see nats_request.go)
	prefix   string                            // the namespace and a dot, or ""
	subjects atomic.Pointer[map[string]string] // topic -> subject, copy-on-write
	// pendingMsgs and pendingBytes are the pending limits set on every
	// nats.go subscription; both 0: nats.go's defaults, left alone.
	pendingMsgs, pendingBytes int

	js        jetstream.JetStream
	stream    string // the retained messages' stream
	retainErr error  // why retained messages are unavailable for good, or nil
	// The stream's state (see nats_retained.go).
	streamUp      atomic.Bool  // set up (created or updated)
	replicas      atomic.Int32 // its replicas once set up
	retainFailing atomic.Bool  // a failure was reported; until the stream answers again
	reloads       map[*natsSub]struct{}
	reloading     bool // the reloader runs; guarded by mu
	life          context.Context
	endLife       context.CancelFunc
	wg            sync.WaitGroup

	reqs    requests // the response inbox of Request
	reg     registry[*natsClient]
	mu      sync.Mutex
	shared  map[string]*natsEntry             // by pattern and group
	entries map[*nats.Subscription]*natsEntry // every live one

	closing        atomic.Bool
	published      atomic.Uint64
	delivered      atomic.Uint64
	dropped        atomic.Uint64 // by our queues
	natsDroppd     atomic.Uint64 // by nats.go, from subscriptions already gone
	retainRejected atomic.Uint64
	loadFailed     atomic.Uint64
	ts             *topicStats // WithTopicStats, nil when off
}

var _ Broker = (*NATS)(nil)

// NewNATS connects to the NATS server(s) at url and sets up the stream of
// retained messages. The URL is nats://HOST:PORT (plain, upgraded to TLS
// when the server requires it) or tls://HOST:PORT (TLS required); a
// comma-separated list names a cluster; credentials in the URL
// (nats://user:pass@host, nats://token@host) work too. It takes the
// options of both brokers and the NATS-only ones (see NATSOption), which
// set authentication, TLS and reconnection.
//
// Retained messages live in a JetStream stream named
// GOANGEL_RETAINED[_NAMESPACE] that keeps one message per subject, under
// the subjects "_goangel_retained.[NAMESPACE.]TOPIC", file-stored,
// limited to WithRetainLimit topics, on min(3, the cluster's size)
// servers unless WithRetainReplicas says otherwise (an existing stream is
// updated to it). When the server has no JetStream, NewNATS still
// connects, says so through the logger (and EventError), and a retained
// publish is delivered but fails with ErrRetainUnavailable.
//
// The stream's servers may die. A retained publish retries its store for
// up to 10 s (or its ctx) while a new leader is elected. A subscription
// whose retained messages cannot be read (the stream does not answer
// within 2 s, or the connection is away) is made all the same: its live
// messages flow, the failure is reported once (EventError) and counted
// (Stats().RetainLoadFailed), and its retained messages follow when the
// stream answers again (EventRetainRestored), except those of topics that
// got a live message meanwhile, which is newer. When the stream cannot be
// set up at start for the same reasons, NewNATS succeeds and sets it up
// later.
//
// ctx bounds the connection attempt and the stream set-up only; the
// connection then lives until Close, reconnecting as WithReconnect says.
func NewNATS(ctx context.Context, url string, opts ...NATSOption) (*NATS, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pubsub: connect to NATS: %w", err)
	}
	b := &NATS{
		cfg:     newNATSConfig(opts),
		shared:  make(map[string]*natsEntry),
		entries: make(map[*nats.Subscription]*natsEntry),
		reloads: make(map[*natsSub]struct{}),
		reqs:    newRequests(),
	}
	b.life, b.endLife = context.WithCancel(context.Background())
	b.subjects.Store(&map[string]string{})
	ts, err := newTopicStats(b.cfg.topicStats)
	if err != nil {
		return nil, err
	}
	b.ts = ts
	if b.cfg.codec == nil {
		b.cfg.codec = JSON{}
	}
	conn := &b.cfg.conn
	if conn.pendingMsgs != 0 || conn.pendingBytes != 0 {
		b.pendingMsgs, b.pendingBytes = conn.pendingMsgs, conn.pendingBytes
		if b.pendingMsgs == 0 {
			b.pendingMsgs = nats.DefaultSubPendingMsgsLimit
		}
		if b.pendingBytes == 0 {
			b.pendingBytes = nats.DefaultSubPendingBytesLimit
		}
	}
	if conn.namespace != "" {
		b.prefix = conn.namespace + "."
	}
	nopts, err := conn.natsOptions(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, b.mainOptions(nopts)...)
	if err != nil {
		return nil, fmt.Errorf("pubsub: connect to NATS at %s: %w", redact(url), err)
	}
	peers, err := nats.Connect(url, b.peerOptions(nopts)...)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("pubsub: connect to NATS at %s (peer connection): %w", redact(url), err)
	}
	if err := ctx.Err(); err != nil {
		peers.Close()
		nc.Close()
		return nil, fmt.Errorf("pubsub: connect to NATS: %w", err)
	}
	b.nc, b.peers = nc, peers
	if err := b.setupRetained(ctx); err != nil {
		b.endLife()
		b.wg.Wait()
		peers.Close()
		nc.Close()
		return nil, err
	}
	return b, nil
}

// subject is the NATS subject of a topic or pattern. With a namespace,
// the subjects of up to maxRoutes topics are cached, so that a publish
// does not build its subject anew.
func (b *NATS) subject(topic string) string {
	if b.prefix == "" {
		return topic
	}
	cur := b.subjects.Load()
	old := *cur
	if subj, ok := old[topic]; ok {
		return subj
	}
	subj := b.prefix + topic
	if len(old) < maxRoutes {
		m := make(map[string]string, len(old)+1)
		maps.Copy(m, old)
		m[topic] = subj
		b.subjects.CompareAndSwap(cur, &m) // a lost race only skips caching
	}
	return subj
}

func (b *NATS) retainedSubject(topic string) string {
	return retainedPrefix + "." + b.subject(topic)
}

// redact hides the credentials of every URL of a comma-separated list,
// for error messages.
func redact(urls string) string {
	list := strings.Split(urls, ",")
	for i, u := range list {
		at := strings.IndexByte(u, '@')
		if at < 0 {
			continue
		}
		start := 0
		if j := strings.Index(u[:at], "://"); j >= 0 {
			start = j + 3
		}
		list[i] = u[:start] + "REDACTED" + u[at:]
	}
	return strings.Join(list, ",")
}

// Conn is the underlying connection (for its statistics or status; do not
// close it, close the broker).
func (b *NATS) Conn() *nats.Conn { return b.nc }

// Register implements Broker.
func (b *NATS) Register(ctx context.Context, info ClientInfo) (Client, error) {
	p, err := b.cfg.admitRegister(ctx, info)
	if err != nil {
		return nil, err
	}
	return b.reg.register(info.ID, func() *natsClient {
		uid := nuid.Next()
		tail := uid + "." + base64.RawURLEncoding.EncodeToString([]byte(info.ID))
		return &natsClient{
			b:     b,
			id:    info.ID,
			uid:   uid,
			perms: p,
			hdr:   nats.Header{headerSender: []string{uid + " " + info.ID}},
			reply: senderReplyPrefix + tail,
			rtail: tail,
			subs:  make(map[*natsSub]struct{}),
		}
	})
}

// Close closes every client, then the connection. Messages already handed
// to the connection are flushed first, for as long as ctx allows.
func (b *NATS) Close(ctx context.Context) error {
	cs, first := b.reg.shut()
	if !first {
		return nil
	}
	for _, c := range cs {
		_ = c.Close()
	}
	b.closing.Store(true)
	b.endLife()
	b.wg.Wait()
	var err error
	if !b.nc.IsClosed() {
		fctx, cancel := withDeadline(ctx)
		if ferr := b.nc.FlushWithContext(fctx); ferr != nil && ctx.Err() != nil {
			err = fmt.Errorf("pubsub: close: flushing to NATS: %w", ctx.Err())
		}
		cancel()
	}
	b.nc.Close()
	b.peers.Close()
	return err
}

// withDeadline gives ctx a deadline if it has none (nats.go's flushes
// require one), far enough that only ctx bounds the wait.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, 24*time.Hour)
}

// TopicStats returns the counters of each pattern given to
// WithTopicStats, in the order given (nil without the option). They count
// what this process published, delivered and dropped (a Block
// subscription's drops in front of its queue too); only the messages
// nats.go itself dropped behind a shared subscription whose delivery
// goroutine got no CPU for long are in Stats().Dropped alone, as nats.go
// does not say their topics.
func (b *NATS) TopicStats() []TopicStats { return b.ts.snapshot() }

// Stats returns the broker-wide counters: Published by this broker's
// clients, Delivered into this broker's subscription queues, Dropped by
// them (including nats.go's own drops).
func (b *NATS) Stats() Stats {
	dropped := b.dropped.Load() + b.natsDroppd.Load()
	b.mu.Lock()
	for _, e := range b.entries {
		dropped += e.natsDropped()
	}
	b.mu.Unlock()
	return Stats{Published: b.published.Load(), Delivered: b.delivered.Load(), Dropped: dropped, RetainRejected: b.retainRejected.Load(), RetainLoadFailed: b.loadFailed.Load(), SlowConsumers: b.cfg.slowEpisodes.Load()}
}

func (b *NATS) asyncError(_ *nats.Conn, ns *nats.Subscription, err error) {
	if ns != nil && errors.Is(err, nats.ErrSlowConsumer) {
		b.mu.Lock()
		e := b.entries[ns]
		b.mu.Unlock()
		if e != nil {
			ev := Event{Kind: EventSlowConsumer, Pattern: e.pattern, Err: err}
			if subs := *e.subs.Load(); len(subs) > 0 {
				s := subs[0]
				ev.Policy, ev.Dropped = s.q.policy, s.Dropped()
				if e.dedicated {
					ev.Client = s.client.id
				}
			}
			b.cfg.emit(ev)
			return
		}
	}
	b.cfg.emit(Event{Kind: EventError, Err: err})
}

func natsErr(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

type natsClient struct {
	b      *NATS
	id     string
	uid    string
	perms  perms
	hdr    nats.Header // never mutated: shared by every request and response
	reply  string      // the reply subject of a plain publish and of a response (see headerSender)
	rtail  string      // "<uid>.<id in base64url>", the end of a request's reply subject
	closed atomic.Bool
	subs   map[*natsSub]struct{} // guarded by b.mu
}

func (c *natsClient) ID() string { return c.id }

// prepare checks a publish or request and encodes its payload.
func (c *natsClient) prepare(ctx context.Context, topic string, payload any) ([]byte, error) {
	if err := checkPublish(ctx, c.closed.Load(), topic); err != nil {
		return nil, err
	}
	if err := c.perms.admitPublish(c.id, topic); err != nil {
		return nil, err
	}
	raw, err := encodeRaw(c.b.cfg.codec, payload)
	if err != nil {
		return nil, fmt.Errorf("pubsub: publish %q: %w", topic, err)
	}
	return raw.Data, nil
}

func (c *natsClient) Publish(ctx context.Context, topic string, payload any, opts ...PublishOption) (int, error) {
	data, err := c.prepare(ctx, topic, payload)
	if err != nil {
		return 0, err
	}
	retain := pubOptions(opts)
	b := c.b
	m := nats.Msg{Subject: b.subject(topic), Reply: c.reply, Data: data}
	var rerr error
	if retain {
		// Stored first, then sent live: a subscription made meanwhile
		// finds it in the stream if it missed it live (and keeps one copy
		// if it gets both).
		if rerr = b.retainErr; rerr == nil {
			var seq uint64
			seq, rerr = b.store(ctx, topic, c.hdr, data)
			if rerr == nil {
				m.Reply, m.Header = "", nats.Header{headerSender: c.hdr[headerSender], headerRetained: []string{strconv.FormatUint(seq, 10)}}
			} else if errors.Is(rerr, ErrClosed) {
				return 0, fmt.Errorf("pubsub: publish %q: %w", topic, rerr)
			}
		}
		if rerr != nil {
			b.retainRejected.Add(1)
		}
	}
	if err := b.nc.PublishMsg(&m); err != nil {
		return 0, fmt.Errorf("pubsub: publish %q: %w", topic, natsErr(err))
	}
	b.published.Add(1)
	if b.ts != nil {
		b.ts.of(topic).published()
	}
	if rerr != nil {
		return 1, fmt.Errorf("pubsub: publish %q: %w", topic, rerr)
	}
	return 1, nil
}

// natsResponder answers a request as the client whose subscription got it.
type natsResponder struct {
	reply, topic string
	by           *natsClient
}

func (x *natsResponder) respond(ctx context.Context, payload any) error {
	if x.by.closed.Load() {
		return fmt.Errorf("pubsub: respond to %q: %w", x.topic, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: respond to %q: %w", x.topic, err)
	}
	raw, err := encodeRaw(x.by.b.cfg.codec, payload)
	if err != nil {
		return fmt.Errorf("pubsub: respond to %q: %w", x.topic, err)
	}
	if err := x.by.b.nc.PublishMsg(&nats.Msg{Subject: x.reply, Reply: x.by.reply, Data: raw.Data}); err != nil {
		return fmt.Errorf("pubsub: respond to %q: %w", x.topic, natsErr(err))
	}
	return nil
}

func (c *natsClient) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (Subscription, error) {
	if err := c.perms.admitSubscribe(ctx, c.id, pattern); err != nil {
		return nil, err
	}
	b := c.b
	sc, err := b.cfg.subConfig(opts)
	if err != nil {
		return nil, err
	}
	retained := sc.group == "" && b.retainErr == nil
	s := &natsSub{client: c, pattern: pattern, self: sc.self, retained: retained}
	s.q = newQueue(sc, &b.dropped, b.cfg.reporter(c.id, pattern, sc.policy), b.ts)
	if retained {
		s.loading.Store(true) // live messages wait in s.pending meanwhile
	}

	b.mu.Lock()
	if c.closed.Load() {
		b.mu.Unlock()
		return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, ErrClosed)
	}
	// Subscriptions that never block share one NATS subscription per
	// pattern (and queue group) per broker; a Block one gets its own, so
	// that waiting for it holds up nobody else.
	key := pattern + "\x00" + sc.group
	e := b.shared[key]
	if e == nil || sc.policy == Block {
		e = &natsEntry{b: b, pattern: pattern, group: sc.group, dedicated: sc.policy == Block}
		e.subs.Store(&[]*natsSub{})
		var ns *nats.Subscription
		var err error
		cb := e.handle
		if e.dedicated {
			e.feed = newFeed(e, b.pendingMsgs, b.pendingBytes)
			cb = e.feed.put
		}
		if sc.group != "" {
			ns, err = b.nc.QueueSubscribe(b.subject(pattern), sc.group, cb)
		} else {
			ns, err = b.nc.Subscribe(b.subject(pattern), cb)
		}
		if err == nil {
			e.peer, err = b.peers.Subscribe(peerPrefix+b.subject(pattern), e.answerPeer)
			if err != nil {
				_ = ns.Unsubscribe()
			}
		}
		if err != nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, natsErr(err))
		}
		switch {
		case e.dedicated:
			// The feed bounds what waits; its callback never blocks.
			_ = ns.SetPendingLimits(-1, -1)
			b.wg.Go(e.feed.run)
		case b.pendingMsgs != 0:
			_ = ns.SetPendingLimits(b.pendingMsgs, b.pendingBytes)
		}
		e.ns = ns
		b.entries[ns] = e
		if !e.dedicated {
			b.shared[key] = e
		}
	}
	s.entry = e
	e.add(s)
	c.subs[s] = struct{}{}
	b.mu.Unlock()

	// Subscribe returns once the server knows the interest, so that a
	// message published afterwards (from anywhere) reaches it. While the
	// connection is down and reconnecting, it returns at once: nats.go
	// sends the interest on reconnect (an instance respawned during a NATS
	// outage still starts; it gets no retained messages then).
	if b.nc.IsReconnecting() {
		if retained {
			b.loadFailed.Add(1)
			b.loadLater(s, nil)
		} else {
			s.loaded(nil)
		}
		return s, nil
	}
	fctx, cancel := withDeadline(ctx)
	defer cancel()
	fail := func(err error) (Subscription, error) {
		_ = s.Unsubscribe()
		if b.nc.IsClosed() {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, err)
	}
	err = b.nc.FlushWithContext(fctx)
	if err == nil && !b.peers.IsReconnecting() {
		// Another broker's request asks the peer subscription too.
		if perr := b.peers.FlushWithContext(fctx); perr != nil && ctx.Err() != nil {
			err = perr
		}
	}
	if err != nil {
		if b.nc.IsReconnecting() {
			if retained {
				b.loadFailed.Add(1)
				b.loadLater(s, nil)
			} else {
				s.loaded(nil)
			}
			return s, nil
		}
		return fail(err)
	}
	if retained {
		lctx, cancel := context.WithTimeout(fctx, retainAttempt)
		ms, err := b.loadRetained(lctx, s)
		cancel()
		switch {
		case err == nil:
			s.loaded(ms)
		case ctx.Err() != nil || b.nc.IsClosed():
			return fail(fmt.Errorf("retained messages: %w", err))
		default:
			// The life goes on with what it has; the retained messages
			// follow when the stream answers again.
			b.loadFailed.Add(1)
			b.loadLater(s, err)
		}
	}
	return s, nil
}

func (c *natsClient) Close() error {
	b := c.b
	b.mu.Lock()
	if c.closed.Load() {
		b.mu.Unlock()
		return nil
	}
	c.closed.Store(true)
	subs := make([]*natsSub, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	b.reg.release(c.id, c)
	return nil
}

// natsEntry is one NATS subscription and the local subscriptions it
// feeds (one when dedicated).
type natsEntry struct {
	b         *NATS
	pattern   string
	group     string
	dedicated bool
	ns        *nats.Subscription
	peer      *nats.Subscription         // on b.peers: see answerPeer
	subs      atomic.Pointer[[]*natsSub] // copy-on-write, written under b.mu
	next      atomic.Uint32              // a group's round-robin start
	gone      atomic.Bool
	nd        atomic.Uint64 // nats.go's drops, kept when ns goes
	looping   atomic.Bool   // a group message was dropped after maxRedirects hand-backs, reported
	feed      *feed         // a Block subscription's buffer, nil when shared

	lastEnc, lastID string // sender's cache: see sender
}

// add and remove run with b.mu held.
func (e *natsEntry) add(s *natsSub) {
	old := *e.subs.Load()
	subs := make([]*natsSub, len(old), len(old)+1)
	copy(subs, old)
	subs = append(subs, s)
	e.subs.Store(&subs)
}

// remove reports whether e has no local subscription left, in which case
// its NATS subscription is gone too.
func (e *natsEntry) remove(s *natsSub) bool {
	old := *e.subs.Load()
	subs := make([]*natsSub, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	e.subs.Store(&subs)
	if len(subs) > 0 {
		return false
	}
	b := e.b
	key := e.pattern + "\x00" + e.group
	if b.shared[key] == e {
		delete(b.shared, key)
	}
	delete(b.entries, e.ns)
	if d, err := e.ns.Dropped(); err == nil && d > 0 {
		e.nd.Store(uint64(d))
		b.natsDroppd.Add(uint64(d))
	}
	e.gone.Store(true)
	_ = e.ns.Unsubscribe() // fails only when the connection is closed: the interest is gone anyway
	_ = e.peer.Unsubscribe()
	if e.feed != nil {
		close(e.feed.done)
	}
	return true
}

func (e *natsEntry) natsDropped() uint64 {
	if e.gone.Load() {
		return e.nd.Load()
	}
	if d, err := e.ns.Dropped(); err == nil && d > 0 {
		return uint64(d)
	}
	return 0
}

// handle runs on nats.go's delivery goroutine of this NATS subscription:
// the header is parsed once, whatever the number of local subscriptions.
func (e *natsEntry) handle(m *nats.Msg) {
	subs := *e.subs.Load()
	if len(subs) == 0 {
		return
	}
	b := e.b
	if b.prefix == "" && (e.pattern[0] == '*' || e.pattern[0] == '>') {
		// Without a namespace a leading wildcard also matches the
		// subjects of retained copies, inboxes and system requests.
		// (and the server's no-responders notices to the reply subjects
		// of plain publishes).
		if strings.HasPrefix(m.Subject, retainedPrefix+".") || strings.HasPrefix(m.Subject, "_INBOX.") || m.Subject[0] == '$' ||
			strings.HasPrefix(m.Subject, "_GOANGEL.") {
			return
		}
	}
	var hops int
	var rid string
	// A plain publish carries no header, a request or a response carries
	// headerSender only; a queue-group message handed back carries
	// headerRedirect beside whatever its first copy carried (none for a
	// plain publish), a retained message's live copy headerRetained.
	if len(m.Header) > 0 && (len(m.Header) > 1 || m.Header[headerSender] == nil) {
		if redirect := m.Header.Get(headerRedirect); redirect != "" {
			group, n, _ := strings.Cut(redirect, " ")
			if group != e.group {
				return // a queue-group message handed back: for that group only
			}
			hops, _ = strconv.Atoi(n)
		}
		rid = m.Header.Get(headerRetained)
	}
	uid, id, request := e.sender(m)
	msg := Message{Topic: m.Subject[len(b.prefix):], Sender: id, Payload: Raw{Data: m.Data, Codec: b.cfg.codec}}
	if e.group != "" {
		e.handleGroup(m, msg, subs, uid, hops, request)
		return
	}
	n := uint64(0)
	for _, s := range subs {
		if uid == s.client.uid && (!s.self || request) {
			continue
		}
		if s.deliver(withReply(msg, m, s, request), rid) {
			n++
		}
	}
	if n > 0 {
		b.delivered.Add(n)
		if b.ts != nil {
			b.ts.of(msg.Topic).delivered(n)
		}
	}
}

// sender returns who published m (the client's uid and ClientInfo.ID, ""
// for a message from outside goangel) and whether m is a request. It runs
// on the subscription's own delivery goroutine (nats.go hands one
// subscription's messages over one at a time), which alone uses e's cache
// of the last id decoded.
func (e *natsEntry) sender(m *nats.Msg) (uid, id string, request bool) {
	rest, ok := strings.CutPrefix(m.Reply, senderReplyPrefix)
	if !ok {
		// A goangel request: "<broker>.<request>.<uid>.<id>".
		if rest, ok = strings.CutPrefix(m.Reply, requestReplyPrefix); ok {
			request = true
			for range 2 {
				_, rest, _ = strings.Cut(rest, ".")
			}
		}
	}
	if ok {
		uid, enc, _ := strings.Cut(rest, ".")
		if enc != e.lastEnc {
			raw, err := base64.RawURLEncoding.DecodeString(enc)
			if err != nil {
				raw = nil // not goangel's: no id
			}
			e.lastEnc, e.lastID = enc, string(raw)
		}
		return uid, e.lastID, request
	}
	uid, id, _ = strings.Cut(m.Header.Get(headerSender), " ")
	return uid, id, m.Reply != ""
}

// withReply gives a request's message the responder of s's client.
func withReply(msg Message, m *nats.Msg, s *natsSub, request bool) Message {
	if request {
		msg.meta = &meta{reply: &natsResponder{reply: m.Reply, topic: msg.Topic, by: s.client}}
	}
	return msg
}

// handleGroup hands a queue-group message to one local member that is not
// the sender's own, preferring one with room; with none, it hands the
// message back to the server for another member of the group.
func (e *natsEntry) handleGroup(m *nats.Msg, msg Message, subs []*natsSub, uid string, hops int, request bool) {
	n := uint32(len(subs))
	start := e.next.Add(1)
	var pick *natsSub
	for i := range n {
		s := subs[(start+i)%n]
		if uid == s.client.uid && (!s.self || request) {
			continue
		}
		if len(s.q.ch) < cap(s.q.ch) {
			pick = s
			break
		}
		if pick == nil {
			pick = s
		}
	}
	b := e.b
	if pick != nil {
		e.looping.Store(false)
		if pick.deliver(withReply(msg, m, pick, request), "") {
			b.delivered.Add(1)
			if b.ts != nil {
				b.ts.of(msg.Topic).delivered(1)
			}
		}
		return
	}
	if hops >= maxRedirects {
		// Most likely the group has no member but the sender's own. Every
		// such message is counted; the first of a run is reported, until
		// this broker's members take a message again.
		b.dropped.Add(1)
		b.ts.dropped(msg.Topic)
		if !e.looping.Swap(true) {
			b.cfg.emit(Event{Kind: EventError, Pattern: e.pattern, Err: fmt.Errorf("pubsub: queue group %q: message on %q dropped: only the sender's own members took it, %d times (is there a member of another client?); further such drops are counted in Stats().Dropped, not reported, until a member here takes a message", e.group, msg.Topic, hops+1)})
		}
		return
	}
	h := nats.Header{}
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(headerRedirect, e.group+" "+strconv.Itoa(hops+1))
	_ = b.nc.PublishMsg(&nats.Msg{Subject: m.Subject, Reply: m.Reply, Header: h, Data: m.Data})
}

type natsSub struct {
	client  *natsClient
	pattern string
	self    bool
	entry   *natsEntry
	q       *queue
	gone    atomic.Bool

	// retained: the subscription gets retained messages (not a group
	// member, and the server has JetStream).
	retained bool
	// While the retained messages load, live ones wait in pending.
	loading atomic.Bool
	// While a failed load waits to be retried, the topics of the live
	// messages delivered are noted: their retained messages are older.
	later   atomic.Bool
	mu      sync.Mutex
	pending []pendingMsg
	seen    map[string]uint64   // topic -> stream sequence of the newest retained message delivered
	live    map[string]struct{} // while later: topics delivered live
}

type pendingMsg struct {
	m   Message
	rid string
}

// deliver puts one live message in s's queue, or in pending while the
// retained messages load. rid is the stream sequence of a retained
// message sent live, or "": a live copy no newer than the retained
// message of its topic already delivered (from the stream) is dropped.
func (s *natsSub) deliver(msg Message, rid string) bool {
	if s.loading.Load() || s.later.Load() || rid != "" {
		s.mu.Lock()
		if s.loading.Load() {
			if len(s.pending) < cap(s.q.ch) {
				s.pending = append(s.pending, pendingMsg{msg, rid})
			} else {
				s.q.drop(msg.Topic)
			}
			s.mu.Unlock()
			return true
		}
		if s.later.Load() {
			s.live[msg.Topic] = struct{}{}
		}
		if rid != "" && !s.newer(msg.Topic, rid) {
			s.mu.Unlock()
			return false // delivered from the stream already, or older
		}
		s.mu.Unlock()
	}
	return s.q.lockedPut(context.Background(), msg)
}

// newer reports whether the live copy of retained message rid is newer
// than the retained message of its topic delivered last, and notes it.
// With s.mu held.
func (s *natsSub) newer(topic, rid string) bool {
	seq, err := strconv.ParseUint(rid, 10, 64)
	if err != nil {
		return true
	}
	if seq <= s.seen[topic] {
		return false
	}
	if s.seen == nil {
		s.seen = map[string]uint64{}
	}
	s.seen[topic] = seq
	return true
}

// loaded queues the retained messages, then the live ones that waited,
// and lets live messages through. It never waits (Subscribe has not
// returned: nobody reads yet): what does not fit is dropped, counted. The
// live copy of a retained message carries its stream sequence: a stored
// message is left out when its live copy (or a newer one) waited, and
// live copies as old as a stored message handed over are dropped, now or
// when they come.
func (s *natsSub) loaded(retained []storedMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loading.Load() {
		return
	}
	newest := map[string]uint64{} // topic -> newest live retained copy that waited
	for _, p := range s.pending {
		if seq, err := strconv.ParseUint(p.rid, 10, 64); err == nil && seq > newest[p.m.Topic] {
			newest[p.m.Topic] = seq
		}
	}
	for _, r := range retained {
		if newest[s.topicOf(r)] < r.seq {
			s.putStored(r)
		}
	}
	for _, p := range s.pending {
		if p.rid != "" && !s.newer(p.m.Topic, p.rid) {
			continue
		}
		if s.later.Load() {
			s.live[p.m.Topic] = struct{}{}
		}
		s.q.putNow(p.m)
	}
	s.pending = nil
	s.loading.Store(false)
}

func (s *natsSub) topicOf(r storedMsg) string { return r.m.Subject[len(s.client.b.prefix):] }

// putStored queues a retained message read from the stream and notes its
// sequence; with s.mu held.
func (s *natsSub) putStored(r storedMsg) {
	b := s.client.b
	msg := Message{Topic: s.topicOf(r), Payload: Raw{Data: r.m.Data, Codec: b.cfg.codec}, meta: retainedMeta}
	_, msg.Sender, _ = strings.Cut(r.m.Header.Get(headerSender), " ")
	if s.q.putNow(msg) {
		b.delivered.Add(1)
	}
	if s.seen == nil {
		s.seen = map[string]uint64{}
	}
	s.seen[msg.Topic] = r.seq
}

// resync queues the retained messages read again from the stream that
// are newer than those s delivered: after a failed load, those of the
// topics that got no live message since (a live message is newer than
// what the stream held when the subscription was made, and the live copy
// of a retained message stored since has come too, unless lost); after a
// reconnect, those whose live copies were lost meanwhile.
func (s *natsSub) resync(retained []storedMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loading.Load() {
		return // Subscribe's own load follows
	}
	later := s.later.Load()
	for _, r := range retained {
		topic := s.topicOf(r)
		if _, ok := s.live[topic]; (later && ok) || r.seq <= s.seen[topic] {
			continue
		}
		s.putStored(r)
	}
	s.live = nil
	s.later.Store(false)
}

func (s *natsSub) Pattern() string   { return s.pattern }
func (s *natsSub) C() <-chan Message { return s.q.ch }

// Dropped counts the queue's drops and those of nats.go in front of it
// (for a shared NATS subscription, a message nats.go dropped is lost to
// every local subscription it feeds).
func (s *natsSub) Dropped() uint64 {
	return s.q.dropped.Load() + s.entry.natsDropped()
}

func (s *natsSub) Unsubscribe() error {
	if !s.gone.CompareAndSwap(false, true) {
		return nil
	}
	b := s.client.b
	b.mu.Lock()
	delete(s.client.subs, s)
	delete(b.reloads, s)
	s.entry.remove(s)
	b.mu.Unlock()
	s.q.markClosed()
	s.q.closeCh()
	return nil
}
