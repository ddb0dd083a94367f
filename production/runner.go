package production

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/pubsub"
)

// Runner runs an app in production: it parses the command line, binds the
// shared listener, and runs -j instances of the app, each built by configure,
// under a supervisor that respawns crashed instances. A Runner runs once.
type Runner struct {
	name      string
	configure func(*App) error
	desc      string
	envPrefix string
	lookupEnv func(string) (string, bool)
	stdout    io.Writer
	stderr    io.Writer
	clock     Clock
	policy    RestartPolicy
	appFlags  []appFlag
	parent    *container.Container
	hooks     []func(Event)
	signals   <-chan os.Signal
	onReload  []func() error // called on SIGHUP, beside Reload

	ran      atomic.Bool
	ready    chan struct{}
	finished chan struct{} // closed when the runner's loop has ended
	verbs    chan verb
	addr     atomic.Value // net.Addr
	rs       atomic.Pointer[runState]

	mu        sync.Mutex
	instances []*instance
	acc       *acceptor

	admin atomic.Pointer[adminState] // admin.go
	sys   atomic.Pointer[deploy]     // systemd notifier and binary upgrades (systemd.go) of the running Run
}

type appFlag struct {
	ptr     any
	provide func(*container.Container) error
}

// New returns a Runner for the app called name (used in log lines, the
// command line, the environment prefix and the pub/sub client ids), whose
// instances are built by configure.
func New(name string, configure func(*App) error, opts ...Option) *Runner {
	r := &Runner{
		name:      name,
		configure: configure,
		envPrefix: envPrefixOf(name),
		lookupEnv: os.LookupEnv,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		clock:     SystemClock(),
		policy:    DefaultRestartPolicy(),
		ready:     make(chan struct{}),
		finished:  make(chan struct{}),
		verbs:     make(chan verb),
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func envPrefixOf(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		default:
			return '_'
		}
	}, name)
}

// Main runs the Runner with os.Args and the process's signals (see
// WithSignals and the README's table: SIGHUP reloads, SIGTTIN/SIGTTOU scale,
// SIGUSR2 upgrades, SIGTERM/SIGINT stop, a second one exits 130, SIGPIPE is
// ignored), and exits with ExitCode of the result.
func (r *Runner) Main() {
	if r.signals == nil {
		sigs, stop := notifySignals()
		defer stop()
		r.signals = sigs
	}
	err := r.Run(context.Background(), os.Args[1:])
	code := ExitCode(err)
	if err != nil && code != ExitUsage && code != ExitOK && !wasLogged(err) {
		fmt.Fprintf(r.stderr, "%s: error: %v\n", r.name, err)
	}
	os.Exit(code)
}

// Ready is closed once the shared listener is bound and the first life of
// every instance is serving. It is never closed when Run fails to start (or
// only prints --help): wait on it together with Run's return.
func (r *Runner) Ready() <-chan struct{} { return r.ready }

// Addr returns the address the shared listener is bound to (with -p 0, the
// port taken), or nil before it is bound.
func (r *Runner) Addr() net.Addr {
	a, _ := r.addr.Load().(net.Addr)
	return a
}

// Stats is a snapshot of the runner's counters.
type Stats struct {
	Instances    []InstanceStats
	AcceptErrors uint64 // accept errors on the shared socket that the acceptor survived
	// ConnectionsYielded counts connections closed at the connection limit
	// (--max-connections, or no file descriptor left) because they had been
	// silent for a second or more, to make room for new ones.
	ConnectionsYielded uint64
	Wanted             int   // the number of instances the runner runs (-j, then Scale)
	Serving            int   // instances whose current life serves
	Reloading          bool  // a rolling reload is under way
	Abandoned          int64 // handlers left running past their life's drain deadline, still running
	// Left counts the app.Go goroutine sets and OnShutdown hooks left
	// running past their life's drain deadline that still run (Run's 124
	// at the stop names them).
	Left int
	// ConsoleWriteErrors counts console log writes that failed (a closed
	// pipe); the first one is reported on stderr.
	ConsoleWriteErrors uint64
}

