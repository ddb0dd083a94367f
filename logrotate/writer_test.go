package logrotate_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/logrotate"
)

// Eight goroutines write numbered lines while the clock moves through ten
// periods and the size limit forces many more rotations: every line must
// be found exactly once, whole, in the files left on disk.
func TestEightWritersThroughRotations(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(start)
	w, err := logrotate.Open(logrotate.Config{
		Path:        filepath.Join(dir, "app.log"),
		RotateEvery: time.Hour,
		MaxSize:     32 << 10,
		Clock:       clk.Now,
		CheckEvery:  -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, perG, hours = 8, 4000, 10
	pad := strings.Repeat("x", 40)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				if _, err := fmt.Fprintf(w, "g=%d i=%05d %s end\n", g, i, pad); err != nil {
					t.Error(err)
					return
				}
				if g == 0 && i%(perG/hours) == perG/hours-1 {
					clk.Advance(time.Hour)
					if err := w.Check(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	st := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	re := regexp.MustCompile(`^g=[0-7] i=\d{5} x{40} end$`)
	got := lines(t, dir)
	for l, n := range got {
		if !re.MatchString(l) {
			t.Errorf("torn line %q", l)
		} else if n != 1 {
			t.Errorf("line %q found %d times", l, n)
		}
	}
	if len(got) != goroutines*perG {
		t.Errorf("found %d distinct lines, want %d", len(got), goroutines*perG)
	}
	// Periods: one file name stem per hour (plus .N files within each).
	stems := map[string]bool{}
	for _, f := range logFiles(t, dir) {
		stems[regexp.MustCompile(`\.\d+$`).ReplaceAllString(filepath.Base(f), "")] = true
	}
	if len(stems) < hours {
		t.Errorf("%d periods on disk, want at least %d: %v", len(stems), hours, stems)
	}
	if st.Rotations < hours+20 {
		t.Errorf("only %d rotations", st.Rotations)
	}
	t.Logf("%d lines, %d files, %d rotations", len(got), len(logFiles(t, dir)), st.Rotations)
}

// With the real clock a timer ends the period: writes read no clock, yet
// rotate on time.
func TestRealClockRotation(t *testing.T) {
	dir := t.TempDir()
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), RotateEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	defer w.Close()
	testutil.WaitFor(t, 5*time.Second, "a rotation with a 1s period", func() bool {
		fmt.Fprintf(w, "line %d\n", n)
		n++
		return w.Stats().Rotations >= 1
	})
	w.Close()
	got := lines(t, dir)
	for i := range n {
		if got[fmt.Sprintf("line %d", i)] != 1 {
			t.Fatalf("line %d found %d times", i, got[fmt.Sprintf("line %d", i)])
		}
	}
	if len(logFiles(t, dir)) < 2 {
		t.Errorf("want 2 files, got %v", logFiles(t, dir))
	}
}

func TestSymlinkFollowsCurrentFile(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "app.log")
	w, err := logrotate.Open(logrotate.Config{Path: link, MaxSize: 10, CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 5 {
		fmt.Fprintf(w, "line number %d\n", i)
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Join(dir, target) != w.CurrentFileName() {
			t.Fatalf("link points to %s, current file is %s", target, w.CurrentFileName())
		}
	}
	if w.Stats().Rotations != 5 {
		t.Errorf("rotations = %d, want 5", w.Stats().Rotations)
	}
}

func TestDerivePattern(t *testing.T) {
	for _, c := range []struct {
		path  string
		every time.Duration
		want  string
	}{
		{"/var/log/app.log", 24 * time.Hour, "/var/log/app.%Y%m%d.log"},
		{"/var/log/app.log", time.Hour, "/var/log/app.%Y%m%d%H.log"},
		{"/var/log/app.log", time.Minute, "/var/log/app.%Y%m%d%H%M.log"},
		{"/var/log/app.log", time.Second, "/var/log/app.%Y%m%d%H%M%S.log"},
		{"/var/log/app", -1, "/var/log/app.%Y%m%d"},
		{"/var/log/.app", 0, "/var/log/.app.%Y%m%d"},
		{"/var/log/50%.log", 24 * time.Hour, "/var/log/50%%.%Y%m%d.log"},
	} {
		if got := logrotate.DerivePattern(c.path, c.every); got != c.want {
			t.Errorf("DerivePattern(%q, %v) = %q, want %q", c.path, c.every, got, c.want)
		}
	}
}

func TestMaxAgeRemovesOnlyOwnOldFiles(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(start)
	old := start.Add(-72 * time.Hour)
	for _, name := range []string{"app.20261120.log", "app.20261120.log.3", "app.notes.log", "other.20261120.log"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), MaxAge: 48 * time.Hour, Clock: clk.Now, CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	testutil.WaitFor(t, 5*time.Second, "clean-up to remove 2 files", func() bool { return w.Stats().Removed == 2 })
	for _, name := range []string{"app.notes.log", "other.20261120.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("foreign file %s: %v", name, err)
		}
	}
}

func TestUnwritablePathFailsNamingIt(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "logs", "app.log")
	_, err := logrotate.Open(logrotate.Config{Path: path})
	if !errors.Is(err, logrotate.ErrOpen) {
		t.Fatalf("err = %v, want ErrOpen", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(blocker, "logs")) {
		t.Errorf("error %q does not name the path", err)
	}
}

func TestPathIsARegularFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	if err := os.WriteFile(path, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := logrotate.Open(logrotate.Config{Path: path})
	if !errors.Is(err, logrotate.ErrConfig) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrConfig naming %s", err, path)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []logrotate.Config{
		{},
		{Path: "x.log", MaxSize: -1},
		{Pattern: "/tmp/%Y/x.log"},
	} {
		if _, err := logrotate.Open(c); !errors.Is(err, logrotate.ErrConfig) {
			t.Errorf("Open(%+v) = %v, want ErrConfig", c, err)
		}
	}
}

func TestSameFileSameWriterConflictingConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1}
	a, err := logrotate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cfg.MaxSize = 100
	if _, err := logrotate.Open(cfg); !errors.Is(err, logrotate.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}

// A write that fails (here: the file name now leads to /dev/full, "no
// space left") is counted and reported once per episode; the episode ends
// at the next successful write. Writers never panic nor block.
func TestWriteErrorCountedAndReportedOncePerEpisode(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("needs /dev/full")
	}
	dir := t.TempDir()
	var errOut syncBuffer
	w, err := logrotate.Open(logrotate.Config{Pattern: filepath.Join(dir, "app.%Y%m%d.log"), CheckEvery: -1, ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cur := w.CurrentFileName()
	fmt.Fprintln(w, "before")

	moves := 0
	fail := func() {
		t.Helper()
		moves++
		if err := os.Rename(cur, fmt.Sprintf("%s.moved%d", cur, moves)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/full", cur); err != nil {
			t.Fatal(err)
		}
		if err := w.Check(); err != nil {
			t.Fatal(err)
		}
	}
	heal := func() {
		t.Helper()
		if err := os.Remove(cur); err != nil {
			t.Fatal(err)
		}
		if err := w.Check(); err != nil {
			t.Fatal(err)
		}
	}
	fail()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := fmt.Fprintln(w, "lost"); err == nil {
					t.Error("write to a full disk succeeded")
				}
			}
		})
	}
	wg.Wait()
	if st := w.Stats(); st.WriteErrors != 80 || st.ErrorEpisodes != 1 {
		t.Fatalf("stats %+v, want 80 errors in 1 episode", st)
	}
	if n := strings.Count(errOut.String(), "failed"); n != 1 {
		t.Fatalf("%d reports, want 1:\n%s", n, errOut.String())
	}
	heal()
	if _, err := fmt.Fprintln(w, "after"); err != nil {
		t.Fatal(err)
	}
	fail()
	fmt.Fprintln(w, "lost again")
	if st := w.Stats(); st.WriteErrors != 81 || st.ErrorEpisodes != 2 {
		t.Fatalf("stats %+v, want 81 errors in 2 episodes", st)
	}
	if n := strings.Count(errOut.String(), "failed"); n != 2 {
		t.Fatalf("%d reports, want 2:\n%s", n, errOut.String())
	}
	heal()
	if got := lines(t, dir); got["after"] != 1 || got["before"] != 1 || got["lost"] != 0 {
		t.Errorf("lines on disk: %v", got)
	}
}

