package bench

import (
	"fmt"
	"testing"

	"github.com/goangel/angel/pubsub"
)

// BenchmarkPubSub runs goangel's brokers beside the plain-channel floor, in
// one run; bench/peers adds watermill, cskr/pubsub and bare nats.go.
func BenchmarkPubSub(b *testing.B) {
	targets := []PubSubTarget{ChannelFloor(), GoangelMemory(), GoangelRetainedMemory(), GoangelNATS(StartNATS)}
	for _, k := range []int{4, 16} {
		for _, t := range targets {
			b.Run(fmt.Sprintf("fanout/K=%d/%s", k, t.Name), func(b *testing.B) { RunFanout(b, t, k) })
		}
	}
	for _, t := range targets {
		b.Run("latency/"+t.Name, func(b *testing.B) { RunLatency(b, t) })
	}
	for _, t := range []RequestTarget{
		GoangelRequest("goangel-memory", func(testing.TB) pubsub.Broker { return pubsub.NewMemory() }),
		GoangelRequest("goangel-nats", NATSBroker(StartNATS)),
	} {
		b.Run("request/"+t.Name, func(b *testing.B) { RunRequest(b, t) })
	}
}
