package pubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/goangel/angel/pubsub"
)

const wait = 5 * time.Second

// backend builds a broker for the conformance tests that run on every
// backend.
type backend struct {
	name string
	new  func(t *testing.T) pubsub.Broker
}

func memoryBackends() []backend {
	return []backend{
		{"memory", func(t *testing.T) pubsub.Broker {
			b := pubsub.NewMemory()
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b
		}},
		{"memory+json", func(t *testing.T) pubsub.Broker {
			b := pubsub.NewMemory(pubsub.WithCodec(pubsub.JSON{}))
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b
		}},
	}
}

func register(t testing.TB, b pubsub.Broker, id string) pubsub.Client {
	t.Helper()
	c, err := b.Register(context.Background(), pubsub.ClientInfo{ID: id})
	if err != nil {
		t.Fatalf("register %q: %v", id, err)
	}
	return c
}

func subscribe(t testing.TB, c pubsub.Client, pattern string, opts ...pubsub.SubscribeOption) pubsub.Subscription {
	t.Helper()
	s, err := c.Subscribe(context.Background(), pattern, opts...)
	if err != nil {
		t.Fatalf("%s subscribe %q: %v", c.ID(), pattern, err)
	}
	return s
}

func publish(t *testing.T, c pubsub.Client, topic string, v any) int {
	t.Helper()
	n, err := c.Publish(context.Background(), topic, v)
	if err != nil {
		t.Fatalf("%s publish %q: %v", c.ID(), topic, err)
	}
	return n
}

// recv waits (bounded) for the next message on s.
func recv(t *testing.T, s pubsub.Subscription) pubsub.Message {
	t.Helper()
	select {
	case m, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription %q closed, want a message", s.Pattern())
		}
		return m
	case <-time.After(wait):
		t.Fatalf("no message on %q within %v", s.Pattern(), wait)
	}
	return pubsub.Message{}
}

// recvString waits for the next message and decodes it as a string.
func recvString(t *testing.T, s pubsub.Subscription) string {
	t.Helper()
	m := recv(t, s)
	v, err := pubsub.Decode[string](m)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return v
}

// empty fails if s has a message waiting now.
func empty(t *testing.T, s pubsub.Subscription) {
	t.Helper()
	select {
	case m, ok := <-s.C():
		t.Fatalf("subscription %q: unexpected %+v (open %v)", s.Pattern(), m, ok)
	default:
	}
}

// closed waits (bounded) for s's channel to be closed, draining it.
func closed(t *testing.T, s pubsub.Subscription) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-s.C():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("subscription %q not closed within %v", s.Pattern(), wait)
		}
	}
}

// limitBackends are the backends with a retain limit of 2 topics.
func limitBackends() []backend {
	bs := []backend{{"memory", func(t *testing.T) pubsub.Broker {
		b := pubsub.NewMemory(pubsub.WithRetainLimit(2))
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		return b
	}}}
	for _, f := range extraLimitBackends {
		bs = append(bs, f())
	}
	return bs
}

// extraLimitBackends is extended by nats_test.go.
var extraLimitBackends []func() backend
