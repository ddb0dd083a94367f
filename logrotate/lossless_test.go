package logrotate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/logrotate"
)

// Clean-up runs in the background while rotations go on: it must never
// take the file being written for an old one (the docs: "never the
// current file"), and must keep the MaxFiles most recent files.
func TestCleanupRacingRotationKeepsCurrentAndNewest(t *testing.T) {
	for _, keep := range []int{1, 3} {
		t.Run(fmt.Sprintf("MaxFiles=%d", keep), func(t *testing.T) {
			dir := t.TempDir()
			w, err := logrotate.Open(logrotate.Config{
				Pattern: filepath.Join(dir, "app.%Y%m%d.log"), MaxFiles: keep, CheckEvery: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			const rounds = 1000
			for i := range rounds {
				if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(w.CurrentFileName()); err != nil {
					t.Fatalf("round %d: the current file is gone: %v", i, err)
				}
				if i < rounds-1 {
					if err := w.Rotate(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Every rotation kicks a clean-up; wait until it has removed
			// all but keep files.
			testutil.WaitFor(t, 10*time.Second, "the clean-up", func() bool {
				return w.Stats().Removed >= uint64(rounds-keep)
			})
			got := lines(t, dir)
			if len(got) != keep {
				t.Errorf("%d lines kept, want %d: %v", len(got), keep, got)
			}
			for i := rounds - keep; i < rounds; i++ {
				if got[strconv.Itoa(i)] != 1 {
					t.Errorf("line %d (one of the %d newest files) found %d times; kept %v", i, keep, got[strconv.Itoa(i)], got)
				}
			}
			if r := w.Stats().Removed; r != uint64(rounds-keep) {
				t.Errorf("removed %d files, want %d", r, rounds-keep)
			}
		})
	}
}

// A current file deleted from outside keeps its lines when a rotation (by
// size or forced) comes before the check: they are copied into the next
// file.
func TestDeletedCurrentFileSalvagedOnRotation(t *testing.T) {
	for _, how := range []string{"Rotate", "size"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			cfg := logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1}
			if how == "size" {
				cfg.MaxSize = 1 << 10
			}
			w, err := logrotate.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			fmt.Fprintln(w, "before the deletion")
			if err := os.Remove(w.CurrentFileName()); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(w, "since the deletion")
			if how == "Rotate" {
				if err := w.Rotate(); err != nil {
					t.Fatal(err)
				}
			} else {
				fmt.Fprintln(w, strings.Repeat("x", 1<<10)) // crosses MaxSize: rotates
			}
			fmt.Fprintln(w, "after the rotation")
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := lines(t, dir)
			for _, l := range []string{"before the deletion", "since the deletion", "after the rotation"} {
				if got[l] != 1 {
					t.Errorf("%q found %d times: %v", l, got[l], got)
				}
			}
			if st := w.Stats(); st.Salvaged == 0 || st.WriteErrors != 0 {
				t.Errorf("stats %+v, want Salvaged > 0 and no write error", st)
			}
		})
	}
}

// When the deleted file cannot be re-created at once (its directory is
// briefly unusable), writing goes on to the deleted file, and the
// re-creation that succeeds later holds every line, from before and since
// the deletion. Failed checks are counted apart from failed writes.
func TestDeletedFileSalvagedAfterFailedRecreation(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "logs")
	var errOut syncBuffer
	w, err := logrotate.Open(logrotate.Config{
		Pattern: filepath.Join(dir, "app.%Y%m%d.log"), CheckEvery: -1, ErrorOutput: &errOut,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fmt.Fprintln(w, "before")
	if err := os.Remove(w.CurrentFileName()); err != nil {
		t.Fatal(err)
	}
	// The directory becomes a file: the file cannot be re-created.
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Check(); err == nil {
			t.Fatalf("check %d succeeded with the directory gone", i)
		}
	}
	if st := w.Stats(); st.WriteErrors != 0 || st.CheckErrors != 3 || st.ErrorEpisodes != 1 {
		t.Errorf("after 3 failed checks and no write: stats %+v, want WriteErrors 0, CheckErrors 3, 1 episode", st)
	}
	for i := range 5 {
		if _, err := fmt.Fprintf(w, "since %d\n", i); err != nil {
			t.Errorf("write while the file cannot be re-created: %v", err)
		}
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "after")
	got := lines(t, dir)
	for _, l := range []string{"before", "since 0", "since 4", "after"} {
		if got[l] != 1 {
			t.Errorf("%q found %d times: %v", l, got[l], got)
		}
	}
	if st := w.Stats(); st.WriteErrors != 0 || st.Recreated != 1 {
		t.Errorf("stats %+v, want no write error and one re-creation", st)
	}
	if n := strings.Count(errOut.String(), "\n"); n != 1 {
		t.Errorf("%d reports, want 1 for the failing checks:\n%s", n, errOut.String())
	}
}

// Close of the last Writer after an outside deletion that no check saw
// yet re-creates the file with the deleted file's lines.
func TestDeletedCurrentFileSalvagedAtClose(t *testing.T) {
	dir := t.TempDir()
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "before")
	if err := os.Remove(w.CurrentFileName()); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "since")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, dir); got["before"] != 1 || got["since"] != 1 {
		t.Errorf("lines on disk after Close: %v", got)
	}
}

// A current file deleted from outside is re-created by the check, which
// copies the deleted file's lines into the new one, the bulk without the
// lock. If the new file is deleted too meanwhile (it had the current name)
// and a rotation switches away before the copy ends, nothing would read it
// back: its lines go to the current file. Before, they were lost with it
// (34 lines in one run of TestPropertyEveryAcceptedLineFoundOnce under load).
func TestSalvageIntoAFileDeletedBeforeARotation(t *testing.T) {
	dir := t.TempDir()
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(dir, "app.log"), CheckEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var before []string
	for i := range 20 {
		before = append(before, fmt.Sprintf("before the deletion %02d", i))
		fmt.Fprintln(w, before[i])
	}
	var hooked bool
	logrotate.AfterBulkCopy(w, func() {
		if hooked {
			return
		}
		hooked = true
		// The re-created file has the current name: delete it, then
		// rotate away from the deleted original.
		if err := os.Remove(w.CurrentFileName()); err != nil {
			t.Error(err)
		}
		if err := w.Rotate(); err != nil {
			t.Error(err)
		}
	})
	if err := os.Remove(w.CurrentFileName()); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(); err != nil {
		t.Fatal(err)
	}
	if !hooked {
		t.Fatal("the check did not re-create the deleted file")
	}
	fmt.Fprintln(w, "after the rotation")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, dir)
	for _, l := range append(before, "after the rotation") {
		if got[l] != 1 {
			t.Errorf("%q found %d times", l, got[l])
		}
	}
}
