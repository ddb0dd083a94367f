package pubsub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/sirupsen/logrus"
)

// HeaderSender is the header carried by every message the NATS backend
// publishes: "<uid> <id>", the unique id (a 22-character nuid) of the
// publishing client object, a space, and its ClientInfo.ID (which becomes
// Message.Sender). A subscription drops messages carrying its own client's
// uid. One header, not two: nats.go decodes headers into a map for every
// message received, and each key costs allocations on every delivery.
const HeaderSender = "Goangel-Sender"

// ErrInvalidOptions reports NATSOptions that cannot work together.
var ErrInvalidOptions = errors.New("pubsub: invalid options")

// NATSOptions configures NewNATS. The zero value connects without
// authentication and with the defaults below. Everything the runner's
// --pubsub-* flags carry has a field here:
//
//   - URL scheme: nats://HOST:PORT (plain, upgraded to TLS when the server
//     requires it) or tls://HOST:PORT (TLS required). A comma-separated
//     list of URLs names a cluster. Credentials in the URL
//     (nats://user:pass@host, nats://token@host) work too.
//   - Authentication, at most one of: Token; User and Password; CredsFile
//     (a JWT + nkey .creds file); NKeyFile (an nkey seed file).
//   - TLS: CAFile (PEM roots that verify the server; sets TLS on), CertFile
//     and KeyFile (a client certificate, for servers that verify clients;
//     both or neither), or a ready TLSConfig.
type NATSOptions struct {
	// Name is the connection name the server shows (default "goangel").
	Name string

	Token     string
	User      string
	Password  string
	CredsFile string
	NKeyFile  string

	CAFile    string
	CertFile  string
	KeyFile   string
	TLSConfig *tls.Config

	// Codec encodes payloads (default JSON{}).
	Codec Codec
	// Logger reports slow consumers and connection events; OnEvent gets
	// them as Events (see WithEventHook: keep it short, never panic).
	Logger  logrus.FieldLogger
	OnEvent func(Event)
	// QueueSize and Policy are the defaults for subscriptions that set
	// none (DefaultQueueSize, DropNewest).
	QueueSize int
	Policy    Policy
	// KnownClients, when not nil, restricts registration to these ids and
	// adds their allow-lists (see WithKnownClients).
	KnownClients []ClientInfo

	// ConnectTimeout bounds the first connection (default 5s, and never
	// past the deadline of NewNATS's ctx).
	ConnectTimeout time.Duration
	// ReconnectWait is the pause between reconnect attempts (default 2s).
	ReconnectWait time.Duration
	// MaxReconnects: 0 retries forever (a long-running server outlives
	// NATS restarts), n > 0 gives up after n attempts, n < 0 never
	// reconnects.
	MaxReconnects int
	// PendingMsgs and PendingBytes are nats.go's per-subscription pending
	// limits in front of each subscription's queue (defaults nats.go's,
	// 500k messages and 64 MiB). Beyond them nats.go drops; the drops are
	// counted in Dropped and reported as EventSlowConsumer.
	PendingMsgs  int
	PendingBytes int

	// Options are applied last, for anything else nats.go offers.
	Options []nats.Option
}

func (o *NATSOptions) natsOptions(ctx context.Context, b *NATS) ([]nats.Option, error) {
	auth := 0
	for _, set := range []bool{o.Token != "", o.User != "" || o.Password != "", o.CredsFile != "", o.NKeyFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, fmt.Errorf("%w: give at most one of token, user/password, creds file, nkey file", ErrInvalidOptions)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both a cert file and a key file", ErrInvalidOptions)
	}
	name := o.Name
	if name == "" {
		name = "goangel"
	}
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left < timeout {
			timeout = left
		}
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("pubsub: connect to NATS: %w", context.DeadlineExceeded)
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(timeout),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.cfg.emit(Event{Kind: EventDisconnected, Err: err})
		}),
		nats.ReconnectHandler(func(*nats.Conn) { b.cfg.emit(Event{Kind: EventReconnected}) }),
		nats.ClosedHandler(func(*nats.Conn) {
			if !b.closing.Load() {
				b.cfg.emit(Event{Kind: EventConnectionClosed})
			}
		}),
		nats.ErrorHandler(b.asyncError),
	}
	switch {
	case o.MaxReconnects == 0:
		opts = append(opts, nats.MaxReconnects(-1))
	case o.MaxReconnects < 0:
		opts = append(opts, nats.NoReconnect())
	default:
		opts = append(opts, nats.MaxReconnects(o.MaxReconnects))
	}
	if o.ReconnectWait > 0 {
		opts = append(opts, nats.ReconnectWait(o.ReconnectWait))
	}
	switch {
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "" || o.Password != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: nkey file %q: %w", ErrInvalidOptions, o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSConfig != nil {
		opts = append(opts, nats.Secure(o.TLSConfig.Clone()))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	return append(opts, o.Options...), nil
}

