package production

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/term"
)

// consoleWriter guards the console log output: a write that fails (the
// reader of a pipe went away: | tee, | logger, journald restarting) is
// counted and reported once on stderr, and reported as written to logrus,
// which would otherwise print an error on stderr for every lost line. With
// SIGPIPE ignored (Main), such a write fails instead of killing the process.
type consoleWriter struct {
	w        io.Writer
	stderr   io.Writer
	failures atomic.Uint64
	once     sync.Once
}

// guardConsole wraps stdout, unless it is a terminal (whose colours the
// logger picks from the *os.File, and which does not go away like a pipe).
func guardConsole(stdout, stderr io.Writer) (io.Writer, *consoleWriter) {
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return stdout, nil
	}
	if stdout == nil {
		return nil, nil
	}
	c := &consoleWriter{w: stdout, stderr: stderr}
	return c, c
}

func (c *consoleWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(p); err != nil {
		if c.failures.Add(1) == 1 {
			c.once.Do(func() {
				if c.stderr != nil {
					fmt.Fprintf(c.stderr, "goangel: writing the console log failed: %v; further failures are counted (Stats.ConsoleWriteErrors), not reported\n", err)
				}
			})
		}
	}
	return len(p), nil
}

// count returns the failed console writes (0 for a nil writer).
func (c *consoleWriter) count() uint64 {
	if c == nil {
		return 0
	}
	return c.failures.Load()
}
