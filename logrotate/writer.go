package logrotate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rotatelogs "github.com/lestrrat-go/file-rotatelogs"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("logrotate: invalid config")
	// ErrOpen: the log directory or file cannot be created or written.
	// The message names the path.
	ErrOpen = errors.New("logrotate: cannot open log file")
	// ErrConflict: the same file pattern is already open in this process
	// with a different Config.
	ErrConflict = errors.New("logrotate: log already open with a different config")
	// ErrRotate: a rotation could not create the next file; writing goes
	// on to the current one.
	ErrRotate = errors.New("logrotate: rotation failed")
)

// Stats are counters of one log (shared by every Writer on it).
type Stats struct {
	File          string // file being written
	Size          int64  // bytes in it (as counted by this process)
	Rotations     uint64 // files opened after the first (time, size, Rotate)
	Recreated     uint64 // times the current file was found missing and recreated
	Salvaged      int64  // bytes copied from a deleted current file into its recreation
	WriteErrors   uint64 // writes that failed: those lines are lost
	CheckErrors   uint64 // checks that found the file gone and could not re-create it (nothing lost: writing goes on to the old file)
	ErrorEpisodes uint64 // failure episodes (of writes, of checks) reported on ErrorOutput
	AfterClose    uint64 // writes made through a closed Writer (not lost: see Writer.Write)
	Removed       uint64 // old files removed by clean-up
}

// Writer is an io.Writer appending to a rotating log. It is safe for
// concurrent use; each Write lands whole in exactly one file (lines are
// never split across a rotation). Every Writer opened in one process on
// the same pattern shares one underlying log (one open file, one rotation
// schedule); each Writer must be closed, and the log is flushed and closed
// with the last one.
type Writer struct {
	f      *log
	closed atomic.Bool
}

// log is the process-wide state of one rotating log.
type log struct {
	s     settings
	match *regexp.Regexp // names this log produces (pattern + optional .N)
	names *rotatelogs.RotateLogs

	mu       sync.RWMutex // RLock: write to out, clean up; Lock: swap out
	out      *os.File     // the current file; nil only after Close
	name     string
	deadline time.Time   // next rotation by time; zero: never
	timer    *time.Timer // sets due at deadline (real clock only)
	gen      uint64      // bumped at each swap of out
	closed   bool
	failing  bool // rotations are failing (reported once until one succeeds)
	refs     int  // guarded by registry.mu
	// salvaging is the deleted file a re-creation is copying out (nil:
	// none); a rotation meanwhile leaves it open for that copy to finish.
	salvaging *os.File
	salvageTo string // the file it is being copied into (clean-up leaves it alone)

	checkMu   sync.Mutex        // one Check at a time
	checkFail atomic.Bool       // checks are failing (reported once until one succeeds)
	onRemove  func(path string) // tests: called before clean-up removes path

	size      atomic.Int64
	due       atomic.Bool // the period has ended: the next write rotates
	salvaged  atomic.Int64
	retryAt   atomic.Int64 // after a failed rotation: no new attempt before (UnixNano)
	inEpisode atomic.Bool
	reported  atomic.Bool // a write after Close has been reported

	rotations, recreated, writeErrors, checkErrors, episodes, afterCloseN, removed atomic.Uint64

	kick chan struct{} // wakes the clean-up goroutine
	stop chan struct{}
	wg   sync.WaitGroup
}

// registry keeps exactly one log per file pattern in the process: a
// process-wide table is the point (two independent writers on one file
// would interleave their size counts and race their rotations).
var registry = struct {
	sync.Mutex
	m map[string]*log
}{m: map[string]*log{}}

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

func openLog(s settings) (*log, error) {
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
	l := &log{
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

// Write appends p to the current file, rotating first if the period has
// ended, and after if the file reached MaxSize. It never blocks on
// anything but the file write itself (and a rotation in progress).
//
// A failing write returns the error, is counted in Stats.WriteErrors, and
// is reported on ErrorOutput once per episode (an episode ends with the
// next successful write).
//
// A write through a closed Writer is not dropped: it goes to the log if
// another Writer keeps it open, else to ErrorOutput (the first such write
// is reported there); it is counted in Stats.AfterClose and returns
// len(p) once written.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed.Load() {
		return w.f.afterClose(p)
	}
	return w.f.write(p)
}

