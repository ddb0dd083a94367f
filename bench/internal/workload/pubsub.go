package workload

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/pubsub"
)

// The pub/sub workloads: one publisher, K receivers, each receiving every
// message (fan-out), and the publish-to-receive latency at a fixed rate.
// Every system under test is a PubSubTarget, so goangel, the plain-channel
// floor and the peers (in bench/peers) run the very same loops.

// PubSubTopic is the topic every workload publishes to.
const PubSubTopic = "greeting"

// PubSubQueue is the queue size of every receiver (channel buffer,
// subscription queue, cskr capacity...).
const PubSubQueue = 1024

// PubSubWindow bounds the messages in flight (published but not yet
// received by the slowest receiver): asynchronous systems (NATS) would
// otherwise queue without limit. Channel-based targets with PubSubQueue
// never reach it.
const PubSubWindow = 4096

// PubSubSink receives what the receivers get.
type PubSubSink interface {
	// Got is called by receiver r (0 <= r < k), on its own goroutine, for
	// every message it receives, with the stamp the message carried.
	Got(r int, stamp int64)
}

// PubSubTarget is one pub/sub system. Setup connects one publisher and k
// receivers, each receiver on its own goroutine calling sink.Got for every
// message, and returns publish (one message carrying stamp; stamp 0 in the
// fan-out workload) and stop (tears everything down and waits for the
// receivers to end).
type PubSubTarget struct {
	Name  string
	Setup func(tb testing.TB, k int, sink PubSubSink) (publish func(stamp int64) error, stop func())
}

type paddedCount struct {
	n atomic.Int64
	_ [56]byte
}

type fanoutSink struct {
	want   int64
	counts []paddedCount
	left   atomic.Int64
	done   chan struct{}
}

func newFanoutSink(k, n int) *fanoutSink {
	s := &fanoutSink{want: int64(n), counts: make([]paddedCount, k), done: make(chan struct{})}
	s.left.Store(int64(k))
	if n == 0 {
		close(s.done)
	}
	return s
}

func (s *fanoutSink) Got(r int, _ int64) {
	if s.counts[r].n.Add(1) == s.want && s.left.Add(-1) == 0 {
		close(s.done)
	}
}

func (s *fanoutSink) slowest() int64 {
	m := int64(-1)
	for i := range s.counts {
		if n := s.counts[i].n.Load(); m < 0 || n < m {
			m = n
		}
	}
	return m
}

// throttle waits while more than PubSubWindow messages are in flight. It
// sleeps rather than spins so that the receivers it waits for get the CPU.
func (s *fanoutSink) throttle(published int64) {
	for published-s.slowest() > PubSubWindow {
		time.Sleep(20 * time.Microsecond)
	}
}

func (s *fanoutSink) wait(tb testing.TB, d time.Duration) {
	select {
	case <-s.done:
	case <-time.After(d):
		got := make([]int64, len(s.counts))
		for i := range s.counts {
			got[i] = s.counts[i].n.Load()
		}
		tb.Fatalf("receivers got %v of %d messages within %v", got, s.want, d)
	}
}

// RunFanout publishes b.N messages from one publisher to k receivers and
// waits until every receiver has them all. ns/op and allocs/op are per
// publish (allocations of the whole process, receivers included);
// deliveries/s counts messages received by all receivers together.
func RunFanout(b *testing.B, t PubSubTarget, k int) {
	sink := newFanoutSink(k, b.N)
	publish, stop := t.Setup(b, k, sink)
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 1; i <= b.N; i++ {
		if err := publish(0); err != nil {
			b.Fatal(err)
		}
		if i&255 == 0 {
			sink.throttle(int64(i))
		}
	}
	sink.wait(b, time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(k)*float64(b.N)/elapsed.Seconds(), "deliveries/s")
}

type latencySink struct {
	fanoutSink
	base time.Time
	lats [][]int64
}

func (s *latencySink) Got(r int, stamp int64) {
	s.lats[r] = append(s.lats[r], int64(time.Since(s.base))-stamp)
	s.fanoutSink.Got(r, stamp)
}

// PubSubRate is the publish rate of the latency workload, messages/s.
const PubSubRate = 10_000

// PubSubLatencyK is the number of receivers in the latency workload.
const PubSubLatencyK = 4

