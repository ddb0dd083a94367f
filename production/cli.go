package production

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/pubsub"
)

// Config is the parsed command line of a Runner: every angel_production flag,
// goangel's own, and (embedded) the logging flags. Each flag can also be set by
// an environment variable named after it: the prefix (by default the app name
// in upper case, non-alphanumerics as "_", see [WithEnvPrefix]), "_", then the
// flag name in upper case with "-" as "_": EXAMPLE_PORT=8080,
// EXAMPLE_RESPAWN=false, EXAMPLE_PUBSUB_URL=nats://…. The command line wins
// over the environment, the environment over the defaults.
type Config struct {
	Respawn             bool            `negatable:"" default:"true" help:"Respawn crashed instances (on by default)."`
	UseZone             bool            `name:"use-zone" help:"Give each request its own child container (reachable from its context) and recover boundary."`
	Quiet               bool            `help:"Mute the runner's console log lines."`
	SSL                 bool            `name:"ssl" help:"Serve HTTPS (needs --certificate-file and --key-file)."`
	HTTP2               bool            `name:"http2" help:"Serve HTTP/2 beside HTTP/1.1: over TLS with --ssl, else cleartext with prior knowledge (h2c)."`
	Address             string          `short:"a" default:"127.0.0.1" help:"The address to listen on."`
	Concurrency         int             `short:"j" default:"${ncpu}" help:"The number of instances to run."`
	MaxInstances        int             `name:"max-instances" default:"${max_instances}" help:"The most instances -j, POST /scale and SIGTTIN may ask for; more is refused with an error (each instance costs a goroutine pair and its app's state)."`
	Port                int             `short:"p" default:"3000" help:"The port to listen on (0 takes a free port)."`
	CertificateFile     string          `name:"certificate-file" placeholder:"PATH" help:"The PEM certificate (chain) for --ssl."`
	CertificatePassword string          `name:"certificate-password" placeholder:"PASSWORD" help:"The password of an encrypted PEM certificate."`
	KeyFile             string          `name:"key-file" placeholder:"PATH" help:"The PEM private key for --ssl."`
	KeyPassword         string          `name:"key-password" placeholder:"PASSWORD" help:"The password of an encrypted private key (PKCS#8 \"ENCRYPTED PRIVATE KEY\" or legacy PEM encryption)."`
	ClientCAFile        string          `name:"client-ca-file" placeholder:"PATH" help:"PEM CA certificates that client certificates must chain to (--ssl)."`
	ClientAuth          string          `name:"client-auth" placeholder:"MODE" help:"Client certificates: none, request, require, verify-if-given, require-and-verify (default: require-and-verify with --client-ca-file, else none)."`
	MaxRestarts         int             `name:"max-restarts" default:"${max_restarts}" help:"Give up when one instance fails to start more often than this within --restart-window (at least 1)."`
	RestartWindow       time.Duration   `name:"restart-window" default:"${restart_window}" help:"The window of --max-restarts."`
	RestartBackoff      time.Duration   `name:"restart-backoff" default:"${restart_backoff}" help:"The first wait before respawning an instance that failed to start (doubled each time; 0: never wait)."`
	RestartMaxBackoff   time.Duration   `name:"restart-max-backoff" default:"${restart_max_backoff}" help:"The longest wait before respawning an instance that failed to start."`
	RestartStableAfter  time.Duration   `name:"restart-stable-after" default:"${restart_stable_after}" help:"A life that ran this long (or answered a request) has started well: its crash is respawned at once and not counted."`
	DrainTimeout        time.Duration   `name:"drain-timeout" default:"5s" help:"How long a stopping life lets in-flight requests, keep-alive clients, goroutines and hooks finish (must be positive)."`
	ShutdownTimeout     time.Duration   `name:"shutdown-timeout" help:"How long the whole stop may take before the runner exits anyway with code 124 (default: --drain-timeout + 5s)."`
	MaxRequests         int             `name:"max-requests" default:"0" help:"Recycle an instance's life after about this many requests, one instance at a time (0: never)."`
	MaxRequestsJitter   int             `name:"max-requests-jitter" default:"0" help:"Add a random 0..N to --max-requests per life, so instances do not recycle together."`
	HangTimeout         time.Duration   `name:"hang-timeout" default:"0s" help:"Replace an instance with a request that has made no progress (no byte of its body read, none of its answer written) for this long, logging its goroutines (0: off)."`
	MaxAbandoned        int             `name:"max-abandoned" default:"10" help:"Exit with code 75 once more than this many handlers are still running past their life's drain deadline (a handler stops counting when it returns)."`
	ReadHeaderTimeout   time.Duration   `name:"read-header-timeout" default:"10s" help:"http.Server ReadHeaderTimeout of each instance."`
	IdleTimeout         time.Duration   `name:"idle-timeout" default:"2m" help:"http.Server IdleTimeout of each instance."`
	ReadTimeout         time.Duration   `name:"read-timeout" default:"60s" help:"How long a request body may take to arrive, counted from the handler's start (0: no limit; a handler extends it with http.ResponseController.SetReadDeadline)."`
	WriteTimeout        time.Duration   `name:"write-timeout" default:"60s" help:"How long one write to a client may stall: no 64 KiB accepted by the client within it closes the connection (0: no limit; streaming answers to a reading client are never cut)."`
	RequestTimeout      time.Duration   `name:"request-timeout" default:"0s" help:"Cancel each request's context after this; a handler that has not started its answer by then gets 503 (0: off)."`
	MaxConnections      int             `name:"max-connections" default:"0" help:"Open connections the runner serves at once; past it new connections wait in the kernel's backlog (0: no limit)."`
	UpgradeTimeout      time.Duration   `name:"upgrade-timeout" default:"1m" help:"How long a binary upgrade (SIGUSR2) waits for the new process to serve before it kills it and keeps the old one."`
	PubSubURL           string          `name:"pubsub-url" placeholder:"nats://HOST:PORT" help:"Pass messages between instances (and processes) through this NATS server instead of in memory."`
	PubSubToken         string          `name:"pubsub-token" help:"NATS token."`
	PubSubUser          string          `name:"pubsub-user" help:"NATS user."`
	PubSubPassword      string          `name:"pubsub-password" help:"NATS password."`
	PubSubCreds         string          `name:"pubsub-creds" placeholder:"PATH" help:"NATS credentials file."`
	PubSubCAFile        string          `name:"pubsub-ca-file" placeholder:"PATH" help:"CA certificate for the NATS server."`
	PubSubCertFile      string          `name:"pubsub-cert-file" placeholder:"PATH" help:"Client certificate for NATS."`
	PubSubKeyFile       string          `name:"pubsub-key-file" placeholder:"PATH" help:"Client key for NATS."`
	PubSubNamespace     string          `name:"pubsub-namespace" placeholder:"NAME" help:"Prefix of every NATS subject (default: the app's name), so that apps sharing a NATS server do not see each other's messages; apps that mean to talk give the same one."`
	PubSubReplicas      int             `name:"pubsub-retain-replicas" default:"0" placeholder:"N" help:"Servers of the NATS cluster that keep the retained messages' JetStream stream, 1 to 5 (0: min(3, the cluster's JetStream servers), so that they outlive one server's death); an existing stream is updated where the server allows."`
	PubSubTopicStats    []string        `name:"pubsub-metrics-topics" sep:"," placeholder:"PATTERN[,PATTERN...]" help:"Count pub/sub messages per topic for these topics or patterns (orders, orders.*, orders.>), exposed on /metrics with a pattern label (off by default: the number of series stays bounded)."`
	AdminAddress        string          `name:"admin-address" placeholder:"HOST:PORT" help:"Serve /metrics, /healthz, /readyz, /instances and the status page here (off by default; a non-loopback address needs --admin-token)."`
	AdminToken          string          `name:"admin-token" placeholder:"TOKEN" help:"Bearer token of the admin listener (required for everything but /healthz and /readyz when set)."`
	Pprof               bool            `name:"pprof" help:"Serve /debug/pprof/ on the admin listener."`
	AdminSocket         string          `name:"admin-socket" placeholder:"PATH" help:"Serve the admin listener on this Unix socket too (or only), its file permissions the access control; a relative PATH is in $RUNTIME_DIRECTORY when systemd set it (RuntimeDirectory=)."`
	AdminSocketMode     string          `name:"admin-socket-mode" default:"0600" placeholder:"MODE" help:"Permissions of the --admin-socket file, octal."`
	MetricsBuckets      []time.Duration `name:"metrics-buckets" sep:"," placeholder:"DURATION[,DURATION...]" help:"Upper bounds of the request-duration histogram's buckets (default: 5us doubling to 10.5s, 22 buckets, so that a quantile is within 2x from microseconds to seconds)."`
	NativeHistograms    bool            `name:"metrics-native-histograms" negatable:"" default:"true" help:"Also expose the request-duration histogram as a Prometheus native histogram (bucket factor 1.1; scraped by Prometheus with --enable-feature=native-histograms)."`
	AdminHosts          []string        `name:"admin-host" sep:"," placeholder:"NAME[,NAME...]" help:"Host names the admin listener answers to, beside IP addresses and localhost (a request naming another Host is refused: DNS rebinding)."`

	logging.Flags `embed:""`

	// keyPair is the certificate and key of --ssl, loaded (once)
	// by Validate. Unexported, so kong does not see it; a pointer, so
	// printing a Config with %+v does not print the private key.
	keyPair *tls.Certificate
	// fromEnv names the environment variable of each flag set from the
	// environment, so that an error found later can name it (noteEnv).
	fromEnv map[string]envSource
	// clientCAs is --client-ca-file, loaded by Validate.
	clientCAs *x509.CertPool
}

