package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"
)

// Message is what a subscription receives.
type Message struct {
	// Topic is the topic the message was published to (never a pattern).
	Topic string
	// Sender is the publishing client's id (ClientInfo.ID).
	Sender string
	// Payload is READ-ONLY. With the in-memory broker every receiver gets the
	// very value that was published (no copy); with NATS it is a Raw holding
	// the encoded bytes. Read it with Decode[T], which works on both.
	Payload any
}

// Client is one registered participant: the runner gives one to every
// instance life. It is safe for concurrent use.
type Client interface {
	// ID is the id the client was registered with.
	ID() string
	// Publish hands payload to every matching subscription of every other
	// client (and to this client's own subscriptions made with IncludeSelf).
	// delivered is the number of subscriptions the message was handed to
	// (with NATS: 1 once the message is handed to the connection, since the
	// fan-out happens on the server). It fails with ErrClosed on a closed
	// client or broker, ErrPermission when the client may not publish to
	// topic, ErrInvalidTopic for a malformed topic or one with wildcards, and
	// with ctx's error when a Block subscription could not take the message
	// before ctx ended (delivered still counts the others).
	Publish(ctx context.Context, topic string, payload any) (delivered int, err error)
	// Subscribe receives every message published by other clients to a
	// topic that matches pattern (exact, or with NATS wildcards "*" for one
	// token and ">" for one or more trailing tokens).
	Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (Subscription, error)
	// Close removes all of the client's subscriptions (closing their
	// channels) and frees its id. It is idempotent.
	Close() error
}

// Subscription is one bounded queue of messages.
type Subscription interface {
	// Pattern is the pattern given to Subscribe.
	Pattern() string
	// C receives the messages, in order per publisher. It is closed by
	// Unsubscribe, by the client's Close and by the broker's Close.
	C() <-chan Message
	// Unsubscribe stops delivery and closes C. It is idempotent.
	Unsubscribe() error
	// Dropped is the number of messages this subscription dropped under
	// its overflow policy (see the package doc).
	Dropped() uint64
}

// Broker registers clients. *Memory and *NATS implement it.
type Broker interface {
	// Register creates the client for info. It fails with ErrInvalidID for
	// an empty or malformed id, ErrDuplicateID when a live client already
	// has the id, ErrUnknownClient when the broker was given a list of
	// known clients that lacks it, and ErrClosed after Close.
	Register(ctx context.Context, info ClientInfo) (Client, error)
	// Close closes every client and then the broker. It is idempotent.
	Close() error
}

// ClientInfo names a client and what it may do, after Dart's pub_sub
// ClientInfo (canPublish / canSubscribe), generalised to topic patterns.
//
// A nil list allows everything (Dart's default: canPublish and canSubscribe
// are true); an empty non-nil list allows nothing; otherwise a topic may be
// published when it matches one of CanPublish, and a pattern may be
// subscribed to when every topic it can match is matched by one of
// CanSubscribe (so "user.*" is allowed by "user.>" but not by "user.1").
type ClientInfo struct {
	ID           string
	CanPublish   []string
	CanSubscribe []string
}

// AllowAll is the allow-list that permits every topic.
var AllowAll = []string{">"}

// DenyAll is the allow-list that permits no topic.
var DenyAll = []string{}

// Errors, all matchable with errors.Is.
var (
	ErrClosed        = errors.New("pubsub: closed")
	ErrPermission    = errors.New("pubsub: permission denied")
	ErrDuplicateID   = errors.New("pubsub: duplicate client id")
	ErrUnknownClient = errors.New("pubsub: unknown client id")
	ErrInvalidID     = errors.New("pubsub: invalid client id")
	ErrInvalidTopic  = errors.New("pubsub: invalid topic or pattern")
	ErrDecode        = errors.New("pubsub: cannot decode payload")
)

// Policy says what a full subscription queue does with one more message.
type Policy uint8

