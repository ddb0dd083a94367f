package production

import (
	"io"
	"os"

	"github.com/goangel/angel/container"
)

// Every option of New is in this file.

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

// WithClock replaces the system clock: every timer and reading of the time
// of the runner (restart backoff and intensity window, crash-loop watch,
// drain deadlines, --hang-timeout, --shutdown-timeout, App.AfterFunc, event
// times; see [Clock] for what stays on the real clock). On a clock that
// stands still, a stop that has connections or handlers left waits until
// the clock passes their deadlines.
func WithClock(c Clock) Option { return func(r *Runner) { r.clock = c } }

// WithRestartPolicy replaces DefaultRestartPolicy. Its fields become the
// defaults of --max-restarts, --restart-window, --restart-backoff,
// --restart-max-backoff and --restart-stable-after (which still override
// them). A field that is not positive takes the default's value, as a flag
// not given does: RestartPolicy{MaxRestarts: 2, Window: time.Hour} keeps
// the 10ms..5s backoff and StableAfter 10s, so a life that crashes right
// after configure still counts as a failed start (a zero StableAfter would
// count every life as started well and respawn it for ever). A MaxBackoff
// left zero is at least InitialBackoff. To respawn failed starts without a
// wait, give --restart-backoff 0 on the command line.
func WithRestartPolicy(p RestartPolicy) Option {
	return func(r *Runner) { r.policy = p.withDefaults() }
}

// WithContainer makes c the parent of the runner's container, so that
// singletons provided in c reach every instance. The runner does not close c.
func WithContainer(c *container.Container) Option { return func(r *Runner) { r.parent = c } }

// WithEventHook adds f to the functions called for every supervision event
// (for metrics, tests, benchmarks); it may be given several times, and every
// hook is called, in order. A hook is called synchronously from the runner's
// goroutines, maybe concurrently: it must be safe for concurrent use, fast,
// and not block. A panic in a hook is recovered and logged; the other hooks
// still run.
func WithEventHook(f func(Event)) Option {
	return func(r *Runner) {
		if f != nil {
			r.hooks = append(r.hooks, f)
		}
	}
}

// WithSignals makes Run act on the signals received from c, as Main does
// with the process's own (see the README's table). Tests send on c instead of
// signalling the process. Without it, Run acts on no signal; stop it through
// its context.
func WithSignals(c <-chan os.Signal) Option { return func(r *Runner) { r.signals = c } }
