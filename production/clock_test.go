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
