package logrotate

import (
	"bytes"
	"io"
	"sync"

	"github.com/sirupsen/logrus"
)

// Hook is a logrus hook writing each entry, formatted by its own
// formatter, to an io.Writer (typically a *Writer). Fire never returns the
// write's error: a *Writer already counts and reports failures once per
// episode, and logrus would print every failed line to stderr.
type Hook struct {
	w      io.Writer
	f      logrus.Formatter
	levels []logrus.Level
	pool   sync.Pool
}

// NewHook returns a hook writing entries of the given levels (all when
// none is given) to w, formatted by f (nil: logrus.TextFormatter without
// colours).
func NewHook(w io.Writer, f logrus.Formatter, levels ...logrus.Level) *Hook {
	if f == nil {
		f = &logrus.TextFormatter{DisableColors: true}
	}
	if len(levels) == 0 {
		levels = logrus.AllLevels
	}
	return &Hook{w: w, f: f, levels: levels, pool: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Levels implements logrus.Hook.
func (h *Hook) Levels() []logrus.Level { return h.levels }

// Fire implements logrus.Hook.
func (h *Hook) Fire(e *logrus.Entry) error {
	buf := h.pool.Get().(*bytes.Buffer)
	buf.Reset()
	saved := e.Buffer
	e.Buffer = buf
	b, err := h.f.Format(e)
	e.Buffer = saved
	if err == nil {
		_, _ = h.w.Write(b)
	}
	if buf.Cap() <= 64<<10 {
		h.pool.Put(buf)
	}
	return err
}
