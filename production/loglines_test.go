package production_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/production"
)

// errorLines returns the log lines at level ERROR.
func errorLines(log string) []string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, " ERROR ") {
			out = append(out, line)
		}
	}
	return out
}

// TestOperatorLogLines: the lines an operator alerts on (issue 20).
func TestOperatorLogLines(t *testing.T) {
	// Under --no-respawn a crash ends the instance for good: an error,
	// not an info line. A clean end stays info.
	t.Run("no-respawn crash is an error", func(t *testing.T) {
		configure := func(app *production.App) error {
			switch app.Info().Number {
			case 0:
				app.Go(func(context.Context) error { return errors.New("lost the database") })
			default:
				app.Crash(nil)
			}
			return nil
		}
		out, err := runToEnd(t, configure, []string{"-j", "2", "--no-respawn"})
		if production.ExitCode(err) != production.ExitCrashed {
			t.Fatalf("Run = %v, want exit 1\n%s", err, out)
		}
		var crashed, exited string
		for line := range strings.SplitSeq(out, "\n") {
			switch {
			case strings.Contains(line, "Instance #0 crashed: app.Go: lost the database. Not respawned (--no-respawn)."):
				crashed = line
			case strings.Contains(line, "Instance #1 exited."):
				exited = line
			}
		}
		if !strings.Contains(crashed, " ERROR ") {
			t.Errorf("the --no-respawn crash is logged as %q, want an ERROR line\n%s", crashed, out)
		}
		if !strings.Contains(exited, " INFO ") {
			t.Errorf("the clean end is logged as %q, want an INFO line\n%s", exited, out)
		}
	})

	// A certificate pair that does not match, read on SIGHUP: one ERROR
	// line says what and that the old pair serves on (not three).
	t.Run("bad certificate on reload is one error", func(t *testing.T) {
		p := newPKI(t)
		c, k := p.issue("first", false)
		cert, key := p.files("server", c, k)
		var ev eventLog
		h, sigs := sigRunner(t, hello, []string{"-j", "2", "--ssl", "--certificate-file", cert, "--key-file", key}, production.WithEventHook(ev.hook))
		_, k2 := p.issue("second", false)
		c3, _ := p.issue("third", false)
		p.files("server", c3, k2) // a mismatched pair
		sigs <- syscall.SIGHUP
		waitFor(t, 20*time.Second, "the reload aborted", func() bool { return ev.count(production.EventReloadAborted) == 1 })
		if err := h.stop(); err != nil { // the signal actor has logged what it had to
			t.Fatal(err)
		}
		if lines := errorLines(h.run.Log()); len(lines) != 1 || !strings.Contains(lines[0], "Certificate reload failed: still serving the old certificate") {
			t.Errorf("%d ERROR lines for one failed certificate reload, want 1 saying so:\n%s", len(lines), strings.Join(lines, "\n"))
		}
	})

	// SIGTTOU at one instance: refused, and the log says so.
	t.Run("SIGTTOU at one instance is refused", func(t *testing.T) {
		h, sigs := sigRunner(t, hello, []string{"-j", "1"})
		sigs <- syscall.SIGTTOU
		want := "Scale down refused: production: an app needs at least one instance: only 1 runs."
		waitFor(t, 20*time.Second, "the refusal", func() bool { return strings.Contains(h.run.Log(), want) })
		if s := h.run.Stats(); s.Wanted != 1 || s.Serving != 1 {
			t.Errorf("after a refused SIGTTOU: %d wanted, %d serving; want 1 and 1", s.Wanted, s.Serving)
		}
	})
}
