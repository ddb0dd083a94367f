package production

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

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
	hook      func(Event)

	ran   atomic.Bool
	ready chan struct{}
	addr  atomic.Value // net.Addr

	mu        sync.Mutex
	instances []*instance
	acc       *acceptor
}

type appFlag struct {
	ptr     any
	provide func(*container.Container) error
}

// Option configures a Runner.
type Option func(*Runner)

// WithFlags merges the kong-tagged struct *flags into the generated command
// line (kong.Embed): its flags are listed by --help, read from the
// environment like the runner's own, and filled before configure runs. The
// pointer is also put in the runner's container, so configure reaches it with
// container.MustMake[*T](app.Container).
func WithFlags[T any](flags *T) Option {
	return func(r *Runner) {
		r.appFlags = append(r.appFlags, appFlag{
			ptr:     flags,
			provide: func(c *container.Container) error { return container.Provide(c, flags) },
		})
	}
}

// WithDescription replaces the one-line description printed by --help.
func WithDescription(s string) Option { return func(r *Runner) { r.desc = s } }

// WithEnvPrefix sets the prefix of the environment variables that may set the
// flags (default: the app name in upper case, each non-alphanumeric as "_";
// "example" gives EXAMPLE_PORT). An empty prefix gives bare names (PORT).
func WithEnvPrefix(prefix string) Option { return func(r *Runner) { r.envPrefix = prefix } }

// WithLookupEnv replaces os.LookupEnv as the source of environment variables.
func WithLookupEnv(lookup func(string) (string, bool)) Option {
	return func(r *Runner) { r.lookupEnv = lookup }
}

// WithOutput sets where help, usage errors and the console log go (default
// os.Stdout and os.Stderr).
func WithOutput(stdout, stderr io.Writer) Option {
	return func(r *Runner) { r.stdout, r.stderr = stdout, stderr }
}

// WithClock replaces the system clock (restart backoff, intensity window,
// App.AfterFunc).
func WithClock(c Clock) Option { return func(r *Runner) { r.clock = c } }

// WithRestartPolicy replaces DefaultRestartPolicy. Its MaxRestarts and Window
// become the defaults of --max-restarts and --restart-window (which still
// override them); when not positive, the defaults' (10, 1m) are kept. The
// backoff fields are taken as they are: InitialBackoff 0 respawns at once,
// always.
func WithRestartPolicy(p RestartPolicy) Option {
	return func(r *Runner) {
		d := DefaultRestartPolicy()
		if p.MaxRestarts <= 0 {
			p.MaxRestarts = d.MaxRestarts
		}
		if p.Window <= 0 {
			p.Window = d.Window
		}
		r.policy = p
	}
}

// WithContainer makes c the parent of the runner's container, so that
// singletons provided in c reach every instance. The runner does not close c.
func WithContainer(c *container.Container) Option { return func(r *Runner) { r.parent = c } }

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

// Main runs the Runner with os.Args, stops it gracefully on SIGINT or SIGTERM
// (a second signal kills the process), and exits with ExitCode of the result.
func (r *Runner) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // restore the default handlers: a second signal kills
	err := r.Run(ctx, os.Args[1:])
	stop()
	code := ExitCode(err)
	if err != nil && code != ExitUsage && code != ExitOK {
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
}

// InstanceStats counts, for one instance, over all its lives.
type InstanceStats struct {
	Number   int
	Life     int    // the number of the current (or last) life
	Up       bool   // a life of this instance is serving
	Requests uint64 // requests served (counted when they start)
	Panics   uint64 // handler panics recovered (answered 500)
	Crashes  uint64 // lives ended by a crash (panic, Crash, error)
	Restarts uint64 // respawns
}

// Stats returns the counters; empty before Run has started the instances.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	ins, acc := r.instances, r.acc
	r.mu.Unlock()
	var s Stats
	if acc != nil {
		s.AcceptErrors = acc.errors.Load()
	}
	for _, in := range ins {
		s.Instances = append(s.Instances, InstanceStats{
			Number:   in.num,
			Life:     int(in.life.Load()),
			Up:       in.up.Load(),
			Requests: in.requests.Load(),
			Panics:   in.panics.Load(),
			Crashes:  in.crashes.Load(),
			Restarts: in.restarts.Load(),
		})
	}
	return s
}

