package pubsub_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/goangel/angel/pubsub"
)

// Every instance but the sender receives a message.
func ExampleNewMemory() {
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(context.Background())

	// The runner registers one client per instance life.
	a, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "example/0#1"})
	b, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "example/1#1"})
	subA, _ := a.Subscribe(ctx, "greeting")
	subB, _ := b.Subscribe(ctx, "greeting")

	n, _ := a.Publish(ctx, "greeting", "Hello, production world!")
	fmt.Println("handed to", n, "subscription(s)")

	m := <-subB.C()
	greeting, _ := pubsub.Decode[string](m)
	fmt.Printf("%s got %q from %s\n", b.ID(), greeting, m.Sender)
	fmt.Println("sender's own queue:", len(subA.C()))
	// Output:
	// handed to 1 subscription(s)
	// example/1#1 got "Hello, production world!" from example/0#1
	// sender's own queue: 0
}

// Typed helpers: the same code runs on Memory and NATS.
func ExampleSubscribeAs() {
	type Greeting struct{ Text string }
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(context.Background())
	pub, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "pub"})
	sub, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "sub"})

	greetings, _ := pubsub.SubscribeAs[Greeting](ctx, sub, "greeting.>")
	_, _ = pubsub.PublishAs(ctx, pub, "greeting.en", Greeting{"Hello"})

	g, m, err := greetings.Receive(ctx)
	fmt.Println(g.Text, m.Topic, err)
	// Output: Hello greeting.en <nil>
}

// Allow-lists of topic patterns, as Dart's ClientInfo canPublish and
// canSubscribe.
func ExampleClientInfo() {
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(context.Background())
	c, _ := broker.Register(ctx, pubsub.ClientInfo{
		ID:           "reader",
		CanPublish:   pubsub.DenyAll(),
		CanSubscribe: pubsub.Allow("news.>"),
	})
	_, err := c.Publish(ctx, "news.sport", "goal")
	fmt.Println(errors.Is(err, pubsub.ErrPermission))
	_, err = c.Subscribe(ctx, "news.*")
	fmt.Println(err)
	_, err = c.Subscribe(ctx, ">")
	fmt.Println(errors.Is(err, pubsub.ErrPermission))
	// Output:
	// true
	// <nil>
	// true
}

// A bounded queue per subscription, with a policy for overflow.
func ExampleWithPolicy() {
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(context.Background())
	pub, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "pub"})
	sub, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "sub"})
	latest, _ := sub.Subscribe(ctx, "price", pubsub.WithQueueSize(2), pubsub.WithPolicy(pubsub.DropOldest))

	for price := 1; price <= 5; price++ {
		_, _ = pub.Publish(ctx, "price", price)
	}
	for range 2 {
		v, _ := pubsub.Decode[int](<-latest.C())
		fmt.Println(v)
	}
	fmt.Println("dropped", latest.Dropped(), "broker-wide", broker.Stats().Dropped)
	// Output:
	// 4
	// 5
	// dropped 3 broker-wide 3
}

func ExampleMatch() {
	fmt.Println(pubsub.Match("user.*", "user.42"))
	fmt.Println(pubsub.Match("user.*", "user.42.login"))
	fmt.Println(pubsub.Match("user.>", "user.42.login"))
	// Output:
	// true
	// false
	// true
}
