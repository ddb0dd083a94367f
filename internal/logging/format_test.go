package logging_test

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/internal/logging"
)

func TestTextFormatter(t *testing.T) {
	e := &logrus.Entry{
		Time:    time.Date(2026, 11, 25, 14, 53, 49, 123e6, time.UTC),
		Level:   logrus.InfoLevel,
		Message: "Instance #0 listening at http://127.0.0.1:3000",
		Data: logrus.Fields{
			"app": "example", "instance": 0, "life": 1, "took": 1500 * time.Microsecond,
			"q": `a "b" c`, "empty": "", "ok": true,
		},
	}
	b, err := (&logging.TextFormatter{}).Format(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `2026-11-25T14:53:49.123Z INFO  Instance #0 listening at http://127.0.0.1:3000 app=example empty="" instance=0 life=1 ok=true q="a \"b\" c" took=1.5ms` + "\n"
	if string(b) != want {
		t.Errorf("got  %q\nwant %q", b, want)
	}
}

func TestTextFormatterErrorStack(t *testing.T) {
	e := &logrus.Entry{Level: logrus.ErrorLevel, Message: "failed", Data: logrus.Fields{"error": newStackError("disk on fire")}}
	b, err := (&logging.TextFormatter{Colour: true}).Format(e)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "\x1b[31m") || !strings.HasSuffix(s, "\x1b[0m\n") {
		t.Errorf("not red: %q", s)
	}
	first, rest, _ := strings.Cut(s, "\n")
	if !strings.Contains(first, `ERROR failed error="disk on fire"`) || !strings.HasPrefix(rest, "    ") || !strings.Contains(rest, "TestTextFormatterErrorStack") {
		t.Errorf("want the error's stack as an indented block:\n%s", s)
	}
}

func TestTimestampMatchesTimeFormat(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		time.Date(999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 5*3600+1800)),
		time.Date(2026, 7, 1, 0, 0, 0, 0, time.FixedZone("", -(9*3600+30*60))),
	} {
		e := &logrus.Entry{Time: tm, Level: logrus.InfoLevel, Message: "m"}
		b, _ := (&logging.TextFormatter{}).Format(e)
		if want := tm.Format("2006-01-02T15:04:05.000Z07:00") + " INFO  m\n"; string(b) != want {
			t.Errorf("got %q, want %q", b, want)
		}
	}
}

// stackError prints its stack after its message with %+v, as
// github.com/pkg/errors' errors do.
type stackError struct {
	msg   string
	stack []byte
}

func newStackError(msg string) error { return &stackError{msg, debug.Stack()} }

func (e *stackError) Error() string { return e.msg }

func (e *stackError) Format(s fmt.State, verb rune) {
	io.WriteString(s, e.msg)
	if verb == 'v' && s.Flag('+') {
		fmt.Fprintf(s, "\n%s", e.stack)
	}
}

// TestJournalMultiLineMessage: under the journal every line of a message
// (the runner's final error joins several) carries the level prefix, so
// that the journal records each line at that priority (journalctl -p err).
func TestJournalMultiLineMessage(t *testing.T) {
	e := &logrus.Entry{Level: logrus.ErrorLevel, Message: "production: instance crashed: #0: boom\nproduction: instance crashed: #1: bang", Data: logrus.Fields{"app": "x"}}
	b, err := (&logging.TextFormatter{Journal: true}).Format(e)
	if err != nil {
		t.Fatal(err)
	}
	want := "<3>ERROR production: instance crashed: #0: boom\n<3>production: instance crashed: #1: bang app=x\n"
	if string(b) != want {
		t.Errorf("got  %q\nwant %q", b, want)
	}
}
