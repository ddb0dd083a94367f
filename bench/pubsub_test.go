package bench

import (
	"fmt"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/pubsub"
)

// BenchmarkPubSub runs goangel's brokers beside the plain-channel floor, in
// one run; bench/peers adds watermill, cskr/pubsub and bare nats.go.
func BenchmarkPubSub(b *testing.B) {
	targets := []workload.PubSubTarget{workload.ChannelFloor(), workload.GoangelMemory(), workload.GoangelRetainedMemory(), workload.GoangelNATS(StartNATS)}
	for _, k := range []int{4, 16} {
		for _, t := range targets {
			b.Run(fmt.Sprintf("fanout/K=%d/%s", k, t.Name), func(b *testing.B) { workload.RunFanout(b, t, k) })
		}
	}
	for _, t := range targets {
		b.Run("latency/"+t.Name, func(b *testing.B) { workload.RunLatency(b, t) })
	}
	for _, t := range []workload.RequestTarget{
		workload.GoangelRequest("goangel-memory", func(testing.TB) pubsub.Broker { return pubsub.NewMemory() }),
		workload.GoangelRequest("goangel-nats", workload.NATSBroker(StartNATS)),
	} {
		b.Run("request/"+t.Name, func(b *testing.B) { workload.RunRequest(b, t) })
	}
}
