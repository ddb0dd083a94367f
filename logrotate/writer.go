package logrotate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
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
	Salvaged      int64  // bytes copied from a current file deleted from outside into the file replacing it
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
	f      *sharedLog
	closed atomic.Bool
}

// sharedLog is the process-wide state of one rotating log.
type sharedLog struct {
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
	// afterBulkCopy, set by tests, runs in a re-creation between the copy
	// of a deleted file's bulk (without the lock) and its tail (under it).
	afterBulkCopy func()

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

func (l *sharedLog) write(p []byte) (int, error) {
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
func (l *sharedLog) failed(name string, err error) {
	l.writeErrors.Add(1)
	if l.inEpisode.CompareAndSwap(false, true) {
		l.episodes.Add(1)
		fmt.Fprintf(l.s.errOut, "logrotate: writing %s failed, lines are being lost until a write succeeds: %v\n", name, err)
	}
}

func (l *sharedLog) afterClose(p []byte) (int, error) {
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

func (l *sharedLog) current() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.name
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
	if !release(w.f) {
		return nil
	}
	return w.f.close()
}

// close stops the background goroutine and closes the file (a file
// deleted from outside since the last check is salvaged first).
func (l *sharedLog) close() error {
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

var _ io.WriteCloser = (*Writer)(nil)
