package production_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/production"
)

// TestCrashCauses: each way a life can crash reaches the event hooks with
// its cause, and goangel_crashes_total counts it under that cause, whatever
// the error's text says (an App.Crash whose message starts with
// "configure:" was counted as a failed configure when the admin told the
// causes apart by the message's prefix).
func TestCrashCauses(t *testing.T) {
	var mu sync.Mutex
	var causes []string
	var started atomic.Int64
	hook := func(ev production.Event) {
		switch {
		case ev.Kind == production.EventStarted:
			started.Add(1)
		case ev.Kind == production.EventEnded && ev.Err != nil:
			mu.Lock()
			causes = append(causes, ev.Cause.String())
			mu.Unlock()
		}
	}
	var failConfigure atomic.Bool
	configure := func(app *production.App) error {
		if failConfigure.CompareAndSwap(true, false) {
			return errors.New("no settings")
		}
		if err := crashy(app); err != nil {
			return err
		}
		app.Router.Get("/crash/prefixed", func(w http.ResponseWriter, r *http.Request) {
			app.Crash(errors.New("configure: the settings changed"))
			io.WriteString(w, "ok")
		})
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "1", "--quiet"}, production.WithEventHook(hook),
		production.WithRestartPolicy(production.RestartPolicy{MaxRestarts: 100, Window: time.Hour, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	c := fresh()
	crash := func(path string) {
		t.Helper()
		before := started.Load()
		if code, _, _, err := getWith(c, h.run.URL+path); err != nil || code != 200 {
			t.Fatalf("GET %s = %d %v", path, code, err)
		}
		waitFor(t, 10*time.Second, "a new life after GET "+path, func() bool { return started.Load() > before })
	}
	crash("/crash/go")
	crash("/crash/timer")
	crash("/crash/error")
	crash("/crash/prefixed")
	failConfigure.Store(true)
	crash("/crash/crash") // its respawn fails configure once, then serves
	mu.Lock()
	got := slices.Clone(causes)
	mu.Unlock()
	if want := []string{"panic", "panic", "error", "crash", "crash", "configure"}; !slices.Equal(got, want) {
		t.Errorf("causes of the crashes' EventEnded: %q, want %q", got, want)
	}
	m := h.scrape(t)
	want := map[string]float64{"panic": 2, "error": 1, "crash": 2, "configure": 1}
	for cause, n := range want {
		if v := m.sum("goangel_crashes_total", "cause", cause); v != n {
			t.Errorf("goangel_crashes_total{cause=%q} = %v, want %v", cause, v, n)
		}
	}
	if v := m.sum("goangel_crashes_total"); v != 6 {
		t.Errorf("goangel_crashes_total = %v, want 6", v)
	}
	// Stats counts the same crashes (the failed start too), and the admin
	// listener shows Stats.
	is := h.run.Stats().Instances[0]
	if is.Crashes != 6 || is.LastCrash != "configure: no settings" || is.LastCrashTime.IsZero() {
		t.Errorf("Stats: %d crashes, last %q at %v; want 6, configure: no settings, a time", is.Crashes, is.LastCrash, is.LastCrashTime)
	}
	_, body := h.call(t, "GET", "/instances")
	var snap admin.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("GET /instances: %v\n%s", err, body)
	}
	if in := snap.Instances[0]; in.Crashes != is.Crashes || in.LastCrash != is.LastCrash || !in.LastCrashTime.Equal(is.LastCrashTime) || !in.Started.Equal(is.Started) {
		t.Errorf("GET /instances: %+v; want Stats' %+v", in, is)
	}
	if s := fmt.Sprint(production.CauseNone, production.CrashCause(9)); s != "none CrashCause(9)" {
		t.Errorf("CrashCause strings: %s", s)
	}
}
