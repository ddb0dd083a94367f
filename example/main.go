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

// The pub/sub topics of the example.
const (
	greetingTopic = "greeting"       // a greeting change (payload: the greeting)
	syncTopic     = "greeting.sync"  // a new life asks for the greeting (payload: its id)
	stateTopic    = "greeting.state" // an answer to a sync (payload: the greeting)
)

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

	// This instance's greeting; other instances tell it theirs. A respawned
	// instance asks the others for the current one, so a crash does not
	// bring back the default greeting.
	greeting := &greetingState{text: "Hello"}
	for _, t := range []struct {
		topic  string
		handle func(string, pubsub.Message)
	}{
		{greetingTopic, func(g string, m pubsub.Message) {
			greeting.set(g)
			app.Logger.Debugf("Greeting changed by %s -> %s", m.Sender, g)
		}},
		{syncTopic, func(_ string, m pubsub.Message) {
			if g, ok := greeting.current(); ok {
				if _, err := pubsub.PublishAs(app.Context(), client, stateTopic, g); err != nil {
					app.Logger.WithError(err).Warnf("Telling %s the greeting failed", m.Sender)
				}
			}
		}},
		{stateTopic, func(g string, m pubsub.Message) {
			if greeting.adopt(g) {
				app.Logger.Debugf("Greeting caught up from %s -> %s", m.Sender, g)
			}
		}},
	} {
		if err := listen(app, t.topic, t.handle); err != nil {
			return err
		}
	}
	if _, err := pubsub.PublishAs(app.Context(), client, syncTopic, app.Info().ID); err != nil {
		return fmt.Errorf("ask for the greeting: %w", err)
	}

	r := app.Router
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Hello, production world!")
	})
	r.Get("/404", http.NotFound)
	r.Get("/greeting", func(w http.ResponseWriter, _ *http.Request) {
		g, _ := greeting.current()
		io.WriteString(w, g)
	})
	r.Get("/change_greeting/{newGreeting}", func(w http.ResponseWriter, r *http.Request) {
		g := chi.URLParam(r, "newGreeting")
		greeting.set(g)
		if _, err := pubsub.PublishAs(r.Context(), client, greetingTopic, g); err != nil {
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

// greetingState is one life's greeting. A respawned life starts with the
// default and takes the first answer to its sync request, unless a change
// reached it first (then every answer is older than what it has).
type greetingState struct {
	mu    sync.Mutex
	text  string
	known bool // set by a change or an adopted answer: text is the app's greeting
}

// set takes a change, made here or by another instance.
func (g *greetingState) set(text string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.text, g.known = text, true
}

// adopt takes an answer to the sync request, unless the greeting is known.
func (g *greetingState) adopt(text string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.known {
		return false
	}
	g.text, g.known = text, true
	return true
}

// current returns the greeting, and whether it is known (worth telling a new
// life) rather than the default.
func (g *greetingState) current() (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.text, g.known
}

// listen subscribes this life's client to topic and hands each message to
// handle on a supervised goroutine (app.Go), until the life ends. A payload
// of the wrong type is logged and skipped.
func listen[T any](app *production.App, topic string, handle func(T, pubsub.Message)) error {
	sub, err := pubsub.SubscribeAs[T](app.Context(), app.PubSub(), topic)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
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
	return nil
}
