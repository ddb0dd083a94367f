//go:build unix

package logging

import (
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// underJournal reports whether w is the stream systemd connected to the
// journal: JOURNAL_STREAM ("DEVICE:INODE") names the file w is.
func underJournal(w io.Writer, journalStream string) bool {
	fh, ok := w.(*os.File)
	if !ok || journalStream == "" {
		return false
	}
	devS, inoS, ok := strings.Cut(journalStream, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devS, 10, 64)
	ino, err2 := strconv.ParseUint(inoS, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := fh.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && uint64(st.Ino) == ino //nolint:unconvert // Dev's type differs by platform
}
