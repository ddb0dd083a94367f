package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
)

// TestProcessSignals runs the example as a real process and drives it with
// real signals: SIGHUP reloads every instance, SIGTTIN adds one, SIGTTOU
// removes one, SIGTERM stops it with exit code 0; it keeps serving
// throughout.
func TestProcessSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	out := &syncBuffer{}
	cmd := process(t, "-a 127.0.0.1 -p 0 -j 2", out, out)
	base := listeningURL(t, out)
	step := func(sig syscall.Signal, want string) {
		t.Helper()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), want); {
			if time.Now().After(deadline) {
				t.Fatalf("no %q within 20s after %v; the example's output:\n%s", want, sig, out)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if a := get(t, base+"/"); a.code != 200 {
			t.Errorf("GET / after %v = %d", sig, a.code)
		}
	}
	step(syscall.SIGHUP, "Reloaded 2 instances.")
	step(syscall.SIGTTIN, "Instance #2 listening at")
	step(syscall.SIGTTOU, "Scaling down from 3 to 2 instances...")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, out)
	}
	for _, want := range []string{"Reloading 2 instances...", "Instance #0 listening at", "Scaling up from 2 to 3 instances..."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestProcessConsoleGone: once the reader of the console pipe has gone away
// (| tee, | logger, a journald restart), the next log lines must not kill
// the process with SIGPIPE.
func TestProcessConsoleGone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "EXAMPLE_TEST_RUN_MAIN=1", "EXAMPLE_TEST_ARGS=-a 127.0.0.1 -p 0 -j 2 --crash-delay 1ms")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	startCmd(t, cmd)
	sc := bufio.NewScanner(stdout)
	var base string
	for base == "" && sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatal("the example did not say where it listens")
	}
	// The reader goes away.
	stdout.Close()
	stderr.Close()
	// A crash and a reload write log lines to the closed pipe.
	if a := get(t, base+"/crash"); a.code != 200 {
		t.Fatalf("GET /crash = %d", a.code)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Still serving once the crashed instance was replaced: every instance
	// answers.
	for range 20 {
		if a := get(t, base+"/"); a.code != 200 {
			t.Fatalf("GET / = %d", a.code)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("the example did not exit within 30s")
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		t.Fatalf("the example was killed by %v once its console was gone", ws.Signal())
	}
}

// TestProcessStopUnderTimeout runs the example under GNU timeout and stops
// it the way timeout does: timeout relays a SIGTERM it receives (or its
// own expiry) to the example and then to its whole process group, so the
// example gets SIGTERM twice within a millisecond (unless the kernel
// merges the two while the first is still pending). That is one stop: it
// drains (an idle keep-alive client keeps the stop going for a while) and
// exits 0, never 130 (issue 20: 5 runs in 50 exited 130 without draining).
// The kernel decides whether the copy arrives apart, so the test runs the
// stop several times; TestStopSignalCopyIsOneStop (production) delivers
// the copy every time through the signal channel.
func TestProcessStopUnderTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	timeout := testutil.NeedTool(t, "coreutils", "timeout")
	const runs = 6
	copies := 0
	for i := range runs {
		log := stopUnderTimeout(t, timeout)
		if t.Failed() {
			t.Fatalf("run %d of %d:\n%s", i+1, runs, log)
		}
		if strings.Contains(log, "Received SIGTERM again within 1s of the first stop signal: the same stop") {
			copies++
		}
	}
	t.Logf("the copy of SIGTERM arrived apart in %d of %d runs", copies, runs)
}

// stopUnderTimeout starts the example under timeout, holds an idle
// keep-alive connection, sends SIGTERM to timeout, and checks the stop.
func stopUnderTimeout(t *testing.T, timeout string) string {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(timeout, "1h", os.Args[0])
	cmd.Env = append(os.Environ(), "EXAMPLE_TEST_RUN_MAIN=1", "EXAMPLE_TEST_ARGS=-a 127.0.0.1 -p 0 -j 2")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // timeout leads its own group
			cmd.Wait()
		}
	})
	base := listeningURL(t, out)
	// An idle keep-alive client: the stop closes it only after two sweeps,
	// so a copy of the signal arrives while the stop is under way.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET / = %v %v", resp, err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil { // to timeout, which relays it twice
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code = %d, want 0 (one stop, drained)", code)
	}
	log := out.String()
	if !strings.Contains(log, "Received SIGTERM: stopping") {
		t.Errorf("log lacks the stop")
	}
	if strings.Contains(log, "exiting now") {
		t.Errorf("a copy of SIGTERM cut the stop short")
	}
	return log
}
