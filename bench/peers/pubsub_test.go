package peers

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	cskr "github.com/cskr/pubsub"
	"github.com/nats-io/nats.go"

	bench "github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/pubsub"
)

// BenchmarkPubSubPeers runs the pub/sub workloads of package bench through
// the peers beside goangel and the plain-channel floor, all in one run:
// watermill's gochannel, cskr/pubsub, bare nats.go and goangel's NATS
// backend on the same embedded server.
func BenchmarkPubSubPeers(b *testing.B) {
	var (
		mu  sync.Mutex
		url string
	)
	// One embedded NATS server for the whole run, started on first use.
	sharedNATS := func(tb testing.TB) string {
		mu.Lock()
		defer mu.Unlock()
		if url == "" {
			url = startNATS(b)
		}
		return url
	}
	targets := []bench.PubSubTarget{
		bench.ChannelFloor(),
		bench.ChannelFloorNonBlocking(),
		bench.GoangelMemory(),
		bench.GoangelRetainedMemory(),
		cskrTarget(),
		watermillTarget(),
		bareNATSTarget("nats.go-json", sharedNATS, true),
		bareNATSTarget("nats.go-raw", sharedNATS, false),
		bench.GoangelNATS(sharedNATS),
	}
	for _, k := range []int{4, 16} {
		for _, t := range targets {
			b.Run(fmt.Sprintf("fanout/K=%d/%s", k, t.Name), func(b *testing.B) { bench.RunFanout(b, t, k) })
		}
	}
	for _, t := range targets {
		b.Run("latency/"+t.Name, func(b *testing.B) { bench.RunLatency(b, t) })
	}
	for _, t := range []bench.RequestTarget{
		bench.GoangelRequest("goangel-memory", func(testing.TB) pubsub.Broker { return pubsub.NewMemory() }),
		bareNATSRequest(sharedNATS),
		bench.GoangelRequest("goangel-nats", bench.NATSBroker(sharedNATS)),
	} {
		b.Run("request/"+t.Name, func(b *testing.B) { bench.RunRequest(b, t) })
	}
	// The responder in another process (this binary started again), as
	// two instances of an app on two machines: one asker, then 16 at once.
	for _, c := range []int{1, 16} {
		for _, kind := range []string{"nats.go-json", "goangel-nats"} {
			b.Run(fmt.Sprintf("request-apart/c=%d/%s", c, kind), func(b *testing.B) {
				bench.RunRequestConcurrent(b, requestApart(kind, sharedNATS), c)
			})
		}
	}
}

const (
	responderEnv    = "GOANGEL_PEERS_RESPONDER"
	responderURLEnv = "GOANGEL_PEERS_NATS_URL"
)

// requestApart asks a responder of kind running in another process: the
// asker is bare nats.go for kind "nats.go-json" (JSON payloads), goangel's
// NATS backend for "goangel-nats".
func requestApart(kind string, url func(testing.TB) string) bench.RequestTarget {
	return bench.RequestTarget{Name: kind, Setup: func(tb testing.TB) (func(context.Context) error, func()) {
		u := url(tb)
		stopResponder := startResponder(tb, kind, u)
		if kind == "goangel-nats" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			broker, err := pubsub.NewNATS(ctx, u)
			if err != nil {
				tb.Fatal(err)
			}
			asker, err := broker.Register(ctx, pubsub.ClientInfo{ID: "asker"})
			if err != nil {
				tb.Fatal(err)
			}
			request := func(ctx context.Context) error {
				_, err := asker.Request(ctx, bench.PubSubTopic, int64(1))
				return err
			}
			return request, func() {
				_ = broker.Close(context.Background())
				stopResponder()
			}
		}
		nc, err := nats.Connect(u)
		if err != nil {
			tb.Fatal(err)
		}
		request := func(ctx context.Context) error {
			data, err := json.Marshal(int64(1))
			if err != nil {
				return err
			}
			m, err := nc.RequestWithContext(ctx, bench.PubSubTopic, data)
			if err != nil {
				return err
			}
			var v int64
			return json.Unmarshal(m.Data, &v)
		}
		return request, func() {
			nc.Close()
			stopResponder()
		}
	}}
}

// startResponder runs this test binary again as a responder of kind on
// the NATS server at url, waits until it has subscribed, and returns the
// function that stops it (closing its stdin) and waits for its end.
func startResponder(tb testing.TB, kind, url string) func() {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), responderEnv+"="+kind, responderURLEnv+"="+url)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("responder said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			tb.Fatalf("responder %s: %v", kind, err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tb.Fatalf("responder %s not ready within 20s", kind)
	}
	return func() {
		_ = in.Close()
		_ = cmd.Wait()
	}
}

