package production

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// Exit codes: what [ExitCode] returns for an error of [Runner.Run], and what
// [Runner.Main] exits with. They follow sysexits(3) where one fits, so that a
// systemd unit can say, for instance, RestartPreventExitStatus=64 78.
const (
	// ExitOK: the runner stopped on a signal or a canceled context, --help
	// was printed, or (with --no-respawn) every instance ended cleanly.
	ExitOK = 0
	// ExitCrashed: with --no-respawn, at least one instance crashed.
	ExitCrashed = 1
	// ExitUsage (EX_USAGE): a bad command line or environment variable.
	ExitUsage = 64
	// ExitGaveUp (EX_SOFTWARE): an instance crashed more often than the
	// restart intensity allows (--max-restarts within --restart-window); the
	// runner shut down cleanly so that the operator or systemd takes over.
	ExitGaveUp = 70
	// ExitStartup (EX_CONFIG): the runner could not start: the address could
	// not be bound, the log files or the pub/sub connection could not be
	// opened, or configure failed on the first start of an instance.
	ExitStartup = 78
	// ExitAbandoned (EX_TEMPFAIL): more handlers than --max-abandoned were
	// left running by hung lives (--hang-timeout); Go cannot stop a
	// goroutine, so the process ends for systemd (Restart=on-failure) to
	// start a clean one.
	ExitAbandoned = 75
	// ExitStopTimeout: the stop took longer than --shutdown-timeout; what was
	// still running is logged. (124 is what timeout(1) exits with.)
	ExitStopTimeout = 124
	// ExitInterrupted: a second SIGINT or SIGTERM arrived while stopping
	// (128 + SIGINT, as shells report an interrupted command).
	ExitInterrupted = 130
)

// Sentinel errors. Errors returned by [Runner.Run] wrap one of them (and are an
// [*ExitError]), so callers can match them with errors.Is.
var (
	// ErrUsage: the command line or an environment variable is invalid.
	ErrUsage = errors.New("production: usage error")
	// ErrStartup: the runner could not start.
	ErrStartup = errors.New("production: start-up failed")
	// ErrGaveUp: the restart intensity was exceeded.
	ErrGaveUp = errors.New("production: restart intensity exceeded")
	// ErrCrashed: an instance crashed and --no-respawn was given.
	ErrCrashed = errors.New("production: instance crashed")
	// ErrAlreadyRun: Run was called twice on the same Runner.
	ErrAlreadyRun = errors.New("production: Runner.Run called more than once")
	// ErrAbandoned: hung handlers past --max-abandoned.
	ErrAbandoned = errors.New("production: too many hung handlers abandoned")
	// ErrStopTimeout: the stop did not end within --shutdown-timeout.
	ErrStopTimeout = errors.New("production: stop timed out")
	// ErrInterrupted: a second stop signal cut the stop short.
	ErrInterrupted = errors.New("production: stop interrupted by a second signal")
	// ErrStopping: App.Context's cause when the runner stops while
	// configure runs.
	ErrStopping = errors.New("production: the runner is stopping")
	// ErrLifeEnded: what App.Context's cause is once a life ended without
	// an error (shutdown, or Crash(nil)).
	ErrLifeEnded = errors.New("production: instance life ended")
)

// ExitError is the error type returned by [Runner.Run]: Err says what happened,
// Code is the process exit code it maps to.
type ExitError struct {
	Code int
	Err  error

	logged bool // already printed on the console as a log line
}

// markLogged records that err was printed as a log line on the console
// (not muted by --quiet), so that Main does not print it a second time.
func markLogged(err error, onConsole bool) {
	var e *ExitError
	if onConsole && errors.As(err, &e) {
		e.logged = true
	}
}

func wasLogged(err error) bool {
	var e *ExitError
	return errors.As(err, &e) && e.logged
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("production: exit code %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode returns the exit code (it implements kong.ExitCoder).
func (e *ExitError) ExitCode() int { return e.Code }

// ExitCode maps an error of [Runner.Run] to a process exit code: 0 for nil, the
// code of an [*ExitError] in its chain, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return 1
}

func exitError(code int, err error) error { return &ExitError{Code: code, Err: err} }

// PanicError is the crash reason of a life ended by a panic in a supervised
// goroutine (an app.Go function, an app.AfterFunc timer, configure).
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack

	// Error() and Stack as strings, made once on first use: a crash
	// reports its reason and stack several times (log line, Stats, events),
	// and each conversion would copy the stack; none of it is made on the
	// panicking goroutine, whose end the respawn waits for.
	once       sync.Once
	msg, stack string
}

func (p *PanicError) strings() (msg, stack string) {
	p.once.Do(func() { p.msg, p.stack = fmt.Sprintf("panic: %v", p.Value), string(p.Stack) })
	return p.msg, p.stack
}

func (p *PanicError) Error() string {
	msg, _ := p.strings()
	return msg
}

// Unwrap returns the panic value when it is an error.
func (p *PanicError) Unwrap() error {
	if err, ok := p.Value.(error); ok {
		return err
	}
	return nil
}

func newPanicError(v any) *PanicError { return &PanicError{Value: v, Stack: debug.Stack()} }

// stackOf returns the stack of a *PanicError in err's chain, or "".
func stackOf(err error) string {
	var p *PanicError
	if errors.As(err, &p) {
		_, stack := p.strings()
		return stack
	}
	return ""
}
