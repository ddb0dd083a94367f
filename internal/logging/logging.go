package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/goangel/angel/logrotate"
)

// ErrLogFile: a log file (--log-file, --access-log-file) cannot be opened.
// The message names the path.
var ErrLogFile = errors.New("logging: cannot open log file")

// Logging is the runner's logger set-up.
type Logging struct {
	// Logger is the one logger of the runner, its supervisors and every
	// instance (instance entries carry the fields app, instance, life).
	Logger *logrus.Logger
	// Access is the access-log logger: nil when the access log is off,
	// == Logger when it goes to the main log.
	Access *logrus.Logger
	// File and AccessFile are the rotating files (nil when not used); their
	// Stats count rotations and write failures.
	File, AccessFile *logrotate.Writer

	closeOnce sync.Once
	closeErr  error
}

// Open builds the logger described by f. The console is stdout (coloured
// by level when stdout is a terminal); quiet mutes the console only, never
// the file. stderr receives the rotating files' failure reports. A log
// file that cannot be created or written is an error wrapping ErrLogFile
// and naming the path: the runner fails before starting any instance.
func Open(f Flags, quiet bool, stdout, stderr io.Writer) (*Logging, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	l := &Logging{}
	if _, ok := stderr.(*os.File); !ok && stderr != nil {
		stderr = &lockedWriter{w: stderr} // failure reports may come from several goroutines
	}
	var file io.Writer
	if f.LogFile != "" {
		w, err := logrotate.Open(f.rotateConfig(f.LogFile, f.LogFilePattern, stderr))
		if err != nil {
			return nil, fmt.Errorf("%w: --log-file %s: %w", ErrLogFile, f.LogFile, err)
		}
		l.File, file = w, w
	}
	if f.AccessLogFile != "" {
		w, err := logrotate.Open(f.rotateConfig(f.AccessLogFile, "", stderr))
		if err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("%w: --access-log-file %s: %w", ErrLogFile, f.AccessLogFile, err)
		}
		l.AccessFile = w
	}
	l.build(f, quiet, stdout, file)
	return l, nil
}

// OpenWriter is Open with the log file output going to file (when not nil)
// instead of --log-file's rotating files, and no access-log file. It is
// for tests and benchmarks that compare outputs with the same logger.
func OpenWriter(f Flags, quiet bool, stdout, file io.Writer) (*Logging, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f.AccessLogFile = ""
	l := &Logging{}
	l.build(f, quiet, stdout, file)
	return l, nil
}

func (f Flags) rotateConfig(path, pattern string, stderr io.Writer) logrotate.Config {
	every := f.LogRotateEvery
	if every == 0 {
		every = -1 // flag 0: never by time
	}
	return logrotate.Config{
		Path:        path,
		Pattern:     pattern,
		RotateEvery: every,
		MaxSize:     int64(f.LogMaxSize),
		MaxAge:      f.LogMaxAge,
		MaxFiles:    f.LogMaxFiles,
		ErrorOutput: stderr,
	}
}

func (l *Logging) build(f Flags, quiet bool, stdout, file io.Writer) {
	level, _ := logrus.ParseLevel(f.LogLevel) // checked by Validate
	json := f.LogFormat == "json"
	plain := func() logrus.Formatter {
		if json {
			return jsonFormatter()
		}
		return &TextFormatter{}
	}

	var console io.Writer
	colour := false
	if !quiet && stdout != nil {
		console = stdout
		if fh, ok := stdout.(*os.File); ok {
			colour = !json && term.IsTerminal(int(fh.Fd()))
		} else {
			// *os.File writes are safe from many goroutines; anything
			// else (a buffer in tests) gets a lock.
			console = &lockedWriter{w: stdout}
		}
	}
	if file != nil {
		file = errorless{file}
	}

	lg := logrus.New()
	lg.SetLevel(level)
	// Formatting runs outside logrus' lock already; writes need none
	// either: every writer below is safe for concurrent use and writes a
	// line in one call.
	lg.SetNoLock()
	lg.Formatter = plain()
	switch {
	case file == nil && console == nil:
		lg.Out = io.Discard
	case file == nil:
		lg.Out = console
	case console == nil:
		lg.Out = file
	case !colour:
		lg.Out = teeWriter{console, file} // same bytes for both: format once
	default:
		lg.Out = console
		lg.AddHook(logrotate.NewHook(file, plain())) // the file gets no colours
	}
	if colour {
		lg.Formatter = &TextFormatter{Colour: true}
	}
	l.Logger = lg

	switch {
	case l.AccessFile != nil:
		a := logrus.New()
		a.SetLevel(logrus.InfoLevel)
		a.SetNoLock()
		a.Out, a.Formatter = errorless{l.AccessFile}, plain()
		l.Access = a
	case f.AccessLog:
		l.Access = lg
	}
}

// Close flushes and closes the log files; the loggers then write to the
// console only (file writes after Close go to stderr, see
// logrotate.Writer.Write). Close is idempotent.
func (l *Logging) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, w := range []*logrotate.Writer{l.File, l.AccessFile} {
			if w != nil {
				errs = append(errs, w.Close())
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// lockedWriter serialises writes to a writer not known to be safe.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// teeWriter writes each line to the console and the file; a console
// failure never keeps a line from the file.
type teeWriter struct{ console, file io.Writer }

func (t teeWriter) Write(p []byte) (int, error) {
	_, _ = t.console.Write(p)
	return t.file.Write(p)
}

// errorless hides file write errors from logrus, which would print each
// failed line on stderr: logrotate counts them and reports each episode
// once.
type errorless struct{ w io.Writer }

func (e errorless) Write(p []byte) (int, error) {
	_, _ = e.w.Write(p)
	return len(p), nil
}

// Fields of an instance's entries.
const (
	AppKey      = "app"
	InstanceKey = "instance"
	LifeKey     = "life"
)

// Instance returns the entry an instance logs through: the runner's logger
// with the app name, the instance number and its life (1 for the first,
// bumped at each respawn).
func Instance(lg logrus.FieldLogger, app string, instance, life int) *logrus.Entry {
	return lg.WithFields(logrus.Fields{AppKey: app, InstanceKey: instance, LifeKey: life})
}
