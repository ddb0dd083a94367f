package logrotate

// Rotation: switching to the next file, by time, by size or on demand,
// and keeping the symlink on the current file.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// rotateDue rotates if the period has ended (rechecked under the lock: the
// first writer past the deadline rotates, the others find it done).
func (l *sharedLog) rotateDue() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.deadline.IsZero() {
		return
	}
	now := l.s.now()
	if now.Before(l.deadline) {
		// A timer of a past period, or the monotonic clock ahead of the
		// wall clock: wait for the real end.
		l.armLocked(now)
		return
	}
	if err := l.rotateLocked(true); err != nil {
		l.rotationFailed(now, err)
		l.deadline = time.Unix(0, l.retryAt.Load())
		l.armLocked(now)
	}
}

// rotateFull rotates for size unless someone already did since gen, or a
// failed rotation is waiting for its retry time.
func (l *sharedLog) rotateFull(gen uint64) {
	if r := l.retryAt.Load(); r != 0 && l.s.now().UnixNano() < r {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.gen != gen || l.size.Load() < l.s.MaxSize {
		return
	}
	if err := l.rotateLocked(true); err != nil {
		l.rotationFailed(l.s.now(), err)
	}
}

// rotateRetry is how long writing goes on to the current file after a
// failed rotation before the next attempt.
const rotateRetry = time.Second

// rotationFailed (under the lock) schedules the next attempt and reports
// the failure, once until a rotation succeeds. Writing goes on to the
// current file meanwhile: nothing is lost, the file grows past its limit.
func (l *sharedLog) rotationFailed(now time.Time, err error) {
	l.retryAt.Store(now.Add(rotateRetry).UnixNano())
	if !l.failing {
		l.failing = true
		l.report(fmt.Errorf("%w (writing goes on to %s; retrying every %v)", err, l.name, rotateRetry))
	}
}

func (l *sharedLog) report(err error) {
	fmt.Fprintf(l.s.errOut, "logrotate: %v\n", err)
}

// rotateLocked moves to the next file name (asking file-rotatelogs for it)
// and switches to it. On failure the current file stays in use.
func (l *sharedLog) rotateLocked(count bool) error {
	err := l.names.Rotate()
	if err != nil {
		// file-rotatelogs refuses to rotate while a "<file>_lock" exists;
		// one left over by a crashed process would block rotation for
		// ever. Only one log per pattern exists in this process and we
		// hold its lock, so any lock file of ours is stale.
		if l.removeStaleLocks() > 0 {
			err = l.names.Rotate()
		}
	}
	if err != nil {
		// Report the directory problem precisely.
		if merr := os.MkdirAll(l.s.dir, l.s.DirMode); merr != nil {
			err = merr
		}
		return fmt.Errorf("%w: %s: %w", ErrRotate, l.s.pattern, err)
	}
	// file-rotatelogs keeps a descriptor on the file it created; ours is
	// the one written, so drop its own (its next Rotate works without).
	_ = l.names.Close()
	if err := l.switchLocked(l.names.CurrentFileName()); err != nil {
		return fmt.Errorf("%w: %w", ErrRotate, err)
	}
	if count {
		l.rotations.Add(1)
	}
	l.failing = false
	l.retryAt.Store(0)
	return nil
}

// switchLocked opens name and makes it the current file.
func (l *sharedLog) switchLocked(name string) error {
	fh, err := l.openFile(name)
	if err != nil {
		return err
	}
	l.installLocked(fh, name)
	return nil
}

func (l *sharedLog) openFile(name string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(name), l.s.DirMode); err != nil {
		return nil, err
	}
	// Read-write: if the file is deleted from outside, its content is
	// read back from this descriptor into the recreated file.
	return os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_RDWR, l.s.FileMode)
}

// installLocked makes fh the current file, closes the previous one, points
// the symlink at it and wakes the clean-up. A previous file deleted from
// outside has its content copied into fh first (unless a re-creation is
// already copying it out: it then gets the descriptor and closes it).
func (l *sharedLog) installLocked(fh *os.File, name string) {
	old := l.out
	if old != nil && old != l.salvaging && unlinked(old) {
		n, _ := io.Copy(fh, io.NewSectionReader(old, 0, 1<<62))
		l.salvaged.Add(n)
	}
	var size int64
	if fi, err := fh.Stat(); err == nil {
		size = fi.Size()
	}
	l.out, l.name, l.gen = fh, name, l.gen+1
	l.size.Store(size)
	now := l.s.now()
	l.deadline = l.nextDeadline(now)
	l.armLocked(now)
	if old != nil && old != l.salvaging {
		_ = old.Close() // no writer holds it: we have the write lock
	}
	if err := l.linkLocked(name); err != nil {
		l.report(err)
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// armLocked schedules the rotation by time. With the real clock a timer
// marks it due, so writes read no clock; with an injected clock, Check (and
// the periodic check) compares the clock with the deadline.
func (l *sharedLog) armLocked(now time.Time) {
	l.due.Store(false)
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.deadline.IsZero() || l.s.Clock != nil {
		return
	}
	l.timer = time.AfterFunc(l.deadline.Sub(now), func() { l.due.Store(true) })
}

// linkLocked points the Path symlink at name atomically (new link under a
// temporary name, renamed over the old one).
func (l *sharedLog) linkLocked(name string) error {
	if l.s.link == "" {
		return nil
	}
	target := name
	if filepath.Dir(name) == filepath.Dir(l.s.link) {
		target = filepath.Base(name)
	}
	tmp := fmt.Sprintf("%s.%d.tmp-link", l.s.link, os.Getpid())
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("symlink %s: %w", l.s.link, err)
	}
	if err := os.Rename(tmp, l.s.link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("symlink %s: %w", l.s.link, err)
	}
	return nil
}

// nextDeadline is the end of the period holding now, computed like the
// file names are: on local wall-clock time, so daily rotation happens at
// local midnight.
func (l *sharedLog) nextDeadline(now time.Time) time.Time {
	every := l.s.RotateEvery
	if every <= 0 {
		return time.Time{}
	}
	wall := time.Date(now.Year(), now.Month(), now.Day(), now.Hour(), now.Minute(), now.Second(), now.Nanosecond(), time.UTC)
	next := wall.Truncate(every).Add(every)
	d := time.Date(next.Year(), next.Month(), next.Day(), next.Hour(), next.Minute(), next.Second(), next.Nanosecond(), now.Location())
	if !d.After(now) { // daylight saving change
		d = now.Add(every)
	}
	return d
}

func (l *sharedLog) removeStaleLocks() int {
	dir := l.s.dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), "_lock")
		if ok && l.match.MatchString(base) && os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}
