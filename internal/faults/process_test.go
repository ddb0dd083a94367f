package faults

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
)

// proc is the fault app running as a real process (this test binary,
// re-executed by TestMain).
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testutil.Buffer // what it wrote to stdout and stderr
	addr   string
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

var listening = regexp.MustCompile(`listening at https?://([0-9.]+:[0-9]+)`)

// startProc runs the fault app with args (after -a 127.0.0.1 -p 0) and
// the extra environment; stdout and stderr go to out, or to console if
// given (then the caller reads it). It returns once every instance listens.
func startProc(t *testing.T, env []string, console *os.File, args ...string) *proc {
	t.Helper()
	return startProcWith(t, "", env, console, args...)
}

// startProcWith is startProc run through "sh -c" with shellPrefix before
// the exec (e.g. "ulimit -n 128;").
func startProcWith(t *testing.T, shellPrefix string, env []string, console *os.File, args ...string) *proc {
	t.Helper()
	argv := append([]string{"-a", "127.0.0.1", "-p", "0"}, args...)
	var cmd *exec.Cmd
	if shellPrefix != "" {
		cmd = exec.Command("sh", "-c", shellPrefix+` exec "$0"`, os.Args[0])
	} else {
		cmd = exec.Command(os.Args[0])
	}
	cmd.Env = append(os.Environ(), append([]string{"FAULTS_RUN_APP=1", "FAULTS_APP_ARGS=" + strings.Join(argv, " ")}, env...)...)
	p := &proc{t: t, cmd: cmd, out: &testutil.Buffer{}, exited: make(chan struct{})}
	var copied sync.WaitGroup
	var parentEnd *os.File // our copy of the pipe's write end, closed once the child has it
	if console != nil {
		cmd.Stdout, cmd.Stderr = console, console
	} else {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = w, w
		parentEnd = w
		copied.Go(func() {
			io.Copy(p.out, r)
			r.Close()
		})
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if parentEnd != nil {
		parentEnd.Close()
	}
	go func() {
		p.err = cmd.Wait()
		copied.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	if console == nil {
		p.waitListening(t)
	}
	return p
}

func (p *proc) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.out.String()); m != nil {
			p.addr = m[1]
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("the fault app ended before it listened: %v\n%s", p.err, p.out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fault app did not listen within 30s:\n%s", p.out)
		}
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// get does one GET on a fresh connection.
func (p *proc) get(path string) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (p *proc) mustServe(t *testing.T, when string) {
	t.Helper()
	if code, body, err := p.get("/ok"); err != nil || code != 200 || body != "ok" {
		t.Fatalf("%s: GET /ok = %d %q %v (alive: %v)\n%s", when, code, body, err, p.alive(), p.out)
	}
}

// stop sends SIGTERM and waits up to within for the process to end; it
// returns the exit code.
func (p *proc) stop(t *testing.T, within time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && p.alive() {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("still running %v after SIGTERM\n%s", within, p.out)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("killed by %v, want an exit\n%s", ws.Signal(), p.out)
		}
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// TestConsolePipeClosed: the reader of the console pipe goes away (| tee
// killed, journald restarted); the log lines that follow must not kill the
// process (SIGPIPE), and it keeps serving.
func TestConsolePipeClosed(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, nil, w, "-j", "2")
	w.Close()
	// Read the console until every instance listens, then go away.
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.out.Write([]byte(sc.Text() + "\n"))
		if m := listening.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "#1") {
			p.addr = m[1]
			break
		}
	}
	if p.addr == "" {
		t.Fatalf("no listening line:\n%s", p.out)
	}
	r.Close()
	for i := range 3 {
		if code, _, err := p.get("/log?n=20"); err != nil || code != 200 {
			t.Fatalf("GET /log %d after the console reader went away = %d %v (alive: %v)", i, code, err, p.alive())
		}
		if code, _, err := p.get("/panic"); err != nil || code != 500 {
			t.Fatalf("GET /panic %d after the console reader went away = %d %v (alive: %v)", i, code, err, p.alive())
		}
	}
	p.mustServe(t, "after logging to a closed console")
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// logDirCase starts the app logging to dir/app.log, breaks the directory
// with breakIt, logs on, and checks that the process keeps serving and
// stops cleanly.
func logDirCase(t *testing.T, dir string, breakIt func(t *testing.T, dir string)) *proc {
	t.Helper()
	p := startProc(t, nil, nil, "-j", "2", "--log-file", filepath.Join(dir, "app.log"))
	p.mustServe(t, "before")
	breakIt(t, dir)
	for i := range 5 {
		if code, _, err := p.get("/log?n=200"); err != nil || code != 200 {
			t.Fatalf("GET /log %d = %d %v (alive: %v)\n%s", i, code, err, p.alive(), p.out)
		}
	}
	p.mustServe(t, "after")
	if code := p.stop(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, p.out)
	}
	return p
}