// Validate checks what kong cannot: it is called by kong after parsing, and an
// error makes the command line a usage error (exit code 64).
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateInstances()...)
	errs = append(errs, c.validateDurations()...)
	errs = append(errs, c.validateSupervision()...)
	errs = append(errs, c.validatePubSub()...)
	errs = append(errs, c.validateAdmin(), c.validateTLS()) // admin.go, tls.go; Join drops nil
	return errors.Join(errs...)
}

// validateInstances checks the instances, the listener and the restart
// limits.
func (c *Config) validateInstances() []error {
	var errs []error
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("-j/--concurrency must be at least 1, got %d", c.Concurrency))
	}
	switch {
	case c.MaxInstances < 1:
		errs = append(errs, fmt.Errorf("--max-instances must be at least 1, got %d", c.MaxInstances))
	case c.Concurrency > c.MaxInstances:
		errs = append(errs, fmt.Errorf("-j/--concurrency %d is more than --max-instances %d; lower -j or raise --max-instances", c.Concurrency, c.MaxInstances))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("-p/--port must be in 0..65535, got %d", c.Port))
	}
	if strings.TrimSpace(c.Address) == "" {
		errs = append(errs, errors.New("-a/--address must not be empty"))
	}
	if c.MaxRestarts < 1 {
		errs = append(errs, fmt.Errorf("--max-restarts must be at least 1, got %d (an instance that can never start must end the process so that systemd or the operator takes over)", c.MaxRestarts))
	}
	if c.RestartWindow <= 0 {
		errs = append(errs, fmt.Errorf("--restart-window must be positive, got %v", c.RestartWindow))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("--max-connections must not be negative (0: no limit), got %d", c.MaxConnections))
	}
	return errs
}