// InstanceStats counts, for one instance, over all its lives.
type InstanceStats struct {
	Number         int
	Life           int           // the number of the current (or last) life
	Up             bool          // a life of this instance is serving
	State          InstanceState // starting, serving, draining, backoff, stopped
	Started        time.Time     // when the current life started
	Requests       uint64        // requests served (counted when they start)
	InFlight       int64         // requests in flight, over its lives not yet drained
	Connections    int64         // open connections, over its lives not yet drained
	Panics         uint64        // handler panics recovered (answered 500)
	Crashes        uint64        // lives ended by a crash (panic, Crash, error) or a failed start (configure)
	Restarts       uint64        // new lives after the first (respawns, reloads, recycles)
	LastCrash      string        // the last crash's reason
	LastCrashStack string        // its stack, when it was a panic
	LastCrashTime  time.Time     // when it crashed
}

// Stats returns the counters; empty before Run has started the instances.
// Once Run has returned it keeps what the run counted: every instance that
// ran until the end, and (with --no-respawn, or after giving up) those that
// ended by themselves, in state "stopped". Instances removed by Scale or
// Drain leave it once drained.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	ins, acc := r.instances, r.acc
	r.mu.Unlock()
	var s Stats
	if acc != nil {
		s.AcceptErrors = acc.errors.Load()
		s.ConnectionsYielded = acc.evicted.Load()
	}
	var load map[*instanceCounts][2]int64
	if rs := r.rs.Load(); rs != nil {
		s.Wanted = int(rs.wanted.Load())
		s.Reloading = rs.reloading.Load()
		s.Abandoned = rs.abandonedNow()
		s.Left = len(rs.stillLeft())
		s.ConsoleWriteErrors = rs.logs.ConsoleWriteErrors()
		load = rs.load()
	}
	for _, in := range ins {
		if in.removedAndDrained() { // the runner's loop forgets it next
			continue
		}
		st := in.state.Load()
		is := InstanceStats{
			Number:   in.num,
			Life:     int(in.life.Load()),
			Up:       st == InstanceServing,
			State:    st,
			Requests: in.requests.Load(),
			Panics:   in.panics.Load(),
			Crashes:  in.crashes.Load(),
			Restarts: in.restarts.Load(),
		}
		if ns := in.started.Load(); ns != 0 {
			is.Started = time.Unix(0, ns)
		}
		is.InFlight, is.Connections = load[&in.instanceCounts][0], load[&in.instanceCounts][1]
		if c := in.lastCrash.Load(); c != nil {
			is.LastCrash, is.LastCrashStack, is.LastCrashTime = c.err.Error(), stackOf(c.err), c.at
		}
		if is.Up {
			s.Serving++
		}
		s.Instances = append(s.Instances, is)
	}
	return s
}

// load returns the requests in flight and the open connections of each
// instance, over its lives not yet released (one still draining included).
func (rs *runState) load() map[*instanceCounts][2]int64 {
	m := map[*instanceCounts][2]int64{}
	rs.active.Range(func(k, _ any) bool {
		l := k.(*life)
		x := m[l.counts]
		x[0] += l.handlers.Load()
		x[1] += l.conns.Load()
		m[l.counts] = x
		return true
	})
	return m
}

// Run parses args (without the program name), then runs the app until ctx is
// done (a clean stop: nil), every instance has ended (--no-respawn), or the
// restart intensity is exceeded. It never calls os.Exit: errors are an
// *ExitError; map them with ExitCode. --help prints the help and returns nil.
func (r *Runner) Run(ctx context.Context, args []string) error {
	if ctx == nil {
		panic("production: Run with a nil Context")
	}
	if len(args) > 0 && args[0] == "ctl" {
		return r.ctl(ctx, args[1:]) // ctl.go: control a running runner
	}
	if !r.ran.CompareAndSwap(false, true) {
		return exitError(1, ErrAlreadyRun)
	}
	cfg, helped, err := r.parse(args)
	if err != nil || helped {
		return err
	}
	if err := r.run(ctx, cfg); err != nil {
		return noteEnv(err, cfg.fromEnv, true) // cli.go (run's log line has it already, but not an error found before the logger)
	}
	return nil
}

