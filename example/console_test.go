//go:build linux

package main

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/goangel/angel/internal/testutil"
)

// A start-up error (here: the port is taken) is printed once, as an error
// log line on stderr that says how to pick another port; stdout has the
// info lines only.
func TestStartupErrorPrintedOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	port := takenPort(t)
	var stdout, stderr syncBuffer
	cmd := process(t, "-j 1 -p "+port, &stdout, &stderr)
	if code := exitCode(t, cmd); code != 78 {
		t.Fatalf("exit code %d, want 78\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if n := strings.Count(stderr.String(), "address already in use"); n != 1 {
		t.Errorf("the error is printed %d times, want once:\n%s", n, stderr.String())
	}
	for _, want := range []string{"ERROR", "-p/--port", "$EXAMPLE_PORT"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if o := stdout.String(); !strings.Contains(o, "INFO  Starting `example` application...") || strings.Contains(o, "ERROR") {
		t.Errorf("stdout:\n%s", o)
	}
}

// Under systemd's journal (JOURNAL_STREAM names the process's stdout),
// every line goes to stdout with an sd-daemon level prefix and no
// timestamp, so that journalctl -p err finds the error.
func TestJournalStreamProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	port := takenPort(t)
	out := testutil.JournalStream(t)
	var stderr syncBuffer
	cmd := process(t, "-j 1 -p "+port, out, &stderr) // an *os.File: the child's own stdout
	if code := exitCode(t, cmd); code != 78 {
		t.Fatalf("exit code %d, want 78; stderr %q", code, stderr.String())
	}
	b, _ := os.ReadFile(out.Name())
	got := string(b)
	if !strings.Contains(got, "<6>INFO  Starting `example` application...") || !strings.Contains(got, "<3>ERROR production: start-up failed: cannot listen on") {
		t.Errorf("journal output:\n%s", got)
	}
	if strings.Contains(got, "\x1b[") || strings.Contains(got, "T2") || stderr.String() != "" {
		t.Errorf("journal output has colours or timestamps, or stderr was written:\n%s\nstderr: %q", got, stderr.String())
	}
}

// takenPort returns a port of 127.0.0.1 that a listener holds until the
// test ends: the example cannot listen on it.
func takenPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
