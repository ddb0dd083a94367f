package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
	"golang.org/x/sys/unix"
)

// The tests in this file run the example as real processes (this test binary
// running main, see TestMain): under socket activation and through binary
// upgrades.

// logFile is a file both an example process and the process an upgrade
// starts write their log to (a pipe would keep cmd.Wait waiting for the new
// process).
type logFile struct{ path string }

func newLogFile(t *testing.T) (*logFile, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &logFile{path}, f
}

func (l *logFile) String() string {
	b, _ := os.ReadFile(l.path)
	return string(b)
}

// waitLog waits until the log matches re and returns the submatches.
func (l *logFile) waitLog(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	defer func() { // also on WaitFor's Fatal
		if m == nil {
			t.Logf("the log:\n%s", l)
		}
	}()
	testutil.WaitFor(t, 30*time.Second, "a log line matching "+re, func() bool {
		m = rx.FindStringSubmatch(l.String())
		return m != nil
	})
	return m
}

// exampleCmd returns the example as a command: path (this test binary, or a
// copy) with the example's arguments.
func exampleCmd(path, args string, out *os.File, env ...string) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), append([]string{"EXAMPLE_TEST_RUN_MAIN=1", "EXAMPLE_TEST_ARGS=" + args}, env...)...)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestSocketActivationFD3 passes listening sockets as fds 3 and 4 with
// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, as systemd does: the example
// serves on both (and binds nothing: -p 1 would fail) and names them in the
// log.
func TestSocketActivationFD3(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	var addrs []string
	var files []*os.File
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close() // the child's copy keeps the socket open
		defer f.Close()
		files = append(files, f)
	}
	logs, out := newLogFile(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// LISTEN_PID must be the pid of the process that reads it: the shell
	// sets it to its own pid, then becomes the example with exec.
	cmd := exampleCmd("/bin/sh", "-a 127.0.0.1 -p 1 -j 2", out, "LISTEN_FDS=2", "LISTEN_FDNAMES=web:alt")
	cmd.Args = []string{"/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, self}
	cmd.ExtraFiles = files
	startCmd(t, cmd)
	logs.waitLog(t, `Socket activation: serving on the socket systemd passed as "web" \(fd 3, tcp `+regexp.QuoteMeta(addrs[0])+`\)`)
	logs.waitLog(t, `Socket activation: serving on the socket systemd passed as "alt" \(fd 4, tcp `+regexp.QuoteMeta(addrs[1])+`\)`)
	logs.waitLog(t, `Instance #1 listening at`)
	for _, addr := range addrs {
		for range 4 {
			if a := get(t, "http://"+addr+"/"); a.code != 200 || a.body != "Hello, production world!" {
				t.Errorf("GET http://%s/ = %d %q", addr, a.code, a.body)
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, logs)
	}
}

// TestStopUnderLoadOnAHeldSocket stops the example under strict load on a
// socket that outlives it, as systemd's .socket unit holds it: the test
// holds its own copy, and after each stop serves what waits in the queue
// itself (the next process socket activation would start). Not one request
// may fail. It failed two ways before: while clients kept dialling, the stop
// took connections from the queue until the drain deadline, then cut those
// in flight; and a connection a draining life's view took as it closed was
// handed back to no one and closed a second later.
func TestStopUnderLoadOnAHeldSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	addr := ln.Addr().String()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ok, failed, stop := startLoad(addr, 4, 2)
	defer stop()
	// The next process: what is queued after a stop waits for it.
	next := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "Hello, production world!")
	})}
	defer next.Close()
	const rounds = 4
	for round := range rounds {
		logs, out := newLogFile(t)
		cmd := exampleCmd("/bin/sh", "-j 4 --drain-timeout 30s", out, "LISTEN_FDS=1")
		cmd.Args = []string{"/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, self}
		cmd.ExtraFiles = []*os.File{f}
		startCmd(t, cmd)
		logs.waitLog(t, `Instance #3 listening at`)
		// Let the example serve a while under the load (the previous
		// round's clients may still wait in the queue for it).
		served := ok()
		testutil.WaitFor(t, 10*time.Second, "the example to serve 2000 requests", func() bool { return ok() >= served+2000 })
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := exitCode(t, cmd); code != 0 {
			t.Fatalf("round %d: exit code after SIGTERM = %d, want 0\n%s", round, code, logs)
		}
		if strings.Contains(logs.String(), "after --drain-timeout") {
			t.Errorf("round %d: the stop ran into --drain-timeout 30s:\n%s", round, logs)
		}
		if n := failed(); n > 0 {
			t.Fatalf("round %d: %d request(s) failed across the stop\n%s", round, n, logs)
		}
	}
	go next.Serve(ln)
	served := ok()
	testutil.WaitFor(t, 10*time.Second, "the next process to serve the queue", func() bool { return ok() > served+100 })
	res := stop()
	if n := failed(); n > 0 {
		t.Fatalf("%d request(s) failed: %s", n, res)
	}
	t.Logf("%d stops under load: %s", rounds, res)
}

