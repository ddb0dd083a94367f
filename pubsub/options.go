package pubsub

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
)

// Option configures either broker: NewMemory(opts...) and NewNATS(ctx,
// url, opts...) both take it.
type Option func(*config)

// NATSOption configures the NATS broker: NewNATS takes it, NewMemory does
// not (passing one is a compile error). An Option is one; so are the
// options documented "NATS only", which set the connection
// (authentication, TLS, reconnection, WithNamespace...).
type NATSOption interface {
	applyNATS(*config)
}

func (o Option) applyNATS(c *config) { o(c) }

// natsOnly is a NATS-only option.
type natsOnly func(*natsConfig)

func (o natsOnly) applyNATS(c *config) { o(&c.conn) }

// config is what both backends share, and the NATS connection's settings.
type config struct {
	logger      logrus.FieldLogger
	hook        func(Event)
	queueSize   int
	policy      Policy
	known       map[string]ClientInfo
	codec       Codec
	retainLimit int
	topicStats  []string // WithTopicStats' patterns
	// slowEpisodes counts the EventSlowConsumer reports (Stats.SlowConsumers).
	slowEpisodes *atomic.Uint64

	conn natsConfig // the NATS-only options
}

// natsConfig is what the NATS-only options set; nats_options.go maps it
// onto nats.go's options.
type natsConfig struct {
	name           string
	namespace      string
	token          string
	user, password string
	credsFile      string
	nkeyFile       string
	caFile         string
	certFile       string
	keyFile        string
	tlsConfig      *tls.Config
	connectTimeout time.Duration
	reconnectWait  time.Duration
	maxReconnects  int
	pendingMsgs    int
	pendingBytes   int
	retainReplicas int
	options        []nats.Option
}

func newConfig(opts []Option) config {
	c := config{retainLimit: DefaultRetainLimit, slowEpisodes: new(atomic.Uint64)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func newNATSConfig(opts []NATSOption) config {
	c := config{retainLimit: DefaultRetainLimit, slowEpisodes: new(atomic.Uint64)}
	for _, o := range opts {
		o.applyNATS(&c)
	}
	return c
}

// WithLogger reports slow-consumer episodes (and NATS connection events)
// through l.
func WithLogger(l logrus.FieldLogger) Option {
	return func(c *config) { c.logger = l }
}

// WithEventHook calls hook for every Event. It runs on the publisher's
// goroutine (in memory) or the connection's (NATS), holding no lock of the
// broker: keep it short. Nothing recovers a panic in it: in memory it
// reaches the publisher; with NATS it crashes the process, as nats.go does
// not recover its callbacks.
func WithEventHook(hook func(Event)) Option {
	return func(c *config) { c.hook = hook }
}

// WithDefaultQueueSize sets the queue size of subscriptions that do not set
// one (default DefaultQueueSize).
func WithDefaultQueueSize(n int) Option {
	return func(c *config) { c.queueSize = n }
}

// WithDefaultPolicy sets the overflow policy of subscriptions that do not
// set one (default DropNewest).
func WithDefaultPolicy(p Policy) Option {
	return func(c *config) { c.policy = p }
}

// WithKnownClients restricts registration to these ids, as Dart's pub_sub
// server does with its list of ClientInfo: Register rejects any other id
// with ErrUnknownClient, and both these allow-lists and the ones given to
// Register apply.
func WithKnownClients(infos ...ClientInfo) Option {
	return func(c *config) { c.known = knownMap(infos) }
}

// WithCodec sets the codec of payloads. NATS encodes every payload with it
// (default JSON{}). The in-memory broker, given a codec, encodes every
// payload and delivers it as a Raw, exactly as NATS does: useful in tests
// to check that app code does not rely on sharing payload values (without
// one, payloads are handed over as they are, with no serialisation).
func WithCodec(codec Codec) Option {
	return func(c *config) { c.codec = codec }
}

// DefaultRetainLimit is the number of topics whose last message a broker
// retains, unless WithRetainLimit says otherwise.
const DefaultRetainLimit = 10_000

// WithRetainLimit bounds the number of retained topics (default
// DefaultRetainLimit). A retained publish to one more topic is delivered
// but not retained: Publish returns an error wrapping ErrRetainLimit and
// Stats().RetainRejected counts it. With NATS the limit is the stream's
// (see NewNATS), shared by every process of the namespace.
func WithRetainLimit(n int) Option {
	return func(c *config) { c.retainLimit = n }
}

// WithRetainReplicas sets the number of servers that keep the stream of
// retained messages (see NewNATS), 1 to 5. The default, 0, asks for 3 and
// takes fewer when the cluster has fewer JetStream servers: min(3, the
// cluster's size), so that the retained messages outlive one server's
// death. An existing stream is updated to it where the server allows (a
// server that refuses keeps the stream as it is, reported as EventError).
// NATS only.
func WithRetainReplicas(n int) NATSOption {
	return natsOnly(func(c *natsConfig) { c.retainReplicas = n })
}

// WithName sets the connection name the NATS server shows (default
// "goangel"). NATS only.
func WithName(name string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.name = name })
}

