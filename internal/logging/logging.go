package logging

import (
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/logrotate"
)

// ErrLogFile: a log file (--log-file, --access-log-file) cannot be opened.
// Errors wrapping it name the flag, the path and logrotate's reason, and
// add no prefix of their own (the caller says "logging").
var ErrLogFile = errors.New("logging: cannot open log file")

// fileError is an ErrLogFile naming the flag and the path.
type fileError struct {
	flag, path string
	err        error
}

func (e *fileError) Error() string   { return e.flag + " " + e.path + ": " + e.err.Error() }
func (e *fileError) Unwrap() []error { return []error{ErrLogFile, e.err} }

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

	console *console // nil when muted
	late    lateHooks

	closeOnce sync.Once
	closeErr  error
}

// Open builds the logger described by f. The console is stdout for trace
// to info lines and stderr for warnings and errors (stdout for all when
// stderr is nil), each coloured by level when it is a terminal and
// NO_COLOR is not set; under systemd's journal (JOURNAL_STREAM names
// stdout) every line goes to stdout without colour or timestamp, its
// level as an sd-daemon "<N>" prefix. quiet mutes the console only, never
// the file. stderr also receives the rotating files' failure reports. A log
// file that cannot be created or written is an error wrapping ErrLogFile
// and naming the path: the runner fails before starting any instance.
func Open(f Flags, quiet bool, stdout, stderr io.Writer) (*Logging, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	l := &Logging{}
	stdout, stderr = lockOutputs(stdout, stderr)
	var file io.Writer
	if f.LogFile != "" {
		w, err := logrotate.Open(f.rotateConfig(f.LogFile, f.LogFilePattern, stderr))
		if err != nil {
			return nil, &fileError{"--log-file", f.LogFile, err}
		}
		l.File, file = w, w
	}
	if f.AccessLogFile != "" {
		w, err := logrotate.Open(f.rotateConfig(f.AccessLogFile, "", stderr))
		if err != nil {
			_ = l.Close()
			return nil, &fileError{"--access-log-file", f.AccessLogFile, err}
		}
		l.AccessFile = w
	}
	l.build(f, quiet, stdout, stderr, file)
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
	l.build(f, quiet, stdout, nil, file)
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

func (l *Logging) build(f Flags, quiet bool, stdout, stderr, file io.Writer) {
	level, _ := logrus.ParseLevel(f.LogLevel) // checked by Validate
	json := f.LogFormat == "json"
	plain := func() logrus.Formatter {
		if json {
			return jsonFormatter()
		}
		return &TextFormatter{}
	}
	if file != nil {
		file = errorless{file}
	}
	var con *console
	if !quiet && stdout != nil {
		con = newConsole(stdout, stderr, !json)
		l.console = con
	}

	lg := logrus.New()
	lg.SetLevel(level)
	// Formatting runs outside logrus' lock already; writes need none
	// either: every writer below is safe for concurrent use and writes a
	// line in one call.
	lg.SetNoLock()
	lg.Formatter = plain()
	lg.AddHook(&l.late)
	switch {
	case file == nil && con == nil:
		lg.Out = io.Discard
	case con == nil:
		lg.Out = file
	case con.journal:
		// The journal stamps and levels each line itself: its own form
		// on the console, the plain one in the file.
		lg.Formatter = levelTagged{journalFormatter(json)}
		lg.Out = con
		if file != nil {
			lg.AddHook(logrotate.NewHook(file, plain()))
		}
	default:
		// One format for both: the console routes the line by its level
		// (and colours it per stream), the file gets the same bytes.
		lg.Formatter = levelTagged{plain()}
		lg.Out = con
		con.file = file
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
	if l.Access != nil && f.AccessLogNoQuery {
		l.Access.AddHook(dropQuery{})
	}
}

// AddHook adds a hook to Logger while other goroutines may already log
// through it. Logger runs without logrus' lock (SetNoLock), so its own
// AddHook is safe only before anything else logs.
func (l *Logging) AddHook(h logrus.Hook) { l.late.add(h) }

// lateHooks fires the hooks added by Logging.AddHook: the list is replaced
// whole (copy on write), never changed in place under a reader.
type lateHooks struct {
	mu    sync.Mutex // serializes add
	hooks atomic.Pointer[[]logrus.Hook]
}

func (h *lateHooks) add(hook logrus.Hook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var hooks []logrus.Hook
	if old := h.hooks.Load(); old != nil {
		hooks = append(hooks, *old...)
	}
	hooks = append(hooks, hook)
	h.hooks.Store(&hooks)
}

func (h *lateHooks) Levels() []logrus.Level { return logrus.AllLevels }

func (h *lateHooks) Fire(e *logrus.Entry) error {
	hooks := h.hooks.Load()
	if hooks == nil {
		return nil
	}
	var errs []error
	for _, hook := range *hooks {
		if slices.Contains(hook.Levels(), e.Level) {
			errs = append(errs, hook.Fire(e))
		}
	}
	return errors.Join(errs...)
}

// ConsoleWriteErrors is the number of console lines lost because stdout
// or stderr could not be written (a closed pipe, a full disk behind a
// redirection). Each failure episode is reported once on the other stream.
func (l *Logging) ConsoleWriteErrors() uint64 {
	if l.console == nil {
		return 0
	}
	return l.console.errors.Load()
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
