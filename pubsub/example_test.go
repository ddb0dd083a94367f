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

// A retained message is the topic's state: a subscription made later (a
// respawned instance) gets the last one first.
func ExampleRetain() {
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(ctx)
	a, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "example/0#1"})
	_, _ = pubsub.PublishAs(ctx, a, "greeting", "Hello", pubsub.Retain())
	_, _ = pubsub.PublishAs(ctx, a, "greeting", "Howdy", pubsub.Retain())

	// Instance 1 starts (or respawns) after the change.
	b, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "example/1#2"})
	greetings, _ := pubsub.SubscribeAs[string](ctx, b, "greeting")
	g, m, _ := greetings.Receive(ctx)
	fmt.Println(g, m.Retained(), m.Sender)
	// Output: Howdy true example/0#1
}

// Request/reply: the first answer from another client.
func ExampleClient_Request() {
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(ctx)
	asker, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "asker"})
	clock, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "clock"})
	questions, _ := clock.Subscribe(ctx, "time")
	go func() {
		for q := range questions.C() {
			_ = q.Respond(ctx, "noon")
		}
	}()

	answer, m, err := pubsub.RequestAs[string](ctx, asker, "time", "what time is it?")
	fmt.Println(answer, "from", m.Sender, err)

	_, err = asker.Request(ctx, "nobody.listens", 1)
	fmt.Println(errors.Is(err, pubsub.ErrNoResponders))
	// Output:
	// noon from clock <nil>
	// true
}

// Queue groups: each job goes to one worker of the group; an ordinary
// subscription sees them all.
func ExampleInGroup() {
	ctx := context.Background()
	broker := pubsub.NewMemory()
	defer broker.Close(ctx)
	boss, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "boss"})
	var workers []pubsub.Subscription
	for _, id := range []string{"w1", "w2"} {
		c, _ := broker.Register(ctx, pubsub.ClientInfo{ID: id})
		s, _ := c.Subscribe(ctx, "jobs", pubsub.InGroup("workers"))
		workers = append(workers, s)
	}
	audit, _ := broker.Register(ctx, pubsub.ClientInfo{ID: "audit"})
	all, _ := audit.Subscribe(ctx, "jobs")

	for job := range 4 {
		_, _ = boss.Publish(ctx, "jobs", job)
	}
	fmt.Println("w1:", len(workers[0].C()), "w2:", len(workers[1].C()), "audit:", len(all.C()))
	// Output: w1: 2 w2: 2 audit: 4
}
