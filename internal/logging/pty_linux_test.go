package logging_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/internal/testutil"
)

// openPTY returns the master and slave ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skip("no pty:", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skip("unlockpt:", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skip("ptsname:", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skip("open pts:", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

func TestColoursOnATerminal(t *testing.T) {
	master, slave := openPTY(t)
	f := defaults()
	f.LogLevel = "trace"
	f.LogFile = filepath.Join(t.TempDir(), "app.log")
	l, err := logging.Open(f, false, slave, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Logger.Error("e")
	l.Logger.Warn("w")
	l.Logger.Info("i")
	l.Logger.Debug("d")
	l.Logger.Trace("t")
	l.Logger.Log(logrus.FatalLevel, "f") // Log does not exit
	want := []string{"\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[90m", "\x1b[90m", "\x1b[97;41m"}
	r := bufio.NewReader(master)
	for i, code := range want {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(line, code) || !strings.Contains(line, "\x1b[0m") {
			t.Errorf("line %d %q: want colour %q", i, line, code)
		}
	}
	// The file copy has no colours.
	l.Close()
	b, _ := os.ReadFile(f.LogFile)
	if strings.Contains(string(b), "\x1b[") || strings.Count(string(b), "\n") != 6 {
		t.Errorf("file holds %q", b)
	}
}

// NO_COLOR (https://no-color.org) turns colours off, even on a terminal.
func TestNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	master, slave := openPTY(t)
	l, err := logging.Open(defaults(), false, slave, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Logger.Error("plain")
	line, err := bufio.NewReader(master).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(line, "\x1b[") || !strings.Contains(line, "ERROR plain") {
		t.Errorf("line %q: want no colour", line)
	}
}

// Under systemd's journal (JOURNAL_STREAM names stdout's device and
// inode), lines carry no colour and no timestamp, and start with their
// level as an sd-daemon "<N>" prefix, a stack block's lines included;
// everything goes to stdout. Elsewhere (another file) nothing changes.
func TestJournalStream(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out := testutil.JournalStream(t)
			var stderr bytes.Buffer
			f := defaults()
			f.LogFormat = format
			f.LogFile = filepath.Join(t.TempDir(), "app.log")
			l, err := logging.Open(f, false, out, &stderr)
			if err != nil {
				t.Fatal(err)
			}
			l.Logger.Info("hello")
			l.Logger.WithField("stack", "goroutine 1 [running]:\nmain.main()").Error("crashed")
			l.Logger.Warn("careful")
			l.Close()
			b, _ := os.ReadFile(out.Name())
			got := string(b)
			var want []string
			if format == "text" {
				want = []string{"<6>INFO  hello\n", "<3>ERROR crashed\n<3>    goroutine 1 [running]:\n<3>    main.main()\n", "<4>WARN  careful\n"}
			} else {
				want = []string{`<6>{"level":"info","msg":"hello"}`, `<3>{"level":"error","msg":"crashed"`, `<4>{"level":"warning","msg":"careful"}`}
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("journal output %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "\x1b[") || strings.Contains(got, "2026-") || strings.Contains(got, `"time"`) || stderr.Len() != 0 {
				t.Errorf("journal output %q (stderr %q): want no colour, no timestamp, nothing on stderr", got, stderr.String())
			}
			file, _ := os.ReadFile(f.LogFile)
			if strings.Contains(string(file), "<6>") || strings.Count(string(file), "\n") < 3 {
				t.Errorf("the file holds %q: want the plain lines", file)
			}
		})
	}
	t.Run("another stream", func(t *testing.T) {
		t.Setenv("JOURNAL_STREAM", "1:2")
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		l, err := logging.Open(defaults(), false, out, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Logger.Info("hello")
		l.Close()
		b, _ := os.ReadFile(out.Name())
		if strings.HasPrefix(string(b), "<") || !strings.Contains(string(b), "INFO  hello") {
			t.Errorf("output %q", b)
		}
	})
}