// validateDurations refuses a negative duration flag.
func (c *Config) validateDurations() []error {
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"--drain-timeout", c.DrainTimeout}, {"--read-header-timeout", c.ReadHeaderTimeout}, {"--idle-timeout", c.IdleTimeout},
		{"--restart-backoff", c.RestartBackoff}, {"--restart-max-backoff", c.RestartMaxBackoff}, {"--restart-stable-after", c.RestartStableAfter},
		{"--shutdown-timeout", c.ShutdownTimeout}, {"--hang-timeout", c.HangTimeout},
		{"--read-timeout", c.ReadTimeout}, {"--write-timeout", c.WriteTimeout}, {"--request-timeout", c.RequestTimeout}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", f.name, f.d))
		}
	}
	return errs
}

// validatePubSub checks the --pubsub-* flags: a NATS URL, credentials only
// with it (they would be ignored: messages stay in memory), a namespace
// that can prefix a subject, the retained stream's replicas, the topics
// counted apart.
func (c *Config) validatePubSub() []error {
	var errs []error
	if c.PubSubURL != "" && !strings.HasPrefix(c.PubSubURL, "nats://") && !strings.HasPrefix(c.PubSubURL, "tls://") {
		errs = append(errs, fmt.Errorf("--pubsub-url must be a nats:// or tls:// URL, got %q", c.PubSubURL))
	}
	if given := c.natsOnlyGiven(); c.PubSubURL == "" && len(given) > 0 {
		errs = append(errs, fmt.Errorf("%s need(s) --pubsub-url: without it messages stay in this process's memory and NATS is not used", strings.Join(given, ", ")))
	}
	if c.PubSubNamespace != "" {
		if err := pubsub.ValidateTopic(c.PubSubNamespace); err != nil {
			errs = append(errs, fmt.Errorf("--pubsub-namespace %q cannot prefix NATS subjects: %w; give dot-separated tokens without whitespace, none empty and none a wildcard (* or >)", c.PubSubNamespace, err))
		}
	}
	if c.PubSubReplicas < 0 || c.PubSubReplicas > 5 {
		errs = append(errs, fmt.Errorf("--pubsub-retain-replicas must be 0 (min(3, the cluster's size)) or 1 to 5 (JetStream's range), got %d", c.PubSubReplicas))
	}
	for _, p := range c.PubSubTopicStats {
		if err := pubsub.ValidatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("--pubsub-metrics-topics: %q is not a topic or pattern (%w); give a comma-separated list like orders,orders.*,orders.>", p, err))
		}
	}
	return errs
}

