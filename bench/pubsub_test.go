package bench

import (
	"fmt"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkPubSub runs goangel's brokers beside the plain-channel floor, in
// one run; bench/peers adds watermill, cskr/pubsub and bare nats.go.
func BenchmarkPubSub(b *testing.B) {
	targets := []workload.PubSubTarget{workload.ChannelFloor(), workload.GoangelMemory(), workload.GoangelNATS(StartNATS)}
	for _, k := range []int{4, 16} {
		for _, t := range targets {
			b.Run(fmt.Sprintf("fanout/K=%d/%s", k, t.Name), func(b *testing.B) { workload.RunFanout(b, t, k) })
		}
	}
	for _, t := range targets {
		b.Run("latency/"+t.Name, func(b *testing.B) { workload.RunLatency(b, t) })
	}
}
