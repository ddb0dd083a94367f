package pubsub

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// requestReplyPrefix begins the reply subject of a goangel request:
// requestReplyPrefix + "<broker>.<request>.<uid>.<id in unpadded
// base64url>", the requesting broker's inbox and request token, then its
// client's uid and ClientInfo.ID as in a plain publish's reply subject
// (see headerSender). A response carries its responder the same way, in
// its own reply subject (senderReplyPrefix...). Neither carries a header:
// encoding one on each side and decoding it on the other was a fifth of
// a round trip's allocations.
const requestReplyPrefix = "_GOANGEL.R."

// peerPrefix begins the subjects of the peer subscriptions: every NATS
// subscription of a broker has a twin on the broker's peer connection,
// subscribed to peerPrefix + its subject (see Request).
const peerPrefix = "_GOANGEL.P."

// A request never reaches its requester: every subscription skips the
// requests of its own client. The NATS server cannot know that. When the
// only subscriptions that match a request's subject are the requester's
// own, they are on the broker's connection and the server sees a
// responder: it sends no "no responders" status (nats.go's, which needs
// headers and comes only when no subscription at all matches), and the
// request would wait for its ctx, where the memory broker fails at once
// with ErrNoResponders.
//
// The broker knows its own subscriptions; only the server knows those of
// the other brokers. So Request looks first at its broker's own: when
// one that matches the topic belongs to another client (it takes the
// request), or none matches (the server's no-responders status tells the
// truth), the request goes straight out. When those that match are all
// the requester's own, the broker asks the server whether any other
// broker has a matching subscription, over a second connection made
// without echo (nats.go's NoEcho: the server hands it none of its own
// messages) that holds a peer subscription for every subscription of the
// broker, on peerPrefix + its subject. A request on peerPrefix + the
// topic, sent there, reaches the peer subscriptions of every other broker
// and never this broker's own: with none, the server answers "no
// responders" (the request fails with ErrNoResponders, after one round
// trip); otherwise the first peer answers at once and the request goes
// out as usual. Only such a request pays the round trip.
//
// What the server counts cannot be bent: a NATS client that is not
// goangel subscribed to the topic has no peer subscription, and is not
// seen; a subscription of the requester's whose pattern also matches
// the peer subject (">" or "*.>" without a namespace; WithNamespace
// avoids it) makes the server see a responder again, and the request
// then waits for ctx as before. And a subscription that another broker
// has just removed is known to the server a moment later, as any NATS
// interest: a request in between may wait for ctx.

// answerPeer answers another broker's peer request: this broker has a
// subscription matching its topic.
func (e *natsEntry) answerPeer(m *nats.Msg) {
	if len(*e.subs.Load()) > 0 {
		_ = m.Respond(nil) // fails only when the connection is closed: the asker then hears nothing from here, rightly
	}
}

// othersOnly reports whether a request of c to topic must ask the peers:
// some of the broker's subscriptions match topic, all of them c's.
func (b *NATS) othersOnly(c *natsClient, topic string) bool {
	own := false
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.entries {
		if !match(e.pattern, topic) {
			continue
		}
		for _, s := range *e.subs.Load() {
			if s.client != c {
				return false
			}
			own = true
		}
	}
	return own
}

// askPeers reports whether a subscription of another broker matches
// topic: ErrNoResponders when none, ctx's error when ctx ended, nil
// otherwise (also when the peer connection is away: the request then
// goes out as if there were one).
func (b *NATS) askPeers(ctx context.Context, topic string) error {
	_, err := b.peers.RequestWithContext(ctx, peerPrefix+b.subject(topic), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return ErrNoResponders
	case ctx.Err() != nil:
		return fmt.Errorf("no answer: %w", ctx.Err())
	}
	return nil
}

