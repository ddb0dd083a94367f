package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// ctl runs `example ctl ARGS` as a real process (this test binary running
// main) with env added, and returns its stdout, stderr and exit code.
func ctl(t *testing.T, env []string, args string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{"EXAMPLE_TEST_RUN_MAIN=1", "EXAMPLE_TEST_ARGS=ctl " + args}, env...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("example ctl %s: did not end within 60s", args)
	}
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// ctlSnapshot runs `example ctl ARGS status --json` and parses it.
func ctlSnapshot(t *testing.T, env []string, args string) admin.Snapshot {
	t.Helper()
	out, errOut, code := ctl(t, env, args+" --json status")
	var snap admin.Snapshot
	if code != 0 || json.Unmarshal([]byte(out), &snap) != nil {
		t.Fatalf("ctl %s --json status: exit %d, not a snapshot:\n%s%s", args, code, out, errOut)
	}
	return snap
}

// TestCtl drives a running example with `example ctl` over its Unix socket
// and its TCP address, the token from the environment: every verb, the
// table and the JSON, and the exit codes of the failures. The running
// example also shows its token nowhere (/debug/pprof/cmdline, the log).
func TestCtl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	const token = "ctl-test-t0ken"
	sock := filepath.Join(t.TempDir(), "admin.sock")
	logs, out := newLogFile(t)
	srv := exampleCmd(os.Args[0], "-a 127.0.0.1 -p 0 -j 2 --admin-address 127.0.0.1:0 --pprof --admin-socket "+sock+" --admin-token "+token, out)
	startCmd(t, srv)
	addr := logs.waitLog(t, `Admin listener at http://(127\.0\.0\.1:\d+)`)[1]
	logs.waitLog(t, `Instance #1 listening at`)
	env := []string{"EXAMPLE_ADMIN_TOKEN=" + token}
	at := "--admin-socket " + sock

	stdout, stderr, code := ctl(t, env, at+" status")
	if code != 0 || !strings.Contains(stdout, "2 of 2 instances serving; ready") || !strings.Contains(stdout, "INSTANCE") || strings.Count(stdout, "serving") < 3 {
		t.Errorf("ctl status: exit %d\n%s%s", code, stdout, stderr)
	}
	if snap := ctlSnapshot(t, env, at); snap.Wanted != 2 || snap.PID != srv.Process.Pid || len(snap.Instances) != 2 {
		t.Errorf("ctl --json status: %+v, want 2 instances of pid %d", snap, srv.Process.Pid)
	}
	stdout, stderr, code = ctl(t, env, "--admin-address "+addr+" stats")
	if code != 0 || !strings.Contains(stdout, "instances") || !strings.Contains(stdout, "2 wanted, 2 serving") || !strings.Contains(stdout, "PANICS") {
		t.Errorf("ctl stats over TCP: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = ctl(t, env, at+" scale 3")
	if code != 0 || !strings.Contains(stdout, "Scaled to 3 instances.") || !strings.Contains(stdout, "3 of 3 instances serving") {
		t.Errorf("ctl scale 3: exit %d\n%s%s", code, stdout, stderr)
	}
	if _, stderr, code = ctl(t, env, at+" restart 1"); code != 0 {
		t.Errorf("ctl restart 1: exit %d\n%s", code, stderr)
	}
	if _, stderr, code = ctl(t, env, at+" drain 2"); code != 0 {
		t.Errorf("ctl drain 2: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code = ctl(t, env, at+" reload")
	if code != 0 || !strings.Contains(stdout, "Reloaded.") {
		t.Errorf("ctl reload: exit %d\n%s%s", code, stdout, stderr)
	}
	snap := ctlSnapshot(t, env, at)
	lives := map[int]int{}
	for _, in := range snap.Instances {
		lives[in.Number] = in.Life
	}
	if snap.Wanted != 2 || lives[0] != 2 || lives[1] != 3 {
		t.Errorf("after scale 3, restart 1, drain 2, reload: wanted %d, lives %v; want 2 instances, lives {0:2 1:3}", snap.Wanted, lives)
	}

	// Failures: non-zero, and the reason on stderr.
	for _, c := range []struct {
		env       []string
		args      string
		code      int
		wantError string
	}{
		{env, at + " restart 7", 1, "no such instance: #7"},
		{nil, at + " status", 1, "401 Unauthorized"},
		{env, "--admin-socket " + sock + ".missing status", production.ExitUnavailable, "cannot reach the admin listener at unix:" + sock + ".missing"},
		{env, "status", production.ExitUsage, "give --admin-address HOST:PORT or --admin-socket PATH (or $EXAMPLE_ADMIN_ADDRESS, $EXAMPLE_ADMIN_SOCKET)"},
		{env, at + " scale 0", production.ExitUsage, "scale 0: want the number of instances, at least 1"},
		{env, at + " scale x", production.ExitUsage, "<n>"},
	} {
		stdout, stderr, code := ctl(t, c.env, c.args)
		if code != c.code || !strings.Contains(stderr, c.wantError) {
			t.Errorf("ctl %s: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.wantError, stdout, stderr)
		}
	}
	if _, _, code := ctl(t, []string{"EXAMPLE_ADMIN_SOCKET=" + sock, "EXAMPLE_ADMIN_TOKEN=" + token}, "status"); code != 0 {
		t.Errorf("ctl status with the socket and token from the environment: exit %d", code)
	}

	// The token is in the example's command line, and shown nowhere.
	req, _ := exec.Command("curl", "-s", "--unix-socket", sock, "-H", "Authorization: Bearer "+token, "http://localhost/debug/pprof/cmdline").Output()
	if cmdline := string(req); strings.Contains(cmdline, token) || !strings.Contains(cmdline, "--admin-token\x00[redacted]") && !strings.Contains(cmdline, "--admin-token [redacted]") {
		t.Errorf("/debug/pprof/cmdline: %q, want the token redacted", cmdline)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log shows the token:\n%s", logs)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, srv); code != 0 {
		t.Errorf("example: exit %d after SIGTERM\n%s", code, logs)
	}
}

// TestCtlUpgrade: `example ctl upgrade` replaces the running example by a
// new process, which takes the admin socket and the admin address over
// (generation 1); the old one exits 0.
func TestCtlUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	// The upgraded process, orphaned when the old one exits, becomes this
	// process's child (see TestBinaryUpgrade).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "example")
	copyFile(t, self, bin)
	sock := filepath.Join(t.TempDir(), "admin.sock")
	logs, out := newLogFile(t)
	old := exampleCmd(bin, "-a 127.0.0.1 -p 0 -j 1 --upgrade-timeout 20s --admin-address 127.0.0.1:0 --admin-socket "+sock, out)
	startCmd(t, old)
	addr := logs.waitLog(t, `Admin listener at http://(127\.0\.0\.1:\d+)`)[1]
	logs.waitLog(t, `Instance #0 listening at`)
	at := "--admin-socket " + sock

	stdout, stderr, code := ctl(t, nil, at+" upgrade")
	if code != 0 || !strings.Contains(stdout, "Upgraded") {
		t.Fatalf("ctl upgrade: exit %d\n%s%s\n%s", code, stdout, stderr, logs)
	}
	if code := exitCode(t, old); code != 0 {
		t.Errorf("old process: exit %d after the upgrade, want 0\n%s", code, logs)
	}
	snap := ctlSnapshot(t, nil, at)
	if snap.PID == old.Process.Pid || snap.PID == 0 || snap.Serving != 1 {
		t.Errorf("after the upgrade the socket answers for pid %d (old %d), %d serving", snap.PID, old.Process.Pid, snap.Serving)
	}
	if tcp := ctlSnapshot(t, nil, "--admin-address "+addr); tcp.PID != snap.PID {
		t.Errorf("after the upgrade --admin-address %s answers for pid %d, the socket for %d", addr, tcp.PID, snap.PID)
	}
	if snap.Generation != 1 || snap.LastUpgrade.IsZero() || snap.Build.GoVersion == "" {
		t.Errorf("after one upgrade: generation %d, last upgrade %v, build %+v; want generation 1 and the time", snap.Generation, snap.LastUpgrade, snap.Build)
	}
	if err := syscall.Kill(snap.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testutil.WaitPid(t, snap.PID); code != 0 {
		t.Errorf("upgraded process: exit %d after SIGTERM\n%s", code, logs)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the admin socket is still there after the upgraded process stopped: %v", err)
	}
}