// Writers sharing a log: Close of one leaves the others working; the last
// Close closes the file; writes after that go to ErrorOutput.
func TestSharedLogAndWritesAfterClose(t *testing.T) {
	dir := t.TempDir()
	var errOut syncBuffer
	cfg := logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1, ErrorOutput: &errOut}
	a, err := logrotate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := logrotate.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(a, "from a")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	fmt.Fprintln(b, "from b")
	fmt.Fprintln(a, "a after its close")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(b, "b after the last close")
	got := lines(t, dir)
	for _, l := range []string{"from a", "from b", "a after its close"} {
		if got[l] != 1 {
			t.Errorf("%q found %d times in the files", l, got[l])
		}
	}
	if !strings.Contains(errOut.String(), "b after the last close\n") {
		t.Errorf("error output %q lacks the late line", errOut.String())
	}
	if st := b.Stats(); st.AfterClose != 2 {
		t.Errorf("AfterClose = %d, want 2", st.AfterClose)
	}
}

func TestBackgroundCheckRecreatesDeletedFile(t *testing.T) {
	dir := t.TempDir()
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fmt.Fprintln(w, "one")
	if err := os.Remove(w.CurrentFileName()); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "two")
	testutil.WaitFor(t, 5*time.Second, "the deleted file's re-creation", func() bool { return w.Stats().Recreated == 1 })
	fmt.Fprintln(w, "three")
	got := lines(t, dir)
	for _, l := range []string{"one", "two", "three"} {
		if got[l] != 1 {
			t.Errorf("%q found %d times", l, got[l])
		}
	}
}