// TestSystemdSocketActivate runs the example under the real
// systemd-socket-activate (Debian package systemd), the way the issue found
// it failing with "address already in use": it must serve on the passed
// socket although -p names the same port.
func TestSystemdSocketActivate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	tool := testutil.NeedTool(t, "systemd", "systemd-socket-activate")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logs, out := newLogFile(t)
	cmd := exec.Command(tool, "-l", addr, "--fdname=web",
		"-E", "EXAMPLE_TEST_RUN_MAIN=1", "-E", "EXAMPLE_TEST_ARGS=-a 127.0.0.1 -p "+strconv.Itoa(port)+" -j 2", self)
	cmd.Stdout, cmd.Stderr = out, out
	startCmd(t, cmd)
	// systemd-socket-activate starts the example on the first connection;
	// until then the connection waits in the socket's backlog.
	waitFor(t, 30*time.Second, "systemd-socket-activate to listen", func() bool {
		return strings.Contains(logs.String(), "Listening on")
	})
	if a := get(t, "http://"+addr+"/"); a.code != 200 || a.body != "Hello, production world!" {
		t.Errorf("GET / = %d %q\n%s", a.code, a.body, logs)
	}
	logs.waitLog(t, `Socket activation: serving on the socket systemd passed as "web" \(fd 3, tcp `+regexp.QuoteMeta(addr)+`\)`)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, logs)
	}
}

// startLoad runs bounded load that never retries (internal/loadclient):
// keep-alive clients and new-connection clients, each answer checked for
// the example's greeting, until the returned stop is called; ok and failed
// count the requests so far.
func startLoad(addr string, keepAlive, newConn int) (ok, failed func() int, stop func() string) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := loadclient.Config{Addr: addr, Path: "/", Body: "Hello, production world!"}
	ka, nc := cfg, cfg
	ka.Workers, ka.KeepAlive = keepAlive, true
	nc.Workers = newConn
	loads := []*loadclient.Load{loadclient.Start(ctx, ka), loadclient.Start(ctx, nc)}
	sum := func(f func(*loadclient.Result) int) int {
		n := 0
		for _, l := range loads {
			n += f(l.Result())
		}
		return n
	}
	ok = func() int { return sum(func(r *loadclient.Result) int { return r.Count(loadclient.OK) }) }
	failed = func() int { return sum((*loadclient.Result).Failed) }
	stop = func() string {
		cancel()
		return fmt.Sprintf("keep-alive: %v; new connections: %v", loads[0].Wait(), loads[1].Wait())
	}
	return ok, failed, stop
}

// copyFile copies this test binary to dst (a new inode: "the new binary").
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// note is one notification and the pid of its sender (SO_PASSCRED, as
// systemd reads it).
type note struct {
	pid int
	msg string
}

// notifyListener is a datagram socket standing in for systemd's
// NOTIFY_SOCKET; it records each notification with its sender's pid.
func notifyListener(t *testing.T) (string, func() []note) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	var mu sync.Mutex
	var notes []note
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			pid := -1
			if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cmsgs) > 0 {
				if cred, err := unix.ParseUnixCredentials(&cmsgs[0]); err == nil {
					pid = int(cred.Pid)
				}
			}
			mu.Lock()
			notes = append(notes, note{pid, string(buf[:n])})
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return path, func() []note {
		mu.Lock()
		defer mu.Unlock()
		return append([]note(nil), notes...)
	}
}