// WithNamespace puts every subject under namespace: topic "greeting" is
// NATS subject "NAMESPACE.greeting" (namespace is one or more tokens, see
// ValidateTopic). Apps that share a NATS server and use different
// namespaces never see each other's messages; apps that mean to talk use
// the same one. Default: no namespace (goangel's runner passes the app's
// name, see --pubsub-namespace). Message.Topic is always the topic without
// the namespace. NATS only.
func WithNamespace(namespace string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.namespace = namespace })
}

// WithToken authenticates with a token. NATS only; at most one of
// WithToken, WithUserInfo, WithCredsFile, WithNKeyFile.
func WithToken(token string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.token = token })
}

// WithUserInfo authenticates with a user and password. NATS only.
func WithUserInfo(user, password string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.user, c.password = user, password })
}

// WithCredsFile authenticates with a JWT + nkey .creds file. NATS only.
func WithCredsFile(path string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.credsFile = path })
}

// WithNKeyFile authenticates with an nkey seed file. NATS only.
func WithNKeyFile(path string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.nkeyFile = path })
}

// WithCAFile verifies the server with the PEM roots in path and turns TLS
// on. NATS only.
func WithCAFile(path string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.caFile = path })
}

// WithClientCert presents a client certificate, for servers that verify
// clients (both files are required). NATS only.
func WithClientCert(certFile, keyFile string) NATSOption {
	return natsOnly(func(c *natsConfig) { c.certFile, c.keyFile = certFile, keyFile })
}

// WithTLSConfig uses a ready TLS configuration (cloned). NATS only.
func WithTLSConfig(cfg *tls.Config) NATSOption {
	return natsOnly(func(c *natsConfig) { c.tlsConfig = cfg })
}

// WithConnectTimeout bounds the first connection (default 5s, and never
// past the deadline of NewNATS's ctx). NATS only.
func WithConnectTimeout(d time.Duration) NATSOption {
	return natsOnly(func(c *natsConfig) { c.connectTimeout = d })
}

// WithReconnect sets the pause between reconnect attempts (default 2s)
// and their number: 0 retries forever (a long-running server outlives NATS
// restarts), n > 0 gives up after n attempts, n < 0 never reconnects. NATS
// only.
func WithReconnect(wait time.Duration, max int) NATSOption {
	return natsOnly(func(c *natsConfig) { c.reconnectWait, c.maxReconnects = wait, max })
}

// WithPendingLimits bounds what waits in front of each subscription's
// queue (defaults nats.go's, 500k messages and 64 MiB; 0 keeps a
// default): for a Block subscription, its own buffer while it waits for
// room (beyond it messages are dropped, counted under their topics too);
// for the others, nats.go's pending limits. Drops are counted in Dropped
// and reported as EventSlowConsumer. NATS only.
func WithPendingLimits(msgs, bytes int) NATSOption {
	return natsOnly(func(c *natsConfig) { c.pendingMsgs, c.pendingBytes = msgs, bytes })
}

// WithNATSOptions applies nats.go options last, for anything else nats.go
// offers. NATS only.
func WithNATSOptions(opts ...nats.Option) NATSOption {
	return natsOnly(func(c *natsConfig) { c.options = append(c.options, opts...) })
}

// SubscribeOption configures one subscription.
type SubscribeOption func(*subConfig)

type subConfig struct {
	size   int
	policy Policy
	self   bool
	group  string
}

// WithQueueSize bounds the subscription's queue to n messages (n >= 1).
func WithQueueSize(n int) SubscribeOption {
	return func(c *subConfig) {
		if n >= 1 {
			c.size = n
		}
	}
}

// WithPolicy sets the overflow policy of the subscription.
func WithPolicy(p Policy) SubscribeOption {
	return func(c *subConfig) { c.policy = p }
}

// IncludeSelf makes the subscription receive its own client's messages too.
// Off by default: a message reaches every client but the sender.
func IncludeSelf() SubscribeOption {
	return func(c *subConfig) { c.self = true }
}

// InGroup puts the subscription in the named queue group: a message is
// handed to one subscription of each group (one of the group's members,
// spread evenly), beside the ordinary subscriptions, which all get it.
// The sender's own members never get it (unless IncludeSelf). A group
// member does not receive retained messages (a retained message is state
// for every subscriber, not work for one). With NATS it is a queue
// subscription.
func InGroup(name string) SubscribeOption {
	return func(c *subConfig) { c.group = name }
}

func (c *config) subConfig(opts []SubscribeOption) (subConfig, error) {
	sc := subConfig{size: c.queueSize, policy: c.policy}
	if sc.size < 1 {
		sc.size = DefaultQueueSize
	}
	for _, o := range opts {
		o(&sc)
	}
	if sc.group != "" {
		if err := ValidateTopic(sc.group); err != nil {
			return sc, fmt.Errorf("pubsub: queue group name %q must be a topic-like name: %w", sc.group, err)
		}
	}
	return sc, nil
}

// PublishOption configures one publish (see Retain). It is a value, not
// a function, so that applying it costs no allocation.
type PublishOption struct {
	retain bool
}

// pubOptions merges opts.
func pubOptions(opts []PublishOption) (retain bool) {
	for _, o := range opts {
		retain = retain || o.retain
	}
	return retain
}

// Retain keeps the message as the topic's last message: every later
// subscription whose pattern matches the topic receives it first, once,
// before live messages (see the package doc). In memory the broker keeps
// it; with NATS, a JetStream stream does, so it outlives every process.
func Retain() PublishOption { return PublishOption{retain: true} }