// runState is what one Run shares with its instances.
type runState struct {
	r       *Runner
	cfg     *Config
	logs    *logging.Logging
	entry   *logrus.Entry
	broker  pubsub.Broker
	root    *container.Container
	acc     *acceptor
	clock   Clock
	policy  RestartPolicy
	baseCtx context.Context
	scheme  string
	tls     *tls.Config // nil: plain HTTP; each life serves a clone
	addr    string
	bg      sync.WaitGroup
	// stopping is closed when the runner stops: lives still draining in
	// the background then close their idle connections at once.
	stopping chan struct{}

	wanted    atomic.Int64  // instances the runner runs (App.Concurrency)
	reloading atomic.Bool   // a reload is under way
	recycling chan struct{} // holds a token while an instance recycles
	crashes   crashRate     // crash-loop watch over every instance
	active    sync.Map      // *life -> what it is doing (until released)
	// abandonedLives holds the lives that left handlers running past
	// their drain deadline, until those have returned (abandonedNow).
	abandonedLives sync.Map // *life -> struct{}
	leftMu         sync.Mutex
	left           []leftRunning // hooks and goroutines left running past a life's deadline
	fatal          chan error    // an end the runner must take (too many abandoned)
	// beat carries the watchdog's heartbeats: the supervisor loop answers
	// each with answerBeat (systemd.go).
	beat chan chan struct{}
}

func startupError(format string, args ...any) error {
	return exitError(ExitStartup, fmt.Errorf("%w: "+format, append([]any{ErrStartup}, args...)...))
}

func (r *Runner) run(ctx context.Context, cfg *Config) (err error) {
	logs, err := logging.Open(cfg.Flags, cfg.Quiet, r.stdout, r.stderr)
	if err != nil {
		return startupError("logging: %w", err)
	}
	defer logs.Close()
	logs.AddHook(newRedactHook(cfg)) // admin_secrets.go: no secret in a log line (fires before the file hook)
	rs := r.newRunState(ctx, cfg, logs)
	defer rs.logFailure(&err)
	rs.entry.Infof("Starting `%s` application...", r.name)
	rs.setupTLS() // tls.go; Validate has read and checked the pair

	var c closers // what is opened from here on, closed last first
	defer c.close()
	stopCtx, abort := r.watchSignals(ctx, rs, &c)
	// sd_notify, the watchdog and binary upgrades (systemd.go); a handed-over
	// upgrade stops the runner through stopCtx too.
	stopCtx, stopDeploy := rs.startDeploy(stopCtx)
	c.add(stopDeploy)
	if err := rs.openShared(stopCtx, &c); err != nil {
		return err
	}
	lp, cancelSup := rs.newRunLoop(stopCtx, &c)

	// Phase 1: start every instance; the first life of each must configure.
	failed, interrupted := lp.startAll(stopCtx)
	var crashed []error
	if failed == nil && !interrupted {
		// Accept only now that every instance serves (listener.go).
		rs.acc.start()
		rs.announceReady() // systemd.go: READY=1 before any verb can run
		close(r.ready)
		// Phase 2: serve until a signal, the end of every instance
		// (--no-respawn), an instance over the restart intensity, or too
		// many abandoned handlers; serve the verbs meanwhile.
		crashed, failed = lp.serve(stopCtx)
	}
	close(r.finished)
	// Phase 3: stop accepting and stop every instance (each drains).
	quiesced := lp.beginStop(cancelSup)
	// Phase 4: wait for every instance and every background teardown,
	// within --shutdown-timeout.
	crashed, err = lp.awaitStop(quiesced, abort, failed, crashed)
	if err != nil {
		return err
	}
	return rs.result(failed, crashed)
}