const (
	// DropNewest (the default, as in nats.go) keeps the queue and drops
	// the message that does not fit.
	DropNewest Policy = iota
	// DropOldest drops the oldest queued message to make room: a receiver
	// that falls behind sees the latest messages.
	DropOldest
	// Block makes the publisher wait until there is room, the publisher's
	// ctx ends (the message is then counted as dropped for this
	// subscription and Publish returns ctx's error) or the subscription is
	// closed. Only a Block subscription can stall a publisher.
	Block
)

func (p Policy) String() string {
	switch p {
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	case Block:
		return "block"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// DefaultQueueSize is the queue size of a subscription when neither the
// subscription nor the broker sets one.
const DefaultQueueSize = 256

// SubscribeOption configures one subscription.
type SubscribeOption func(*subConfig)

type subConfig struct {
	size   int
	policy Policy
	self   bool
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

// Stats are broker-wide counters.
type Stats struct {
	// Published counts successful Publish calls.
	Published uint64
	// Delivered counts messages handed to subscription queues.
	Delivered uint64
	// Dropped counts messages dropped by overflow policies (and, for NATS,
	// by the connection's own pending limits).
	Dropped uint64
}

// EventKind names an Event.
type EventKind uint8

const (
	// EventSlowConsumer: a subscription's queue was full; reported once per
	// slow episode (on the first drop, or the first wait for Block).
	EventSlowConsumer EventKind = iota + 1
	// EventDrained: a subscription that had been slow found its queue
	// empty again; the next overflow is a new episode.
	EventDrained
	// EventDisconnected, EventReconnected, EventConnectionClosed: NATS
	// connection state.
	EventDisconnected
	EventReconnected
	EventConnectionClosed
	// EventError: an asynchronous error (NATS).
	EventError
)

func (k EventKind) String() string {
	switch k {
	case EventSlowConsumer:
		return "slow-consumer"
	case EventDrained:
		return "drained"
	case EventDisconnected:
		return "disconnected"
	case EventReconnected:
		return "reconnected"
	case EventConnectionClosed:
		return "connection-closed"
	case EventError:
		return "error"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is reported through the event hook and the logger.
type Event struct {
	Kind    EventKind
	Client  string // client id, for subscription events
	Pattern string // subscription pattern, for subscription events
	Policy  Policy
	Dropped uint64 // the subscription's total drops so far
	Err     error
}

// config is what both backends share.
type config struct {
	logger    logrus.FieldLogger
	hook      func(Event)
	queueSize int
	policy    Policy
	known     map[string]ClientInfo
	codec     Codec
}

func (c *config) emit(ev Event) {
	if c.hook != nil {
		c.hook(ev)
	}
	if c.logger == nil {
		return
	}
	f := logrus.Fields{"event": ev.Kind.String()}
	if ev.Client != "" {
		f["client"] = ev.Client
		f["pattern"] = ev.Pattern
		f["policy"] = ev.Policy.String()
		f["dropped"] = ev.Dropped
	}
	if ev.Err != nil {
		f[logrus.ErrorKey] = ev.Err
	}
	l := c.logger.WithFields(f)
	switch ev.Kind {
	case EventSlowConsumer:
		l.Warn("pubsub: slow consumer, subscription queue is full")
	case EventDrained:
		l.Info("pubsub: slow consumer drained")
	case EventDisconnected:
		l.Warn("pubsub: disconnected from NATS")
	case EventReconnected:
		l.Info("pubsub: reconnected to NATS")
	case EventConnectionClosed:
		l.Warn("pubsub: NATS connection closed")
	default:
		l.Error("pubsub: error")
	}
}

// reporter returns the event reporter of one subscription, nil when
// nobody listens.
func (c *config) reporter(client, pattern string, p Policy) func(EventKind, uint64) {
	if c.hook == nil && c.logger == nil {
		return nil
	}
	return func(k EventKind, dropped uint64) {
		c.emit(Event{Kind: k, Client: client, Pattern: pattern, Policy: p, Dropped: dropped})
	}
}

func (c *config) subConfig(opts []SubscribeOption) subConfig {
	sc := subConfig{size: c.queueSize, policy: c.policy}
	if sc.size < 1 {
		sc.size = DefaultQueueSize
	}
	for _, o := range opts {
		o(&sc)
	}
	return sc
}

// perms holds the allow-lists that apply to a client: the ones given to
// Register and, when the broker knows its clients, the broker's. Every list
// must allow.
type perms struct {
	pub [][]string
	sub [][]string
}

// admitRegister is what every broker checks before it takes the lock to
// register a client: the context, the id and the permission lists.
func (c *config) admitRegister(ctx context.Context, info ClientInfo) (perms, error) {
	if err := ctx.Err(); err != nil {
		return perms{}, fmt.Errorf("pubsub: register %q: %w", info.ID, err)
	}
	return c.checkInfo(info)
}

// checkFree is what every broker checks under its lock before it registers
// a client: the broker is open and the id is not taken.
func checkFree[C any](closed bool, clients map[string]C, id string) error {
	if closed {
		return fmt.Errorf("pubsub: register %q: %w", id, ErrClosed)
	}
	if _, dup := clients[id]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateID, id)
	}
	return nil
}

// checkPublish is what every client checks first when it publishes: that it
// is open and that ctx is alive.
func checkPublish(ctx context.Context, closed bool, topic string) error {
	if closed {
		return fmt.Errorf("pubsub: publish %q: %w", topic, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: publish %q: %w", topic, err)
	}
	return nil
}

// admitSubscribe is what every client checks before it subscribes.
func (p *perms) admitSubscribe(ctx context.Context, id, pattern string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pubsub: subscribe %q: %w", pattern, err)
	}
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	if !p.canSubscribe(pattern) {
		return fmt.Errorf("%w: client %q may not subscribe to %q", ErrPermission, id, pattern)
	}
	return nil
}

func (c *config) checkInfo(info ClientInfo) (perms, error) {
	var p perms
	if err := validateID(info.ID); err != nil {
		return p, err
	}
	lists := []ClientInfo{info}
	if c.known != nil {
		k, ok := c.known[info.ID]
		if !ok {
			return p, fmt.Errorf("%w: %q", ErrUnknownClient, info.ID)
		}
		lists = append(lists, k)
	}
	for _, l := range lists {
		for _, t := range l.CanPublish {
			if err := ValidatePattern(t); err != nil {
				return p, fmt.Errorf("pubsub: client %q CanPublish: %w", info.ID, err)
			}
		}
		for _, t := range l.CanSubscribe {
			if err := ValidatePattern(t); err != nil {
				return p, fmt.Errorf("pubsub: client %q CanSubscribe: %w", info.ID, err)
			}
		}
		if l.CanPublish != nil {
			p.pub = append(p.pub, l.CanPublish)
		}
		if l.CanSubscribe != nil {
			p.sub = append(p.sub, l.CanSubscribe)
		}
	}
	return p, nil
}

func validateID(id string) error {
	if id == "" || strings.TrimSpace(id) != id || strings.ContainsAny(id, "\r\n") {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return nil
}

func (p *perms) canPublish(topic string) bool { return allowed(p.pub, topic) }

func (p *perms) canSubscribe(pattern string) bool { return allowed(p.sub, pattern) }

// allowed reports whether every list has a pattern that covers s (a topic
// or a pattern).
func allowed(lists [][]string, s string) bool {
	for _, l := range lists {
		ok := false
		for _, a := range l {
			if covers(a, s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func knownMap(infos []ClientInfo) map[string]ClientInfo {
	if infos == nil {
		return nil
	}
	m := make(map[string]ClientInfo, len(infos))
	for _, i := range infos {
		m[i.ID] = i
	}
	return m
}