// Run parses args (without the program name), then runs the app until ctx is
// done (a clean stop: nil), every instance has ended (--no-respawn), or the
// restart intensity is exceeded. It never calls os.Exit: errors are an
// *ExitError; map them with ExitCode. --help prints the help and returns nil.
func (r *Runner) Run(ctx context.Context, args []string) error {
	if ctx == nil {
		panic("production: Run with a nil Context")
	}
	if !r.ran.CompareAndSwap(false, true) {
		return exitError(1, ErrAlreadyRun)
	}
	cfg, helped, err := r.parse(args)
	if err != nil || helped {
		return err
	}
	return r.run(ctx, cfg)
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
	rs := &runState{
		r:        r,
		cfg:      cfg,
		logs:     logs,
		entry:    logs.Logger.WithField("app", r.name),
		clock:    r.clock,
		policy:   r.policy,
		baseCtx:  context.WithoutCancel(ctx),
		scheme:   "http",
		stopping: make(chan struct{}),
	}
	rs.policy.MaxRestarts, rs.policy.Window = cfg.MaxRestarts, cfg.RestartWindow
	defer func() {
		if err != nil {
			rs.entry.WithField("stack", stackOf(err)).Error(err.Error())
		}
	}()
	rs.entry.Infof("Starting `%s` application...", r.name)
	if cfg.SSL || cfg.HTTP2 {
		// Validate has read and checked the pair.
		rs.tls, rs.scheme = serverTLS(*cfg.keyPair, cfg.HTTP2), "https"
	}

	// Bind the shared listener once, before any instance starts.
	address := net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return startupError("cannot listen on %s: %w", address, err)
	}
	r.addr.Store(ln.Addr())
	rs.addr = ln.Addr().String()
	rs.acc = newAcceptor(ln, rs.entry)
	rs.acc.emit = rs.emit
	go rs.acc.run()
	defer rs.acc.close()

	if rs.broker, err = openBroker(ctx, r.name, cfg, rs.entry); err != nil {
		return startupError("pub/sub: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout) // bounds the NATS flush
		defer cancel()
		if cerr := rs.broker.Close(ctx); cerr != nil && !errors.Is(cerr, pubsub.ErrClosed) {
			rs.entry.WithError(cerr).Warn("Closing the pub/sub broker failed")
		}
	}()

	if r.parent != nil {
		rs.root = r.parent.ChildNamed("runner")
	} else {
		rs.root = container.NewNamed("runner")
	}
	defer func() {
		if cerr := rs.root.Close(); cerr != nil {
			rs.entry.WithError(cerr).Warn("Closing the runner container failed")
		}
	}()
	if err := provideRoot(rs); err != nil {
		return startupError("runner container: %w", err)
	}

	instances := make([]*instance, cfg.Concurrency)
	for i := range instances {
		instances[i] = &instance{rs: rs, num: i}
	}
	r.mu.Lock()
	r.instances, r.acc = instances, rs.acc
	r.mu.Unlock()

	// Phase 1: start every instance; the first life of each must configure.
	supCtx, cancelSup := context.WithCancel(ctx)
	defer cancelSup()
	started := make(chan error, len(instances))
	results := make(chan error, len(instances))
	for _, in := range instances {
		go func() { results <- in.supervise(supCtx, started) }()
	}
	remaining := len(instances)
	var failed error
	var crashed []error
	interrupted := false
	for range instances {
		select {
		case err := <-started:
			if err != nil && failed == nil {
				failed = err
			}
		case <-ctx.Done():
			interrupted = true
		}
		if failed != nil || interrupted {
			break
		}
	}
	if failed == nil && !interrupted {
		close(r.ready)
		// Phase 2: serve until a signal, the end of every instance
		// (--no-respawn), or an instance over the restart intensity.
	serve:
		for remaining > 0 {
			select {
			case <-ctx.Done():
				break serve
			case err := <-results:
				remaining--
				if errors.Is(err, ErrGaveUp) {
					failed = err
					break serve
				}
				if err != nil {
					crashed = append(crashed, err)
				}
			}
		}
	}

	// Phase 3: stop accepting and stop every instance (each drains).
	if remaining > 0 {
		rs.entry.Infof("Stopping `%s` application...", r.name)
	}
	rs.acc.close()
	close(rs.stopping)
	cancelSup()
	// Phase 4: wait for every instance and every background teardown.
	for ; remaining > 0; remaining-- {
		if err := <-results; err != nil && failed == nil && errors.Is(err, ErrCrashed) {
			crashed = append(crashed, err)
		}
	}
	rs.bg.Wait()

	switch {
	case failed != nil && errors.Is(failed, ErrGaveUp):
		return exitError(ExitGaveUp, failed)
	case failed != nil:
		return startupError("%w", failed)
	case len(crashed) > 0:
		return exitError(ExitCrashed, errors.Join(crashed...))
	}
	return nil
}

