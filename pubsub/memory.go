package pubsub

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
)

// MemoryOption configures NewMemory.
type MemoryOption func(*config)

// WithLogger reports slow-consumer episodes (and NATS connection events)
// through l.
func WithLogger(l logrus.FieldLogger) MemoryOption {
	return func(c *config) { c.logger = l }
}

// WithEventHook calls hook for every Event. It runs on the publisher's
// goroutine (in memory) or the connection's (NATS), holding no lock of the
// broker: keep it short. Nothing recovers a panic in it: in memory it
// reaches the publisher; with NATS it crashes the process, as nats.go does
// not recover its callbacks.
func WithEventHook(hook func(Event)) MemoryOption {
	return func(c *config) { c.hook = hook }
}

// WithDefaultQueueSize sets the queue size of subscriptions that do not set
// one (default DefaultQueueSize).
func WithDefaultQueueSize(n int) MemoryOption {
	return func(c *config) { c.queueSize = n }
}

// WithDefaultPolicy sets the overflow policy of subscriptions that do not
// set one (default DropNewest).
func WithDefaultPolicy(p Policy) MemoryOption {
	return func(c *config) { c.policy = p }
}

// WithKnownClients restricts registration to these ids, as Dart's pub_sub
// server does with its list of ClientInfo: Register rejects any other id
// with ErrUnknownClient, and both these allow-lists and the ones given to
// Register apply.
func WithKnownClients(infos ...ClientInfo) MemoryOption {
	return func(c *config) { c.known = knownMap(infos) }
}

// WithCodec makes the in-memory broker encode every payload with codec and
// deliver it as a Raw, exactly as the NATS backend does: useful in tests to
// check that app code does not rely on sharing payload values. Off by
// default (payloads are handed over as they are, with no serialisation).
func WithCodec(codec Codec) MemoryOption {
	return func(c *config) { c.codec = codec }
}

// Memory is the in-memory broker: channels, no serialisation, no sockets.
// Create it with NewMemory; it implements Broker.
type Memory struct {
	cfg config

	mu      sync.Mutex // guards everything below but routes' readers
	closed  bool
	clients map[string]*memClient
	exact   map[string]map[*memSub]struct{}
	wild    map[*memSub]struct{}
	routes  atomic.Pointer[map[string][]*memSub] // copy-on-write cache topic -> matching subs

	published atomic.Uint64
	delivered atomic.Uint64
	dropped   atomic.Uint64

	// Publish epochs fence the non-blocking sends of publishers against
	// the closing of channels (see quiesce).
	quiesceMu sync.Mutex
	epoch     atomic.Uint64
	active    [2]paddedCounter
}

type paddedCounter struct {
	_ [64]byte
	n atomic.Int64
	_ [56]byte
}

// enter announces a publisher; the parity it returns goes back to leave.
// The count is valid only if the epoch did not move meanwhile: then every
// later flip (the first of which waits for this parity) sees it.
func (b *Memory) enter() uint64 {
	for {
		e := b.epoch.Load()
		b.active[e&1].n.Add(1)
		if b.epoch.Load() == e {
			return e & 1
		}
		b.active[e&1].n.Add(-1)
	}
}

func (b *Memory) leave(e uint64) { b.active[e].n.Add(-1) }

// quiesce returns once no publisher can still send to a queue whose closed
// flag was set before the call. A publisher enters (counts itself under the
// current epoch's parity and checks the epoch did not move), then checks
// closed flags; quiesce flips the epoch and waits for the old parity's
// count to reach zero, one quiesce at a time. Atomics are sequentially
// consistent, so for every publisher either it entered after the flip of
// an earlier quiesce and sees the flag, or its count is waited for by the
// first flip after it entered, which this quiesce (serialised by
// quiesceMu) follows or is. New publishers count on the other parity, so a
// steady stream of them cannot starve the wait. Publishers never block or
// call user code while entered (Block waits and event hooks happen
// outside), so the wait is short.
func (b *Memory) quiesce() {
	b.quiesceMu.Lock()
	old := b.epoch.Add(1) - 1
	for b.active[old&1].n.Load() != 0 {
		runtime.Gosched()
	}
	b.quiesceMu.Unlock()
}

// closeSubs closes the queues of subs (already removed from the index).
func (b *Memory) closeSubs(subs []*memSub) {
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
	b.quiesce()
	for _, s := range subs[:n] {
		s.q.closeCh()
	}
}

// maxRoutes bounds the route cache: topics beyond it are routed uncached.
const maxRoutes = 512

var _ Broker = (*Memory)(nil)

