package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fields(t *testing.T, line string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			t.Fatalf("field %q of %q is not key=value", f, line)
		}
		m[k] = v
	}
	return m
}

// TestPeerAppUnderPeercheck runs peercheck against goangel's peer app, as
// bench/scripts/peers.sh does, briefly: the memory mode finds the process and
// its RSS, and the crash mode sees new lives answer after /crash, counts the
// crashes it sent, and no failed request.
func TestPeerAppUnderPeercheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two commands and loads a server for a few seconds")
	}
	dir := t.TempDir()
	check, app := testutil.Build(t, dir, "bench/cmd/peercheck"), testutil.Build(t, dir, "bench/cmd/peerapp")
	serve := []string{"--", app, "--quiet", "-p", "{port}", "-j", "{workers}"}

	out, err := exec.Command(check, append([]string{"-mode", "memory", "-workers", "2", "-procs", "1", "-log", filepath.Join(dir, "mem.log")}, serve...)...).Output()
	if err != nil {
		t.Fatalf("memory mode: %v\n%s", err, errOutput(err))
	}
	m := fields(t, string(out))
	if rss, err := strconv.ParseFloat(m["rss_mib"], 64); err != nil || rss <= 0 || m["procs"] != "1" {
		t.Fatalf("memory mode printed %q: want rss_mib > 0 and procs=1", out)
	}

	out, err = exec.Command(check, append([]string{"-mode", "crash", "-workers", "2", "-procs", "1", "-load", "600ms", "-every", "200ms", "-log", filepath.Join(dir, "crash.log")}, serve...)...).Output()
	if err != nil {
		t.Fatalf("crash mode: %v\n%s", err, errOutput(err))
	}
	m = fields(t, string(out))
	for _, conn := range []string{"ka", "new"} {
		if m[conn+"_up"] != "true" || m[conn+"_failed"] != "0" || m[conn+"_base_failed"] != "0" {
			t.Errorf("%s load: up=%s failed=%s base_failed=%s, want true, 0, 0 (output %q)", conn, m[conn+"_up"], m[conn+"_failed"], m[conn+"_base_failed"], out)
		}
		if n, err := strconv.Atoi(m[conn+"_crashes"]); err != nil || n < 1 {
			t.Errorf("%s load: crashes=%q, want at least 1 (output %q)", conn, m[conn+"_crashes"], out)
		}
	}
	if _, err := strconv.ParseFloat(m["respawn_ms"], 64); err != nil {
		t.Errorf("respawn_ms=%q: %v", m["respawn_ms"], err)
	}
}

func errOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