// closers is what Run opened, closed in the reverse order.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c *closers) close() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
}

func (r *Runner) newRunState(ctx context.Context, cfg *Config, logs *logging.Logging) *runState {
	rs := &runState{
		r:         r,
		cfg:       cfg,
		logs:      logs,
		entry:     logs.Logger.WithField("app", r.name),
		clock:     r.clock,
		policy:    policyOf(cfg),
		baseCtx:   context.WithoutCancel(ctx),
		scheme:    "http",
		stopping:  make(chan struct{}),
		recycling: make(chan struct{}, 1),
		fatal:     make(chan error, 1),
	}
	rs.wanted.Store(int64(cfg.Concurrency))
	r.rs.Store(rs)
	return rs
}

// logFailure logs the error Run returns, naming the environment variable
// that set a bad value; Main does not print it again.
func (rs *runState) logFailure(errp *error) {
	if *errp == nil {
		return
	}
	*errp = noteEnv(*errp, rs.cfg.fromEnv, true) // cli.go
	rs.entry.WithField("stack", stackOf(*errp)).Error((*errp).Error())
	markLogged(*errp, !rs.cfg.Quiet) // errors.go
}

// watchSignals: the process's signals stop the runner through the context
// returned; a second stop signal closes abort.
func (r *Runner) watchSignals(ctx context.Context, rs *runState, c *closers) (stopCtx context.Context, abort <-chan struct{}) {
	stopCtx, stop := context.WithCancel(ctx)
	c.add(stop)
	ab := make(chan struct{})
	if r.signals != nil {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { r.handleSignals(rs, done, stop, ab) })
		c.add(func() { close(done); wg.Wait() })
	}
	return stopCtx, ab
}

// openShared opens what the instances share, before any of them starts:
// the listener (bound once, or the sockets of socket activation or of a
// binary upgrade) and its acceptor, the pub/sub broker, the runner's
// container and the admin listener.
func (rs *runState) openShared(stopCtx context.Context, c *closers) error {
	r, cfg := rs.r, rs.cfg
	ln, err := rs.listenSystemd(func() (net.Listener, error) { return r.listen(stopCtx, cfg) }) // listen_systemd.go, listen.go
	if err != nil {
		return startupError("%w", err)
	}
	r.addr.Store(ln.Addr())
	rs.addr = ln.Addr().String()
	rs.acc = newAcceptor(ln, rs.entry, rs.clock)
	rs.acc.emit = rs.emit
	rs.acc.limit(cfg.MaxConnections, cfg.WriteTimeout)
	c.add(rs.acc.close)

	if rs.broker, err = openBroker(stopCtx, r.name, cfg, rs.entry); err != nil {
		return startupError("pub/sub: %w", err)
	}
	c.add(rs.closeBroker)
	if r.parent != nil {
		rs.root = r.parent.ChildNamed("runner")
	} else {
		rs.root = container.NewNamed("runner")
	}
	c.add(rs.closeRoot)
	if err := provideRoot(rs); err != nil {
		return startupError("runner container: %w", err)
	}
	if err := rs.startAdmin(); err != nil {
		return startupError("admin listener: %w", err)
	}
	c.add(rs.stopAdmin)
	r.mu.Lock()
	r.acc = rs.acc
	r.mu.Unlock()
	return nil
}

func (rs *runState) closeBroker() {
	ctx, cancel := context.WithTimeout(context.Background(), rs.cfg.DrainTimeout) // bounds the NATS flush (network: the real clock)
	defer cancel()
	if err := rs.broker.Close(ctx); err != nil && !errors.Is(err, pubsub.ErrClosed) {
		rs.entry.WithError(err).Warn("Closing the pub/sub broker failed")
	}
}

func (rs *runState) closeRoot() {
	if err := rs.root.Close(); err != nil {
		rs.entry.WithError(err).Warn("Closing the runner container failed")
	}
}

