package pubsub

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// memBroker is the in-memory broker (NewMemory): channels, no
// serialisation, no sockets.
type memBroker struct {
	cfg config
	reg registry[*memClient]

	mu       sync.Mutex // guards the index, the retained messages and routes' writers
	exact    map[string]map[*memSub]struct{}
	wild     map[*memSub]struct{}
	retained map[string]*retainedMsg           // updated in place: one hash per retained publish
	seq      uint64                            // orders retained messages
	routes   atomic.Pointer[map[string]*route] // copy-on-write cache topic -> matching subs

	dropped        atomic.Uint64
	retainRejected atomic.Uint64
	ts             *topicStats // WithTopicStats, nil when off

	// The publish fence (against the closing of channels) and the
	// published and delivered counters.
	gate gate
}

// route is what one topic is delivered to: every ordinary subscription,
// and one member of each queue group.
type route struct {
	subs   []*memSub
	groups []*memGroup
	ts     topicSet // counters of the WithTopicStats patterns the topic matches, nil when none
}

type memGroup struct {
	name    string
	members []*memSub
	next    atomic.Uint32 // round-robin start
}

type retainedMsg struct {
	m    Message
	from *memClient
	seq  uint64
}

// retainedMeta marks a retained message; shared, never written.
var retainedMeta = &meta{retained: true}

// closeSubs closes the queues of subs (already removed from the index).
func (b *memBroker) closeSubs(subs []*memSub) {
	n := 0
	for _, s := range subs {
		if s.q.markClosed() {
			subs[n] = s
			n++
		}
	}
	if n == 0 {
		return
	}
	b.gate.quiesce()
	for _, s := range subs[:n] {
		s.q.closeCh()
	}
}

// maxRoutes bounds the route cache: topics beyond it are routed uncached.
const maxRoutes = 512

var _ Broker = (*memBroker)(nil)

// NewMemory returns the in-memory broker: one process, channels, no
// serialisation, no sockets (see the package doc). It takes the options
// of both brokers (Option), not the NATS-only ones (NATSOption).
func NewMemory(opts ...Option) Broker {
	b := &memBroker{
		cfg:      newConfig(opts),
		exact:    make(map[string]map[*memSub]struct{}),
		wild:     make(map[*memSub]struct{}),
		retained: make(map[string]*retainedMsg),
	}
	ts, err := newTopicStats(b.cfg.topicStats)
	if err != nil {
		panic(err.Error())
	}
	b.ts = ts
	b.invalidate()
	return b
}

// Register implements Broker.
func (b *memBroker) Register(ctx context.Context, info ClientInfo) (Client, error) {
	p, err := b.cfg.admitRegister(ctx, info)
	if err != nil {
		return nil, err
	}
	return b.reg.register(info.ID, func() *memClient {
		return &memClient{b: b, id: info.ID, perms: p, subs: make(map[*memSub]struct{})}
	})
}

// Close implements Broker: it closes every client. It does not block (ctx
// is not needed in memory).
func (b *memBroker) Close(context.Context) error {
	cs, _ := b.reg.shut()
	for _, c := range cs {
		_ = c.Close()
	}
	return nil
}

// Stats implements Broker.
func (b *memBroker) Stats() Stats {
	b.mu.Lock()
	retained := len(b.retained)
	b.mu.Unlock()
	published, delivered := b.gate.counts()
	return Stats{
		Published:      published,
		Delivered:      delivered,
		Dropped:        b.dropped.Load(),
		Retained:       retained,
		RetainRejected: b.retainRejected.Load(),
		SlowConsumers:  b.cfg.slowEpisodes.Load(),
	}
}

// TopicStats implements Broker.
func (b *memBroker) TopicStats() []TopicStats { return b.ts.snapshot() }

// invalidate drops the route cache; called with mu held (or at creation).
func (b *memBroker) invalidate() {
	m := make(map[string]*route)
	b.routes.Store(&m)
}

// routeLocked returns what a valid topic is delivered to, from the cache or
// the index; called with mu held.
func (b *memBroker) routeLocked(topic string) *route {
	old := *b.routes.Load()
	if rt, ok := old[topic]; ok {
		return rt
	}
	rt := &route{ts: b.ts.of(topic)}
	add := func(s *memSub) {
		if s.group == "" {
			rt.subs = append(rt.subs, s)
			return
		}
		for _, g := range rt.groups {
			if g.name == s.group {
				g.members = append(g.members, s)
				return
			}
		}
		rt.groups = append(rt.groups, &memGroup{name: s.group, members: []*memSub{s}})
	}
	for s := range b.exact[topic] {
		add(s)
	}
	for s := range b.wild {
		if match(s.pattern, topic) {
			add(s)
		}
	}
	if len(old) < maxRoutes {
		m := make(map[string]*route, len(old)+1)
		maps.Copy(m, old)
		m[topic] = rt
		b.routes.Store(&m)
	}
	return rt
}

