package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/internal/testutil"
)

func defaults() logging.Flags {
	return logging.Flags{LogLevel: "info", LogFormat: "text", LogRotateEvery: 24 * time.Hour}
}

func open(t *testing.T, f logging.Flags, quiet bool, stdout, stderr *bytes.Buffer) *logging.Logging {
	t.Helper()
	var out, errOut io.Writer // no typed nils
	if stdout != nil {
		out = stdout
	}
	if stderr != nil {
		errOut = stderr
	}
	l, err := logging.Open(f, quiet, out, errOut)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestQuietPrintsNothingOnStdoutButStillWritesTheFile(t *testing.T) {
	dir := t.TempDir()
	f := defaults()
	f.LogFile = filepath.Join(dir, "app.log")
	var stdout, stderr bytes.Buffer
	l := open(t, f, true, &stdout, &stderr)
	logging.Instance(l.Logger, "example", 0, 1).Info("Instance #0 listening at http://127.0.0.1:3000")
	l.Logger.Error("boom")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Fatalf("quiet printed %q / %q", stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(f.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Instance #0 listening at http://127.0.0.1:3000 app=example instance=0 life=1\n") || !strings.Contains(string(b), "ERROR boom\n") {
		t.Errorf("file holds %q", b)
	}
}

func TestPlainWhenNotATerminal(t *testing.T) {
	var stdout bytes.Buffer
	l := open(t, defaults(), false, &stdout, nil)
	l.Logger.Warn("careful")
	l.Logger.WithField("stack", "goroutine 1 [running]:\nmain.main()").Error("crashed")
	out := stdout.String()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour codes in non-terminal output %q", out)
	}
	if !strings.Contains(out, " WARN  careful\n") || !strings.Contains(out, " ERROR crashed\n    goroutine 1 [running]:\n    main.main()\n") {
		t.Errorf("output %q", out)
	}
}

func TestJSONFormat(t *testing.T) {
	var stdout bytes.Buffer
	f := defaults()
	f.LogFormat = "json"
	l := open(t, f, false, &stdout, nil)
	logging.Instance(l.Logger, "example", 3, 2).WithError(errors.New("bad")).Warn("hello")
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("%v: %q", err, stdout.String())
	}
	if m["msg"] != "hello" || m["level"] != "warning" || m["app"] != "example" || m["instance"] != 3.0 || m["life"] != 2.0 || m["error"] != "bad" {
		t.Errorf("entry %v", m)
	}
}

func TestLevel(t *testing.T) {
	var stdout bytes.Buffer
	f := defaults()
	f.LogLevel = "warn"
	l := open(t, f, false, &stdout, nil)
	l.Logger.Info("hidden")
	l.Logger.Warn("shown")
	if strings.Contains(stdout.String(), "hidden") || !strings.Contains(stdout.String(), "shown") {
		t.Errorf("output %q", stdout.String())
	}
}

func TestConsoleAndFileTogether(t *testing.T) {
	dir := t.TempDir()
	f := defaults()
	f.LogFile = filepath.Join(dir, "app.log")
	var stdout bytes.Buffer
	l := open(t, f, false, &stdout, nil)
	l.Logger.Info("both")
	l.Close()
	b, _ := os.ReadFile(f.LogFile)
	if !strings.Contains(stdout.String(), "both") || string(b) != stdout.String() {
		t.Errorf("console %q, file %q", stdout.String(), b)
	}
}

func TestUnwritableLogFileNamesThePath(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, set := range []func(*logging.Flags, string){
		func(f *logging.Flags, p string) { f.LogFile = p },
		func(f *logging.Flags, p string) { f.AccessLogFile = p },
	} {
		f := defaults()
		path := filepath.Join(blocker, "logs", "app.log")
		set(&f, path)
		_, err := logging.Open(f, true, nil, nil)
		if !errors.Is(err, logging.ErrLogFile) || !strings.Contains(err.Error(), path) {
			t.Errorf("err = %v, want ErrLogFile naming %s", err, path)
		}
	}
}

func TestAccessLogFields(t *testing.T) {
	dir := t.TempDir()
	f := defaults()
	f.LogFormat = "json"
	f.AccessLogFile = filepath.Join(dir, "access.log")
	var stdout bytes.Buffer
	l := open(t, f, false, &stdout, nil)
	if l.Access == nil || l.Access == l.Logger {
		t.Fatal("want a separate access logger")
	}
	h := middleware.RequestID(logging.AccessLog(l.Access, logrus.Fields{"app": "example", "instance": 1})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte("short and stout"))
		})))
	req := httptest.NewRequest("POST", "/pot?x=1", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	h.ServeHTTP(httptest.NewRecorder(), req)
	l.Close()
	if stdout.Len() != 0 {
		t.Errorf("access line on the console: %q", stdout.String())
	}
	b, err := os.ReadFile(f.AccessLogFile)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %q", err, b)
	}
	for k, want := range map[string]any{"method": "POST", "uri": "/pot?x=1", "status": 418.0, "bytes": 15.0, "instance": 1.0, "app": "example", "remote": "192.0.2.1:1234"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if id, _ := m["request_id"].(string); id == "" {
		t.Errorf("no request id: %v", m)
	}
	if d, ok := m["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("no duration_ms as a number of milliseconds: %v", m)
	}
}

