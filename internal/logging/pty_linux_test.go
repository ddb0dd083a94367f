package logging_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/goangel/angel/internal/logging"
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
