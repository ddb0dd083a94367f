package logging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"
)

// console is the console side of the logger. It receives each line with
// its level in a first byte (put there by levelTagged) and routes it:
// trace to info to stdout, warnings and errors to stderr (stdout when no
// stderr is given, and under the journal), coloured by level on a stream
// that is a terminal unless NO_COLOR is set. A failing console write
// (closed pipe, full disk behind a redirection) is never fatal and never
// reaches logrus (which would print every failed line): it is counted and
// reported once per episode on the other stream. file, when set, gets
// every line too (same bytes: one format for both).
type console struct {
	out, err             io.Writer
	colourOut, colourErr bool
	journal              bool
	file                 io.Writer

	errors atomic.Uint64
	// failingOut, failingErr: an episode of failed writes on that stream is
	// under way (reported once; it ends with a write that succeeds there).
	failingOut, failingErr atomic.Bool
	pool                   sync.Pool
}

func newConsole(stdout, stderr io.Writer, text bool) *console {
	c := &console{out: stdout, err: stderr, pool: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	if c.err == nil {
		c.err = stdout
	}
	if c.journal = underJournal(stdout, os.Getenv("JOURNAL_STREAM")); c.journal {
		c.err = stdout
		return c
	}
	if text && os.Getenv("NO_COLOR") == "" { // https://no-color.org
		c.colourOut, c.colourErr = isTerminal(c.out), isTerminal(c.err)
	}
	return c
}

func isTerminal(w io.Writer) bool {
	fh, ok := w.(*os.File)
	return ok && term.IsTerminal(int(fh.Fd()))
}

// Write implements io.Writer for logrus: p is one tagged line.
func (c *console) Write(p []byte) (int, error) {
	if len(p) < 2 {
		return len(p), nil
	}
	lvl, line := logrus.Level(p[0]), p[1:]
	w, colour := c.out, c.colourOut
	if lvl <= logrus.WarnLevel {
		w, colour = c.err, c.colourErr
	}
	var err error
	if colour {
		b := c.pool.Get().(*bytes.Buffer)
		b.Reset()
		b.WriteString(levelColour[lvl])
		b.Write(line[:len(line)-1])
		b.WriteString(colourReset)
		b.WriteByte('\n')
		_, err = w.Write(b.Bytes())
		if b.Cap() <= 64<<10 {
			c.pool.Put(b)
		}
	} else {
		_, err = w.Write(line)
	}
	failing := &c.failingOut
	if w == c.err && c.err != c.out {
		failing = &c.failingErr
	}
	if err != nil {
		c.failed(w, failing, err)
	} else if failing.Load() {
		failing.Store(false)
	}
	if c.file != nil {
		_, _ = c.file.Write(line)
	}
	return len(p), nil
}

func (c *console) failed(w io.Writer, failing *atomic.Bool, err error) {
	c.errors.Add(1)
	if !failing.CompareAndSwap(false, true) {
		return
	}
	other, name := c.err, "stdout"
	if w == c.err && c.err != c.out {
		other, name = c.out, "stderr"
	}
	_, _ = fmt.Fprintf(other, "logging: writing the console (%s) failed, console lines are being lost until a write succeeds (log files still get them): %v\n", name, err)
}

// levelTagged puts the entry's level in the first byte of its formatted
// line, for the console to route it; the console strips it.
type levelTagged struct{ f logrus.Formatter }

func (t levelTagged) Format(e *logrus.Entry) ([]byte, error) {
	if e.Buffer == nil {
		e.Buffer = new(bytes.Buffer)
		defer func() { e.Buffer = nil }()
	}
	lvl := e.Level
	if lvl > logrus.TraceLevel {
		lvl = logrus.TraceLevel
	}
	e.Buffer.WriteByte(byte(lvl))
	return t.f.Format(e)
}

// journalPriority maps a level to syslog's priorities, as sd-daemon(3)'s
// "<N>" line prefixes carry them: journalctl -p err shows error and worse.
var journalPriority = [...]string{
	logrus.PanicLevel: "<2>",
	logrus.FatalLevel: "<2>",
	logrus.ErrorLevel: "<3>",
	logrus.WarnLevel:  "<4>",
	logrus.InfoLevel:  "<6>",
	logrus.DebugLevel: "<7>",
	logrus.TraceLevel: "<7>",
}

// journalFormatter is the console form under the journal: no timestamp
// (the journal stamps each line), no colour, and the level as an "<N>"
// prefix on every line (a stack block's lines included).
func journalFormatter(json bool) logrus.Formatter {
	if json {
		return journalJSON{&logrus.JSONFormatter{DisableTimestamp: true}}
	}
	return &TextFormatter{Journal: true}
}

type journalJSON struct{ f *logrus.JSONFormatter }

func (j journalJSON) Format(e *logrus.Entry) ([]byte, error) {
	if e.Buffer == nil {
		e.Buffer = new(bytes.Buffer)
		defer func() { e.Buffer = nil }()
	}
	e.Buffer.WriteString(journalPriority[min(e.Level, logrus.TraceLevel)])
	return j.f.Format(e)
}

// lockOutputs wraps the writers not known to be safe for concurrent
// writes (anything but an *os.File: a buffer in tests) in a lock, one lock
// for both when they are the same writer.
func lockOutputs(stdout, stderr io.Writer) (io.Writer, io.Writer) {
	same := stdout != nil && stdout == stderr
	if _, ok := stdout.(*os.File); !ok && stdout != nil {
		stdout = &lockedWriter{w: stdout}
	}
	switch _, ok := stderr.(*os.File); {
	case same:
		stderr = stdout
	case !ok && stderr != nil:
		stderr = &lockedWriter{w: stderr}
	}
	return stdout, stderr
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

// dropQuery takes the query string out of access-log entries
// (--access-log-without-query).
type dropQuery struct{}

func (dropQuery) Levels() []logrus.Level { return []logrus.Level{logrus.InfoLevel} }

func (dropQuery) Fire(e *logrus.Entry) error {
	if v, ok := e.Data[URIKey].(string); ok {
		if path, _, found := strings.Cut(v, "?"); found {
			e.Data[URIKey] = path
		}
	}
	return nil
}