// requests is a broker's response inbox: one subscription to
// requestReplyPrefix + "<broker>.>", made at the first request, and the
// requests waiting for their first answer.
type requests struct {
	prefix string // requestReplyPrefix + "<broker>."
	once   sync.Once
	sub    *nats.Subscription
	err    error
	next   atomic.Uint64
	mu     sync.Mutex
	wait   map[string]chan *nats.Msg // by request token
}

// start subscribes to the inbox, once.
func (r *requests) start(b *NATS) error {
	r.once.Do(func() {
		r.sub, r.err = b.nc.Subscribe(r.prefix+">", r.answer)
	})
	return r.err
}

// answer hands a response (or the server's no-responders notice) to the
// request waiting for it; a later answer finds none and is dropped.
func (r *requests) answer(m *nats.Msg) {
	token, _, _ := strings.Cut(m.Subject[len(r.prefix):], ".")
	r.mu.Lock()
	ch := r.wait[token]
	delete(r.wait, token)
	r.mu.Unlock()
	if ch != nil {
		ch <- m // buffered, one answer only
	}
}

func (r *requests) forget(token string) {
	r.mu.Lock()
	delete(r.wait, token)
	r.mu.Unlock()
}

// Request publishes the request with a reply subject of the broker's
// inbox that names the requester, and waits for the first answer, ctx or
// the broker's Close. When the only subscriptions here are the
// requester's own, it asks the other brokers first (see peerPrefix).
func (c *natsClient) Request(ctx context.Context, topic string, payload any) (Message, error) {
	data, err := c.prepare(ctx, topic, payload)
	if err != nil {
		return Message{}, err
	}
	b := c.b
	if b.othersOnly(c, topic) {
		if err := b.askPeers(ctx, topic); err != nil {
			return Message{}, fmt.Errorf("pubsub: request %q: %w", topic, err)
		}
	}
	r := &b.reqs
	if err := r.start(b); err != nil {
		return Message{}, fmt.Errorf("pubsub: request %q: %w", topic, natsErr(err))
	}
	token := strconv.FormatUint(r.next.Add(1), 36)
	ch := make(chan *nats.Msg, 1)
	r.mu.Lock()
	r.wait[token] = ch
	r.mu.Unlock()
	b.published.Add(1)
	if b.ts != nil {
		b.ts.of(topic).published()
	}
	if err := b.nc.PublishMsg(&nats.Msg{Subject: b.subject(topic), Reply: r.prefix + token + "." + c.rtail, Data: data}); err != nil {
		r.forget(token)
		return Message{}, fmt.Errorf("pubsub: request %q: %w", topic, natsErr(err))
	}
	var resp *nats.Msg
	select {
	case resp = <-ch:
	case <-ctx.Done():
		r.forget(token)
		return Message{}, fmt.Errorf("pubsub: request %q: no answer: %w", topic, ctx.Err())
	case <-b.life.Done():
		r.forget(token)
		return Message{}, fmt.Errorf("pubsub: request %q: %w", topic, ErrClosed)
	}
	if len(resp.Data) == 0 && resp.Header.Get("Status") == "503" {
		return Message{}, fmt.Errorf("pubsub: request %q: %w", topic, ErrNoResponders)
	}
	return Message{Topic: topic, Sender: responder(resp), Payload: Raw{Data: resp.Data, Codec: b.cfg.codec}}, nil
}

// responder is the ClientInfo.ID of who answered: from the response's
// reply subject, or (goangel before requestReplyPrefix) its headerSender;
// "" for another NATS client.
func responder(m *nats.Msg) string {
	if rest, ok := strings.CutPrefix(m.Reply, senderReplyPrefix); ok {
		_, enc, _ := strings.Cut(rest, ".")
		if raw, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
			return string(raw)
		}
		return ""
	}
	_, id, _ := strings.Cut(m.Header.Get(headerSender), " ")
	return id
}

// newRequests makes a broker's response inbox (not subscribed yet).
func newRequests() requests {
	return requests{prefix: requestReplyPrefix + nuid.Next() + ".", wait: map[string]chan *nats.Msg{}}
}