func (l *log) write(p []byte) (int, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return l.afterClose(p)
	}
	if l.due.Load() {
		l.mu.RUnlock()
		l.rotateDue()
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return l.afterClose(p)
		}
	}
	out, gen, name := l.out, l.gen, l.name
	n, err := out.Write(p)
	size := l.size.Add(int64(n))
	l.mu.RUnlock()
	if err != nil {
		l.failed(name, err)
		return n, err
	}
	if l.inEpisode.Load() {
		l.inEpisode.Store(false)
	}
	if l.s.MaxSize > 0 && size >= l.s.MaxSize {
		l.rotateFull(gen)
	}
	return n, nil
}

// failed counts a lost write and reports the episode's first one.
func (l *log) failed(name string, err error) {
	l.writeErrors.Add(1)
	if l.inEpisode.CompareAndSwap(false, true) {
		l.episodes.Add(1)
		fmt.Fprintf(l.s.errOut, "logrotate: writing %s failed, lines are being lost until a write succeeds: %v\n", name, err)
	}
}

func (l *log) afterClose(p []byte) (int, error) {
	l.afterCloseN.Add(1)
	l.mu.RLock()
	if !l.closed && l.out != nil {
		n, err := l.out.Write(p)
		l.size.Add(int64(n))
		l.mu.RUnlock()
		return n, err
	}
	l.mu.RUnlock()
	if l.reported.CompareAndSwap(false, true) {
		fmt.Fprintf(l.s.errOut, "logrotate: write after Close of %s; redirected here\n", l.s.pattern)
	}
	return l.s.errOut.Write(p)
}

func (l *log) current() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.name
}

