package logging_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/internal/logging"
)

func TestSlogThroughLogrus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	f := defaults()
	f.LogLevel = "debug"
	l := open(t, f, false, &stdout, &stderr)
	s := logging.Slog(logging.Instance(l.Logger, "example", 2, 3))
	s.Info("hello", "n", 1, "took", 9029316*time.Nanosecond)
	s.With("db", "main").WithGroup("query").Warn("slow", "ms", 250, slog.Group("by", "user", "ann"))
	s.Error("failed", "err", errors.New("disk full"))
	s.Debug("debugging")
	s.Log(t.Context(), slog.LevelDebug-4, "below debug is trace: hidden")
	out, errOut := stdout.String(), stderr.String()
	for _, want := range []string{
		"INFO  hello app=example instance=2 life=3 n=1 took=9.03ms\n",
		"DEBUG debugging app=example instance=2 life=3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
	for _, want := range []string{
		"WARN  slow app=example db=main instance=2 life=3 query.by.user=ann query.ms=250\n",
		`ERROR failed app=example err="disk full" instance=2 life=3` + "\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Errorf("a trace record passed the debug level: %q", out)
	}
	if s.Enabled(t.Context(), slog.LevelDebug-4) || !s.Enabled(t.Context(), slog.LevelDebug) {
		t.Error("Enabled does not follow the logrus level")
	}
}
