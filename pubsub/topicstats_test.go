package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/pubsub"
)

// topicStatsBroker is what both backends offer beside Broker.
type topicStatsBroker interface {
	pubsub.Broker
	TopicStats() []pubsub.TopicStats
}

// TestTopicStats: per-pattern counters on both backends, after known
// publishes, deliveries, a drop and a slow-consumer episode; topics that
// no pattern matches are not counted, a topic matched by two patterns
// counts in both.
func TestTopicStats(t *testing.T) {
	patterns := []string{"orders.>", "orders.eu", "audit", "orders.>"}
	for _, be := range []struct {
		name string
		new  func(t *testing.T) topicStatsBroker
	}{
		{"memory", func(t *testing.T) topicStatsBroker {
			b := pubsub.NewMemory(pubsub.WithTopicStats(patterns...))
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b
		}},
		{"nats", func(t *testing.T) topicStatsBroker {
			return newNATS(t, runServer(t, nil).ClientURL(), pubsub.WithTopicStats(patterns...))
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			a, bb, c, d := register(t, b, "a"), register(t, b, "b"), register(t, b, "c"), register(t, b, "d")
			slow := subscribe(t, bb, "orders.>", pubsub.WithQueueSize(1))
			all := subscribe(t, c, "orders.>")
			other := subscribe(t, d, "other")
			publish(t, a, "orders.eu", "1") // slow and all: 2 delivered
			publish(t, a, "orders.us", "2") // all; slow is full: dropped, one episode
			publish(t, a, "other", "x")     // counted by no pattern
			for _, want := range []string{"1", "2"} {
				if got := recvString(t, all); got != want {
					t.Fatalf("c got %q, want %q", got, want)
				}
			}
			if got := recvString(t, other); got != "x" {
				t.Fatalf("d got %q, want x", got)
			}
			want := []pubsub.TopicStats{
				{Pattern: "orders.>", Published: 2, Delivered: 3, Dropped: 1, SlowConsumer: 1},
				{Pattern: "orders.eu", Published: 1, Delivered: 2},
				{Pattern: "audit"},
			}
			var got []pubsub.TopicStats
			testutil.WaitFor(t, wait, "topic stats", func() bool {
				got = b.TopicStats()
				return slices.Equal(got, want) && slow.Dropped() == 1
			})
			if got := recvString(t, slow); got != "1" {
				t.Fatalf("b got %q, want 1", got)
			}
			if st := b.Stats(); st.Dropped != 1 {
				t.Errorf("Stats().Dropped = %d, want 1", st.Dropped)
			}
		})
	}
}

// TestTopicStatsDropOldest: the message a DropOldest queue drops to make
// room counts under its own topic, not the newcomer's.
func TestTopicStatsDropOldest(t *testing.T) {
	b := pubsub.NewMemory(pubsub.WithTopicStats("a", "b"))
	defer b.Close(context.Background())
	pub, sub := register(t, b, "p"), register(t, b, "s")
	s := subscribe(t, sub, "*", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.DropOldest))
	publish(t, pub, "a", "old")
	publish(t, pub, "b", "new")
	if got := recvString(t, s); got != "new" {
		t.Fatalf("got %q, want new", got)
	}
	want := []pubsub.TopicStats{
		{Pattern: "a", Published: 1, Delivered: 1, Dropped: 1},
		{Pattern: "b", Published: 1, Delivered: 1, SlowConsumer: 1},
	}
	if got := b.TopicStats(); !slices.Equal(got, want) {
		t.Errorf("TopicStats() = %+v, want %+v", got, want)
	}
}

// TestTopicStatsOff: without the option nothing is counted per topic.
func TestTopicStatsOff(t *testing.T) {
	b := pubsub.NewMemory()
	defer b.Close(context.Background())
	publish(t, register(t, b, "p"), "orders.eu", "1")
	if got := b.TopicStats(); got != nil {
		t.Errorf("TopicStats() = %+v, want nil", got)
	}
}

// TestTopicStatsInvalidPattern: NewMemory panics and NewNATS fails (before
// connecting), naming the pattern.
func TestTopicStatsInvalidPattern(t *testing.T) {
	func() {
		defer func() {
			r := recover()
			if msg := fmt.Sprint(r); r == nil || !strings.Contains(msg, `"orders.>.eu"`) {
				t.Errorf("NewMemory panicked with %v, want a message naming \"orders.>.eu\"", r)
			}
		}()
		pubsub.NewMemory(pubsub.WithTopicStats("orders", "orders.>.eu"))
	}()
	_, err := pubsub.NewNATS(context.Background(), "nats://127.0.0.1:1", pubsub.WithTopicStats("a..b"))
	if !errors.Is(err, pubsub.ErrInvalidTopic) || !strings.Contains(err.Error(), `"a..b"`) {
		t.Errorf("NewNATS error = %v, want ErrInvalidTopic naming \"a..b\"", err)
	}
}
