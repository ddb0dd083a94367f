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
	"sync/atomic"
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

// greetingTopic is the pub/sub topic carrying greeting changes.
const greetingTopic = "greeting"

func main() {
	production.New("example", configure, production.WithFlags(&Flags{})).Main()
}

// configure builds one life of one instance.
func configure(app *production.App) error {
	flags, err := container.Make[*Flags](app.Container)
	if err != nil {
		return err
	}
	client, err := container.Make[pubsub.Client](app.Container)
	if err != nil {
		return err
	}

	// This instance's greeting; other instances tell it theirs.
	var greeting atomic.Pointer[string]
	hello := "Hello"
	greeting.Store(&hello)
	sub, err := pubsub.SubscribeAs[string](app.Context(), client, greetingTopic)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", greetingTopic, err)
	}
	app.Go(func(ctx context.Context) error {
		for {
			g, m, err := sub.Receive(ctx)
			switch {
			case ctx.Err() != nil || errors.Is(err, pubsub.ErrClosed):
				return nil
			case errors.Is(err, pubsub.ErrDecode):
				app.Logger.WithError(err).Warn("Ignoring a bad greeting")
				continue
			case err != nil:
				return err
			}
			greeting.Store(&g)
			app.Logger.Debugf("Greeting changed by %s -> %s", m.Sender, g)
		}
	})

	r := app.Router
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Hello, production world!")
	})
	r.Get("/404", http.NotFound)
	r.Get("/greeting", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, *greeting.Load())
	})
	r.Get("/change_greeting/{newGreeting}", func(w http.ResponseWriter, r *http.Request) {
		g := chi.URLParam(r, "newGreeting")
		greeting.Store(&g)
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
