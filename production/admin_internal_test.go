package production

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true,
		"": false, "0.0.0.0": false, "::": false, "192.0.2.1": false, "example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestAdminEventsMoveMetrics feeds events to the admin hook as the runner
// would and checks the metric each one moves.
func TestAdminEventsMoveMetrics(t *testing.T) {
	a := &adminState{m: newRunMetrics(&Config{})}
	now := time.Unix(1e9, 0)
	a.onEvent(Event{Kind: EventStarted, Instance: 1, Life: 1, Time: now})
	a.onEvent(Event{Kind: EventEnded, Instance: 1, Life: 1, Err: newPanicError("boom"), Cause: CausePanic})
	a.onEvent(Event{Kind: EventRespawning, Instance: 1, Life: 1, Delay: time.Second})
	if got := testutil.ToFloat64(a.m.backoff.WithLabelValues("1")); got != 1 {
		t.Errorf("restart backoff during the delay = %v, want 1", got)
	}
	a.onEvent(Event{Kind: EventStarted, Instance: 1, Life: 2, Time: now.Add(time.Second)})
	a.onEvent(Event{Kind: EventStopped, Instance: 1, Life: 1})
	a.onEvent(Event{Kind: EventAcceptError, Instance: -1})
	a.onEvent(Event{Kind: EventReloadStarted, Instance: -1})
	if testutil.ToFloat64(a.m.reloading) != 1 {
		t.Error("not reloading after EventReloadStarted")
	}
	a.onEvent(Event{Kind: EventReloadFinished, Instance: -1, Time: now.Add(2 * time.Second)})
	a.onEvent(Event{Kind: EventReloadStarted, Instance: -1})
	a.onEvent(Event{Kind: EventReloadAborted, Instance: -1, Time: now.Add(3 * time.Second)})
	if !a.lastReload.Equal(now.Add(2 * time.Second)) {
		t.Errorf("last reload at %v, want the finished one's time %v", a.lastReload, now.Add(2*time.Second))
	}
	a.onEvent(Event{Kind: EventScaled, Instance: -1})
	a.onEvent(Event{Kind: EventRecycled, Instance: 0, Life: 1})
	a.onEvent(Event{Kind: EventHung, Instance: 0, Life: 2})
	a.onEvent(Event{Kind: EventAbandoned, Instance: 0, Life: 2})
	a.onEvent(Event{Kind: EventCrashLoop, Instance: 0})
	a.onEvent(Event{Kind: EventGaveUp, Instance: 0})
	for name, c := range map[string]struct {
		got  float64
		want float64
	}{
		"lives started #1":   {testutil.ToFloat64(a.m.lives.WithLabelValues("1")), 2},
		"panics #1":          {testutil.ToFloat64(a.m.crashes.WithLabelValues("1", "panic")), 1},
		"respawns #1":        {testutil.ToFloat64(a.m.respawns.WithLabelValues("1")), 1},
		"backoff #1":         {testutil.ToFloat64(a.m.backoff.WithLabelValues("1")), 0},
		"drained #1":         {testutil.ToFloat64(a.m.drained.WithLabelValues("1")), 1},
		"accept errors":      {testutil.ToFloat64(a.m.acceptErrors), 1},
		"reloads finished":   {testutil.ToFloat64(a.m.reloads.WithLabelValues("finished")), 1},
		"reloads aborted":    {testutil.ToFloat64(a.m.reloads.WithLabelValues("aborted")), 1},
		"reload in progress": {testutil.ToFloat64(a.m.reloading), 0},
		"scales":             {testutil.ToFloat64(a.m.scales), 1},
		"recycles #0":        {testutil.ToFloat64(a.m.recycles.WithLabelValues("0")), 1},
		"hung #0":            {testutil.ToFloat64(a.m.hung.WithLabelValues("0")), 1},
		"abandoned #0":       {testutil.ToFloat64(a.m.abandoned.WithLabelValues("0")), 1},
		"crash loops #0":     {testutil.ToFloat64(a.m.crashLoops.WithLabelValues("0")), 1},
		"give ups #0":        {testutil.ToFloat64(a.m.giveUps.WithLabelValues("0")), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
}

// TestRedactArgs: /debug/pprof/cmdline's command line keeps no secret, in
// either flag form, nor a --pubsub-url password.
func TestRedactArgs(t *testing.T) {
	cfg := &Config{AdminToken: "tok3n", PubSubPassword: "pa55", KeyPassword: "kp", PubSubURL: "nats://u:urlpa55@h:4222"}
	r := newRedactor(cfg.secrets())
	got := strings.Join(r.redactArgs([]string{"app", "--admin-token", "tok3n", "--pubsub-password=pa55",
		"--key-password", "kp", "--pubsub-url", "nats://u:urlpa55@h:4222", "-j", "2", "--admin-address=127.0.0.1:9"}), " ")
	want := "app --admin-token [redacted] --pubsub-password=[redacted] --key-password [redacted] --pubsub-url nats://u:[redacted]@h:4222 -j 2 --admin-address=127.0.0.1:9"
	if got != want {
		t.Errorf("redactArgs:\n got %s\nwant %s", got, want)
	}
	if s := fmt.Sprint(*cfg); strings.Contains(s, "tok3n") {
		t.Errorf("a printed Config shows the admin token: %s", s)
	}
	if got := newRedactor(nil).String("tok3n"); got != "tok3n" {
		t.Errorf("no secrets: %q", got)
	}
}
