package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
)

// Codec turns payloads into bytes and back for backends that must encode
// (NATS, or NewMemory with WithCodec).
type Codec interface {
	Encode(v any) ([]byte, error)
	Decode(data []byte, v any) error
}

// JSON is the default Codec (encoding/json).
type JSON struct{}

// Encode implements Codec.
func (JSON) Encode(v any) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (JSON) Decode(data []byte, v any) error { return json.Unmarshal(data, v) }

// Raw is an encoded payload: what a NATS subscription (or an in-memory broker
// with WithCodec) delivers as Message.Payload. Decode[T] decodes it with
// Codec. Publishing a Raw sends Data as it is, without encoding it again.
type Raw struct {
	Data  []byte
	Codec Codec
}

func encodeRaw(codec Codec, payload any) (Raw, error) {
	switch p := payload.(type) {
	case Raw:
		return p, nil
	case *Raw:
		if p != nil {
			return *p, nil
		}
	}
	data, err := codec.Encode(payload)
	if err != nil {
		return Raw{}, err
	}
	return Raw{Data: data, Codec: codec}, nil
}

// PublishAs publishes v: Client.Publish with the payload's type checked at
// compile time (and the same options, e.g. Retain). The receivers read it
// with Decode[T] or SubscribeAs[T].
func PublishAs[T any](ctx context.Context, c Client, topic string, v T, opts ...PublishOption) (int, error) {
	return c.Publish(ctx, topic, v, opts...)
}

// RequestAs sends req with Client.Request and decodes the answer as Resp.
// An answer of another type fails with an error wrapping ErrDecode (and
// the answer's Message, e.g. to see who sent it).
func RequestAs[Resp, Req any](ctx context.Context, c Client, topic string, req Req) (Resp, Message, error) {
	m, err := c.Request(ctx, topic, req)
	if err != nil {
		var zero Resp
		return zero, m, err
	}
	v, err := Decode[Resp](m)
	return v, m, err
}

// Decode returns m's payload as a T on either backend: the value itself
// (or what a *T points to) in memory, the decoded Raw with NATS. A payload
// of another type fails with an error wrapping ErrDecode; a nil payload is
// T's zero value. Decode into the type that was published: in memory an int
// is not an int64, with JSON it would be.
func Decode[T any](m Message) (T, error) {
	var v T
	switch p := m.Payload.(type) {
	case nil:
		return v, nil
	case T:
		return p, nil
	case *T:
		if p != nil {
			return *p, nil
		}
		return v, nil
	case Raw:
		return decodeRaw[T](m.Topic, p)
	}
	return v, fmt.Errorf("%w: topic %q: payload is %T, not %T", ErrDecode, m.Topic, m.Payload, v)
}

// decodeRaw is apart so that its &v, which escapes into the codec, does
// not make Decode allocate on the in-memory path.
func decodeRaw[T any](topic string, r Raw) (T, error) {
	v := new(T)
	codec := r.Codec
	if codec == nil {
		codec = JSON{}
	}
	if err := codec.Decode(r.Data, v); err != nil {
		return *v, fmt.Errorf("%w: topic %q as %T: %w", ErrDecode, topic, *v, err)
	}
	return *v, nil
}

// Typed is a subscription whose messages are read as T.
type Typed[T any] struct {
	Subscription
}

// SubscribeAs subscribes c to pattern and reads the messages as T.
func SubscribeAs[T any](ctx context.Context, c Client, pattern string, opts ...SubscribeOption) (*Typed[T], error) {
	s, err := c.Subscribe(ctx, pattern, opts...)
	if err != nil {
		return nil, err
	}
	return &Typed[T]{Subscription: s}, nil
}

// Receive waits for the next message and decodes it. It fails with
// ErrClosed once the subscription is closed, with ctx's error when ctx ends
// first, and with an error wrapping ErrDecode (and the message) when the
// payload is not a T; the subscription stays usable after a decode error.
func (s *Typed[T]) Receive(ctx context.Context) (T, Message, error) {
	var zero T
	select {
	case m, ok := <-s.C():
		if !ok {
			return zero, Message{}, fmt.Errorf("pubsub: receive %q: %w", s.Pattern(), ErrClosed)
		}
		v, err := Decode[T](m)
		return v, m, err
	case <-ctx.Done():
		return zero, Message{}, ctx.Err()
	}
}