func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %v: %v: %s (this fault needs root, to mount a small or read-only file system)", args, err, out)
	}
}

func umount(t *testing.T, dir string) {
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

func TestLogDirDeleted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logDirCase(t, dir, func(t *testing.T, dir string) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLogDirReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logDirCase(t, dir, func(t *testing.T, dir string) {
		// Permissions do not stop root: remount the directory read-only.
		mount(t, "--bind", dir, dir)
		umount(t, dir)
		mount(t, "-o", "remount,ro,bind", dir)
	})
}

func TestLogDirFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir)
	umount(t, dir)
	p := logDirCase(t, dir, func(*testing.T, string) {})
	if out := p.out.String(); !strings.Contains(out, "no space left on device") {
		t.Errorf("a full log directory was not reported:\n%s", out)
	}
	if n := strings.Count(p.out.String(), "no space left on device"); n > 5 {
		t.Errorf("the full disk was reported %d times, want once per episode", n)
	}
}

// TestFDExhaustion: under "ulimit -n 128", 300 client connections run the
// process out of descriptors: the acceptor survives EMFILE and serves again
// once they close. With --max-connections under the limit it never reaches
// EMFILE: connections wait in the backlog.
func TestFDExhaustion(t *testing.T) {
	flood := func(p *proc) []net.Conn {
		var cs []net.Conn
		for range 300 {
			c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err != nil {
				break
			}
			cs = append(cs, c)
		}
		return cs
	}
	t.Run("no limit", func(t *testing.T) {
		p := startProcWith(t, "ulimit -n 128;", nil, nil, "-j", "2")
		cs := flood(p)
		testutil.WaitFor(t, 20*time.Second, "an accept error (EMFILE) logged", func() bool {
			return strings.Contains(p.out.String(), "too many open files")
		})
		for _, c := range cs {
			c.Close()
		}
		testutil.WaitFor(t, 20*time.Second, "serving again", func() bool {
			code, _, err := p.get("/ok")
			return err == nil && code == 200
		})
		if code := p.stop(t, 20*time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
	})
	t.Run("max-connections", func(t *testing.T) {
		// Idle connections hold their slot until the header timeout.
		p := startProcWith(t, "ulimit -n 128;", nil, nil, "-j", "2", "--max-connections", "64", "--read-header-timeout", "300ms")
		cs := flood(p)
		if len(cs) != 300 {
			t.Errorf("%d of 300 connections made: the backlog should hold them", len(cs))
		}
		p.mustServe(t, "with 300 idle connections open or waiting")
		for _, c := range cs {
			c.Close()
		}
		p.mustServe(t, "after the flood")
		if strings.Contains(p.out.String(), "too many open files") {
			t.Errorf("EMFILE reached under --max-connections:\n%s", p.out)
		}
		if code := p.stop(t, 20*time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
	})
}

// TestShutdownBounded: SIGTERM ends the process within its deadline
// (--shutdown-timeout) even while a respawn's configure, an OnShutdown hook
// or a handler hangs; the exit code is non-zero and the log names what hung.
func TestShutdownBounded(t *testing.T) {
	args := []string{"-j", "2", "--drain-timeout", "1s", "--shutdown-timeout", "3s"}
	for _, c := range []struct {
		name  string
		env   []string
		setup func(t *testing.T, p *proc)
		names string // what the log after SIGTERM must say
	}{
		{"hung configure", []string{"FAULTAPP_HANG_CONFIGURE=1"}, func(t *testing.T, p *proc) {
			if code, _, err := p.get("/crash/error"); err != nil || code != 200 {
				t.Fatalf("GET /crash/error = %d %v", code, err)
			}
			// The crash comes after the answer: a SIGTERM sent before the
			// respawn began would find nothing hung.
			testutil.WaitFor(t, 10*time.Second, "the respawn's configure hanging", func() bool {
				return strings.Contains(p.out.String(), "this configure hangs")
			})
		}, "configure"},
		{"hung hook", []string{"FAULTAPP_HANG_HOOK=1"}, func(*testing.T, *proc) {}, "hook"},
		{"hung handler", nil, func(t *testing.T, p *proc) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			fmt.Fprintf(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n") // never answered
			testutil.WaitFor(t, 10*time.Second, "the /hang request in flight", func() bool {
				return strings.Contains(p.out.String(), "/hang in flight")
			})
		}, "still"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startProc(t, c.env, nil, args...)
			c.setup(t, p)
			before := len(p.out.String())
			code := p.stop(t, 15*time.Second)
			if code == 0 {
				t.Errorf("exit code 0 after a shutdown that had to leave something running, want non-zero\n%s", p.out)
			}
			if after := p.out.String()[before:]; !strings.Contains(strings.ToLower(after), c.names) {
				t.Errorf("the log after SIGTERM does not say %q about what hung:\n%s", c.names, after)
			}
		})
	}
}
