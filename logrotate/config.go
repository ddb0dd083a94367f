package logrotate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config describes one rotating log. Its zero value is not usable on its
// own only because it names no file: Config{Path: "app.log"} rotates daily,
// never by size, keeps every file, and keeps app.log as a symlink to the
// current file.
type Config struct {
	// Path is where the log "is" for a reader: when set, it is kept as a
	// symlink to the file being written (replaced atomically at every
	// rotation). When Pattern is empty, the file names are derived from
	// Path by inserting a timestamp before the extension:
	// "/var/log/app.log" gives "/var/log/app.20261125.log" for daily
	// rotation, "app.2026112514.log" for hourly, and so on (see
	// DerivePattern).
	Path string

	// Pattern is a strftime pattern naming the files, e.g.
	// "/var/log/app.%Y%m%d.log" (file-rotatelogs syntax). A file needing a
	// second name within one period (size rotation, or a forced Rotate)
	// gets a numeric suffix: "app.20261125.log.1", ".2", ...
	Pattern string

	// RotateEvery is the rotation period, aligned on multiples of the
	// period in local wall-clock time (daily rotation happens at
	// midnight). Zero means 24h; a negative value turns rotation by time
	// off.
	RotateEvery time.Duration

	// MaxSize rotates the file once it holds at least this many bytes.
	// Zero turns rotation by size off. A file may exceed MaxSize by the
	// lines being written at the moment it crosses the limit: a line is
	// never split between two files.
	MaxSize int64

	// MaxAge removes files of this log last modified more than MaxAge ago.
	// MaxFiles keeps only the MaxFiles most recent files of this log
	// (the current one included). Zero turns either off; when both are
	// zero nothing is ever removed. Clean-up only ever touches files whose
	// names this log would produce (the pattern plus an optional ".N"
	// suffix), never the current file.
	MaxAge   time.Duration
	MaxFiles int

	// CheckEvery is how often a background goroutine checks that the
	// current file still exists under its name (and recreates it if it was
	// removed or renamed away). Zero means one second; negative turns the
	// check off (Check can still be called).
	CheckEvery time.Duration

	// Clock returns the current time; nil means time.Now. With the real
	// clock a timer marks the end of each period, so a write reads no
	// clock. With an injected clock (tests driving rotation by time
	// without sleeping), the period's end is noticed by Check, which the
	// background goroutine runs every CheckEvery and tests call directly.
	Clock func() time.Time

	// ErrorOutput receives one line per failure episode (a failing write
	// is reported once, until a write succeeds again) and writes made
	// after Close. Nil means os.Stderr. It must not write back into this
	// log (it may be called while a rotation holds the log's lock).
	ErrorOutput io.Writer

	// FileMode is the permission of new files (zero: 0644); DirMode of
	// created directories (zero: 0755).
	FileMode os.FileMode
	DirMode  os.FileMode
}

// settings is a Config with the defaults filled in and paths made absolute.
type settings struct {
	Config
	link    string // absolute symlink path, "" for none
	pattern string // absolute strftime pattern
	dir     string // its directory, "%%" unescaped
	now     func() time.Time
	errOut  io.Writer
}

func (c Config) resolve() (settings, error) {
	s := settings{Config: c}
	if c.Path == "" && c.Pattern == "" {
		return s, fmt.Errorf("%w: neither Path nor Pattern is set", ErrConfig)
	}
	if c.MaxSize < 0 || c.MaxAge < 0 || c.MaxFiles < 0 {
		return s, fmt.Errorf("%w: MaxSize, MaxAge and MaxFiles must not be negative", ErrConfig)
	}
	if s.RotateEvery == 0 {
		s.RotateEvery = 24 * time.Hour
	}
	if s.CheckEvery == 0 {
		s.CheckEvery = time.Second
	}
	if s.FileMode == 0 {
		s.FileMode = 0o644
	}
	if s.DirMode == 0 {
		s.DirMode = 0o755
	}
	s.now = c.Clock
	if s.now == nil {
		s.now = time.Now
	}
	s.errOut = c.ErrorOutput
	if s.errOut == nil {
		s.errOut = os.Stderr
	}
	if c.Path != "" {
		abs, err := filepath.Abs(c.Path)
		if err != nil {
			return s, fmt.Errorf("%w: %s: %w", ErrConfig, c.Path, err)
		}
		s.link = abs
	}
	p := c.Pattern
	if p == "" {
		p = DerivePattern(s.link, s.RotateEvery)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return s, fmt.Errorf("%w: %s: %w", ErrConfig, p, err)
	}
	s.pattern = abs
	if !strings.Contains(filepath.Base(abs), "%") && s.link == abs {
		return s, fmt.Errorf("%w: Pattern %q has no time field and equals Path", ErrConfig, c.Pattern)
	}
	dir := filepath.Dir(abs)
	if strings.Contains(strings.ReplaceAll(dir, "%%", ""), "%") {
		return s, fmt.Errorf("%w: Pattern %q: time fields are only supported in the file name, not in directories (write a literal %% as %%%%)", ErrConfig, c.Pattern)
	}
	s.dir = strings.ReplaceAll(dir, "%%", "%")
	return s, nil
}

// same reports whether two resolved configurations describe the same log
// (the Clock and ErrorOutput functions are not compared).
func (s settings) same(o settings) bool {
	return s.link == o.link && s.pattern == o.pattern && s.RotateEvery == o.RotateEvery &&
		s.MaxSize == o.MaxSize && s.MaxAge == o.MaxAge && s.MaxFiles == o.MaxFiles &&
		s.FileMode == o.FileMode && s.DirMode == o.DirMode && s.CheckEvery == o.CheckEvery
}

// DerivePattern turns a plain path into a strftime pattern by inserting a
// timestamp fine enough for the rotation period before the extension:
// "/var/log/app.log" with 24h gives "/var/log/app.%Y%m%d.log", with 1h
// "/var/log/app.%Y%m%d%H.log", with 1m "...%Y%m%d%H%M.log", below a minute
// "...%Y%m%d%H%M%S.log". A path without an extension gets the timestamp
// appended after a dot. A zero period means 24h; a negative one (no
// rotation by time) uses the daily form.
func DerivePattern(path string, every time.Duration) string {
	stamp := "%Y%m%d"
	if every == 0 {
		every = 24 * time.Hour
	}
	switch {
	case every < 0 || every >= 24*time.Hour:
	case every >= time.Hour:
		stamp += "%H"
	case every >= time.Minute:
		stamp += "%H%M"
	default:
		stamp += "%H%M%S"
	}
	path = strings.ReplaceAll(path, "%", "%%")
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	if ext == "" || ext == base {
		return dir + base + "." + stamp
	}
	return dir + strings.TrimSuffix(base, ext) + "." + stamp + ext
}
