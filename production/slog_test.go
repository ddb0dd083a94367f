package production_test

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// App.Slog logs through the runner's logger with the instance's fields,
// from configure and from a handler.
func TestAppSlog(t *testing.T) {
	configure := func(app *production.App) error {
		app.Slog().Info("configured", "k", "v")
		app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
			app.Slog().WarnContext(r.Context(), "handled", "path", r.URL.Path)
		})
		return nil
	}
	h := startRunner(t, configure, []string{"-j", "1"})
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatalf("GET / = %d %v", code, err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"INFO  configured app=test instance=0 k=v life=1\n",
		"WARN  handled app=test instance=0 life=1 path=/\n",
	} {
		if !strings.Contains(h.run.Log(), want) {
			t.Errorf("log lacks %q:\n%s", want, h.run.Log())
		}
	}
}

// A respawn delay in a log line is rounded (Respawning in 7.38ms, not
// 7.382913ms).
func TestRespawnDelayRounded(t *testing.T) {
	// Lives 2 to 4 fail to start, so their respawns back off (a life that
	// served respawns at once, with no delay to print).
	configure := func(app *production.App) error {
		if l := app.Info().Life; l >= 2 && l <= 4 {
			return errors.New("not now")
		}
		app.Router.Get("/crash", func(w http.ResponseWriter, r *http.Request) { app.Crash(errors.New("on purpose")) })
		return nil
	}
	h := startRunner(t, configure, []string{"-j", "1"},
		production.WithRestartPolicy(production.RestartPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second, StableAfter: time.Hour}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.run.Log())
		}
	})
	h.get("/crash") // the answer does not matter, the crash does
	testutil.WaitFor(t, 10*time.Second, "two backed-off respawns", func() bool {
		return strings.Count(h.run.Log(), "Respawning in") >= 2
	})
	delays := regexp.MustCompile(`Respawning in (\S+): life`).FindAllStringSubmatch(h.run.Log(), -1)
	if len(delays) < 2 {
		t.Fatalf("want two delays in the log, got %q", delays)
	}
	d, err := time.ParseDuration(delays[1][1])
	if err != nil || d <= 0 {
		t.Fatalf("second delay %q: %v", delays[1][1], err)
	}
	if digits := strings.TrimLeft(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, delays[1][1]), "0"); len(digits) > 3 {
		t.Errorf("delay %q has %d significant digits, want at most 3", delays[1][1], len(digits))
	}
}
