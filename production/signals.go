package production

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/goangel/angel/logrotate"
)

// Which signal starts which verb (the README has the table):
//
//	SIGHUP          reopen log files, Reload (coalesced; runs the onReload hooks)
//	SIGTTIN         Scale up by one
//	SIGTTOU         Scale down by one (never below 1)
//	SIGUSR1         reopen log files only (nginx's convention), no reload
//	SIGUSR2         Upgrade (binary upgrade)
//	SIGTERM/SIGINT  stop: drain every instance; a second one exits 130 at once,
//	                unless it came within stopSignalCopy of the first (a copy)
//	SIGPIPE         ignored: a console whose reader went away must not kill
//	                the process (writes then fail, and are counted)

// stopSignals and verbSignals are the signals Main listens to.
var (
	stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	verbSignals = []os.Signal{syscall.SIGHUP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1, syscall.SIGUSR2}
)

// stopSignalCopy: a stop signal that arrives this soon after the first one
// (by the runner's clock) is a copy of it, not a request to exit at once.
// GNU timeout, shells and supervisors signal a process and then its group,
// so the process gets the same signal twice within a millisecond.
const stopSignalCopy = time.Second

// notifySignals relays the process's signals to a channel and ignores
// SIGPIPE; stop undoes it.
func notifySignals() (<-chan os.Signal, func()) {
	signal.Ignore(syscall.SIGPIPE)
	c := make(chan os.Signal, 8)
	signal.Notify(c, append(append([]os.Signal(nil), stopSignals...), verbSignals...)...)
	return c, func() { signal.Stop(c) }
}

// onReloadHook adds f to what every reload runs first (TLS certificates): a
// SIGHUP, Runner.Reload, the admin listener's POST /reload. It must be
// called before Run.
func (r *Runner) onReloadHook(f func() error) { r.onReload = append(r.onReload, f) }

// handleSignals is the signal actor of Run: it acts on r.signals until done
// is closed. The first stop signal calls stop; the second closes abort.
func (r *Runner) handleSignals(rs *runState, done <-chan struct{}, stop func(), abort chan<- struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var verbs sync.WaitGroup
	defer verbs.Wait()
	defer cancel()
	// act runs a verb signal's work once the runner serves: a signal that
	// comes while the instances still start (a SIGHUP right after the
	// process was started) is acted on then, not ignored; once the runner
	// has finished, do says it is not serving.
	act := func(what string, f func() error) {
		verbs.Go(func() {
			select {
			case <-r.ready:
			case <-r.finished:
			case <-ctx.Done():
				return
			}
			r.logVerb(rs, what, f())
		})
	}
	stopping := false
	var firstStop time.Time
	for {
		var s os.Signal
		select {
		case <-done:
			return
		case s = <-r.signals:
		}
		log := rs.entry.WithField("signal", signalName(s))
		switch s {
		case syscall.SIGTERM, syscall.SIGINT:
			if stopping && rs.clock.Now().Sub(firstStop) < stopSignalCopy {
				log.Infof("Received %s again within %v of the first stop signal: the same stop (a signal sent to the process and its group arrives twice).", signalName(s), stopSignalCopy)
				continue
			}
			if stopping {
				log.Warnf("Received %s again while stopping: exiting now (code %d).", signalName(s), ExitInterrupted)
				close(abort)
				return
			}
			stopping, firstStop = true, rs.clock.Now()
			log.Infof("Received %s: stopping (send it again, %v or more later, to exit at once).", signalName(s), stopSignalCopy)
			stop()
		case syscall.SIGHUP:
			log.Info("Received SIGHUP: reopening the log files and reloading.")
			r.reopenLogs(rs)
			act("Reload", func() error { return r.Reload(ctx) })
		case syscall.SIGTTIN:
			log.Info("Received SIGTTIN: adding an instance.")
			act("Scale up", func() error { return r.do(ctx, verb{kind: verbScaleBy, n: 1}) })
		case syscall.SIGTTOU:
			log.Info("Received SIGTTOU: removing an instance.")
			act("Scale down", func() error { return r.do(ctx, verb{kind: verbScaleBy, n: -1}) })
		case syscall.SIGUSR1:
			r.reopenLogs(rs)
			log.Info("Received SIGUSR1: reopened the log files.") // in the new files
		case syscall.SIGUSR2:
			log.Info("Received SIGUSR2: upgrading the binary.")
			act("Upgrade", func() error { return r.Upgrade(ctx) })
		default:
			log.Debugf("Received %s: ignored", signalName(s))
		}
	}
}

// reportedError is an error its source has logged already (a failed
// reload, a failed binary upgrade): logVerb does not log it again, so that
// one failure is one ERROR line.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// reported marks err as logged by its source.
func reported(err error) error {
	if err == nil || isReported(err) {
		return err
	}
	return reportedError{err}
}

func isReported(err error) bool {
	var re reportedError
	return errors.As(err, &re)
}

func (r *Runner) logVerb(rs *runState, what string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
	case isReported(err):
	case errors.Is(err, ErrNotRunning):
		rs.entry.Warnf("%s ignored: the runner is not serving (starting or stopping).", what)
	case errors.Is(err, ErrLastInstance):
		rs.entry.Warnf("%s refused: %v.", what, err)
	default:
		rs.entry.WithError(err).Errorf("%s failed: %v", what, err)
	}
}

// reopenLogs makes the log files follow an external rotation (logrotate's
// postrotate kill -HUP): a file moved or removed away is recreated under
// its name.
func (r *Runner) reopenLogs(rs *runState) {
	for _, w := range []*logrotate.Writer{rs.logs.File, rs.logs.AccessFile} {
		if w == nil {
			continue
		}
		if err := w.Check(); err != nil {
			rs.entry.WithError(err).Warn("Reopening a log file failed")
		}
	}
}

var signalNames = map[os.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM",
	syscall.SIGTTIN: "SIGTTIN", syscall.SIGTTOU: "SIGTTOU", syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2", syscall.SIGPIPE: "SIGPIPE",
}

// signalName is the conventional name of s ("SIGTERM"), as operators type it.
func signalName(s os.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	return s.String()
}