type memClient struct {
	b      *memBroker
	id     string
	perms  perms
	closed atomic.Bool
	subs   map[*memSub]struct{} // guarded by b.mu
}

func (c *memClient) ID() string { return c.id }

func (c *memClient) Publish(ctx context.Context, topic string, payload any, opts ...PublishOption) (int, error) {
	if len(opts) == 0 {
		if n, ok, err := c.publishFast(ctx, topic, payload); ok {
			return n, err
		}
	}
	return c.publish(ctx, topic, payload, pubOptions(opts), nil)
}

// publishFast is publish for the common case, kept small (no error
// formatting, no retained state, no request): a live message from an open
// client with a live ctx, allowed to publish, on a topic whose route is
// cached, without a codec. It reports false, having done nothing, when one
// of these does not hold (publish then does it all, errors included). A
// queue that does not take the message at once hands the rest of the
// delivery to the general path, in the same epoch.
func (c *memClient) publishFast(ctx context.Context, topic string, payload any) (int, bool, error) {
	b := c.b
	rt := (*b.routes.Load())[topic]
	if rt == nil || b.cfg.codec != nil || c.closed.Load() || ctx.Err() != nil || (len(c.perms.pub) > 0 && !c.perms.canPublish(topic)) {
		return 0, false, nil
	}
	m := Message{Topic: topic, Sender: c.id, Payload: payload}
	e := b.gate.enter()
	n := 0
	for i, s := range rt.subs {
		if s.client == c && !s.self {
			continue
		}
		q := s.q
		if !q.slow.Load() && !q.closed.Load() {
			select {
			case q.ch <- m:
				n++
				continue
			default:
			}
		}
		n, err := c.finish(ctx, rt, m, e, i, n)
		return n, true, err
	}
	if len(rt.groups) > 0 {
		n, err := c.finish(ctx, rt, m, e, len(rt.subs), n)
		return n, true, err
	}
	b.gate.done(e, n)
	rt.count(n)
	return n, true, nil
}

// finish is the rest of publishFast's delivery, from rt.subs[i] on, by the
// general path (inside epoch e, n deliveries made).
func (c *memClient) finish(ctx context.Context, rt *route, m Message, e uint64, i, n int) (int, error) {
	d := delivery{ctx: ctx, c: c, m: m, n: n}
	c.b.gate.done(d.runFrom(e, rt, i), d.n)
	rt.count(d.n)
	if d.err != nil {
		return d.n, fmt.Errorf("pubsub: publish %q: %w", m.Topic, d.err)
	}
	return d.n, nil
}

// count adds one publish delivered n times to the topic's counters, if
// any (the gate counts the broker's).
func (rt *route) count(n int) {
	if rt.ts != nil {
		rt.ts.published()
		if n > 0 {
			rt.ts.delivered(uint64(n))
		}
	}
}

// publish delivers one message; rep is the reply slot of a request.
func (c *memClient) publish(ctx context.Context, topic string, payload any, retain bool, rep *memReply) (int, error) {
	if err := checkPublish(ctx, c.closed.Load(), topic); err != nil {
		return 0, err
	}
	b := c.b
	routes := b.routes.Load()
	rt := (*routes)[topic] // the topic of a cached route is valid
	if rt == nil {
		if err := ValidateTopic(topic); err != nil {
			return 0, err
		}
	}
	if !c.perms.canPublish(topic) {
		return 0, fmt.Errorf("%w: client %q may not publish to %q", ErrPermission, c.id, topic)
	}
	if codec := b.cfg.codec; codec != nil {
		var err error
		if payload, err = encodeRaw(codec, payload); err != nil {
			return 0, fmt.Errorf("pubsub: publish %q: %w", topic, err)
		}
	}
	m := Message{Topic: topic, Sender: c.id, Payload: payload}
	var rerr error
	if retain {
		// The message is stored and the route taken at once under mu, as
		// Subscribe takes the retained messages and indexes a subscription:
		// a subscription made before gets the message live, one made after
		// gets it retained, each exactly once.
		b.mu.Lock()
		rerr = b.retainLocked(c, m)
		if rt == nil || b.routes.Load() != routes { // the route cache changed meanwhile
			rt = b.routeLocked(topic)
		}
		b.mu.Unlock()
	} else if rt == nil {
		b.mu.Lock()
		rt = b.routeLocked(topic)
		b.mu.Unlock()
	}
	d := delivery{ctx: ctx, c: c, m: m, rep: rep}
	b.gate.done(d.runFrom(b.gate.enter(), rt, 0), d.n)
	rt.count(d.n)
	err := d.err
	if err != nil {
		err = fmt.Errorf("pubsub: publish %q: %w", topic, err)
	}
	if rerr != nil {
		err = joinErr(err, fmt.Errorf("pubsub: publish %q: %w", topic, rerr))
	}
	return d.n, err
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%w; %w", a, b)
}