// newRunLoop makes the runner's loop. The instances stop when phase 3 says
// so (cancelSup), not with stopCtx directly: by then the acceptor is taking
// the connections queued in the kernel, and the lives know the runner
// stops (rs.stopping).
func (rs *runState) newRunLoop(stopCtx context.Context, c *closers) (*runLoop, context.CancelFunc) {
	supCtx, cancelSup := context.WithCancel(context.WithoutCancel(stopCtx))
	c.add(cancelSup)
	return &runLoop{rs: rs, ctx: supCtx, results: make(chan instResult), lives: map[int]int{}, reloadDone: make(chan error, 1)}, cancelSup
}

// result is what Run returns once every instance stopped in time.
func (rs *runState) result(failed error, crashed []error) error {
	// What returned in the meantime (a handler, a goroutine, a hook) is not
	// left.
	left := append(rs.stillLeft(), rs.stillAbandoned()...)
	switch {
	case failed != nil && ExitCode(failed) != 1:
		return failed
	case failed != nil && errors.Is(failed, ErrGaveUp):
		return exitError(ExitGaveUp, failed)
	case failed != nil:
		return startupError("%w", failed)
	case len(crashed) > 0:
		return exitError(ExitCrashed, errors.Join(crashed...))
	case len(left) > 0:
		return exitError(ExitStopTimeout, fmt.Errorf("%w: left running past their drain deadline: %s", ErrStopTimeout, strings.Join(left, "; ")))
	}
	return nil
}

func provideRoot(rs *runState) error {
	// configure gets a copy: it cannot change the runner's live Config.
	cfg := *rs.cfg
	errs := []error{
		container.Provide(rs.root, &cfg),
		container.Provide(rs.root, rs.logs.Logger),
		container.Provide[pubsub.Broker](rs.root, rs.broker),
	}
	for _, f := range rs.r.appFlags {
		errs = append(errs, f.provide(rs.root))
	}
	return errors.Join(errs...)
}

func openBroker(ctx context.Context, name string, cfg *Config, log *logrus.Entry) (pubsub.Broker, error) {
	if cfg.PubSubURL == "" {
		return pubsub.NewMemory(pubsub.WithLogger(log), pubsub.WithTopicStats(cfg.PubSubTopicStats...)), nil
	}
	ns := cfg.PubSubNamespace
	if ns == "" {
		ns = name
	}
	if err := pubsub.ValidateTopic(ns); err != nil {
		return nil, fmt.Errorf("the NATS namespace (--pubsub-namespace, default the app's name) %q cannot prefix subjects: %w; give --pubsub-namespace NAME", ns, err)
	}
	opts := []pubsub.NATSOption{pubsub.WithName("goangel " + name), pubsub.WithLogger(log), pubsub.WithNamespace(ns)}
	if len(cfg.PubSubTopicStats) > 0 {
		opts = append(opts, pubsub.WithTopicStats(cfg.PubSubTopicStats...))
	}
	if cfg.PubSubReplicas != 0 {
		opts = append(opts, pubsub.WithRetainReplicas(cfg.PubSubReplicas))
	}
	switch {
	case cfg.PubSubToken != "":
		opts = append(opts, pubsub.WithToken(cfg.PubSubToken))
	case cfg.PubSubUser != "" || cfg.PubSubPassword != "":
		opts = append(opts, pubsub.WithUserInfo(cfg.PubSubUser, cfg.PubSubPassword))
	}
	if cfg.PubSubCreds != "" {
		opts = append(opts, pubsub.WithCredsFile(cfg.PubSubCreds))
	}
	if cfg.PubSubCAFile != "" {
		opts = append(opts, pubsub.WithCAFile(cfg.PubSubCAFile))
	}
	if cfg.PubSubCertFile != "" || cfg.PubSubKeyFile != "" {
		opts = append(opts, pubsub.WithClientCert(cfg.PubSubCertFile, cfg.PubSubKeyFile))
	}
	return pubsub.NewNATS(ctx, cfg.PubSubURL, opts...)
}