// serverTLS is the TLS configuration of --ssl (HTTP/1.1 over TLS) and
// --http2 (HTTP/2 over TLS, HTTP/1.1 for clients without it).
func serverTLS(pair tls.Certificate, http2 bool) *tls.Config {
	protos := []string{"http/1.1"}
	if http2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: protos}
}

func provideRoot(rs *runState) error {
	errs := []error{
		container.Provide(rs.root, rs.cfg),
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
		return pubsub.NewMemory(pubsub.WithLogger(log)), nil
	}
	ns := cfg.PubSubNamespace
	if ns == "" {
		ns = name
	}
	if err := pubsub.ValidateTopic(ns); err != nil {
		return nil, fmt.Errorf("the NATS namespace (--pubsub-namespace, default the app's name) %q cannot prefix subjects: %w; give --pubsub-namespace NAME", ns, err)
	}
	opts := []pubsub.Option{pubsub.WithName("goangel " + name), pubsub.WithLogger(log), pubsub.WithNamespace(ns)}
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

// instance is one instance's supervisor state; its counters span its lives.
type instance struct {
	rs       *runState
	num      int
	life     atomic.Int64
	up       atomic.Bool
	requests atomic.Uint64
	panics   atomic.Uint64
	crashes  atomic.Uint64
	restarts atomic.Uint64
}

// supervise runs the lives of the instance one after the other. It reports
// the start of the first life on started (exactly once), and returns nil when
// ctx ends, an error wrapping ErrCrashed when the life crashed under
// --no-respawn, or one wrapping ErrGaveUp past the restart intensity.
func (in *instance) supervise(ctx context.Context, started chan<- error) error {
	rs := in.rs
	tracker := newRestartTracker(rs.policy)
	var prev *life
	for n := 1; ; n++ {
		l, err := in.start(n)
		if prev != nil {
			// The replacement is serving (or failed to configure): tear the
			// crashed life down in the background.
			in.retire(prev)
			prev = nil
		}
		if n == 1 {
			if err != nil {
				err = fmt.Errorf("instance #%d: %w", in.num, err)
			}
			started <- err
			if err != nil {
				return err
			}
		}
		var reason error
		began := rs.clock.Now()
		if l != nil {
			began = l.started
			select {
			case <-ctx.Done():
				l.shutdown()
				in.up.Store(false)
				return nil
			case <-l.ended:
				reason = l.endErr
			}
		} else {
			reason = err
		}
		in.up.Store(false)
		if reason != nil {
			in.crashes.Add(1)
		}
		rs.emit(Event{Kind: EventEnded, Instance: in.num, Life: n, Err: reason})
		what, log := "exited", rs.entry.WithFields(logrus.Fields{"instance": in.num, "life": n})
		if reason != nil {
			what = "crashed: " + reason.Error()
			if s := stackOf(reason); s != "" {
				log = log.WithField("stack", s)
			}
		}
		if !rs.cfg.Respawn {
			log.Infof("Instance #%d %s.", in.num, what)
			// The runner ends the drain early once no instance is left to
			// move clients to.
			in.retire(l)
			if reason != nil {
				return fmt.Errorf("%w: instance #%d: %w", ErrCrashed, in.num, reason)
			}
			return nil
		}
		delay, ok := tracker.next(began, rs.clock.Now())
		if !ok {
			log.Errorf("Instance #%d %s. It was respawned %d times within %v: giving up", in.num, what, rs.policy.MaxRestarts, rs.policy.Window)
			rs.emit(Event{Kind: EventGaveUp, Instance: in.num, Life: n, Err: reason})
			in.retire(l)
			return fmt.Errorf("%w: instance #%d was respawned %d times within %v, then %s", ErrGaveUp, in.num, rs.policy.MaxRestarts, rs.policy.Window, what)
		}
		log.Warnf("Instance #%d %s. Respawning in %v...", in.num, what, delay)
		rs.emit(Event{Kind: EventRespawning, Instance: in.num, Life: n, Err: reason, Delay: delay})
		if delay > 0 {
			in.retire(l)
			if sleep(ctx, rs.clock, delay) != nil {
				return nil
			}
		} else {
			prev = l
		}
		if ctxDone(ctx) {
			if prev != nil {
				prev.shutdown()
			}
			return nil
		}
		in.restarts.Add(1)
	}
}

// retire tears an ended life down in the background (see life.stop); the
// runner waits for it before Run returns. l may be nil (configure failed).
func (in *instance) retire(l *life) {
	if l != nil {
		in.rs.bg.Go(l.stop)
	}
}
