package logging_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/internal/logging"
)

// Trace to info lines go to stdout, warnings and errors to stderr.
func TestWarningsAndErrorsGoToStderr(t *testing.T) {
	var stdout, stderr bytes.Buffer
	f := defaults()
	f.LogFile = filepath.Join(t.TempDir(), "app.log")
	l := open(t, f, false, &stdout, &stderr)
	l.Logger.Info("informing")
	l.Logger.Warn("warning")
	l.Logger.Error("failing")
	l.Close()
	if o := stdout.String(); !strings.Contains(o, "INFO  informing") || strings.Contains(o, "warning") || strings.Contains(o, "failing") {
		t.Errorf("stdout %q: want the info line only", o)
	}
	if e := stderr.String(); !strings.Contains(e, "WARN  warning") || !strings.Contains(e, "ERROR failing") || strings.Contains(e, "informing") {
		t.Errorf("stderr %q: want the warning and the error only", e)
	}
	b, _ := os.ReadFile(f.LogFile)
	if strings.Count(string(b), "\n") != 3 {
		t.Errorf("the file holds %q, want all three lines", b)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("broken pipe")
}

// A console that cannot be written is never fatal: lost console lines are
// counted and reported once per episode on the other stream, and the log
// file still gets them.
func TestConsoleWriteFailureCountedAndReportedOnce(t *testing.T) {
	f := defaults()
	f.LogFile = filepath.Join(t.TempDir(), "app.log")
	var stderr bytes.Buffer
	stdout := &failingWriter{}
	l, err := logging.Open(f, false, stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		l.Logger.Info("lost on the console")
	}
	l.Close()
	if n := l.ConsoleWriteErrors(); n != 10 || stdout.n != 10 {
		t.Errorf("%d console write errors counted (%d writes), want 10", n, stdout.n)
	}
	if n := strings.Count(stderr.String(), "\n"); n != 1 || !strings.Contains(stderr.String(), "broken pipe") {
		t.Errorf("stderr %q: want one report", stderr.String())
	}
	b, _ := os.ReadFile(f.LogFile)
	if n := strings.Count(string(b), "lost on the console"); n != 10 {
		t.Errorf("the file holds %d of the 10 lines", n)
	}
}

// Durations in text lines are rounded to three significant digits.
func TestDurationsRounded(t *testing.T) {
	for d, want := range map[time.Duration]string{
		9029316 * time.Nanosecond:         "9.03ms",
		1234567890 * time.Nanosecond:      "1.23s",
		250 * time.Microsecond:            "250µs",
		61500 * time.Millisecond:          "1m1.5s",
		-9029316 * time.Nanosecond:        "-9.03ms",
		999 * time.Nanosecond:             "999ns",
		3*time.Second + 1*time.Nanosecond: "3s",
	} {
		if got := logging.Round(d).String(); got != want {
			t.Errorf("Round(%v) = %s, want %s", d, got, want)
		}
	}
	e := &logrus.Entry{Level: logrus.InfoLevel, Message: "Respawning", Data: logrus.Fields{"in": 9029316 * time.Nanosecond}}
	b, _ := (&logging.TextFormatter{}).Format(e)
	if !strings.HasSuffix(string(b), " Respawning in=9.03ms\n") {
		t.Errorf("line %q", b)
	}
}

// --access-log-without-query keeps the path and drops the query.
func TestAccessLogWithoutQuery(t *testing.T) {
	var stdout bytes.Buffer
	f := defaults()
	f.AccessLog, f.AccessLogNoQuery = true, true
	l := open(t, f, false, &stdout, nil)
	h := logging.AccessLog(l.Access, nil)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/login?token=secret", nil))
	if o := stdout.String(); !strings.Contains(o, "uri=/login\n") || strings.Contains(o, "secret") {
		t.Errorf("output %q", o)
	}
}

// The error of an unopenable log file names the flag and the path, and
// has no "logging:" prefix of its own (the runner adds it once).
func TestLogFileErrorPrefixedOnce(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f := defaults()
	f.LogFile = filepath.Join(blocker, "app.log")
	_, err := logging.Open(f, true, nil, nil)
	if !errors.Is(err, logging.ErrLogFile) || !strings.HasPrefix(err.Error(), "--log-file "+f.LogFile+": ") {
		t.Errorf("err = %v", err)
	}
}
