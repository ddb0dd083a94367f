package faults

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goangel/angel/internal/testutil"
)

// TestUpgradeWaitsForTheOldProcess: a process started by a binary upgrade
// refuses to upgrade in turn while the old process still drains (here: a
// request it holds in flight), says why, and goes on serving; once the old
// process has exited (it says so), the same upgrade succeeds.
func TestUpgradeWaitsForTheOldProcess(t *testing.T) {
	// The upgraded processes, orphaned when their parent exits, become
	// this process's children, so that the test can wait for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	// The log goes to a file: a pipe would stay open as long as the
	// upgraded processes, which inherit it.
	logPath := filepath.Join(t.TempDir(), "console.log")
	console, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close()
	logs := func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	waitLog := func(re string, n int) []string {
		t.Helper()
		rx := regexp.MustCompile(re)
		var m [][]string
		testutil.WaitFor(t, 30*time.Second, strconv.Itoa(n)+" log lines matching "+re, func() bool {
			m = rx.FindAllStringSubmatch(logs(), -1)
			return len(m) >= n
		})
		return m[n-1]
	}
	first := startProc(t, nil, console, "-j", "1", "--upgrade-timeout", "20s", "--drain-timeout", "60s")
	first.addr = waitLog(`listening at http://([0-9.]+:[0-9]+)`, 1)[1]
	var pids []int
	t.Cleanup(func() { // the upgraded processes, if the test ends early
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				testutil.WaitPid(t, pid)
			}
		}
	})

	// A request the first process holds in flight until the client ends it.
	ctx, release := context.WithCancel(context.Background())
	defer release()
	blocked := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+first.addr+"/block", nil)
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		blocked <- err
	}()
	waitLog(`faultapp: /block in flight`, 1)

	if err := first.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitLog(`Binary upgrade: the new process is ready and serves`, 1)
	second, _ := strconv.Atoi(waitLog(`Binary upgrade: pid (\d+) serves on the socket inherited`, 1)[1])
	pids = append(pids, second)

	// The first process drains the blocked request: the second refuses.
	if err := syscall.Kill(second, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitLog(`Upgrade failed: .*the old process \(pid `+strconv.Itoa(first.cmd.Process.Pid)+`\) this one took over from has not exited yet`, 1)
	if !first.alive() {
		t.Fatalf("the first process exited with a request in flight:\n%s", logs())
	}
	first.mustServe(t, "after the refused upgrade") // answered by the second
	if n := len(regexp.MustCompile(`Binary upgrade: starting`).FindAllString(logs(), -1)); n != 1 {
		t.Errorf("the refused upgrade started a process: %d upgrades started, want 1\n%s", n, logs())
	}

	release()
	<-blocked
	select {
	case <-first.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the first process did not exit once its last request ended:\n%s", logs())
	}
	if first.err != nil {
		t.Errorf("first process: %v, want exit 0\n%s", first.err, logs())
	}
	waitLog(`Binary upgrade: the old process \(pid `+strconv.Itoa(first.cmd.Process.Pid)+`\) has exited; this one \(pid `+strconv.Itoa(second)+`\) can be upgraded`, 1)
	if err := syscall.Kill(second, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitLog(`Binary upgrade: the new process is ready and serves`, 2)
	third, _ := strconv.Atoi(waitLog(`Binary upgrade: pid (\d+) serves on the socket inherited`, 2)[1])
	pids = append(pids, third)
	if code := testutil.WaitPid(t, second); code != 0 {
		t.Errorf("second process: exit %d after handing over, want 0\n%s", code, logs())
	}
	first.mustServe(t, "after the second upgrade") // answered by the third
	if err := syscall.Kill(third, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testutil.WaitPid(t, third); code != 0 {
		t.Errorf("third process: exit %d after SIGTERM, want 0\n%s", code, logs())
	}
	pids = nil
}