// NewMemory returns an in-memory broker.
func NewMemory(opts ...MemoryOption) *Memory {
	b := &Memory{
		clients: make(map[string]*memClient),
		exact:   make(map[string]map[*memSub]struct{}),
		wild:    make(map[*memSub]struct{}),
	}
	for _, o := range opts {
		o(&b.cfg)
	}
	b.invalidate()
	return b
}

// Register implements Broker.
func (b *Memory) Register(ctx context.Context, info ClientInfo) (Client, error) {
	p, err := b.cfg.admitRegister(ctx, info)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkFree(b.closed, b.clients, info.ID); err != nil {
		return nil, err
	}
	c := &memClient{b: b, id: info.ID, perms: p, subs: make(map[*memSub]struct{})}
	b.clients[info.ID] = c
	return c, nil
}

// Close implements Broker: it closes every client.
func (b *Memory) Close() error {
	b.mu.Lock()
	b.closed = true
	cs := slices.Collect(maps.Values(b.clients))
	b.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	return nil
}

// Stats returns the broker-wide counters.
func (b *Memory) Stats() Stats {
	return Stats{
		Published: b.published.Load(),
		Delivered: b.delivered.Load(),
		Dropped:   b.dropped.Load(),
	}
}

// invalidate drops the route cache; called with mu held (or at creation).
func (b *Memory) invalidate() {
	m := make(map[string][]*memSub)
	b.routes.Store(&m)
}

// route returns the subscriptions matching topic.
func (b *Memory) route(topic string) ([]*memSub, error) {
	if subs, ok := (*b.routes.Load())[topic]; ok {
		return subs, nil
	}
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.routes.Load()
	if subs, ok := old[topic]; ok {
		return subs, nil
	}
	var subs []*memSub
	for s := range b.exact[topic] {
		subs = append(subs, s)
	}
	for s := range b.wild {
		if match(s.pattern, topic) {
			subs = append(subs, s)
		}
	}
	if len(old) < maxRoutes {
		m := make(map[string][]*memSub, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		m[topic] = subs
		b.routes.Store(&m)
	}
	return subs, nil
}

type memClient struct {
	b      *Memory
	id     string
	perms  perms
	closed atomic.Bool
	subs   map[*memSub]struct{} // guarded by b.mu
}

func (c *memClient) ID() string { return c.id }

func (c *memClient) Publish(ctx context.Context, topic string, payload any) (int, error) {
	if err := checkPublish(ctx, c.closed.Load(), topic); err != nil {
		return 0, err
	}
	subs, err := c.b.route(topic)
	if err != nil {
		return 0, err
	}
	if !c.perms.canPublish(topic) {
		return 0, fmt.Errorf("%w: client %q may not publish to %q", ErrPermission, c.id, topic)
	}
	if codec := c.b.cfg.codec; codec != nil {
		if payload, err = encodeRaw(codec, payload); err != nil {
			return 0, fmt.Errorf("pubsub: publish %q: %w", topic, err)
		}
	}
	m := Message{Topic: topic, Sender: c.id, Payload: payload}
	b := c.b
	n := 0
	var perr error
	e := b.enter()
	for _, s := range subs {
		if (s.client == c && !s.self) || s.q.closed.Load() {
			continue
		}
		ok, full, ev := s.q.tryPut(m)
		if ok {
			n++
		}
		if ev == 0 && !full {
			continue
		}
		// Slow path: report and wait outside the epoch.
		b.leave(e)
		s.q.event(ev)
		if full {
			ok, err := s.q.blockPut(ctx, m)
			if ok {
				n++
			}
			if err != nil && perr == nil {
				perr = fmt.Errorf("pubsub: publish %q: %w", topic, err)
			}
		}
		e = b.enter()
	}
	b.leave(e)
	c.b.published.Add(1)
	c.b.delivered.Add(uint64(n))
	return n, perr
}

func (c *memClient) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (Subscription, error) {
	if err := c.perms.admitSubscribe(ctx, c.id, pattern); err != nil {
		return nil, err
	}
	sc := c.b.cfg.subConfig(opts)
	s := &memSub{client: c, pattern: pattern, self: sc.self, wild: isWild(pattern)}
	s.q = newQueue(sc, &c.b.dropped, c.b.cfg.reporter(c.id, pattern, sc.policy))
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed.Load() {
		return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, ErrClosed)
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
	return s, nil
}

// unindex removes s from the broker's index; called with b.mu held.
func (b *Memory) unindex(s *memSub) {
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
	delete(b.clients, c.id)
	subs := slices.Collect(maps.Keys(c.subs))
	for _, s := range subs {
		b.unindex(s)
	}
	c.subs = nil
	b.invalidate()
	b.mu.Unlock()
	b.closeSubs(subs)
	return nil
}

type memSub struct {
	client  *memClient
	pattern string
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
