package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fields(t *testing.T, line string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("field %q of %q is not key=value", f, line)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("field %q of %q: %v", f, line, err)
		}
		m[k] = x
	}
	return m
}

// TestRespawnAndTraceAgainstBenchapp runs outside against benchapp as
// bench/scripts/outside.sh and respawn-trace.sh do, briefly, at -j 1 and
// -j 4: every crash is followed by a new life of the crashed instance
// (found within the polls), the figures are ordered (p50 ≤ p99, a crash
// takes at least one poll), and the trace lines up every timed crash with
// the server's steps in order: App.Crash, the new life's configure, its
// first request, the client's answer.
func TestRespawnAndTraceAgainstBenchapp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two commands and crashes a server's lives")
	}
	dir := t.TempDir()
	out, app := testutil.Build(t, dir, "bench/cmd/outside"), testutil.Build(t, dir, "bench/cmd/benchapp")
	for _, j := range []string{"1", "4"} {
		t.Run("j="+j, func(t *testing.T) {
			port := strings.TrimSpace(run(t, out, "freeport"))
			addr := "127.0.0.1:" + port
			server, client := filepath.Join(dir, "server-"+j), filepath.Join(dir, "client-"+j)
			ctx, cancel := context.WithCancel(context.Background())
			cmd := exec.CommandContext(ctx, app, "-a", "127.0.0.1", "-p", port, "-j", j, "--quiet")
			cmd.Env = append(cmd.Environ(), "BENCHAPP_TRACE="+server)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); cmd.Wait() }()
			run(t, out, "wait", "-addr", addr)
			m := fields(t, run(t, out, "respawn", "-addr", addr, "-n", "30", "-warm", "2", "-trace", client))
			if m["n"] != 30 || m["p50-µs"] <= 0 || m["p50-µs"] > m["p99-µs"] || m["p99-µs"] > m["max-µs"] || m["polls"] < 1 || m["rtt-p50-µs"] <= 0 {
				t.Errorf("respawn figures out of order: %v", m)
			}
			// The server writes its trace every 100 ms: wait for all of it.
			var trace string
			testutil.WaitFor(t, 10*time.Second, "the server's trace of 32 crashes", func() bool {
				trace = run(t, out, "trace", "-server", server, "-client", client)
				return strings.HasPrefix(trace, "32 crashes")
			})
			order := []string{"crash", "configure-start", "configure-end", "first-request", "client-new-answer"}
			at := map[string]int{}
			for i, line := range strings.Split(trace, "\n") {
				if f := strings.Fields(line); len(f) == 4 {
					at[f[0]] = i
				}
			}
			for k := 1; k < len(order); k++ {
				a, okA := at[order[k-1]]
				b, okB := at[order[k]]
				if !okA || !okB || a > b {
					t.Errorf("trace: %s should come before %s by its p50:\n%s", order[k-1], order[k], trace)
				}
			}
		})
	}
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	b, err := exec.Command(bin, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, ee.Stderr)
		}
		t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
	}
	return string(b)
}

// TestParseAnswer: whole and partial answers, and the errors of answers the
// lean client cannot read.
func TestParseAnswer(t *testing.T) {
	for _, c := range []struct {
		in     string
		status int
		body   string
		ok     bool
		err    bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n0.1", 200, "0.1", true, false},
		{"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n0.", 0, "", false, false},
		{"HTTP/1.1 200 OK\r\nContent-Len", 0, "", false, false},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404, "", true, false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc", 0, "", false, true},
		{"SSH-2.0\r\n\r\n", 0, "", false, true},
	} {
		status, body, ok, err := parseAnswer([]byte(c.in))
		if status != c.status || body != c.body || ok != c.ok || (err != nil) != c.err {
			t.Errorf("parseAnswer(%q) = %d %q %v %v, want %d %q %v err=%v", c.in, status, body, ok, err, c.status, c.body, c.ok, c.err)
		}
	}
}
