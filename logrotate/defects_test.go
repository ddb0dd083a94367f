package logrotate_test

// Each known defect of file-rotatelogs v2.4.0 is checked against the bare
// library and against logrotate, through the same small interface. The
// bare subtest passes when the defect shows (proving the check detects it);
// it fails the day the library stops showing it. The logrotate subtest
// passes only if the defect is gone.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rotatelogs "github.com/lestrrat-go/file-rotatelogs"

	"github.com/goangel/angel/logrotate"
)

type rotator interface {
	io.WriteCloser
	CurrentFileName() string
	Rotate() error
}

type opts struct {
	pattern string
	link    string
	size    int64
	count   int
	age     time.Duration
	clock   func() time.Time
	errOut  io.Writer
}

type subject struct {
	name string
	bare bool
	open func(t *testing.T, o opts) rotator
}

type clockFunc func() time.Time

func (c clockFunc) Now() time.Time { return c() }

var subjects = []subject{
	{"file-rotatelogs", true, func(t *testing.T, o opts) rotator {
		t.Helper()
		opt := []rotatelogs.Option{rotatelogs.WithRotationTime(24 * time.Hour)}
		if o.clock != nil {
			opt = append(opt, rotatelogs.WithClock(clockFunc(o.clock)))
		}
		if o.link != "" {
			opt = append(opt, rotatelogs.WithLinkName(o.link))
		}
		if o.size > 0 {
			opt = append(opt, rotatelogs.WithRotationSize(o.size))
		}
		if o.count > 0 {
			opt = append(opt, rotatelogs.WithRotationCount(uint(o.count)))
		}
		if o.age > 0 {
			opt = append(opt, rotatelogs.WithMaxAge(o.age))
		}
		rl, err := rotatelogs.New(o.pattern, opt...)
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}},
	{"logrotate", false, func(t *testing.T, o opts) rotator {
		t.Helper()
		w, err := logrotate.Open(logrotate.Config{
			Path: o.link, Pattern: o.pattern, MaxSize: o.size, MaxFiles: o.count, MaxAge: o.age,
			Clock: o.clock, CheckEvery: -1, ErrorOutput: o.errOut,
		})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}},
}

// defect runs check against every subject; check returns the defect it
// observed, or nil.
func defect(t *testing.T, issue string, check func(t *testing.T, s subject) error) {
	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			err := check(t, s)
			switch {
			case s.bare && err == nil:
				t.Errorf("bare file-rotatelogs no longer shows %s: is the work-around still needed?", issue)
			case s.bare:
				t.Logf("bare file-rotatelogs shows %s: %v", issue, err)
			case err != nil:
				t.Errorf("%s: %v", issue, err)
			}
		})
	}
}

// holdsWithin polls cond until it holds (true) or timeout passes (false).
// Tests use testutil.WaitFor; the defect checks cannot, because against
// the bare library a condition that never holds is the expected outcome,
// reported as an error rather than failing the subtest.
func holdsWithin(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	return true
}

func countMatching(t *testing.T, dir, prefix string) int {
	n := 0
	for _, f := range logFiles(t, dir) {
		if strings.HasPrefix(filepath.Base(f), prefix) {
			n++
		}
	}
	return n
}

// lestrrat-go/file-rotatelogs#58: with a rotation count, the tenth size
// rotation deletes the file being written (".10" sorts before ".2"), and
// every later line is lost.
func TestDefect58RotationCountDeletesCurrentFile(t *testing.T) {
	defect(t, "#58", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.log.%Y%m%d"), size: 100, count: 3, clock: newClock(start).Now})
		defer w.Close()
		for i := range 40 {
			fmt.Fprintf(w, "line %02d %s\n", i, strings.Repeat("x", 40))
			// Let the clean-up of this rotation finish before the next
			// write, so the outcome does not depend on scheduling.
			if !holdsWithin(5*time.Second, func() bool { return countMatching(t, dir, "app.log.") <= 3 }) {
				return errors.New("clean-up never brought the files down to 3")
			}
		}
		got := lines(t, dir)
		for _, i := range []int{37, 38, 39} {
			if l := fmt.Sprintf("line %02d %s", i, strings.Repeat("x", 40)); got[l] != 1 {
				return fmt.Errorf("line %d lost (current file %s, files %v)", i, w.CurrentFileName(), logFiles(t, dir))
			}
		}
		return nil
	})
}

// #65: with text after the date in the pattern, size-rotated files
// ("app.20261125.log.1") escape clean-up: disk use grows without limit.
func TestDefect65GenerationFilesEscapeCleanup(t *testing.T) {
	defect(t, "#65", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.%Y%m%d.log"), size: 100, count: 3, clock: newClock(start).Now})
		defer w.Close()
		for i := range 30 {
			fmt.Fprintf(w, "line %02d %s\n", i, strings.Repeat("x", 60))
		}
		if !holdsWithin(2*time.Second, func() bool { return countMatching(t, dir, "app.") <= 3 }) {
			return fmt.Errorf("%d files kept, want 3", countMatching(t, dir, "app."))
		}
		return nil
	})
}