func TestAccessLogToMainLogAndPanics(t *testing.T) {
	var stdout bytes.Buffer
	f := defaults()
	f.AccessLog = true
	l := open(t, f, false, &stdout, nil)
	if l.Access != l.Logger {
		t.Fatal("want the access log on the main logger")
	}
	h := logging.AccessLog(l.Access, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic swallowed")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/crash", nil))
	}()
	if !strings.Contains(stdout.String(), "method=GET") || !strings.Contains(stdout.String(), "status=500") || !strings.Contains(stdout.String(), "uri=/crash") {
		t.Errorf("output %q", stdout.String())
	}
	// Off: nil logger, no-op middleware.
	if l2 := open(t, defaults(), true, nil, nil); l2.Access != nil {
		t.Error("access log on without --access-log")
	}
}

type cli struct {
	logging.Flags `embed:""`
}

func parse(t *testing.T, args ...string) (*cli, error) {
	t.Helper()
	var c cli
	p, err := kong.New(&c, kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Parse(args)
	return &c, err
}

func TestFlagsWithKong(t *testing.T) {
	c, err := parse(t, "--log-level=debug", "--log-format=json", "--log-file=/tmp/x/app.log", "--log-rotate-every=1h", "--log-max-size=100MB", "--log-max-age=168h", "--log-max-files=5", "--access-log")
	if err != nil {
		t.Fatal(err)
	}
	want := logging.Flags{LogLevel: "debug", LogFormat: "json", LogFile: "/tmp/x/app.log", LogRotateEvery: time.Hour, LogMaxSize: 100_000_000, LogMaxAge: 168 * time.Hour, LogMaxFiles: 5, AccessLog: true}
	if c.Flags != want {
		t.Errorf("got %+v\nwant %+v", c.Flags, want)
	}
	c, err = parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.Flags != defaults() {
		t.Errorf("defaults %+v", c.Flags)
	}
	for _, bad := range [][]string{
		{"--log-level=loud"}, {"--log-format=xml"}, {"--log-max-size=lots"},
		{"--log-max-files=-1"}, {"--log-rotate-every=-1h"}, {"--log-file-pattern=x.%Y"},
	} {
		if _, err := parse(t, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]logging.ByteSize{"0": 0, "512": 512, "10B": 10, "1k": 1024, "1KB": 1000, "1KiB": 1024, "100MB": 100e6, "64MiB": 64 << 20, "2G": 2 << 30, "1 GB": 1e9} {
		var b logging.ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %v, %v; want %v", in, b, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1TB", "x", "1.5MB"} {
		var b logging.ByteSize
		if err := b.UnmarshalText([]byte(in)); !errors.Is(err, logging.ErrFlags) {
			t.Errorf("%q accepted: %v", in, b)
		}
	}
	if s := logging.ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %q", s)
	}
}

// A file write failing after start (here: "no space left", the file name
// now leading to /dev/full) is counted, and reported on stderr once for the
// whole episode: logrus does not print each lost line.
func TestFileWriteErrorCountedAndReportedOnce(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("needs /dev/full")
	}
	f := defaults()
	f.LogFile = filepath.Join(t.TempDir(), "app.log")
	var stdout, stderr bytes.Buffer
	l := open(t, f, true, &stdout, &stderr)
	cur := l.File.CurrentFileName()
	if err := os.Rename(cur, cur+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/full", cur); err != nil {
		t.Fatal(err)
	}
	if err := l.File.Check(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		l.Logger.Info("lost")
	}
	if st := l.File.Stats(); st.WriteErrors != 20 || st.ErrorEpisodes != 1 {
		t.Errorf("stats %+v", st)
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 || !strings.Contains(stderr.String(), cur) {
		t.Errorf("stderr %q: want one report naming %s", stderr.String(), cur)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q", stdout.String())
	}
}

// countHook counts the warnings it is fired for.
type countHook struct{ n *atomic.Int64 }

func (h countHook) Levels() []logrus.Level { return []logrus.Level{logrus.WarnLevel} }
func (h countHook) Fire(*logrus.Entry) error {
	h.n.Add(1)
	return nil
}

// TestAddHookWhileLogging: a hook added while another goroutine logs (the
// admin listener's line counter, added after the signal handler started) is
// race-free (-race) and fired for its levels from then on.
func TestAddHookWhileLogging(t *testing.T) {
	l := open(t, defaults(), true, nil, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lines atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				l.Logger.Info("busy")
				lines.Add(1)
			}
		}
	})
	testutil.WaitFor(t, 10*time.Second, "a line logged", func() bool { return lines.Load() > 0 })
	var n atomic.Int64
	l.AddHook(countHook{&n})
	from := lines.Load()
	testutil.WaitFor(t, 10*time.Second, "lines logged after AddHook", func() bool { return lines.Load() > from+1 })
	close(stop)
	wg.Wait()
	l.Logger.Info("not counted")
	l.Logger.Warn("counted")
	if got := n.Load(); got != 1 {
		t.Errorf("the hook fired %d times, want 1 (the warning)", got)
	}
}