// RunLatency publishes b.N messages at PubSubRate to PubSubLatencyK
// receivers, each message stamped with its publish time, and reports the
// p50 and p99 of every publish-to-receive delay ("p50-µs", "p99-µs"). It
// takes b.N / PubSubRate seconds (one second at the default benchtime).
func RunLatency(b *testing.B, t PubSubTarget) {
	k := PubSubLatencyK
	sink := &latencySink{fanoutSink: *newFanoutSink(k, b.N), base: time.Now(), lats: make([][]int64, k)}
	for r := range sink.lats {
		sink.lats[r] = make([]int64, 0, b.N)
	}
	publish, stop := t.Setup(b, k, sink)
	defer stop()
	interval := time.Second / PubSubRate
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if err := publish(int64(time.Since(sink.base))); err != nil {
			b.Fatal(err)
		}
	}
	sink.wait(b, time.Minute)
	b.StopTimer()
	var all []int64
	for _, l := range sink.lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// ChannelFloor is the physical floor of a channel broker: one buffered
// channel of pubsub.Message per receiver (the very message goangel
// delivers), the publisher sending to each in turn.
func ChannelFloor() PubSubTarget {
	return channelTarget("channels", false)
}

// ChannelFloorNonBlocking is ChannelFloor with the sends a broker must
// make when it may not wait on a full queue while holding what fences the
// closing of queues (goangel's in-memory broker): a non-blocking try
// (select with default) first, a waiting send only when it fails (a plain
// one here: nothing closes the channels meanwhile). Its gap to ChannelFloor
// is the price of the non-blocking try alone.
func ChannelFloorNonBlocking() PubSubTarget {
	return channelTarget("channels-nonblocking", true)
}

// channelTarget is the two floors: the sends are written out in each (no
// function value in the floor's loop).
func channelTarget(name string, nonBlocking bool) PubSubTarget {
	return PubSubTarget{Name: name, Setup: func(tb testing.TB, k int, sink PubSubSink) (func(int64) error, func()) {
		chs := make([]chan pubsub.Message, k)
		var wg sync.WaitGroup
		for r := range chs {
			chs[r] = make(chan pubsub.Message, PubSubQueue)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range chs[r] {
					sink.Got(r, m.Payload.(int64))
				}
			}()
		}
		publish := func(stamp int64) error {
			m := pubsub.Message{Topic: PubSubTopic, Sender: "pub", Payload: stamp}
			if !nonBlocking {
				for _, ch := range chs {
					ch <- m
				}
				return nil
			}
			for _, ch := range chs {
				select {
				case ch <- m:
				default:
					ch <- m
				}
			}
			return nil
		}
		return publish, func() {
			for _, ch := range chs {
				close(ch)
			}
			wg.Wait()
		}
	}}
}

// GoangelTarget drives a goangel broker (memory or NATS): one publisher
// client and k receiver clients each with one subscription made with opts.
// The workloads check that every receiver gets every message.
func GoangelTarget(name string, newBroker func(tb testing.TB) pubsub.Broker, opts ...pubsub.SubscribeOption) PubSubTarget {
	return goangelTarget(name, newBroker, nil, opts...)
}

func goangelTarget(name string, newBroker func(tb testing.TB) pubsub.Broker, popts []pubsub.PublishOption, opts ...pubsub.SubscribeOption) PubSubTarget {
	return PubSubTarget{Name: name, Setup: func(tb testing.TB, k int, sink PubSubSink) (func(int64) error, func()) {
		ctx := context.Background()
		broker := newBroker(tb)
		pub, err := broker.Register(ctx, pubsub.ClientInfo{ID: "pub"})
		if err != nil {
			tb.Fatal(err)
		}
		var wg sync.WaitGroup
		for r := range k {
			c, err := broker.Register(ctx, pubsub.ClientInfo{ID: fmt.Sprint("r", r)})
			if err != nil {
				tb.Fatal(err)
			}
			s, err := c.Subscribe(ctx, PubSubTopic, opts...)
			if err != nil {
				tb.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range s.C() {
					v, err := pubsub.Decode[int64](m)
					if err != nil {
						panic(err)
					}
					sink.Got(r, v)
				}
			}()
		}
		publish := func(stamp int64) error {
			_, err := pub.Publish(ctx, PubSubTopic, stamp, popts...)
			return err
		}
		return publish, func() {
			_ = broker.Close(ctx)
			wg.Wait()
		}
	}}
}

