package pubsub

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// RequestReplyPrefix begins the reply subject of a goangel request:
// RequestReplyPrefix + "<broker>.<request>.<uid>.<id in unpadded
// base64url>", the requesting broker's inbox and request token, then its
// client's uid and ClientInfo.ID as in a plain publish's reply subject
// (see HeaderSender). A response carries its responder the same way, in
// its own reply subject (SenderReplyPrefix...). Neither carries a header:
// encoding one on each side and decoding it on the other was a fifth of
// a round trip's allocations.
const RequestReplyPrefix = "_GOANGEL.R."

// requests is a broker's response inbox: one subscription to
// RequestReplyPrefix + "<broker>.>", made at the first request, and the
// requests waiting for their first answer.
type requests struct {
	prefix string // RequestReplyPrefix + "<broker>."
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
// the broker's Close. When the only subscriptions are the requester's own
// (which never take its requests), the server cannot tell: Request then
// waits for ctx.
func (c *natsClient) Request(ctx context.Context, topic string, payload any) (Message, error) {
	data, err := c.prepare(ctx, topic, payload)
	if err != nil {
		return Message{}, err
	}
	b := c.b
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
// reply subject, or (goangel before RequestReplyPrefix) its HeaderSender;
// "" for another NATS client.
func responder(m *nats.Msg) string {
	if rest, ok := strings.CutPrefix(m.Reply, SenderReplyPrefix); ok {
		_, enc, _ := strings.Cut(rest, ".")
		if raw, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
			return string(raw)
		}
		return ""
	}
	_, id, _ := strings.Cut(m.Header.Get(HeaderSender), " ")
	return id
}

// newRequests makes a broker's response inbox (not subscribed yet).
func newRequests() requests {
	return requests{prefix: RequestReplyPrefix + nuid.Next() + ".", wait: map[string]chan *nats.Msg{}}
}
