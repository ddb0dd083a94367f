package repocheck

import (
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/goangel/angel/internal/testutil/natstest"
)

// TestStateGuideRuns builds the program of docs/STATE.md (its ```go block
// that is a whole package main) and runs what the guide promises: two
// processes of two instances each on one NATS server, the first with
// --counter-owner; 200 increments sent at once over both processes, each
// answered 200 OK; then every instance of both serves the count 200.
func TestStateGuideRuns(t *testing.T) {
	dir := root(t)
	var prog string
	for _, b := range mdBlocks(t, dir, "docs/STATE.md") {
		if strings.HasPrefix(strings.TrimSpace(b.code), "package main") {
			prog = b.code
		}
	}
	if prog == "" {
		t.Fatal("docs/STATE.md has no ```go block that is a whole program")
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "main.go")
	if err := os.WriteFile(src, []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	ov, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(dir, "internal/repocheck/zz/state/main.go"): src}})
	if err != nil {
		t.Fatal(err)
	}
	ovFile := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "counter")
	if out, err := runGo(dir, "build", "-overlay", ovFile, "-o", bin, "./internal/repocheck/zz/state"); err != nil {
		t.Fatalf("docs/STATE.md's program does not build: %v\n%s", err, out)
	}

	url := natstest.JetStream(t)
	owner := startCounter(t, bin, url, "--counter-owner")
	other := startCounter(t, bin, url)

	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			c := fresh()
			defer c.CloseIdleConnections()
			for i := range each {
				base := owner.url
				if (w+i)%2 == 1 {
					base = other.url
				}
				resp, err := c.Post(base+"/incr", "text/plain", nil)
				if err != nil {
					errs <- err
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("POST %s/incr: %s %s", base, resp.Status, b)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("owner's log:\n%s\nother's log:\n%s", owner.log, other.log)
	}
	want := fmt.Sprint(workers * each)
	seen := map[string]string{} // "process/instance" -> count
	c := fresh()
	defer c.CloseIdleConnections()
	defer func() {
		if t.Failed() {
			t.Logf("counts seen (process/instance): %v", seen)
		}
	}()
	testutil.WaitFor(t, 10*time.Second, "every instance of both processes at "+want, func() bool {
		for _, p := range []*counterProc{owner, other} {
			resp, err := c.Get(p.url + "/count")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			seen[p.url+"/"+resp.Header.Get("X-Instance")] = strings.TrimSpace(string(b))
		}
		if len(seen) != 4 {
			return false
		}
		for _, v := range seen {
			if v != want {
				return false
			}
		}
		return true
	})
	for _, p := range []*counterProc{owner, other} {
		p.stop(t)
	}
}

type counterProc struct {
	cmd *exec.Cmd
	log *testutil.Buffer
	url string
}

var listening = regexp.MustCompile(`listening at (http://127\.0\.0\.1:\d+)`)

// startCounter starts the guide's program with 2 instances on a free port
// and returns once both serve.
func startCounter(t *testing.T, bin, natsURL string, args ...string) *counterProc {
	t.Helper()
	p := &counterProc{log: &testutil.Buffer{}}
	p.cmd = exec.Command(bin, append([]string{"-j", "2", "-a", "127.0.0.1", "-p", "0", "--pubsub-url", natsURL}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "LISTEN_") && !strings.HasPrefix(kv, "WATCHDOG_") && !strings.HasPrefix(kv, "COUNTER_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	testutil.WaitFor(t, 20*time.Second, "both instances listening", func() bool {
		return len(listening.FindAllStringSubmatch(p.log.String(), -1)) >= 2
	})
	p.url = listening.FindStringSubmatch(p.log.String())[1]
	return p
}

// stop sends SIGTERM and waits (bounded) for a clean exit.
func (p *counterProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("counter exited: %v\n%s", err, p.log)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Errorf("counter did not stop within 20s\n%s", p.log)
	}
}

func fresh() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}
