package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// JournalStream creates a file in a temporary directory and sets
// JOURNAL_STREAM to its device and inode for the rest of the test, as
// systemd does for a service whose stdout is the journal: a process (or a
// logger) given this file as stdout believes it writes to the journal. The
// file is closed when the test ends.
func JournalStream(tb testing.TB) *os.File {
	tb.Helper()
	f, err := os.Create(filepath.Join(tb.TempDir(), "journal"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	tb.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	return f
}
