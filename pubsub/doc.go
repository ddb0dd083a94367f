// Package pubsub is goangel's publish/subscribe: the port of the pub/sub
// that Dart's angel_production injects into every instance. When one
// instance publishes, every other instance receives the message, never the
// sender.
//
// Two backends implement the same Broker and Client interfaces:
//
//   - In memory (NewMemory), the default: one process, channels, no
//     serialisation, no sockets. A publish is one channel send per matching
//     subscription and at most one allocation whatever the fan-out: boxing
//     the payload into Message.Payload, when the value needs it (a pointer,
//     a constant or a small integer does not). The subscriptions matching a
//     topic are cached per topic and the cache is rebuilt after every
//     Subscribe and Unsubscribe; past 512 distinct topics, further topics
//     are routed uncached (a lock and a slice per publish).
//   - NATS (NewNATS), for apps on many machines, over nats.go. Payloads go
//     through a Codec (JSON by default).
//
// Both take the same options (Option: WithLogger, WithEventHook,
// WithCodec, WithKnownClients, WithRetainLimit...); the NATS-only ones
// (NATSOption: authentication, TLS, reconnection, WithNamespace) are taken
// by NewNATS alone (given to NewMemory, they do not compile). Both
// brokers count what they carry (Broker's Stats and TopicStats); *NATS
// also gives its connection (Conn). Blocking calls take a context: Register, Publish (a Block
// subscription), Request, Subscribe (with NATS it waits for the server)
// and the broker's Close (with NATS it flushes).
//
// App code is the same on both when it publishes with Publish or
// PublishAs[T] and reads with Decode[T] or SubscribeAs[T]: Decode returns
// the value itself in memory and decodes the Raw bytes with NATS. Payloads
// are READ-ONLY: in memory every receiver gets the very value that was
// published. Publish values (or pointers you never mutate again); to check
// that an app does not rely on sharing, run it on NewMemory(WithCodec(JSON{})).
//
// # Semantics
//
//   - A message reaches every matching subscription of every other client;
//     the sender's own subscriptions get it only when made with IncludeSelf.
//   - Order is kept per publisher per subscription, with one exception
//     around a subscription's start: the retained messages come first,
//     then the live messages that arrived while they were read (with
//     NATS, from the stream), so a plain message published just before a
//     retained one on the same topic may come after it (the retained
//     message's live copy is then dropped as a duplicate). Publish a
//     topic's state retained, always (see docs/STATE.md).
//   - Topics are dot-separated tokens; subscriptions match exactly or with
//     the NATS wildcards "*" (one token) and ">" (one or more trailing
//     tokens). See Match.
//   - Publish returns how many subscriptions the message was handed to
//     (with NATS: 1 once it is handed to the connection; the fan-out is the
//     server's and is not known to the publisher).
//
// # Retained messages, request/reply, queue groups
//
// Three patterns beside plain publishing, on both backends, each with
// except-sender, permissions, the overflow policies and counted drops:
//
//   - Retained messages: Publish(ctx, topic, v, Retain()) also keeps the
//     message as the topic's last. A new subscription whose pattern
//     matches retained topics receives their last messages first (oldest
//     first, each once, marked by Message.Retained), then live messages.
//     A client never gets its own retained messages (unless IncludeSelf);
//     a later life of the same instance is a new client and does. A plain
//     publish leaves the retained message alone; queue-group members get
//     none. Retained messages that do not fit a new subscription's queue
//     are dropped and counted, whatever its policy (Subscribe never waits
//     for a reader that cannot read yet). In memory the broker keeps them, at most WithRetainLimit topics
//     (one more is delivered, not retained: ErrRetainLimit, counted in
//     Stats().RetainRejected). With NATS they live in the server, in a
//     JetStream stream with one message per subject, kept on min(3, the
//     cluster's size) servers (see NewNATS), so a state such as the
//     example's greeting survives every process and one server's death: a
//     server without JetStream is reported at start-up, and a retained
//     publish then fails with ErrRetainUnavailable (after delivery).
//   - Request/reply: Request(ctx, topic, v) delivers v like a publish and
//     returns the first answer (Message.Respond) from another client,
//     never from itself (a request is not delivered to the requester's
//     own subscriptions, even with IncludeSelf), bounded by ctx;
//     ErrNoResponders when nobody took it, at once, also when the only
//     subscriptions are the requester's own. With NATS the answer comes to
//     the broker's inbox subject (one subscription per broker), and the
//     broker keeps a second connection, without echo, to ask the other
//     brokers whether they listen when only the requester does here
//     (one round trip; a NATS client that is not goangel is not seen
//     then). RequestAs[Resp] decodes the answer.
//   - Queue groups: a subscription made with InGroup(name) is one member of
//     the group; each message goes to one member of each group matching
//     its topic (in turn, preferring a member with room in its queue),
//     beside the ordinary subscriptions, which all get it. The sender's own
//     members are passed over. With NATS, the members of one broker share
//     one queue subscription and the broker picks among them; when the
//     server hands a message to a broker whose only members are the
//     sender's own, the broker hands it back to the server for another
//     member (at most 16 times, then it is dropped and counted in
//     Stats().Dropped, and the first such drop is reported as EventError
//     until a member of that broker takes a message again). Plain
//     subscriptions never see the copies handed back.
//
// # Registration and permissions
//
// A Broker registers each Client with a ClientInfo: a unique id and
// allow-lists of topic patterns for publishing and subscribing: immutable
// AllowList values made with AllowAll, DenyAll or Allow (the zero value
// allows all, as in Dart's pub_sub). A subscription pattern is allowed when
// the list's patterns together cover every topic it can match. An empty or
// duplicate id fails (ErrInvalidID, ErrDuplicateID); with WithKnownClients
// an id not on the list fails with ErrUnknownClient. A denied Publish,
// Request or Subscribe fails with ErrPermission. goangel's runner registers
// one client per instance life, with the id InstanceID gives
// ("APP/INSTANCE#LIFE@HOST:PID": unique across processes); a respawned
// instance gets a fresh client and the old one's subscriptions are gone.
//
// # Backpressure contract
//
// Every subscription has a bounded queue: WithQueueSize(n) messages
// (default DefaultQueueSize, or the broker's WithDefaultQueueSize). When a
// message finds the queue full, the subscription's policy decides:
//
//   - DropNewest (default, as nats.go): the new message is dropped.
//   - DropOldest: the oldest queued message is dropped to make room.
//   - Block: the publisher waits for room, bounded by its ctx; if ctx ends
//     first the message is dropped for that subscription and Publish
//     returns ctx's error after handing the message to the others.
//
// Only a Block subscription can stall a publisher; a slow subscriber with a
// drop policy never slows the publisher or the other subscribers. Every
// dropped message is counted, per subscription (Subscription.Dropped) and
// per broker (Stats().Dropped), and per topic for the patterns given to
// WithTopicStats (TopicStats(), beside published and delivered counts and
// slow episodes; off by default, so the number of counters stays bounded
// and publishing costs nothing more). Nothing is dropped silently: the first
// overflow of a slow episode is reported once as EventSlowConsumer, through
// the logger (WithLogger) and the event hook (WithEventHook); the episode
// ends, reported as EventDrained, when a message finds the queue empty
// again. No goroutine is started per message and no buffer is unbounded.
//
// # Lifecycle
//
// Unsubscribe closes that subscription's channel. Client.Close removes all
// of the client's subscriptions and closes their channels. Publishing or
// subscribing on a closed client or broker fails with ErrClosed. Broker
// Close closes every client. Every close is idempotent.
//
// # NATS and at-most-once
//
// NewNATS connects once per broker; every client of that broker shares the
// connection (a second one, without echo, serves only the requests that
// must ask the other brokers whether they listen). With WithNamespace (goangel's runner passes the app's name,
// or --pubsub-namespace) every subject is "NAMESPACE.TOPIC": apps sharing
// a server are apart unless they choose the same namespace. Each message carries the sending client's unique id (a nuid)
// and its ClientInfo id (a plain publish, a request and a response in
// its reply subject, a retained message in one header; see
// pubsub/nats.go), and a subscription drops messages from its own client
// unless made with IncludeSelf: "every instance but the sender" holds
// across processes and machines.
// Permissions are checked client-side, the same way as in memory. The
// subscriptions of one broker to one pattern share one nats.go
// subscription: the server sends each message once per broker, its sender
// is read once, and nats.go's delivery goroutine hands it to every local
// subscription's bounded queue with the same policies as in memory (so a
// slow drop-policy subscriber holds up nobody). A Block subscription gets a
// nats.go subscription of its own: waiting for it holds up only its own
// delivery, never a remote publisher (NATS never pushes back on
// publishers); in front of its queue a buffer bounded by the pending
// limits (WithPendingLimits) holds what waits, and what does not fit is
// dropped, counted in Dropped and under its topic, and reported as
// EventSlowConsumer. The shared subscriptions never wait on nats.go's
// delivery goroutine; behind them nats.go's own pending limits drop only
// when that goroutine gets no CPU for long, counted in Dropped but not by
// topic (nats.go does not say which messages).
//
// Delivery is at-most-once, as core NATS is: a message is delivered zero or
// one time to each subscription and never redelivered. It is lost when a
// queue overflows (counted), when the receiving connection is disconnected
// at the time (the server keeps nothing), or when the publisher's
// connection closes for good with the message still in its reconnect
// buffer. While reconnecting, nats.go buffers publishes (ReconnectBufSize)
// and re-creates subscriptions on the new connection (Subscribe then
// returns at once, and the new interest is sent on reconnect); Publish
// fails with ErrClosed once the connection is closed for good. Only
// retained messages are stored (in JetStream, the last one per topic); use
// JetStream itself for streams of messages that must not be lost.
package pubsub
