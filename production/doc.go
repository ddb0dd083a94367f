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
// The supervisor tree is: the runner's loop, which owns the set of instances
// → one supervisor goroutine per instance, which owns its lives, its restart
// tracker and its desired state, and receives typed commands (replace the
// life, remove the instance) → the life's goroutines (its server, the
// functions given to [App.Go], the timers of [App.AfterFunc]). A panic in any
// of them, an error returned by configure or by an App.Go function, or
// [App.Crash] ends the life. Only goroutines the framework starts are
// supervised: a panic on a goroutine started with a bare go statement kills
// the whole process, as in any Go program. The code is in loop.go (the
// runner's loop and every verb), supervisor.go (one instance's lives),
// life.go (one life), drain.go (the one drain path), hang.go (hang
// detection) and leftover.go (what outlives its deadline).
//
// # Operating a running app
//
// Every verb is the one transition "replace (or remove) a life": the new life
// is started and serves before the old one drains, so capacity never drops.
// [Runner.Reload] (SIGHUP) replaces every instance's life in turn, each with a
// fresh configure; [Runner.Restart] replaces one; --max-requests recycles a
// life after about its Nth request, one instance at a time; [Runner.Scale]
// (SIGTTIN, SIGTTOU) and [Runner.Drain] add and remove instances, a removed
// one draining first. A life learns the current count from
// [App.Concurrency]. With --hang-timeout, an instance with a request that has
// made no progress for that long (no byte of its body read, none of its
// answer written) is logged with the stacks of its goroutines (labelled with
// runtime/pprof goroutine labels, so that one life's goroutines are told from
// the others'), and replaced. Go cannot stop a goroutine: a hung handler is
// abandoned at its life's drain deadline and counted, and past
// --max-abandoned the runner exits with [ExitAbandoned] for systemd to start
// a clean process. Every verb emits events (see [EventKind]).
//
// Handler panics do not end the life: goangel's outermost middleware logs
// the panic with its stack through logrus, counts it ([InstanceStats].Panics)
// and answers 500 if nothing of the answer was written yet. Once anything
// was (a status, a byte, a flush), a 500 would be appended to a half-sent
// answer that then looks complete: the response is aborted instead (HTTP/1.x:
// the connection is closed without finishing the body; HTTP/2: the stream is
// reset), so the client sees an error. http.ErrAbortHandler aborts silently.
//
// # Timeouts and limits
//
// Besides --read-header-timeout and --idle-timeout, each request body must
// arrive within --read-timeout (from the handler's start), each write to a
// client must make progress within --write-timeout (per 64 KiB, so streams to
// a reading client are never cut), and --request-timeout (off by default)
// cancels a request's context with cause [ErrRequestTimeout] and answers 503
// if the handler has not started its answer. A handler that needs more sets
// its own read or write deadline with http.ResponseController; it holds for
// its own request. --max-connections bounds the connections served at once:
// past it the acceptor stops accepting and new connections wait in the
// kernel's backlog, never running the process out of descriptors.
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
// down in the background, within one deadline (--drain-timeout from the
// start of its drain): it stops accepting, answers every further request on
// its keep-alive connections with "Connection: close" (so clients reconnect to
// a live instance), calls its [App.OnDrain] hooks, lets in-flight requests
// finish, and closes the connections still open at the deadline. Then its
// context is canceled, its supervised goroutines are awaited, its
// [App.OnShutdown] hooks run in reverse order, and its pub/sub client and
// container are closed; a goroutine or hook still running at the deadline is
// logged by name and left behind. Its context and container stay valid until
// its last request ends. (http.Server.Shutdown is not used: it closes
// keep-alive connections that look idle although the client's next request
// may already be on its way.) The runner's stop (SIGTERM, ctx canceled) takes
// the same path for every instance; there, with no live instance left to move
// to, a connection idle across two sweeps 250ms apart is closed (one that
// has not sent its first request yet: idle for a second).
// --shutdown-timeout bounds the whole stop: past it Run returns
// [ExitStopTimeout] naming what still runs (lives draining, hooks, configure
// calls).
//
// Hijacked connections (WebSockets) belong to their handler, which net/http
// does not track: goangel counts their handlers, tells them with the
// [App.OnDrain] hooks, and waits for them up to the drain deadline; then
// r.Context() is canceled and the hijacked connections are closed, so that a
// handler blocked reading one returns. A handler still running after that is
// abandoned: it counts toward --max-abandoned until it returns.
//
// # Restart policy
//
// A life that started well (it answered a request, or ran
// --restart-stable-after) and then crashed is respawned at once and is not
// counted: a poison request must not take the service down. A failed start
// (configure failed, or the life crashed before it served) backs off
// exponentially with jitter and counts; more than --max-restarts failed
// starts within --restart-window make the runner give up: it shuts down
// cleanly and Run returns an error with code [ExitGaveUp] (see
// [RestartPolicy] for the reasoning). Crashes at a high rate across the
// instances are reported as a crash loop (a warning, [EventCrashLoop]) while
// the runner keeps respawning. A configure that fails on the first start of
// an instance is a start-up error ([ExitStartup]), not a loop. With
// --no-respawn, Run returns once every instance has ended ([ExitCrashed] if
// one crashed).
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
// # Deploying on Linux
//
// Under systemd (NOTIFY_SOCKET set; a no-op otherwise) the runner says
// READY=1 once every instance serves, keeps STATUS= current, brackets a
// reload with RELOADING=1/READY=1 (Type=notify-reload), says STOPPING=1 at
// shutdown, and pings the watchdog (WATCHDOG_USEC) only while its supervisor
// loop answers a heartbeat. Sockets passed by socket activation (LISTEN_FDS)
// are served instead of binding -a/-p. [Runner.Upgrade] (SIGUSR2) replaces
// the executable without dropping a request: the new process inherits the
// listening sockets and, once it serves, the old one drains and exits. TLS
// takes encrypted PKCS#8 and legacy-encrypted keys, client certificates
// ([ClientCertificate]) and a certificate reload on SIGHUP; --http2 without
// --ssl serves h2c. Unit files: example/systemd; the README's "Deploy with
// systemd" walks through them.
//
// # Library use
//
// [Runner.Run] never calls os.Exit: its errors are [*ExitError] values
// wrapping one of the sentinels, mapped to exit codes by [ExitCode].
// [Runner.Ready], [Runner.Addr] and [Runner.Stats] say when it serves, where,
// and what it counted. [WithOutput], [WithLookupEnv] and [WithClock] replace
// the process's outputs, environment and clock in tests.
package production