// rotateDue rotates if the period has ended (rechecked under the lock: the
// first writer past the deadline rotates, the others find it done).
func (l *log) rotateDue() {
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
func (l *log) rotateFull(gen uint64) {
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
func (l *log) rotationFailed(now time.Time, err error) {
	l.retryAt.Store(now.Add(rotateRetry).UnixNano())
	if !l.failing {
		l.failing = true
		l.report(fmt.Errorf("%w (writing goes on to %s; retrying every %v)", err, l.name, rotateRetry))
	}
}

func (l *log) report(err error) {
	fmt.Fprintf(l.s.errOut, "logrotate: %v\n", err)
}

// rotateLocked moves to the next file name (asking file-rotatelogs for it)
// and switches to it. On failure the current file stays in use.
func (l *log) rotateLocked(count bool) error {
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
func (l *log) switchLocked(name string) error {
	fh, err := l.openFile(name)
	if err != nil {
		return err
	}
	l.installLocked(fh, name)
	return nil
}

func (l *log) openFile(name string) (*os.File, error) {
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
func (l *log) installLocked(fh *os.File, name string) {
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
func (l *log) armLocked(now time.Time) {
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
func (l *log) linkLocked(name string) error {
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
func (l *log) nextDeadline(now time.Time) time.Time {
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

func (l *log) removeStaleLocks() int {
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

// Rotate closes the current file and starts a new one now (a ".N" name
// within the same period), e.g. on SIGHUP.
func (w *Writer) Rotate() error {
	l := w.f
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%w: rotate", ErrClosedLog)
	}
	return l.rotateLocked(true)
}

// ErrClosedLog: Rotate or Check on a log whose last Writer was closed.
var ErrClosedLog = errors.New("logrotate: log closed")

// Check makes sure the current file still exists under its name: if it was
// removed or renamed away, it is recreated and writing goes on there. A
// file deleted from outside has its content (lines written before and
// since the deletion) copied into the recreated file from the descriptor
// still open on it, so nothing is lost. Check also rotates if the period
// has ended (with an injected Config.Clock, this is how rotation by time
// happens). A background goroutine calls it every Config.CheckEvery;
// callers may call it too.
func (w *Writer) Check() error { return w.f.check() }

func (l *log) check() error {
	l.checkMu.Lock()
	defer l.checkMu.Unlock()
	l.mu.RLock()
	closed := l.closed
	due := !l.deadline.IsZero() && !l.s.now().Before(l.deadline)
	l.mu.RUnlock()
	if closed {
		return ErrClosedLog
	}
	if due {
		l.due.Store(true)
		l.rotateDue()
	}
	l.mu.RLock()
	out, name := l.out, l.name
	l.mu.RUnlock()
	if out == nil { // closed meanwhile
		return ErrClosedLog
	}
	if fi, err := os.Stat(name); err == nil {
		if ofi, err := out.Stat(); err == nil && os.SameFile(fi, ofi) {
			l.checkFail.Store(false)
			return nil
		}
	}
	if err := l.recreate(out, name); err != nil {
		l.checkErrors.Add(1)
		if l.checkFail.CompareAndSwap(false, true) {
			l.episodes.Add(1)
			l.report(fmt.Errorf("%w (writing goes on to the old file, nothing is lost; retrying at each check)", err))
		}
		return err
	}
	l.checkFail.Store(false)
	return nil
}

// recreate reopens the current file name after the file vanished (or was
// replaced). If the old file was deleted (no name left), its content is
// still readable through our descriptor: it is copied into the new file,
// the bulk without the lock, the tail under it, so nothing written before
// or since the deletion is lost. If the name cannot be re-created, writing
// goes on to the old descriptor and the next check tries again. Called
// under checkMu.
func (l *log) recreate(old *os.File, name string) error {
	fh, err := l.openFile(name)
	if err != nil {
		return fmt.Errorf("%w: re-create %s: %w", ErrOpen, name, err)
	}
	l.mu.Lock()
	if l.closed || l.out != old {
		l.mu.Unlock()
		_ = fh.Close() // rotated meanwhile: the rotation took care of old
		return nil
	}
	deleted := unlinked(old)
	if !deleted { // renamed away: its lines stay where it went
		l.installLocked(fh, name)
		l.recreated.Add(1)
		l.mu.Unlock()
		return nil
	}
	l.salvaging, l.salvageTo = old, name
	l.mu.Unlock()

	copied, _ := io.Copy(fh, io.NewSectionReader(old, 0, 1<<62))

	l.mu.Lock()
	if l.out == old && !l.closed {
		n, _ := io.Copy(fh, io.NewSectionReader(old, copied, 1<<62))
		l.salvaged.Add(copied + n)
		l.installLocked(fh, name) // old is l.salvaging: not copied again
		l.salvaging, l.salvageTo = nil, ""
		l.recreated.Add(1)
		l.mu.Unlock()
		return old.Close()
	}
	// A rotation switched away from old meanwhile and left it to us (Close
	// waits for a running Check): the rest is copied, and fh stays a file
	// of this log holding the old lines.
	n, _ := io.Copy(fh, io.NewSectionReader(old, copied, 1<<62))
	l.salvaged.Add(copied + n)
	l.recreated.Add(1)
	l.salvaging, l.salvageTo = nil, ""
	l.mu.Unlock()
	return errors.Join(old.Close(), fh.Close())
}

// background runs the periodic Check and the clean-up of old files. It is
// owned by the log: Close of the last Writer stops it (stop) and waits for
// it (wg).
func (l *log) background() {
	defer l.wg.Done()
	var tick <-chan time.Time
	if l.s.CheckEvery > 0 {
		t := time.NewTicker(l.s.CheckEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
			l.recovered(func() { _ = l.check() })
		case <-l.kick:
			l.recovered(l.cleanup)
		}
	}
}

// recovered runs one round of background work. A panic in it (a bug here,
// or a panicking ErrorOutput) would kill the process from a goroutine the
// application cannot guard: it is reported on ErrorOutput with its stack
// instead, and the next round runs as usual.
func (l *log) recovered(round func()) {
	defer func() {
		if p := recover(); p != nil {
			defer func() { _ = recover() }() // ErrorOutput panicking again
			l.report(fmt.Errorf("background check panicked: %v\n%s", p, debug.Stack()))
		}
	}()
	round()
}

// cleanup removes old files of this log by age and count. It only
// considers names this log produces (pattern + optional ".N"), never the
// current file nor the symlink.
func (l *log) cleanup() {
	if l.s.MaxAge <= 0 && l.s.MaxFiles <= 0 {
		return
	}
	// The read lock keeps rotations out (not writes) from reading the
	// current name to the last removal: a rotation in between would make
	// the new current file look like an old one.
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return
	}
	cur := l.name
	dir := l.s.dir
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		mod  time.Time
		stem string // path without its ".N"
		gen  int    // N; 0 without
	}
	var files []file
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		m := l.match.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if p == cur || p == l.salvageTo {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		f := file{path: p, mod: fi.ModTime(), stem: strings.TrimSuffix(p, m[1])}
		if m[1] != "" {
			f.gen, _ = strconv.Atoi(m[1][1:])
		}
		files = append(files, f)
	}
	// Newest first: by modification time, then by name order within a
	// period (".10" is newer than ".9", which plain sorting gets wrong).
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.After(files[j].mod)
		}
		if files[i].stem != files[j].stem {
			return files[i].stem > files[j].stem
		}
		return files[i].gen > files[j].gen
	})
	cutoff := l.s.now().Add(-l.s.MaxAge)
	for i, f := range files {
		old := l.s.MaxAge > 0 && f.mod.Before(cutoff)
		extra := l.s.MaxFiles > 0 && i+1 >= l.s.MaxFiles // +1: the current file counts
		if !old && !extra {
			continue
		}
		if l.onRemove != nil {
			l.onRemove(f.path)
		}
		if os.Remove(f.path) == nil {
			l.removed.Add(1)
		}
	}
}

// Sync flushes the current file to disk.
func (w *Writer) Sync() error {
	l := w.f
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.out == nil {
		return nil
	}
	return l.out.Sync()
}

// CurrentFileName is the file being written.
func (w *Writer) CurrentFileName() string { return w.f.current() }

// Stats returns the log's counters.
func (w *Writer) Stats() Stats {
	l := w.f
	return Stats{
		File: l.current(), Size: l.size.Load(),
		Rotations: l.rotations.Load(), Recreated: l.recreated.Load(),
		WriteErrors: l.writeErrors.Load(), CheckErrors: l.checkErrors.Load(), ErrorEpisodes: l.episodes.Load(),
		AfterClose: l.afterCloseN.Load(), Removed: l.removed.Load(),
		Salvaged: l.salvaged.Load(),
	}
}

// Close releases this Writer; the last Writer of a log flushes and closes
// the file and stops its goroutines. Close is idempotent.
func (w *Writer) Close() error {
	if !w.closed.CompareAndSwap(false, true) {
		return nil
	}
	l := w.f
	registry.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(registry.m, l.s.pattern)
	}
	registry.Unlock()
	if !last {
		return nil
	}
	close(l.stop)
	l.wg.Wait()
	l.checkMu.Lock() // no Check running: its re-creation finishes first
	defer l.checkMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	var errs []error
	if l.out != nil && unlinked(l.out) {
		// Deleted from outside since the last check: its lines go to a
		// re-created file rather than vanish with the descriptor.
		if fh, err := l.openFile(l.name); err == nil {
			n, _ := io.Copy(fh, io.NewSectionReader(l.out, 0, 1<<62))
			l.salvaged.Add(n)
			l.recreated.Add(1)
			errs = append(errs, fh.Close())
		} else {
			errs = append(errs, fmt.Errorf("%w: re-create %s at Close: %w (its lines are lost)", ErrOpen, l.name, err))
		}
	}
	if l.out != nil {
		errs = append(errs, l.out.Sync(), l.out.Close())
		l.out = nil
	}
	errs = append(errs, l.names.Close())
	return errors.Join(errs...)
}

// ownNames compiles a regexp matching exactly the base names a pattern
// produces, with file-rotatelogs' optional ".N" generation suffix as
// group 1.
func ownNames(base string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(base); i++ {
		c := base[i]
		if c != '%' || i+1 == len(base) {
			b.WriteString(regexp.QuoteMeta(string(c)))
			continue
		}
		i++
		switch base[i] {
		case 'Y', 'G':
			b.WriteString(`[0-9]{4}`)
		case 'C', 'y', 'm', 'd', 'H', 'I', 'M', 'S', 'U', 'V', 'W', 'g':
			b.WriteString(`[0-9]{2}`)
		case 'e', 'k', 'l':
			b.WriteString(`[ 0-9][0-9]`)
		case 'j':
			b.WriteString(`[0-9]{3}`)
		case 'u', 'w':
			b.WriteString(`[0-9]`)
		case 'F':
			b.WriteString(`[0-9]{4}-[0-9]{2}-[0-9]{2}`)
		case 'T':
			b.WriteString(`[0-9]{2}:[0-9]{2}:[0-9]{2}`)
		case 'R':
			b.WriteString(`[0-9]{2}:[0-9]{2}`)
		case 'a', 'A', 'b', 'B', 'h', 'p', 'Z':
			b.WriteString(`[A-Za-z]+`)
		case '%':
			b.WriteString(`%`)
		default:
			b.WriteString(`[^/]+?`)
		}
	}
	b.WriteString(`(\.[0-9]+)?$`)
	return regexp.MustCompile(b.String())
}

var _ io.WriteCloser = (*Writer)(nil)