// runResponder is the responder process: it answers every request on
// bench.PubSubTopic with its payload until its stdin closes.
func runResponder(kind, url string) int {
	ctx := context.Background()
	switch kind {
	case "nats.go-json":
		nc, err := nats.Connect(url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer nc.Close()
		if _, err := nc.Subscribe(bench.PubSubTopic, func(m *nats.Msg) {
			var v int64
			if err := json.Unmarshal(m.Data, &v); err != nil {
				panic(err)
			}
			data, _ := json.Marshal(v)
			_ = m.Respond(data)
		}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := nc.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "goangel-nats":
		broker, err := pubsub.NewNATS(ctx, url)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer broker.Close(ctx)
		srv, err := broker.Register(ctx, pubsub.ClientInfo{ID: "responder"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s, err := srv.Subscribe(ctx, bench.PubSubTopic)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go func() {
			for m := range s.C() {
				_ = m.Respond(ctx, m.Payload)
			}
		}()
	default:
		fmt.Fprintf(os.Stderr, "unknown responder %q\n", kind)
		return 2
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// bareNATSRequest: nats.go's own request/reply, JSON payloads as goangel's
// default codec, one connection for the asker and the responder.
func bareNATSRequest(url func(testing.TB) string) bench.RequestTarget {
	return bench.RequestTarget{Name: "nats.go-json", Setup: func(tb testing.TB) (func(context.Context) error, func()) {
		nc, err := nats.Connect(url(tb))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := nc.Subscribe(bench.PubSubTopic, func(m *nats.Msg) {
			var v int64
			if err := json.Unmarshal(m.Data, &v); err != nil {
				panic(err)
			}
			data, _ := json.Marshal(v)
			_ = m.Respond(data)
		}); err != nil {
			tb.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			tb.Fatal(err)
		}
		request := func(ctx context.Context) error {
			data, err := json.Marshal(int64(1))
			if err != nil {
				return err
			}
			m, err := nc.RequestWithContext(ctx, bench.PubSubTopic, data)
			if err != nil {
				return err
			}
			var v int64
			return json.Unmarshal(m.Data, &v)
		}
		return request, func() { nc.Close() }
	}}
}

// cskrTarget: cskr/pubsub with blocking Pub (lossless, like the floor) and
// channels of bench.PubSubQueue.
func cskrTarget() bench.PubSubTarget {
	return bench.PubSubTarget{Name: "cskr-pubsub", Setup: func(tb testing.TB, k int, sink bench.PubSubSink) (func(int64) error, func()) {
		ps := cskr.New(bench.PubSubQueue)
		var wg sync.WaitGroup
		for r := range k {
			ch := ps.Sub(bench.PubSubTopic)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range ch {
					sink.Got(r, v.(int64))
				}
			}()
		}
		publish := func(stamp int64) error {
			ps.Pub(stamp, bench.PubSubTopic)
			return nil
		}
		return publish, func() {
			ps.Shutdown()
			wg.Wait()
		}
	}}
}

// watermillTarget: watermill's gochannel, the stamp as 8 bytes, every
// message acked.
func watermillTarget() bench.PubSubTarget {
	return bench.PubSubTarget{Name: "watermill-gochannel", Setup: func(tb testing.TB, k int, sink bench.PubSubSink) (func(int64) error, func()) {
		g := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: bench.PubSubQueue}, watermill.NopLogger{})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for r := range k {
			ch, err := g.Subscribe(ctx, bench.PubSubTopic)
			if err != nil {
				tb.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range ch {
					sink.Got(r, int64(binary.LittleEndian.Uint64(m.Payload)))
					m.Ack()
				}
			}()
		}
		publish := func(stamp int64) error {
			p := make([]byte, 8)
			binary.LittleEndian.PutUint64(p, uint64(stamp))
			return g.Publish(bench.PubSubTopic, message.NewMessage(watermill.NewUUID(), p))
		}
		return publish, func() {
			cancel()
			_ = g.Close()
			wg.Wait()
		}
	}}
}

// bareNATSTarget: nats.go used directly, one connection for the publisher
// and k subscriptions, like goangel's NATS broker (one connection per
// broker). With useJSON the stamp goes through encoding/json as goangel's
// default codec does; without it, as 8 raw bytes.
func bareNATSTarget(name string, url func(testing.TB) string, useJSON bool) bench.PubSubTarget {
	return bench.PubSubTarget{Name: name, Setup: func(tb testing.TB, k int, sink bench.PubSubSink) (func(int64) error, func()) {
		nc, err := nats.Connect(url(tb))
		if err != nil {
			tb.Fatal(err)
		}
		for r := range k {
			_, err := nc.Subscribe(bench.PubSubTopic, func(m *nats.Msg) {
				var v int64
				if useJSON {
					if err := json.Unmarshal(m.Data, &v); err != nil {
						panic(err)
					}
				} else {
					v = int64(binary.LittleEndian.Uint64(m.Data))
				}
				sink.Got(r, v)
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			tb.Fatal(err)
		}
		var buf [8]byte
		publish := func(stamp int64) error {
			if useJSON {
				data, err := json.Marshal(stamp)
				if err != nil {
					return err
				}
				return nc.Publish(bench.PubSubTopic, data)
			}
			binary.LittleEndian.PutUint64(buf[:], uint64(stamp))
			return nc.Publish(bench.PubSubTopic, buf[:])
		}
		return publish, func() { nc.Close() }
	}}
}
