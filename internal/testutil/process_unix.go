//go:build unix

package testutil

import (
	"syscall"
	"testing"
	"time"
)

// WaitPid waits for process pid, a child or an orphan this process adopted
// (PR_SET_CHILD_SUBREAPER: the new process of a binary upgrade), to exit and
// returns its exit code (-1 when it cannot be waited for). A process still
// running after 30 s is killed and fails tb.
func WaitPid(tb testing.TB, pid int) int {
	tb.Helper()
	done := make(chan int, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				done <- -1
				return
			}
			done <- ws.ExitStatus()
			return
		}
	}()
	select {
	case code := <-done:
		return code
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		tb.Fatalf("pid %d did not exit within 30s", pid)
		return -1
	}
}