// natsOnlyGiven lists the NATS credential flags given.
func (c *Config) natsOnlyGiven() []string {
	var given []string
	for _, f := range []struct{ name, v string }{
		{"--pubsub-token", c.PubSubToken}, {"--pubsub-user", c.PubSubUser}, {"--pubsub-password", c.PubSubPassword},
		{"--pubsub-creds", c.PubSubCreds}, {"--pubsub-ca-file", c.PubSubCAFile}, {"--pubsub-cert-file", c.PubSubCertFile},
		{"--pubsub-key-file", c.PubSubKeyFile},
	} {
		if f.v != "" {
			given = append(given, f.name)
		}
	}
	return given
}

// defaultMaxInstances is the default of --max-instances: 1024 (an idle
// instance costs about 17 KB and its app's state), or 4 per CPU on a
// machine with more than 256.
func defaultMaxInstances() int { return max(1024, 4*runtime.NumCPU()) }

// shortDuration prints d without zero trailing units: 1m, not 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// helpExit is what kong's Exit panics with inside parse, so that --help ends
// parsing without ending the process.
type helpExit struct{ code int }

// parse builds the kong CLI (Config, the app's flag structs) and parses args,
// writing help and usage errors to the runner's outputs.
// It returns done=true when --help was printed.
func (r *Runner) parse(args []string) (cfg *Config, done bool, err error) {
	cfg = &Config{}
	usageOnly := false                // set after a usage error: print the options without the banner
	fromEnv := map[string]envSource{} // flag name -> the environment variable that set it
	options := []kong.Option{
		kong.Name(r.name),
		kong.Description(r.description()),
		kong.Writers(r.stdout, r.stderr),
		kong.Exit(func(code int) { panic(helpExit{code}) }),
		kong.Vars{
			"ncpu":                 strconv.Itoa(runtime.NumCPU()),
			"max_instances":        strconv.Itoa(defaultMaxInstances()),
			"max_restarts":         strconv.Itoa(r.policy.MaxRestarts),
			"restart_window":       shortDuration(r.policy.Window),
			"restart_backoff":      r.policy.InitialBackoff.String(),
			"restart_max_backoff":  r.policy.MaxBackoff.String(),
			"restart_stable_after": r.policy.StableAfter.String(),
		},
		kong.Help(func(options kong.HelpOptions, ctx *kong.Context) error {
			if !usageOnly {
				fmt.Fprintf(ctx.Stdout, "goangel production runner: %s\n\n", r.name)
			}
			if err := kong.DefaultHelpPrinter(options, ctx); err != nil || usageOnly {
				return err
			}
			_, err := fmt.Fprintf(ctx.Stdout, "\nControl a running %s (status, reload, scale, restart, drain, upgrade, stats): %s ctl --help\n", r.name, r.name)
			return err
		}),
		kong.ValueFormatter(func(v *kong.Value) string { return envHelp(r.envPrefix, v) }),
		kong.Resolvers(envResolver(r.envPrefix, r.lookupEnv, fromEnv)),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, FlagsLast: true}),
	}
	for _, f := range r.appFlags {
		options = append(options, kong.Embed(f.ptr))
	}
	parser, err := kong.New(cfg, options...)
	if err != nil {
		// A broken app flag struct is a programming error, not a usage error.
		return nil, false, exitError(ExitUsage, fmt.Errorf("%w: building the command line: %w", ErrUsage, err))
	}
	defer func() {
		if p := recover(); p != nil {
			h, ok := p.(helpExit)
			if !ok {
				panic(p)
			}
			if h.code != 0 {
				err = exitError(ExitUsage, fmt.Errorf("%w: exit %d", ErrUsage, h.code))
				return
			}
			cfg, done, err = nil, true, nil
		}
	}()
	_, perr := parser.Parse(args)
	if errors.Is(perr, syscall.EPIPE) {
		// --help | head: the reader had enough. Nothing to report (and
		// nowhere to: the usage would go the same way).
		return nil, true, nil
	}
	if perr != nil {
		perr = noteEnv(perr, fromEnv, false)
		parser.Errorf("%s", perr.Error())
		parser.Stdout = r.stderr
		usageOnly = true
		if uctx, err := kong.Trace(parser, nil); err == nil {
			_ = uctx.PrintUsage(false)
			// Again below the options, where it does not scroll away.
			fmt.Fprintf(r.stderr, "\n%s: error: %s\n", r.name, perr)
		}
		return nil, false, exitError(ExitUsage, fmt.Errorf("%w: %w", ErrUsage, perr))
	}
	cfg.fromEnv = fromEnv
	return cfg, false, nil
}

