package pubsub

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"
)

// Message is what a subscription receives (and what Request returns).
type Message struct {
	// Topic is the topic the message was published to (never a pattern).
	Topic string
	// Sender is the publishing client's id (ClientInfo.ID).
	Sender string
	// Payload is READ-ONLY. With the in-memory broker every receiver gets the
	// very value that was published (no copy); with NATS it is a Raw holding
	// the encoded bytes. Read it with Decode[T], which works on both.
	Payload any

	meta *meta // nil for a plain live message
}

// meta is what few messages carry: that they were retained, or how to
// answer a request.
type meta struct {
	retained bool
	reply    replier
}

// replier answers one request, as the client whose subscription received it.
type replier interface {
	respond(ctx context.Context, payload any) error
}

// Retained reports whether m is a topic's retained message, handed to the
// subscription when it was made (see Retain), rather than a live one.
func (m Message) Retained() bool { return m.meta != nil && m.meta.retained }

// IsRequest reports whether m was sent by Request and can be answered with
// Respond.
func (m Message) IsRequest() bool { return m.meta != nil && m.meta.reply != nil }

// Respond answers a request (a message sent with Client.Request), as the
// client whose subscription received it: the requester gets payload as
// the reply's Payload and that client's id as its Sender. Only the first
// answer to a request counts; later ones (from this or other receivers)
// are dropped without error. Respond fails with ErrNotRequest when m is
// not a request, with ErrClosed when the responding client is closed, and
// with an encoding error when the payload cannot be encoded. A reply needs
// no publish permission: it goes to the requester only.
func (m Message) Respond(ctx context.Context, payload any) error {
	if !m.IsRequest() {
		return fmt.Errorf("pubsub: respond to %q: %w", m.Topic, ErrNotRequest)
	}
	return m.meta.reply.respond(ctx, payload)
}