// upgradable returns a copy of the test binary (the example) for a test to
// upgrade: the upgrade replaces the file the process runs. Orphans (the
// upgraded process, once the old one exits) become this process's
// children, so that the test can wait for them. self is the test binary,
// to copy over bin again as the new version.
func upgradable(t *testing.T) (self, bin string) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(t.TempDir(), "example")
	copyFile(t, self, bin)
	return self, bin
}

// TestBinaryUpgrade upgrades the running example (SIGUSR2) to a new binary
// under bounded concurrent load: no request fails, the old process exits 0
// after draining, the new one serves and tells systemd MAINPID= and READY=1
// (the old one never says STOPPING=1); the watchdog is pinged by the old
// process (WATCHDOG_PID), then by the new one once it is the main process.
// Then a new binary that fails to start leaves the new process serving.
func TestBinaryUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	self, bin := upgradable(t)
	sock, notes := notifyListener(t)
	logs, out := newLogFile(t)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	old := exampleCmd("/bin/sh", "-a 127.0.0.1 -p "+strconv.Itoa(port)+" -j 2 --upgrade-timeout 20s", out, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=100000")
	// WATCHDOG_PID is the watched process: the shell sets its own pid, then
	// becomes the example with exec.
	old.Args = []string{"/bin/sh", "-c", `WATCHDOG_PID=$$ exec "$0"`, bin}
	startCmd(t, old)
	oldPid := old.Process.Pid
	pings := func(pid int) int {
		n := 0
		for _, m := range notes() {
			if m.pid == pid && m.msg == "WATCHDOG=1" {
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "watchdog pings from the old process", func() bool { return pings(oldPid) >= 2 })
	logs.waitLog(t, `Instance #1 listening at`)

	ok, failed, stop := startLoad(addr, 4, 2)
	waitFor(t, 30*time.Second, "200 requests before the upgrade", func() bool { return ok() >= 200 || failed() > 0 })
	copyFile(t, self, bin) // install the new binary
	if err := old.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	m := logs.waitLog(t, `Binary upgrade: pid (\d+) serves on the socket inherited from the old process`)
	newPid, _ := strconv.Atoi(m[1])
	if code := exitCode(t, old); code != 0 {
		t.Errorf("old process: exit code %d, want 0\n%s", code, logs)
	}
	waitFor(t, 30*time.Second, "watchdog pings from the new process", func() bool { return pings(newPid) >= 2 })
	served := ok()
	waitFor(t, 30*time.Second, "200 requests after the upgrade", func() bool { return ok() >= served+200 || failed() > 0 })
	counts := stop()
	if n := failed(); n > 0 {
		t.Errorf("%d of %d requests failed during the upgrade: %s\n%s", n, n+ok(), counts, logs)
	}
	t.Logf("requests during the upgrade: %s", counts)
	if !strings.Contains(logs.String(), "Binary upgrade: the new process is ready and serves") {
		t.Errorf("log lacks the old process's hand-over:\n%s", logs)
	}
	mainPid := false
	for _, n := range notes() {
		if strings.Contains(n.msg, "STOPPING=1") {
			t.Errorf("pid %d said STOPPING=1 during the upgrade: %+v", n.pid, notes())
		}
		if n.pid == newPid && strings.HasPrefix(n.msg, "MAINPID="+strconv.Itoa(newPid)+"\nREADY=1\n") {
			mainPid = true
		}
		if n.pid == newPid && n.msg == "WATCHDOG=1" && !mainPid {
			t.Errorf("the new process pinged the watchdog before it said MAINPID=: %+v", notes())
		}
		if n.pid != oldPid && n.pid != newPid {
			t.Errorf("a notification from pid %d, neither the old (%d) nor the new process (%d): %q", n.pid, oldPid, newPid, n.msg)
		}
	}
	if !mainPid {
		t.Errorf("the new process did not say MAINPID=%d and READY=1: %+v", newPid, notes())
	}

	// A new binary that cannot start: the upgrade fails, the process keeps
	// serving, and says why.
	if err := os.WriteFile(bin+".new", []byte("#!/bin/sh\necho broken binary >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(newPid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, `Binary upgrade failed: the new process did not become ready .*exited.*; it was killed if it still ran, and this process \(pid `+strconv.Itoa(newPid)+`\) keeps serving`)
	if a := get(t, "http://"+addr+"/"); a.code != 200 {
		t.Errorf("GET / after the failed upgrade = %d %q", a.code, a.body)
	}
	if err := syscall.Kill(newPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testutil.WaitPid(t, newPid); code != 0 {
		t.Errorf("upgraded process: exit code %d after SIGTERM, want 0\n%s", code, logs)
	}
	// One failed upgrade, one ERROR line (issue 20: the signal's handler
	// logged it again).
	failures := 0
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, " ERROR ") && strings.Contains(line, "pgrade failed") {
			failures++
		}
	}
	if failures != 1 {
		t.Errorf("%d ERROR lines for one failed upgrade, want 1:\n%s", failures, logs)
	}
}

// TestBinaryUpgradeNotReady: a new binary that starts but never becomes
// ready is killed when --upgrade-timeout passes, and the old process keeps
// serving and says why.
func TestBinaryUpgradeNotReady(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "example")
	copyFile(t, self, bin)
	logs, out := newLogFile(t)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	sock, notes := notifyListener(t)
	old := exampleCmd(bin, "-a 127.0.0.1 -p "+strconv.Itoa(port)+" -j 1 --upgrade-timeout 500ms", out, "NOTIFY_SOCKET="+sock)
	startCmd(t, old)
	// An upgrade starts once the runner is ready (Upgrade refuses before).
	waitFor(t, 30*time.Second, "READY=1", func() bool {
		for _, n := range notes() {
			if strings.HasPrefix(n.msg, "READY=1\n") {
				return true
			}
		}
		return false
	})
	if err := os.WriteFile(bin+".new", []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	if err := old.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	m := logs.waitLog(t, `Binary upgrade failed: the new process did not become ready \(new child pid=(\d+) timed out\); it was killed`)
	pid, _ := strconv.Atoi(m[1])
	waitFor(t, 30*time.Second, "the new process to be killed", func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	})
	if a := get(t, "http://"+addr+"/"); a.code != 200 {
		t.Errorf("GET / after the failed upgrade = %d %q", a.code, a.body)
	}
	if err := old.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, old); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, logs)
	}
}

