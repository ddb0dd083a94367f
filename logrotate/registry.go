package logrotate

// The registry: one shared log per file pattern in the process, opened
// by the first Open and closed with the last Writer.

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	rotatelogs "github.com/lestrrat-go/file-rotatelogs"
)

// registry keeps exactly one log per file pattern in the process: a
// process-wide table is the point (two independent writers on one file
// would interleave their size counts and race their rotations).
var registry = struct {
	sync.Mutex
	m map[string]*sharedLog
}{m: map[string]*sharedLog{}}

// Open opens (or joins) the rotating log described by cfg. The directory
// is created if needed; a directory or file that cannot be created or
// written is an error wrapping ErrOpen and naming the path, so callers can
// fail at start-up. Opening a pattern already open in this process returns
// a new Writer on the same log (ErrConflict if cfg differs).
func Open(cfg Config) (*Writer, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	registry.Lock()
	defer registry.Unlock()
	if l, ok := registry.m[s.pattern]; ok {
		if !l.s.same(s) {
			return nil, fmt.Errorf("%w: %s", ErrConflict, s.pattern)
		}
		l.refs++
		return &Writer{f: l}, nil
	}
	l, err := openLog(s)
	if err != nil {
		return nil, err
	}
	l.refs = 1
	registry.m[s.pattern] = l
	return &Writer{f: l}, nil
}

func openLog(s settings) (*sharedLog, error) {
	dir := s.dir
	if err := os.MkdirAll(dir, s.DirMode); err != nil {
		return nil, fmt.Errorf("%w: directory %s: %w", ErrOpen, dir, err)
	}
	if s.link != "" {
		if fi, err := os.Lstat(s.link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return nil, fmt.Errorf("%w: %s exists and is not a symlink (move it away: it would be replaced by a link to the current file)", ErrConfig, s.link)
		}
		if err := os.MkdirAll(filepath.Dir(s.link), s.DirMode); err != nil {
			return nil, fmt.Errorf("%w: directory %s: %w", ErrOpen, filepath.Dir(s.link), err)
		}
	}
	every := s.RotateEvery
	if every < 0 {
		every = 0
	}
	// file-rotatelogs names the files (strftime pattern, period
	// truncation, ".N" generations). Its own clean-up is neutralised
	// with a max age no file can reach (it would delete any file matching
	// its glob, miss the ".N" files and, with a count, the current file);
	// no link name is given (ours is atomic and does not depend on its
	// _lock file), and its Write is never called (it stats the file and
	// builds a name on every write).
	names, err := rotatelogs.New(s.pattern,
		rotatelogs.WithClock(clock(s.now)),
		rotatelogs.WithRotationTime(every),
		rotatelogs.WithMaxAge(200*365*24*time.Hour),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: pattern %q: %w", ErrConfig, s.pattern, err)
	}
	l := &sharedLog{
		s:     s,
		match: ownNames(filepath.Base(s.pattern)),
		names: names,
		kick:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
	}
	l.mu.Lock()
	err = l.rotateLocked(false)
	l.mu.Unlock()
	if err != nil {
		_ = names.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrOpen, s.pattern, err)
	}
	l.wg.Add(1)
	go l.background()
	return l, nil
}

type clock func() time.Time

func (c clock) Now() time.Time { return c() }

// release drops one reference to l and reports whether it was the last
// (l is then out of the registry: a new Open starts a new log).
func release(l *sharedLog) bool {
	registry.Lock()
	defer registry.Unlock()
	l.refs--
	if l.refs > 0 {
		return false
	}
	delete(registry.m, l.s.pattern)
	return true
}