// Client is one registered participant: the runner gives one to every
// instance life. It is safe for concurrent use.
type Client interface {
	// ID is the id the client was registered with.
	ID() string
	// Publish hands payload to every matching subscription of every other
	// client (and to this client's own subscriptions made with
	// IncludeSelf), and to one member of each matching queue group.
	// With Retain it also keeps the message as the topic's last. delivered
	// is the number of subscriptions the message was handed to (with NATS:
	// 1 once the message is handed to the connection, since the fan-out
	// happens on the server). It fails with ErrClosed on a closed client or
	// broker, ErrPermission when the client may not publish to topic,
	// ErrInvalidTopic for a malformed topic or one with wildcards, with
	// ctx's error when a Block subscription could not take the message
	// before ctx ended (delivered still counts the others), and, with
	// Retain, ErrRetainLimit or ErrRetainUnavailable when the message was
	// delivered but could not be retained.
	Publish(ctx context.Context, topic string, payload any, opts ...PublishOption) (delivered int, err error)
	// Request publishes payload to topic as a request and returns the first
	// answer (see Message.Respond) from another client, never from itself.
	// It is delivered like Publish (except-sender, queue groups, overflow
	// policies, permissions: the client must be allowed to publish to
	// topic) but never retained. It fails with ErrNoResponders when no
	// subscription of another client took the request (at once, also when
	// the only matching subscriptions are the requester's own: with NATS
	// the broker then first asks the other brokers, over a second
	// connection without echo, whether they listen), and with ctx's error
	// when ctx ends before an answer.
	Request(ctx context.Context, topic string, payload any) (Message, error)
	// Subscribe receives every message published by other clients to a
	// topic that matches pattern (exact, or with NATS wildcards "*" for one
	// token and ">" for one or more trailing tokens), after the retained
	// messages of the topics it matches. It is bounded by ctx (with NATS it
	// waits for the server to know the interest and for the retained
	// messages).
	Subscribe(ctx context.Context, pattern string, opts ...SubscribeOption) (Subscription, error)
	// Close removes all of the client's subscriptions (closing their
	// channels) and frees its id. It does not block and is idempotent.
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

// Broker registers clients and counts what they do: NewMemory returns
// one, and NewNATS's *NATS is one.
type Broker interface {
	// Register creates the client for info. It fails with ErrInvalidID for
	// an empty or malformed id, ErrDuplicateID when a live client already
	// has the id, ErrUnknownClient when the broker was given a list of
	// known clients that lacks it, ErrInvalidTopic for a malformed pattern
	// in an allow-list, and ErrClosed after Close.
	Register(ctx context.Context, info ClientInfo) (Client, error)
	// Close closes every client and then the broker; with NATS it first
	// flushes what was published, for as long as ctx allows. It is
	// idempotent.
	Close(ctx context.Context) error
	// Stats returns the broker-wide counters.
	Stats() Stats
	// TopicStats returns the counters of each pattern given to
	// WithTopicStats, in the order given (nil without the option).
	TopicStats() []TopicStats
}

// Errors, all matchable with errors.Is.
var (
	ErrClosed        = errors.New("pubsub: closed")
	ErrPermission    = errors.New("pubsub: permission denied")
	ErrDuplicateID   = errors.New("pubsub: duplicate client id")
	ErrUnknownClient = errors.New("pubsub: unknown client id")
	ErrInvalidID     = errors.New("pubsub: invalid client id")
	ErrInvalidTopic  = errors.New("pubsub: invalid topic or pattern")
	ErrDecode        = errors.New("pubsub: cannot decode payload")
	// ErrNoResponders: a Request found no subscription of another client.
	ErrNoResponders = errors.New("pubsub: no responders")
	// ErrNotRequest: Respond on a message that is not a request.
	ErrNotRequest = errors.New("pubsub: message is not a request")
	// ErrRetainLimit: a retained publish to one topic more than the
	// broker's retain limit (WithRetainLimit); the message was delivered,
	// not retained.
	ErrRetainLimit = errors.New("pubsub: retain limit reached")
	// ErrRetainUnavailable: a retained publish over NATS when the server
	// has no JetStream, or when the stream of retained messages did not
	// store it in time (its servers lost, a leader being elected); the
	// message was delivered, not retained.
	ErrRetainUnavailable = errors.New("pubsub: retained messages unavailable")

	// errNoJetStream: the NATS server has no JetStream (wrapped with
	// ErrRetainUnavailable).
	errNoJetStream = errors.New("the NATS server has no JetStream")
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

// Stats are broker-wide counters.
type Stats struct {
	// Published counts successful Publish calls.
	Published uint64
	// Delivered counts messages handed to subscription queues.
	Delivered uint64
	// Dropped counts messages dropped by overflow policies (and, for NATS,
	// by the connection's own pending limits).
	Dropped uint64
	// Retained is the number of topics with a retained message (in
	// memory; with NATS, 0: the server keeps them).
	Retained int
	// RetainRejected counts retained publishes that were delivered but not
	// retained (ErrRetainLimit, ErrRetainUnavailable).
	RetainRejected uint64
	// RetainLoadFailed counts subscriptions that started without their
	// retained messages because the stream keeping them did not answer or
	// the connection was away (NATS): they got live messages at once, and
	// the retained ones when the stream answered again (see
	// EventRetainRestored).
	RetainLoadFailed uint64
	// SlowConsumers counts slow-consumer episodes (EventSlowConsumer): a
	// subscription's queue became full, once per episode.
	SlowConsumers uint64
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
	// EventRetainRestored: the stream of retained messages answers again
	// after a failure reported as EventError (NATS); the subscriptions
	// that started without their retained messages have got them.
	EventRetainRestored
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
	case EventRetainRestored:
		return "retain-restored"
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

func (c *config) emit(ev Event) {
	if ev.Kind == EventSlowConsumer && c.slowEpisodes != nil {
		c.slowEpisodes.Add(1)
	}
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
	case EventRetainRestored:
		l.Info("pubsub: the stream of retained messages answers again; subscriptions that started without their retained messages have them now")
	default:
		if errors.Is(ev.Err, errNoJetStream) {
			l.Warn("pubsub: the NATS server has no JetStream: retained messages are not available (a retained publish is delivered but fails with ErrRetainUnavailable); run nats-server with -js")
			return
		}
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