// retainLocked keeps m as its topic's last message, within the limit.
func (b *memBroker) retainLocked(c *memClient, m Message) error {
	b.seq++
	if r := b.retained[m.Topic]; r != nil {
		*r = retainedMsg{m: m, from: c, seq: b.seq}
		return nil
	}
	if len(b.retained) >= b.cfg.retainLimit {
		b.retainRejected.Add(1)
		return fmt.Errorf("%w: %d topics retained (WithRetainLimit)", ErrRetainLimit, len(b.retained))
	}
	b.retained[m.Topic] = &retainedMsg{m: m, from: c, seq: b.seq}
	return nil
}

// delivery is one message on its way to a route's subscriptions.
type delivery struct {
	ctx context.Context
	c   *memClient // the sender
	m   Message
	rep *memReply // a request's reply slot, or nil

	n   int
	err error
}

type slowPut struct {
	s    *memSub
	m    Message
	ev   EventKind
	full bool
}

// runFrom hands the message to every ordinary subscription from rt.subs[i]
// on and to one member of each group, inside publish epoch e; it returns
// the epoch to leave (the slow path leaves and enters again).
func (d *delivery) runFrom(e uint64, rt *route, i int) uint64 {
	for _, s := range rt.subs[i:] {
		if s.client == d.c && (!s.self || d.rep != nil) {
			continue
		}
		q := s.q
		if q.closed.Load() {
			continue
		}
		// The fast path, inline: a plain message into a queue with room
		// that is not in a slow episode (nothing to report).
		if d.rep == nil && !q.slow.Load() {
			select {
			case q.ch <- d.m:
				d.n++
				continue
			default:
			}
		}
		e = d.put(e, s)
	}
	for _, g := range rt.groups {
		if s := d.pick(g); s != nil {
			e = d.put(e, s)
		}
	}
	return e
}

// pick chooses the group member to get the message: the next one in turn
// that is not the sender's own (unless IncludeSelf), preferring one with
// room in its queue.
func (d *delivery) pick(g *memGroup) *memSub {
	n := uint32(len(g.members))
	start := g.next.Add(1)
	var first *memSub
	for i := range n {
		s := g.members[(start+i)%n]
		if (s.client == d.c && (!s.self || d.rep != nil)) || s.q.closed.Load() {
			continue
		}
		if len(s.q.ch) < cap(s.q.ch) {
			return s
		}
		if first == nil {
			first = s
		}
	}
	return first
}

// put hands the message to s inside epoch e, and returns the epoch it is
// in afterwards (the slow path leaves it to report and wait).
func (d *delivery) put(e uint64, s *memSub) uint64 {
	m := d.m
	if d.rep != nil {
		m.meta = &meta{reply: &memResponder{r: d.rep, by: s.client}}
	}
	ok, full, ev := s.q.tryPut(m)
	if ok {
		d.n++
	}
	if ev == 0 && !full {
		return e
	}
	b := d.c.b
	b.gate.leave(e)
	d.slowPut(slowPut{s, m, ev, full})
	return b.gate.enter()
}

func (d *delivery) slowPut(p slowPut) {
	p.s.q.event(p.ev)
	if !p.full {
		return
	}
	ok, err := p.s.q.blockPut(d.ctx, p.m)
	if ok {
		d.n++
	}
	if err != nil && d.err == nil {
		d.err = err
	}
}

// memReply is a request's reply slot: the first answer wins.
type memReply struct {
	topic string
	ch    chan Message // buffered 1
	done  atomic.Bool
}

// memResponder answers a request as the client whose subscription got it.
type memResponder struct {
	r  *memReply
	by *memClient
}