// NATS is the broker over a NATS server, for apps on many machines.
// Create it with NewNATS; it implements Broker. All its clients share one
// connection.
type NATS struct {
	cfg config
	nc  *nats.Conn
	// pendingMsgs and pendingBytes are the pending limits set on every
	// nats.go subscription; both 0: nats.go's defaults, left alone.
	pendingMsgs, pendingBytes int

	mu      sync.Mutex
	closed  bool
	clients map[string]*natsClient
	shared  map[string]*natsEntry             // by pattern
	entries map[*nats.Subscription]*natsEntry // every live one

	closing    atomic.Bool
	published  atomic.Uint64
	delivered  atomic.Uint64
	dropped    atomic.Uint64 // by our queues
	natsDroppd atomic.Uint64 // by nats.go, from subscriptions already gone
}

var _ Broker = (*NATS)(nil)

// NewNATS connects to the NATS server(s) at url (see NATSOptions for the
// URL forms, authentication and TLS). ctx bounds the connection attempt
// only; the connection then lives until Close, reconnecting as
// NATSOptions says.
func NewNATS(ctx context.Context, url string, opts NATSOptions) (*NATS, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pubsub: connect to NATS: %w", err)
	}
	b := &NATS{
		clients: make(map[string]*natsClient),
		shared:  make(map[string]*natsEntry),
		entries: make(map[*nats.Subscription]*natsEntry),
	}
	codec := opts.Codec
	if codec == nil {
		codec = JSON{}
	}
	if opts.PendingMsgs != 0 || opts.PendingBytes != 0 {
		b.pendingMsgs, b.pendingBytes = opts.PendingMsgs, opts.PendingBytes
		if b.pendingMsgs == 0 {
			b.pendingMsgs = nats.DefaultSubPendingMsgsLimit
		}
		if b.pendingBytes == 0 {
			b.pendingBytes = nats.DefaultSubPendingBytesLimit
		}
	}
	b.cfg = config{
		logger:    opts.Logger,
		hook:      opts.OnEvent,
		queueSize: opts.QueueSize,
		policy:    opts.Policy,
		known:     knownMap(opts.KnownClients),
		codec:     codec,
	}
	nopts, err := opts.natsOptions(ctx, b)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub: connect to NATS at %s: %w", redact(url), err)
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("pubsub: connect to NATS: %w", err)
	}
	b.nc = nc
	return b, nil
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
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkFree(b.closed, b.clients, info.ID); err != nil {
		return nil, err
	}
	uid := nuid.Next()
	c := &natsClient{
		b:     b,
		id:    info.ID,
		uid:   uid,
		perms: p,
		hdr:   nats.Header{HeaderSender: []string{uid + " " + info.ID}},
		subs:  make(map[*natsSub]struct{}),
	}
	b.clients[info.ID] = c
	return c, nil
}

// Close closes every client, then the connection. Messages already handed
// to the connection are flushed first (bounded by a few seconds).
func (b *NATS) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	cs := slices.Collect(maps.Values(b.clients))
	b.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	b.closing.Store(true)
	if !b.nc.IsClosed() {
		_ = b.nc.FlushTimeout(2 * time.Second)
	}
	b.nc.Close()
	return nil
}

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
	return Stats{Published: b.published.Load(), Delivered: b.delivered.Load(), Dropped: dropped}
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

type natsClient struct {
	b      *NATS
	id     string
	uid    string
	perms  perms
	hdr    nats.Header // never mutated: shared by every publish
	closed atomic.Bool
	subs   map[*natsSub]struct{} // guarded by b.mu
}

func (c *natsClient) ID() string { return c.id }

