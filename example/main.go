// Command example is the port of angel_production's example app: -j
// instances of one app on one port, passing a greeting around through
// pub/sub, one of them crashing on demand and being respawned.
//
//	go run ./example -j 4 -p 3000
//
// Routes:
//
//	/                            Hello, production world!
//	/404                         404 Not Found
//	/greeting                    the current greeting
//	/change_greeting/{greeting}  sets it here and on every other instance
//	/crash                       answers, then this instance crashes after --crash-delay (3s)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/pubsub"
)

// Flags are the example's own flags, merged into the runner's command line
// (they show in --help and can come from EXAMPLE_CRASH_DELAY).
type Flags struct {
	CrashDelay time.Duration `name:"crash-delay" default:"3s" help:"How long /crash waits before crashing its instance."`
}

// greetingTopic carries a greeting change (payload: the greeting). Changes
// are published retained: the broker keeps the last one, and every new
// life (a respawn, a scale-up, another process on the same NATS server)
// gets it when it subscribes.
const greetingTopic = "greeting"

// storeWait bounds how long a greeting change waits for the broker to
// store it; past it the change is still sent to the other instances.
const storeWait = 2 * time.Second

func main() {
	production.New("example", configure, production.WithFlags(&Flags{})).Main()
}

// configure builds one life of one instance.
func configure(app *production.App) error {
	flags, err := container.Make[*Flags](app.Container)
	if err != nil {
		return err
	}
	client := app.PubSub()

	// This instance's greeting. The last change, retained by the broker,
	// is already queued when Subscribe returns: it is taken before the
	// life serves, so a respawned instance never serves a stale greeting.
	greeting := &greetingState{text: "Hello"}
	sub, err := pubsub.SubscribeAs[string](app.Context(), client, greetingTopic)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", greetingTopic, err)
	}
	take := func(g string, m pubsub.Message) {
		greeting.set(g)
		if m.Retained() {
			app.Logger.Debugf("Greeting restored (last changed by %s) -> %s", m.Sender, g)
		} else {
			app.Logger.Debugf("Greeting changed by %s -> %s", m.Sender, g)
		}
	}
	for queued := len(sub.C()); queued > 0; queued-- {
		if g, m, err := sub.Receive(app.Context()); err == nil {
			take(g, m)
		}
	}
	listen(app, sub, take)

	r := app.Router
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Hello, production world!")
	})
	r.Get("/404", http.NotFound)
	r.Get("/greeting", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, greeting.current())
	})
	r.Get("/change_greeting/{newGreeting}", func(w http.ResponseWriter, r *http.Request) {
		g := chi.URLParam(r, "newGreeting")
		greeting.set(g)
		// The broker stores a retained message before it sends it, and
		// retries a store that fails (a JetStream node lost) for a while:
		// bound the wait, so that the change reaches the others soon.
		ctx, cancel := context.WithTimeout(r.Context(), storeWait)
		defer cancel()
		_, err := pubsub.PublishAs(ctx, client, greetingTopic, g, pubsub.Retain())
		if errors.Is(err, pubsub.ErrRetainUnavailable) || errors.Is(err, pubsub.ErrRetainLimit) {
			// The others have it; a life that starts later will not.
			app.Logger.WithError(err).Warnf("The greeting reached the other instances but was not stored for lives that start later: %v", err)
			err = nil
		}
		if err != nil {
			app.Logger.WithError(err).Error("Publishing the greeting failed")
			http.Error(w, "could not tell the other instances", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "Changed greeting -> %s", g)
	})
	r.Get("/crash", func(w http.ResponseWriter, _ *http.Request) {
		app.AfterFunc(flags.CrashDelay, func() {
			app.Crash(errors.New("crash requested via /crash"))
		})
		fmt.Fprintf(w, "Crashing in %v...", flags.CrashDelay)
	})
	return nil
}

// greetingState is one life's greeting.
type greetingState struct {
	mu   sync.Mutex
	text string
}

// set takes a change, made here or by another instance.
func (g *greetingState) set(text string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.text = text
}

func (g *greetingState) current() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.text
}

// listen hands each message of sub to handle on a supervised goroutine
// (app.Go), until the life ends. A payload of the wrong type is logged
// and skipped.
func listen[T any](app *production.App, sub *pubsub.Typed[T], handle func(T, pubsub.Message)) {
	app.Go(func(ctx context.Context) error {
		for {
			v, m, err := sub.Receive(ctx)
			switch {
			case ctx.Err() != nil || errors.Is(err, pubsub.ErrClosed):
				return nil
			case errors.Is(err, pubsub.ErrDecode):
				app.Logger.WithError(err).Warnf("Ignoring a bad message on %s", m.Topic)
				continue
			case err != nil:
				return err
			}
			handle(v, m)
		}
	})
}