// TestUnitFiles checks the unit files in example/systemd: the settings the
// README promises, and `systemd-analyze verify` (with the systemd < 253
// drop-in; such a systemd may only complain that it does not know
// Type=notify-reload and ReloadSignal=).
func TestUnitFiles(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	service, socket, dropIn := read("goangel-example.service"), read("goangel-example.socket"), read("systemd-252.conf")
	for _, c := range []struct{ file, text, want string }{
		{"service", service, "\nType=notify-reload\n"},
		{"service", service, "\nNotifyAccess=all\n"},
		{"service", service, "\nWatchdogSec=30s\n"},
		{"service", service, "\nRestart=on-failure\n"},
		{"service", service, "\nRestartPreventExitStatus=64 78\n"},
		{"service", service, "\nExecStart=/usr/local/bin/goangel-example "},
		{"socket", socket, "\nListenStream=127.0.0.1:3000\n"},
		{"socket", socket, "\nFileDescriptorName=http\n"},
		{"service", service, "\nTimeoutStopSec=15s\n"}, // above --shutdown-timeout's default (10s)
		{"service", service, "\nExecStop=/bin/sh -c 'pid=$$MAINPID; "},
		{"service", service, "\nLogsDirectory=goangel-example\n"},
		{"drop-in", dropIn, "\nExecReload=/bin/sh -c 'kill -HUP $$MAINPID'\n"},
	} {
		if !strings.Contains(c.text, c.want) {
			t.Errorf("the %s unit lacks %q", c.file, strings.TrimSpace(c.want))
		}
	}
	for name, text := range map[string]string{"service": service, "drop-in": dropIn} {
		// procps (/bin/kill) is not in a minimal Debian 12.
		for l := range strings.Lines(text) {
			if !strings.HasPrefix(l, "#") && strings.Contains(l, "/bin/kill") {
				t.Errorf("the %s unit needs procps: %s", name, strings.TrimSpace(l))
			}
		}
	}
	tool := testutil.NeedTool(t, "systemd", "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// verify checks that ExecStart's program exists: point it at this test
	// binary.
	write("goangel-example.service", strings.ReplaceAll(service, "/usr/local/bin/goangel-example", self))
	write("goangel-example.socket", socket)
	version, _ := exec.Command(tool, "--version").Output()
	old := false
	if f := strings.Fields(string(version)); len(f) >= 2 {
		n, _ := strconv.Atoi(f[1])
		old = n < 253
	}
	if old {
		write("goangel-example.service.d/systemd-252.conf", dropIn)
	}
	cmd := exec.Command(tool, "verify", "--man=no", "goangel-example.service", "goangel-example.socket")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for l := range strings.Lines(string(out)) {
		if old && (strings.Contains(l, "notify-reload") || strings.Contains(l, "'ReloadSignal'")) {
			continue
		}
		t.Errorf("systemd-analyze verify: %s", strings.TrimSpace(l))
	}
	// The hardening: an exposure of at most 4.0 (of 10).
	cmd = exec.Command(tool, "security", "--offline=yes", "--threshold=40", "--no-pager", "goangel-example.service")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --threshold=40: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`Overall exposure level for goangel-example.service: (\S+)`).FindSubmatch(out); m != nil {
		t.Logf("systemd-analyze security: exposure %s", m[1])
	}
}