func (c *natsClient) Publish(ctx context.Context, topic string, payload any) (int, error) {
	if err := checkPublish(ctx, c.closed.Load(), topic); err != nil {
		return 0, err
	}
	if err := ValidateTopic(topic); err != nil {
		return 0, err
	}
	if !c.perms.canPublish(topic) {
		return 0, fmt.Errorf("%w: client %q may not publish to %q", ErrPermission, c.id, topic)
	}
	raw, err := encodeRaw(c.b.cfg.codec, payload)
	if err != nil {
		return 0, fmt.Errorf("pubsub: publish %q: %w", topic, err)
	}
	m := nats.Msg{Subject: topic, Header: c.hdr, Data: raw.Data}
	if err := c.b.nc.PublishMsg(&m); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return 0, fmt.Errorf("pubsub: publish %q: %w", topic, err)
	}
	c.b.published.Add(1)
	return 1, nil
}

func (c *natsClient) Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (Subscription, error) {
	if err := c.perms.admitSubscribe(ctx, c.id, pattern); err != nil {
		return nil, err
	}
	b := c.b
	sc := b.cfg.subConfig(opts)
	s := &natsSub{client: c, pattern: pattern, self: sc.self}
	s.q = newQueue(sc, &b.dropped, b.cfg.reporter(c.id, pattern, sc.policy))

	b.mu.Lock()
	if c.closed.Load() {
		b.mu.Unlock()
		return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, ErrClosed)
	}
	// Subscriptions that never block share one NATS subscription per
	// pattern per broker; a Block one gets its own, so that waiting for it
	// holds up nobody else.
	e := b.shared[pattern]
	if e == nil || sc.policy == Block {
		e = &natsEntry{b: b, pattern: pattern, dedicated: sc.policy == Block}
		e.subs.Store(&[]*natsSub{})
		ns, err := b.nc.Subscribe(pattern, e.handle)
		if err != nil {
			b.mu.Unlock()
			if errors.Is(err, nats.ErrConnectionClosed) {
				err = fmt.Errorf("%w: %w", ErrClosed, err)
			}
			return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, err)
		}
		if b.pendingMsgs != 0 {
			_ = ns.SetPendingLimits(b.pendingMsgs, b.pendingBytes)
		}
		e.ns = ns
		b.entries[ns] = e
		if !e.dedicated {
			b.shared[pattern] = e
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
	// outage still starts).
	if b.nc.IsReconnecting() {
		return s, nil
	}
	fctx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		fctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	}
	defer cancel()
	if err := b.nc.FlushWithContext(fctx); err != nil {
		if b.nc.IsReconnecting() {
			return s, nil
		}
		_ = s.Unsubscribe()
		if b.nc.IsClosed() {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, fmt.Errorf("pubsub: subscribe %q: %w", pattern, err)
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
	delete(b.clients, c.id)
	subs := slices.Collect(maps.Keys(c.subs))
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	return nil
}

// natsEntry is one NATS subscription and the local subscriptions it
// feeds (one when dedicated).
type natsEntry struct {
	b         *NATS
	pattern   string
	dedicated bool
	ns        *nats.Subscription
	subs      atomic.Pointer[[]*natsSub] // copy-on-write, written under b.mu
	gone      atomic.Bool
	nd        atomic.Uint64 // nats.go's drops, kept when ns goes
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
	if b.shared[e.pattern] == e {
		delete(b.shared, e.pattern)
	}
	delete(b.entries, e.ns)
	if d, err := e.ns.Dropped(); err == nil && d > 0 {
		e.nd.Store(uint64(d))
		b.natsDroppd.Add(uint64(d))
	}
	e.gone.Store(true)
	_ = e.ns.Unsubscribe() // fails only when the connection is closed: the interest is gone anyway
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
	// A message from outside goangel has no HeaderSender: Sender "".
	uid, id, _ := strings.Cut(m.Header.Get(HeaderSender), " ")
	msg := Message{Topic: m.Subject, Sender: id, Payload: Raw{Data: m.Data, Codec: e.b.cfg.codec}}
	n := uint64(0)
	for _, s := range subs {
		if !s.self && uid == s.client.uid {
			continue
		}
		if s.q.lockedPut(context.Background(), msg) {
			n++
		}
	}
	if n > 0 {
		e.b.delivered.Add(n)
	}
}

type natsSub struct {
	client  *natsClient
	pattern string
	self    bool
	entry   *natsEntry
	q       *queue
	gone    atomic.Bool
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
	s.entry.remove(s)
	b.mu.Unlock()
	s.q.markClosed()
	s.q.closeCh()
	return nil
}