// #66: clean-up removes any file fitting the glob, even one it did not
// write ("app.backup.log" fits "app.*.log").
func TestDefect66CleanupRemovesForeignFiles(t *testing.T) {
	defect(t, "#66", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		old := time.Now().Add(-72 * time.Hour)
		own, foreign := filepath.Join(dir, "app.20200101.log"), filepath.Join(dir, "app.backup.log")
		for _, p := range []string{own, foreign} {
			if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.%Y%m%d.log"), age: 48 * time.Hour})
		defer w.Close()
		fmt.Fprintln(w, "hello")
		if err := w.Rotate(); err != nil {
			t.Fatal(err)
		}
		gone := func(p string) bool { _, err := os.Stat(p); return err != nil }
		// logrotate's clean-up round that removed the own file has listed
		// the foreign one already; the bare library removes it right after
		// the own one, in the same goroutine.
		if !holdsWithin(5*time.Second, func() bool { return gone(own) && (!s.bare || gone(foreign)) }) {
			return errors.New("own old file never removed")
		}
		if gone(foreign) {
			return fmt.Errorf("foreign file %s removed", foreign)
		}
		return nil
	})
}

// #19/#22: a current file deleted from outside is not recreated; every
// later line is lost (and so is everything it held).
func TestDefect19DeletedFileNotRecreated(t *testing.T) {
	defect(t, "#19/#22", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.%Y%m%d.log")})
		fmt.Fprintln(w, "before the deletion")
		if err := os.Remove(w.CurrentFileName()); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(w, "between deletion and check")
		if c, ok := w.(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintln(w, "after the check")
		w.Close()
		got := lines(t, dir)
		for _, l := range []string{"before the deletion", "between deletion and check", "after the check"} {
			if got[l] != 1 {
				return fmt.Errorf("%q found %d times", l, got[l])
			}
		}
		return nil
	})
}

// #18: the bare library reads the clock (and builds a name, and stats the
// file) on every write. logrotate reads none per write.
func TestDefect18PerWriteWork(t *testing.T) {
	defect(t, "#18", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		clk := newClock(start)
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.%Y%m%d.log"), clock: clk.Now})
		defer w.Close()
		fmt.Fprintln(w, "first")
		before := clk.reads.Load()
		for i := range 1000 {
			fmt.Fprintf(w, "line %d\n", i)
		}
		if n := clk.reads.Load() - before; n > 0 {
			return fmt.Errorf("%d clock reads for 1000 writes", n)
		}
		return nil
	})
}

// Writes after Close fail and are dropped by the bare library. logrotate
// lands them on its error output (or in the log while another Writer keeps
// it open) and counts them.
func TestDefectWritesAfterCloseDropped(t *testing.T) {
	defect(t, "writes after Close dropped", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		var errOut syncBuffer
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.%Y%m%d.log"), errOut: &errOut})
		fmt.Fprintln(w, "open")
		w.Close()
		_, err := fmt.Fprintln(w, "late line")
		if lines(t, dir)["late line"] == 0 && !strings.Contains(errOut.String(), "late line") {
			return fmt.Errorf("late line dropped (write error: %v)", err)
		}
		return nil
	})
}

// A leftover "<file>_lock" (a crashed process) makes the bare library skip
// the symlink update and the clean-up, silently.
func TestDefectLeftoverLockFile(t *testing.T) {
	defect(t, "leftover _lock", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		clk := newClock(start)
		first := filepath.Join(dir, "app."+start.Format("20060102")+".log")
		if err := os.WriteFile(first+"_lock", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "app.log")
		w := s.open(t, opts{pattern: filepath.Join(dir, "app.%Y%m%d.log"), link: link, clock: clk.Now})
		defer w.Close()
		fmt.Fprintln(w, "through the link")
		b, err := os.ReadFile(link)
		if err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		if string(b) != "through the link\n" {
			return fmt.Errorf("link shows %q", b)
		}
		return nil
	})
}

// Two writers on one file in one process rotate independently and end up
// writing different files. logrotate hands every Open of one pattern the
// same log.
func TestDefectTwoWritersOneFile(t *testing.T) {
	defect(t, "two writers on one file", func(t *testing.T, s subject) error {
		dir := t.TempDir()
		o := opts{pattern: filepath.Join(dir, "app.%Y%m%d.log"), size: 100, clock: newClock(start).Now}
		a, b := s.open(t, o), s.open(t, o)
		defer a.Close()
		defer b.Close()
		for i := range 10 {
			fmt.Fprintf(a, "a %d %s\n", i, strings.Repeat("x", 30))
			fmt.Fprintf(b, "b %d %s\n", i, strings.Repeat("x", 30))
			if a.CurrentFileName() != b.CurrentFileName() {
				return fmt.Errorf("after %d lines each: a writes %s, b writes %s", i+1, a.CurrentFileName(), b.CurrentFileName())
			}
		}
		return nil
	})
}
