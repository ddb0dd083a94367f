package pubsub_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/goangel/angel/pubsub"
)

// Two brokers on one NATS server stand for two processes (or machines)
// running the same app: the same app code as on Memory, and every instance
// but the sender receives each message, even with the same instance ids in
// both processes.
func ExampleNewNATS() {
	// A NATS server embedded for the example; an app gets a URL such as
	// nats://nats.internal:4222 from --pubsub-url.
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	srv.Start()
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	srv.ReadyForConnections(5 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var subs []*pubsub.Typed[string]
	var clients []pubsub.Client
	for _, process := range []string{"process A", "process B"} {
		broker, err := pubsub.NewNATS(ctx, srv.ClientURL(), pubsub.WithName(process))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer broker.Close(context.Background())
		for i := range 2 {
			c, _ := broker.Register(ctx, pubsub.ClientInfo{ID: fmt.Sprintf("example/%d#1", i)})
			s, _ := pubsub.SubscribeAs[string](ctx, c, "greeting")
			clients, subs = append(clients, c), append(subs, s)
		}
	}

	// Instance 0 of process A changes the greeting.
	_, _ = pubsub.PublishAs(ctx, clients[0], "greeting", "Bonjour")
	for i, s := range subs[1:] {
		g, m, err := s.Receive(ctx)
		fmt.Printf("instance %d of process %c: %s from %s %v\n", (i+1)%2, "AB"[(i+1)/2], g, m.Sender, err)
	}
	// Output:
	// instance 1 of process A: Bonjour from example/0#1 <nil>
	// instance 0 of process B: Bonjour from example/0#1 <nil>
	// instance 1 of process B: Bonjour from example/0#1 <nil>
}