// A rotation that fails (the directory became a file) is reported once and
// retried later; meanwhile every line goes on to the current file.
func TestFailedRotationReportedOnceNothingLost(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	clk := newClock(start)
	var errOut syncBuffer
	w, err := logrotate.Open(logrotate.Config{Pattern: filepath.Join(sub, "app.%Y%m%d.log"), MaxSize: 10, Clock: clk.Now, CheckEvery: -1, ErrorOutput: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sub, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(errOut.String(), "rotation failed"); n != 1 {
		t.Fatalf("%d reports, want 1:\n%s", n, errOut.String())
	}
	got := lines(t, moved)
	for i := range 100 {
		if got[fmt.Sprintf("line %d", i)] != 1 {
			t.Fatalf("line %d found %d times", i, got[fmt.Sprintf("line %d", i)])
		}
	}
	// Repaired: the next attempt, a retry period later, succeeds.
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	fmt.Fprintln(w, "after repair")
	if !strings.HasPrefix(w.CurrentFileName(), sub+string(filepath.Separator)) {
		t.Fatalf("still writing %s", w.CurrentFileName())
	}
	fmt.Fprintln(w, "in the new file")
	if lines(t, moved)["after repair"] != 1 || lines(t, sub)["in the new file"] != 1 {
		t.Errorf("old %v, new %v", lines(t, moved), lines(t, sub))
	}
}

// Periods follow local wall-clock time: daily files change at local
// midnight, in a zone far from UTC too.
func TestDailyRotationAtLocalMidnight(t *testing.T) {
	dir := t.TempDir()
	zone := time.FixedZone("IST", 5*3600+1800)
	clk := newClock(time.Date(2026, 11, 25, 23, 59, 0, 0, zone))
	now := func() time.Time { return clk.Now().In(zone) }
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), Clock: now, CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fmt.Fprintln(w, "25th")
	if got := filepath.Base(w.CurrentFileName()); got != "app.20261125.log" {
		t.Fatalf("file %s", got)
	}
	clk.Advance(30 * time.Second)
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	if w.Stats().Rotations != 0 {
		t.Fatal("rotated before midnight")
	}
	clk.Advance(time.Minute)
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "26th")
	if got := filepath.Base(w.CurrentFileName()); got != "app.20261126.log" {
		t.Fatalf("after midnight: file %s", got)
	}
}

