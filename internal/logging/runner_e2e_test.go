package logging_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// syncBuffer is shared with the other packages' tests.
type syncBuffer = testutil.Buffer

// A runner under load (4 instances, 8 clients) logs every request twice
// (the handler's line, the access line) into rotating files that rotate by
// size (16 KB) and by time (every second) meanwhile. Once it has stopped,
// every line is on disk exactly once and whole; with --quiet, nothing was
// printed.
func TestRunnerUnderLoadThroughRotations(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few seconds")
	}
	dir := t.TempDir()
	out := &syncBuffer{}
	r := productiontest.Start(t, "e2e", func(app *production.App) error {
		app.Router.Get("/n/{g}/{i}", func(w http.ResponseWriter, r *http.Request) {
			app.Logger.Infof("handled g=%s i=%s", chi.URLParam(r, "g"), chi.URLParam(r, "i"))
			io.WriteString(w, "ok")
		})
		return nil
	}, []string{"-j", "4", "--quiet",
		"--log-file", filepath.Join(dir, "app.log"), "--log-rotate-every", "1s", "--log-max-size", "16KB", "--access-log"},
		production.WithOutput(out, out))
	base := r.URL
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		sent  = map[string]bool{}
		stop  = make(chan struct{})
		fails int
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/n/%d/%d", g, i)
				resp, err := client.Get(base + path)
				if err != nil {
					mu.Lock()
					fails++
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				sent[path] = resp.StatusCode == http.StatusOK
				mu.Unlock()
			}
		})
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopClients) // before the runner's stop, also when WaitFor fails the test
	testutil.WaitFor(t, 30*time.Second, "3 periods and 10 files", func() bool { return enoughRotations(t, dir) })
	stopClients()
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if fails > 0 {
		t.Errorf("%d requests failed", fails)
	}
	if s := out.String(); s != "" {
		t.Errorf("--quiet printed %q", s)
	}

	handled := regexp.MustCompile(`^\S+ INFO  handled g=(\d) i=(\d+) app=e2e instance=\d life=\d+$`)
	access := regexp.MustCompile(`^\S+ INFO  request app=e2e bytes=2 duration_ms=[0-9.]+ instance=\d life=\d+ method=GET remote=127\.0\.0\.1:\d+ request_id=\S+ status=200 uri=(/n/\d/\d+)$`)
	other := regexp.MustCompile(`^\S+ (INFO |WARN ) \S.* app=e2e`)
	seenH, seenA := map[string]int{}, map[string]int{}
	for l, n := range testutil.LogLines(t, dir) {
		switch m := handled.FindStringSubmatch(l); {
		case m != nil:
			seenH["/n/"+m[1]+"/"+m[2]] += n
		case access.MatchString(l):
			seenA[access.FindStringSubmatch(l)[1]] += n
		case other.MatchString(l):
		default:
			t.Errorf("torn or unknown line %q", l)
		}
	}
	for path, ok := range sent {
		if !ok {
			continue
		}
		if seenH[path] != 1 || seenA[path] != 1 {
			t.Errorf("%s: handler line %d times, access line %d times", path, seenH[path], seenA[path])
		}
	}
	t.Logf("%d requests, %d files", len(sent), len(testutil.LogFiles(t, dir)))
}

var periodStem = regexp.MustCompile(`^app\.(\d{14})\.log`)

// enoughRotations: the files in dir span 3 periods (by time) and number
// 10 (by size).
func enoughRotations(t *testing.T, dir string) bool {
	stems := map[string]bool{}
	files := testutil.LogFiles(t, dir)
	for _, f := range files {
		if m := periodStem.FindStringSubmatch(filepath.Base(f)); m != nil {
			stems[m[1]] = true
		}
	}
	return len(stems) >= 3 && len(files) >= 10
}

// An unwritable --log-file fails the runner at start-up, before any
// instance starts, with a non-zero exit code and the path in the message.
func TestRunnerUnwritableLogFile(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "logs", "app.log")
	configured := false
	out := &syncBuffer{}
	r := production.New("e2e", func(*production.App) error { configured = true; return nil },
		production.WithOutput(out, out), production.WithLookupEnv(func(string) (string, bool) { return "", false }))
	err := r.Run(context.Background(), []string{"-a", "127.0.0.1", "-p", "0", "-j", "2", "--log-file", path})
	if err == nil || production.ExitCode(err) == 0 {
		t.Fatalf("Run = %v (exit %d), want a start-up error", err, production.ExitCode(err))
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--log-file") {
		t.Errorf("error %q does not name --log-file %s", err, path)
	}
	if strings.Count(err.Error(), "logging:") != 1 {
		t.Errorf("error %q: want the prefix \"logging:\" once", err)
	}
	if configured {
		t.Error("an instance was configured")
	}
}