// GoangelMemory is goangel's in-memory broker, each receiver with a Block
// subscription of PubSubQueue: lossless, like the floor's blocking sends.
func GoangelMemory() PubSubTarget {
	return GoangelTarget("goangel-memory", func(testing.TB) pubsub.Broker { return pubsub.NewMemory() },
		pubsub.WithQueueSize(PubSubQueue), pubsub.WithPolicy(pubsub.Block))
}

// GoangelRetainedMemory is GoangelMemory publishing every message with
// pubsub.Retain(): the cost of keeping the topic's last message (target:
// within 1.5x of GoangelMemory).
func GoangelRetainedMemory() PubSubTarget {
	return goangelTarget("goangel-memory-retained", func(testing.TB) pubsub.Broker { return pubsub.NewMemory() },
		[]pubsub.PublishOption{pubsub.Retain()}, pubsub.WithQueueSize(PubSubQueue), pubsub.WithPolicy(pubsub.Block))
}

// RequestTarget is one request/reply system: Setup starts one responder
// that answers every request with its payload, and returns request (one
// round trip) and stop.
type RequestTarget struct {
	Name  string
	Setup func(tb testing.TB) (request func(ctx context.Context) error, stop func())
}

// GoangelRequest drives Client.Request against one responder on the
// broker newBroker makes.
func GoangelRequest(name string, newBroker func(tb testing.TB) pubsub.Broker) RequestTarget {
	return RequestTarget{Name: name, Setup: func(tb testing.TB) (func(context.Context) error, func()) {
		ctx := context.Background()
		broker := newBroker(tb)
		asker, err := broker.Register(ctx, pubsub.ClientInfo{ID: "asker"})
		if err != nil {
			tb.Fatal(err)
		}
		srv, err := broker.Register(ctx, pubsub.ClientInfo{ID: "responder"})
		if err != nil {
			tb.Fatal(err)
		}
		s, err := srv.Subscribe(ctx, PubSubTopic)
		if err != nil {
			tb.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for m := range s.C() {
				_ = m.Respond(ctx, m.Payload)
			}
		})
		request := func(ctx context.Context) error {
			_, err := asker.Request(ctx, PubSubTopic, int64(1))
			return err
		}
		return request, func() {
			_ = broker.Close(ctx)
			wg.Wait()
		}
	}}
}

// RunRequestConcurrent is RunRequest with c askers at once (b.N round
// trips in all).
func RunRequestConcurrent(b *testing.B, t RequestTarget, c int) {
	request, stop := t.Setup(b)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var next atomic.Int64
	per := make([][]int64, c)
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for i := range c {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				start := time.Now()
				if err := request(ctx); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				per[i] = append(per[i], int64(time.Since(start)))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	lats := slices.Concat(per...)
	slices.Sort(lats)
	pct := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// RunRequest does b.N request/reply round trips one after the other and
// reports their p50 and p99 ("p50-µs", "p99-µs"; target in memory: p50 ≤
// 20 µs). ns/op is the mean round trip, allocs/op per round trip.
func RunRequest(b *testing.B, t RequestTarget) {
	request, stop := t.Setup(b)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lats := make([]int64, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := request(ctx); err != nil {
			b.Fatal(err)
		}
		lats = append(lats, int64(time.Since(start)))
	}
	b.StopTimer()
	slices.Sort(lats)
	pct := func(p float64) float64 { return float64(lats[int(p*float64(len(lats)-1))]) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// GoangelNATS is goangel's NATS backend on the server at url(tb), each
// receiver with a subscription of the default policy (DropNewest, so the
// receivers of one broker share one NATS subscription) and a queue larger
// than PubSubWindow, so that nothing is dropped (RunFanout checks).
func GoangelNATS(url func(tb testing.TB) string) PubSubTarget {
	return GoangelTarget("goangel-nats", NATSBroker(url), pubsub.WithQueueSize(2*PubSubWindow))
}

// NATSBroker makes goangel NATS brokers on the server at url(tb).
func NATSBroker(url func(tb testing.TB) string) func(tb testing.TB) pubsub.Broker {
	return func(tb testing.TB) pubsub.Broker {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := pubsub.NewNATS(ctx, url(tb))
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
}