// selfSigned writes a self-signed certificate for localhost named cn and its
// key to cert and key.
func selfSigned(t *testing.T, cn, cert, key string) *x509.Certificate {
	t.Helper()
	c, k := testutil.WriteSelfSigned(t, t.TempDir(), cn)
	for src, dst := range map[string]string{c: cert, k: key} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return testutil.ReadCert(t, cert)
}

// TestCertificateReloadOnSIGHUP: the example under --ssl --http2 reads its
// certificate and key again on SIGHUP and serves the new pair to new
// handshakes (over HTTP/2).
func TestCertificateReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	pool := x509.NewCertPool()
	pool.AddCert(selfSigned(t, "first", cert, key))
	logs, out := newLogFile(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exampleCmd(self, fmt.Sprintf("-a 127.0.0.1 -p %d -j 2 --ssl --http2 --certificate-file %s --key-file %s", port, cert, key), out)
	startCmd(t, cmd)
	logs.waitLog(t, `Instance #1 listening at https://`)
	served := func() (string, string) {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(fmt.Sprintf("https://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("GET /: %v\n%s", err, logs)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.TLS.PeerCertificates[0].Subject.CommonName, resp.Proto
	}
	if cn, proto := served(); cn != "first" || proto != "HTTP/2.0" {
		t.Fatalf("served %q over %s, want first over HTTP/2.0", cn, proto)
	}
	pool.AddCert(selfSigned(t, "second", cert, key))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.waitLog(t, `Certificate reloaded from `+regexp.QuoteMeta(cert)+` \(subject "CN=second"`)
	for range 2 {
		if cn, _ := served(); cn != "second" {
			t.Errorf("after SIGHUP served %q, want second", cn)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, logs)
	}
}

// waitNth waits until the log matches re n times and returns the submatches
// of the nth match; it stops early (Fatal) when the log matches fail.
func (l *logFile) waitNth(t *testing.T, re string, n int, fail string) []string {
	t.Helper()
	rx, frx := regexp.MustCompile(re), regexp.MustCompile(fail)
	var m [][]string
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d log lines matching %s", n, re), func() bool {
		s := l.String()
		if frx.MatchString(s) {
			t.Fatalf("the log matches %s:\n%s", fail, s)
		}
		m = rx.FindAllStringSubmatch(s, -1)
		return len(m) >= n
	})
	return m[n-1]
}