func (x *memResponder) respond(ctx context.Context, payload any) error {
	if x.by.closed.Load() {
		return fmt.Errorf("pubsub: respond to %q: %w", x.r.topic, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: respond to %q: %w", x.r.topic, err)
	}
	if codec := x.by.b.cfg.codec; codec != nil {
		var err error
		if payload, err = encodeRaw(codec, payload); err != nil {
			return fmt.Errorf("pubsub: respond to %q: %w", x.r.topic, err)
		}
	}
	if x.r.done.CompareAndSwap(false, true) {
		x.r.ch <- Message{Topic: x.r.topic, Sender: x.by.id, Payload: payload}
	}
	return nil
}

func (c *memClient) Request(ctx context.Context, topic string, payload any) (Message, error) {
	rep := &memReply{topic: topic, ch: make(chan Message, 1)}
	n, err := c.publish(ctx, topic, payload, false, rep)
	if n == 0 {
		if err == nil {
			err = fmt.Errorf("pubsub: request %q: %w", topic, ErrNoResponders)
		}
		return Message{}, err
	}
	select {
	case m := <-rep.ch:
		return m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("pubsub: request %q: no answer: %w", topic, ctx.Err())
	}
}

func (c *memClient) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (Subscription, error) {
	if err := c.perms.admitSubscribe(ctx, c.id, pattern); err != nil {
		return nil, err
	}
	sc, err := c.b.cfg.subConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &memSub{client: c, pattern: pattern, self: sc.self, group: sc.group, wild: isWild(pattern)}
	s.q = newQueue(sc, &c.b.dropped, c.b.cfg.reporter(c.id, pattern, sc.policy), c.b.ts)
	b := c.b
	b.mu.Lock()
	if c.closed.Load() {
		b.mu.Unlock()
		return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, ErrClosed)
	}
	// The retained messages go in first, before any publisher can see
	// the subscription (both happen under mu).
	var evs []EventKind
	if s.group == "" && len(b.retained) > 0 {
		var rs []retainedMsg
		for t, r := range b.retained {
			if (s.wild && match(pattern, t)) || t == pattern {
				if r.from != c || s.self {
					rs = append(rs, *r)
				}
			}
		}
		slices.SortFunc(rs, func(a, b retainedMsg) int { return cmp.Compare(a.seq, b.seq) })
		for _, r := range rs {
			m := r.m
			m.meta = retainedMeta
			ok, full, ev := s.q.tryPut(m) // a fresh queue too small drops, counted, whatever the policy
			if full {
				s.q.drop(m.Topic)
			}
			if ok {
				b.gate.addDelivered(1)
			}
			if ev != 0 {
				evs = append(evs, ev)
			}
		}
	}
	c.subs[s] = struct{}{}
	if s.wild {
		b.wild[s] = struct{}{}
	} else {
		set := b.exact[pattern]
		if set == nil {
			set = make(map[*memSub]struct{})
			b.exact[pattern] = set
		}
		set[s] = struct{}{}
	}
	b.invalidate()
	b.mu.Unlock()
	for _, ev := range evs {
		s.q.event(ev)
	}
	return s, nil
}

// unindex removes s from the broker's index; called with b.mu held.
func (b *memBroker) unindex(s *memSub) {
	if s.wild {
		delete(b.wild, s)
	} else if set := b.exact[s.pattern]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.exact, s.pattern)
		}
	}
}

func (c *memClient) Close() error {
	b := c.b
	b.mu.Lock()
	if c.closed.Load() {
		b.mu.Unlock()
		return nil
	}
	c.closed.Store(true)
	subs := slices.Collect(maps.Keys(c.subs))
	for _, s := range subs {
		b.unindex(s)
	}
	c.subs = nil
	b.invalidate()
	b.mu.Unlock()
	b.reg.release(c.id, c)
	b.closeSubs(subs)
	return nil
}

type memSub struct {
	client  *memClient
	pattern string
	group   string
	self    bool
	wild    bool
	q       *queue
}

func (s *memSub) Pattern() string   { return s.pattern }
func (s *memSub) C() <-chan Message { return s.q.ch }
func (s *memSub) Dropped() uint64   { return s.q.dropped.Load() }
func (s *memSub) Unsubscribe() error {
	b := s.client.b
	b.mu.Lock()
	if _, ok := s.client.subs[s]; ok {
		delete(s.client.subs, s)
		b.unindex(s)
		b.invalidate()
	}
	b.mu.Unlock()
	b.closeSubs([]*memSub{s})
	return nil
}