func (r *Runner) description() string {
	if r.desc != "" {
		return r.desc
	}
	return fmt.Sprintf("Runs `%s` in production: -j supervised instances on one shared listener, respawned when they crash.", r.name)
}

// envName is the environment variable of a flag: PREFIX_FLAG_NAME, "" for --help.
func envName(prefix string, f *kong.Flag) string {
	if f == nil || f.Name == "help" {
		return ""
	}
	if len(f.Envs) > 0 { // an explicit env tag wins
		return f.Envs[0]
	}
	name := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(f.Name))
	if prefix != "" {
		name = prefix + "_" + name
	}
	return name
}

// envResolver resolves a flag not given on the command line from its
// environment variable (through lookup, not kong's own os.LookupEnv, so that
// tests can replace it), and names the variable when its value is bad. It
// records in fromEnv which flags it set, from which variable.
func envResolver(prefix string, lookup func(string) (string, bool), fromEnv map[string]envSource) kong.Resolver {
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
		name := envName(prefix, f)
		if name == "" {
			return nil, nil
		}
		v, ok := lookup(name)
		if !ok {
			return nil, nil
		}
		probe := reflect.New(f.Target.Type()).Elem()
		scan := kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: v})
		if err := f.Mapper.Decode(&kong.DecodeContext{Value: f.Value, Scan: scan}, probe); err != nil {
			return nil, fmt.Errorf("environment variable %s=%q: %w", name, v, err)
		}
		fromEnv[f.Name] = envSource{name: name, value: v}
		return v, nil
	})
}

// envNoted is a usage error whose message names the environment variables
// that set the flags it is about.
type envNoted struct {
	err error
	msg string
}

func (e *envNoted) Error() string { return e.msg }
func (e *envNoted) Unwrap() error { return e.err }

// envSource is the environment variable that set a flag, and its value.
type envSource struct{ name, value string }

// noteEnv adds to each line of err that names a flag set from the
// environment (not the command line) which variable set it: Validate
// speaks of flags, the operator may have written EXAMPLE_CONCURRENCY=0.
// With byValue (for errors found after parsing, which quote a path or an
// address rather than the flag), a line that quotes the value of such a
// flag (4 characters or more) names its variable too.
func noteEnv(err error, fromEnv map[string]envSource, byValue bool) error {
	if len(fromEnv) == 0 {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	changed := false
	for i, line := range lines {
		var vars []string
		for flag, env := range fromEnv {
			v := env.value
			quoted := byValue && len(v) >= 4 && v != "true" && v != "false" && strings.Contains(line, v)
			if (mentionsFlag(line, flag) || quoted) && !strings.Contains(line, env.name) {
				vars = append(vars, env.name)
			}
		}
		if len(vars) > 0 {
			slices.Sort(vars)
			lines[i] = line + " (set by the environment variable " + strings.Join(vars, ", ") + ")"
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &envNoted{err: err, msg: strings.Join(lines, "\n")}
}

// mentionsFlag reports whether line names --flag (not a longer flag that
// starts with the same name).
func mentionsFlag(line, flag string) bool {
	want := "--" + flag
	for rest := line; ; {
		i := strings.Index(rest, want)
		if i < 0 {
			return false
		}
		rest = rest[i+len(want):]
		if rest == "" {
			return true
		}
		if c := rest[0]; !(c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return true
		}
	}
}

// envHelp appends the environment variable to a flag's help.
func envHelp(prefix string, v *kong.Value) string {
	help := v.Help
	name := envName(prefix, v.Flag)
	if name == "" {
		return help
	}
	suffix := "($" + name + ")"
	if strings.HasSuffix(help, ".") {
		return help[:len(help)-1] + " " + suffix + "."
	}
	if help == "" {
		return suffix
	}
	return help + " " + suffix
}