// TestBinaryUpgradeChain upgrades the example three times in a row, with the
// admin listener on, under bounded load that never retries: every upgrade
// succeeds (the admin socket passes to each new process with the app's),
// no request fails, every generation answers on the admin listener, and
// every generation pings the watchdog once it is the main process: the
// third process too, whose parent is not the process WATCHDOG_PID names
// (systemd follows MAINPID=, and so must the watchdog).
func TestBinaryUpgradeChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses")
	}
	self, bin := upgradable(t)
	sock, notes := notifyListener(t)
	logs, out := newLogFile(t)
	port, adminPort := freePort(t), freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	admin := "http://127.0.0.1:" + strconv.Itoa(adminPort)
	first := exampleCmd("/bin/sh", fmt.Sprintf("-a 127.0.0.1 -p %d -j 2 --upgrade-timeout 20s --admin-address 127.0.0.1:%d --pprof", port, adminPort), out,
		"NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=100000")
	first.Args = []string{"/bin/sh", "-c", `WATCHDOG_PID=$$ exec "$0"`, bin}
	startCmd(t, first)
	pids := []int{first.Process.Pid}
	t.Cleanup(func() { // the later generations, if the test ends early
		for _, pid := range pids[1:] {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				testutil.WaitPid(t, pid)
			}
		}
	})
	pings := func(pid int) int {
		n := 0
		for _, m := range notes() {
			if m.pid == pid && m.msg == "WATCHDOG=1" {
				n++
			}
		}
		return n
	}
	waitFor(t, 30*time.Second, "watchdog pings from the first process", func() bool { return pings(pids[0]) >= 2 })
	logs.waitLog(t, `Instance #1 listening at`)
	if a := get(t, admin+"/healthz"); a.code != 200 {
		t.Fatalf("admin GET /healthz = %d %q", a.code, a.body)
	}

	ok, failed, stop := startLoad(addr, 4, 2)
	defer func() {
		if failed != nil {
			stop()
		}
	}()
	waitFor(t, 30*time.Second, "100 requests before the upgrades", func() bool { return ok() >= 100 || failed() > 0 })
	for gen := 1; gen <= 3; gen++ {
		old := pids[len(pids)-1]
		copyFile(t, self, bin) // install the new binary
		if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		logs.waitNth(t, `Binary upgrade: the new process is ready and serves`, gen, `Binary upgrade failed`)
		m := logs.waitNth(t, `Binary upgrade: pid (\d+) serves on the socket inherited from the old process`, gen, `Binary upgrade failed`)
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
		if gen == 1 {
			if code := exitCode(t, first); code != 0 {
				t.Errorf("process 1: exit code %d, want 0\n%s", code, logs)
			}
		} else if code := testutil.WaitPid(t, old); code != 0 {
			t.Errorf("process %d: exit code %d, want 0\n%s", gen, code, logs)
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("watchdog pings from process %d (pid %d)", gen+1, pid), func() bool { return pings(pid) >= 2 })
		if a := get(t, admin+"/healthz"); a.code != 200 {
			t.Errorf("process %d: admin GET /healthz = %d %q", gen+1, a.code, a.body)
		}
		if a := get(t, admin+"/debug/pprof/cmdline"); a.code != 200 {
			t.Errorf("process %d: admin GET /debug/pprof/cmdline = %d", gen+1, a.code)
		}
		served := ok()
		waitFor(t, 30*time.Second, fmt.Sprintf("100 requests served by process %d", gen+1), func() bool { return ok() >= served+100 || failed() > 0 })
	}
	counts := stop()
	if n := failed(); n > 0 {
		t.Errorf("%d of %d requests failed during the upgrades: %s\n%s", n, n+ok(), counts, logs)
	}
	failed = nil
	t.Logf("requests during the upgrades: %s", counts)
	for i, pid := range pids {
		if strings.Contains(logs.String(), fmt.Sprintf("pid %d", pid)) && pings(pid) == 0 {
			t.Errorf("process %d (pid %d) sent no watchdog ping", i+1, pid)
		}
	}
	for _, n := range notes() {
		if strings.Contains(n.msg, "STOPPING=1") {
			t.Errorf("pid %d said STOPPING=1 during an upgrade: %+v", n.pid, n.msg)
		}
	}
	last := pids[len(pids)-1]
	if err := syscall.Kill(last, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testutil.WaitPid(t, last); code != 0 {
		t.Errorf("process 4: exit code %d after SIGTERM, want 0\n%s", code, logs)
	}
}
