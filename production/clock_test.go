package production_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/production"
)

// TestAdminUptimeOnRunnerClock: the admin listener reads the uptimes on the
// runner's clock, the one the process's and each life's start are read on:
// an hour on the clock is an hour of uptime, exactly. Before, it read
// time.Now against starts read on the runner's clock.
func TestAdminUptimeOnRunnerClock(t *testing.T) {
	clock := newFakeClock()
	h := startAdmin(t, hello, []string{"-j", "1", "--shutdown-timeout", "1000h"}, production.WithClock(clock))
	clock.advance(time.Hour)
	_, body := h.call(t, "GET", "/instances")
	var snap admin.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("GET /instances: %v\n%s", err, body)
	}
	if snap.UptimeSeconds != 3600 || len(snap.Instances) != 1 || snap.Instances[0].UptimeSeconds != 3600 {
		t.Errorf("after an hour on the runner's clock: process up %vs, instances %+v, want 3600s each", snap.UptimeSeconds, snap.Instances)
	}
	if err := stopAdvancing(h.harness, clock, time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// TestCrashLoopWindowOnRunnerClock: the crash-loop watch counts the crashes
// within its window (10s) on the runner's clock: 9 crashes, 10s on the
// clock, 9 more are no crash loop (the first 9 left the window, exactly at
// its end); one more, the 10th within 10s, is one.
func TestCrashLoopWindowOnRunnerClock(t *testing.T) {
	var ev eventLog
	clock := newFakeClock()
	h := startRunner(t, crashy, []string{"-j", "1", "--shutdown-timeout", "1000h"}, production.WithClock(clock), production.WithEventHook(ev.hook))
	crashes := 0
	crash := func() {
		t.Helper()
		if code, _, _, err := getWith(fresh(), h.run.URL+"/crash/crash"); err != nil || code != 200 {
			t.Fatalf("crash %d: %d %v", crashes+1, code, err)
		}
		crashes++
		// The crash is counted before the respawn; the crashed life has
		// left the rotation once it stopped.
		waitFor(t, 10*time.Second, "the respawn", func() bool {
			return ev.count(production.EventStarted) == 1+crashes && ev.count(production.EventStopped) == crashes
		})
	}
	for range 9 {
		crash()
	}
	clock.advance(10 * time.Second)
	for range 9 {
		crash()
	}
	if n := ev.count(production.EventCrashLoop); n != 0 {
		t.Fatalf("%d crash-loop events after 9 crashes, 10s on the clock and 9 more, want none", n)
	}
	crash()
	if e, ok := ev.find(production.EventCrashLoop); !ok || e.Count != 10 {
		t.Errorf("crash-loop event after the 10th crash within 10s: %+v (found %v), want one counting 10", e, ok)
	}
	if err := stopAdvancing(h, clock, time.Second); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
