//go:build unix

package logrotate

import (
	"os"
	"syscall"
)

// unlinked reports whether f's file has no name left (deleted).
func unlinked(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}
