// Package testutil holds the helpers that goangel's tests share (and
// production/productiontest ships to users).
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer that is safe for concurrent writes and reads, for
// the output of a Runner whose instances log at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor checks cond every few milliseconds until it holds, and fails the
// test, naming what it waited for, if it does not hold within timeout.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// LogFiles lists the regular files in dir (full paths), leaving out lock
// files ("…_lock") and temporary files ("….tmp"): the files a rotating log
// left there. Symlinks are not listed.
func LogFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Type().IsRegular() && filepath.Ext(e.Name()) != ".tmp" && !strings.HasSuffix(e.Name(), "_lock") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// LogLines counts every line of every file LogFiles lists (without its
// newline). A file ending in a partial line fails the test: each line must
// land whole.
func LogLines(tb testing.TB, dir string) map[string]int {
	tb.Helper()
	m := map[string]int{}
	for _, f := range LogFiles(tb, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			tb.Errorf("%s ends with a partial line", f)
		}
		for l := range strings.Lines(string(b)) {
			m[strings.TrimSuffix(l, "\n")]++
		}
	}
	return m
}

// NeedTool returns the path of the first of names found on PATH. A test that
// needs a program from a Debian package (pkg) fails without it under CI
// (CI=true: .ci/run installs it), and is skipped elsewhere with a message
// that says what to install, so that `go test ./...` passes on a machine
// that lacks it.
func NeedTool(tb testing.TB, pkg string, names ...string) string {
	tb.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s is not installed: .ci/run installs it (apt-get install %s)", names[0], pkg)
	}
	tb.Skipf("%s is not installed (Debian: apt-get install %s); this test needs it", names[0], pkg)
	return ""
}

// Build builds the command package pkg (a path relative to the module root,
// e.g. "bench/cmd/benchapp") into dir and returns the binary's path.
func Build(t testing.TB, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, "github.com/goangel/angel/"+pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}
