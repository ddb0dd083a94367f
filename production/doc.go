// Package production runs a Go HTTP app in production, the Go port of Dart's
// angel_production Runner:
//
//	func main() { production.New("example", configure).Main() }
//
//	func configure(app *production.App) error {
//		app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
//			io.WriteString(w, "Hello, production world!")
//		})
//		return nil
//	}
//
// The program gets angel_production's command line (-j, -p, -a,
// --[no-]respawn, --use-zone, --quiet, --ssl, --http2, the certificate flags)
// plus goangel's own (restart policy, timeouts, --pubsub-*, logging), each
// also settable from an environment variable (see [Config]). It starts -j
// instances of the app in one process, all serving on one shared listener.
//
// # Instances and lives
//
// An instance is a goroutine-isolated http.Server with its own chi router, its
// own container and its own pub/sub client, built by calling configure with a
// fresh [App]. One such build is a life: when it crashes, the instance is
// respawned (same number, next life, configure called again) while the other
// instances keep serving.
//
// The supervisor tree is: the runner → one supervisor per instance → the
// life's goroutines (its server, the functions given to [App.Go], the timers
// of [App.AfterFunc]). A panic in any of them, an error returned by configure
// or by an App.Go function, or [App.Crash] ends the life. Only goroutines the
// framework starts are supervised: a panic on a goroutine started with a bare
// go statement kills the whole process, as in any Go program.
//
// Handler panics do not end the life: goangel's outermost middleware answers
// 500, logs the panic with its stack through logrus and counts it
// ([InstanceStats].Panics); http.ErrAbortHandler still aborts silently.
//
// # The shared listener
//
// The runner binds the listener once, before any instance starts, so an
// address in use fails at start with a message naming it. One acceptor
// goroutine owned by the runner accepts connections and hands each over an
// unbuffered channel to whichever instance is waiting in Accept: new
// connections go round-robin over the live instances (a keep-alive connection
// stays on the instance that accepted it). While no instance is waiting,
// connections wait in the kernel's backlog: none is refused. Temporary accept
// errors (EMFILE, …) are retried with backoff and never end the listener. An
// instance's http.Server serves a view of the listener whose Close stops only
// that instance's Accept and never closes the socket.
//
// # Ending a life without failing a request
//
// When a life ends, its replacement is started first; the old life is torn
// down in the background: it stops accepting, answers every further request on
// its keep-alive connections with "Connection: close" (so clients reconnect to
// a live instance), lets in-flight requests finish, and closes the connections
// still open after --drain-timeout. Then its context is canceled, its
// supervised goroutines are awaited, its [App.OnShutdown] hooks run in reverse
// order, and its pub/sub client and container are closed. Its context and
// container stay valid until its last request ends. (http.Server.Shutdown is
// not used for this: it closes keep-alive connections that look idle although
// the client's next request may already be on its way.) When the whole runner
// stops (a signal, ctx canceled), idle connections are closed at once.
//
// Hijacked connections (WebSockets) belong to their handler: it should watch
// r.Context(), which is canceled when the life ends.
//
// # Restart policy
//
// The first respawn after a stable period is immediate (as in
// angel_production); consecutive crashes back off exponentially with jitter
// ([RestartPolicy]). An instance respawned more than --max-restarts times
// within --restart-window makes the runner give up: it shuts down cleanly and
// Run returns an error with code [ExitGaveUp]. A configure that fails on the
// first start of an instance is a start-up error ([ExitStartup]), not a loop.
// With --no-respawn, Run returns once every instance has ended ([ExitCrashed]
// if one crashed).
//
// # Containers and pub/sub
//
// The runner's container (a child of [WithContainer]'s, if given) holds the
// *Config, the *logrus.Logger, the pubsub.Broker and the app's flag structs.
// Each life's container is its child and holds the [InstanceInfo] and the
// life's pubsub.Client (id "APP/INSTANCE#LIFE@HOST:PID", e.g. "example/2#3@web1:4242"). With
// --use-zone each request gets a child of that, reachable with
// container.FromContext(r.Context()) and closed when the request ends.
// Without --pubsub-url messages pass in memory; with it, through NATS.
//
// # Library use
//
// [Runner.Run] never calls os.Exit: its errors are [*ExitError] values
// wrapping one of the sentinels, mapped to exit codes by [ExitCode].
// [Runner.Ready], [Runner.Addr] and [Runner.Stats] say when it serves, where,
// and what it counted. [WithOutput], [WithLookupEnv] and [WithClock] replace
// the process's outputs, environment and clock in tests.
package production