// The current file deleted again and again under load from 8 goroutines:
// each time it is recreated with its content salvaged, and every line is
// found exactly once.
func TestDeletedUnderLoadNothingLost(t *testing.T) {
	dir := t.TempDir()
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, perG = 8, 3000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				fmt.Fprintf(w, "g=%d i=%05d\n", g, i)
				if g == 0 && i%500 == 250 {
					if err := os.Remove(w.CurrentFileName()); err != nil {
						t.Error(err)
					}
					if err := w.Check(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	st := w.Stats()
	w.Close()
	if st.Recreated != perG/500 || st.Salvaged == 0 {
		t.Errorf("stats %+v", st)
	}
	got := lines(t, dir)
	if len(got) != goroutines*perG {
		t.Errorf("%d distinct lines, want %d", len(got), goroutines*perG)
	}
	for l, n := range got {
		if n != 1 {
			t.Errorf("%q found %d times", l, n)
		}
	}
}

// Clean-up recognises every name a pattern produces (with or without a
// ".N" suffix) and nothing else, for a variety of patterns.
func TestCleanupRecognisesOwnNamesOnly(t *testing.T) {
	for _, c := range []struct {
		pattern string
		own     []string
		foreign []string
	}{
		{"app.%Y%m%d.log",
			[]string{"app.20200101.log", "app.20200101.log.1", "app.20200102.log.12"},
			[]string{"app.2020010.log", "app.20200101.log.bak", "app.20200101.log.1.gz", "app.backup.log", "xapp.20200101.log", "app.20200101.log."}},
		{"app.log.%Y%m%d%H%M",
			[]string{"app.log.202001010000", "app.log.202001010000.3"},
			[]string{"app.log.2020010100", "app.log.202001010000-old"}},
		{"app-%F-%H.log",
			[]string{"app-2020-01-01-00.log", "app-2020-01-01-23.log.2"},
			[]string{"app-2020-01-01.log", "app-2020-1-01-00.log"}},
		{"%b-%d.txt",
			[]string{"Jan-01.txt", "Feb-28.txt.1"},
			[]string{"January.txt", "Jan-1.txt", "notes.txt"}},
	} {
		t.Run(c.pattern, func(t *testing.T) {
			dir := t.TempDir()
			old := start.Add(-365 * 24 * time.Hour)
			for _, name := range append(append([]string{}, c.own...), c.foreign...) {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
			}
			w, err := logrotate.Open(logrotate.Config{Pattern: filepath.Join(strings.ReplaceAll(dir, "%", "%%"), c.pattern), MaxAge: time.Hour, Clock: newClock(start).Now, CheckEvery: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			testutil.WaitFor(t, 5*time.Second, "clean-up to remove the old own files", func() bool { return w.Stats().Removed == uint64(len(c.own)) })
			for _, name := range c.own {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("own old file %s kept", name)
				}
			}
			for _, name := range c.foreign {
				if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
					t.Errorf("foreign file %s: %v", name, err)
				}
			}
		})
	}
}

// A literal "%" in the directory: escaped by DerivePattern for Path, and
// written "%%" in a Pattern.
func TestPercentInDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "50%")
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "hello")
	w.Close()
	if got := lines(t, dir); got["hello"] != 1 {
		t.Errorf("lines in %s: %v", dir, got)
	}
}

// panicOnce panics at its first write (an ErrorOutput gone wrong) and
// records the later ones.
type panicOnce struct {
	syncBuffer
	panicked atomic.Bool
}

func (p *panicOnce) Write(b []byte) (int, error) {
	if p.panicked.CompareAndSwap(false, true) {
		panic("error output broken")
	}
	return p.syncBuffer.Write(b)
}

// A panic in the background goroutine (here: ErrorOutput panics while the
// check reports that the deleted file cannot be recreated) is reported,
// and the goroutine goes on checking: once the obstacle is gone, the file
// is recreated.
func TestBackgroundPanicRecovered(t *testing.T) {
	dir := t.TempDir()
	errOut := &panicOnce{}
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: 5 * time.Millisecond, ErrorOutput: errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cur := w.CurrentFileName()
	if err := os.Remove(cur); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cur, 0o755); err != nil { // cannot be reopened as a file
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the panic's report", func() bool { return strings.Contains(errOut.String(), "panicked: error output broken") })
	if err := os.Remove(cur); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "a re-creation by the background check after its panic", func() bool { return w.Stats().Recreated == 1 })
	fmt.Fprintln(w, "after")
	if got := lines(t, dir); got["after"] != 1 {
		t.Errorf("lines %v", got)
	}
}

// Files of one age are ordered by name: a later period first, then the
// higher ".N" (".12" is newer than ".9", though it sorts before it).
func TestMaxFilesOrdersGenerationsByNumber(t *testing.T) {
	dir := t.TempDir()
	old := start.Add(-time.Hour)
	names := []string{"app.20200101.log", "app.20200102.log"}
	for n := 1; n <= 12; n++ {
		names = append(names, fmt.Sprintf("app.20200101.log.%d", n))
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	w, err := logrotate.Open(logrotate.Config{Pattern: filepath.Join(dir, "app.%Y%m%d.log"), MaxFiles: 4, Clock: newClock(start).Now, CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	testutil.WaitFor(t, 5*time.Second, "clean-up to remove the old own files", func() bool { return w.Stats().Removed == uint64(len(names)-3) })
	var kept []string
	for _, f := range logFiles(t, dir) {
		kept = append(kept, filepath.Base(f))
	}
	want := []string{"app.20200101.log.11", "app.20200101.log.12", "app.20200102.log", "app.20261125.log"}
	if fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
}
