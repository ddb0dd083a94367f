package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/internal/testutil"
)

// fake is a Control driven by the test: it records the verbs and answers
// with err; snapshot may block on hold.
type fake struct {
	mu    sync.Mutex
	snap  admin.Snapshot
	calls []string
	err   error
	hold  chan struct{} // non-nil: Snapshot waits until it is closed
}

func (f *fake) Snapshot() admin.Snapshot {
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Instances = append([]admin.Instance(nil), f.snap.Instances...)
	return s
}

func (f *fake) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fake) Reload(context.Context) error { return f.record("reload") }
func (f *fake) Scale(_ context.Context, n int) error {
	if n > 100 {
		return fmt.Errorf("%w: Scale(%d) asks for more than --max-instances 100; want at most 100, or raise --max-instances", admin.ErrRefused, n)
	}
	return f.record(fmt.Sprintf("scale %d", n))
}
func (f *fake) Restart(_ context.Context, n int) error {
	if n > 1 {
		return fmt.Errorf("%w: #%d", admin.ErrNoInstance, n)
	}
	return f.record(fmt.Sprintf("restart %d", n))
}
func (f *fake) Drain(_ context.Context, n int) error { return f.record(fmt.Sprintf("drain %d", n)) }
func (f *fake) Upgrade(context.Context) error        { return f.record("upgrade") }

func (f *fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var t0 = time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)

func serving() admin.Snapshot {
	return admin.Snapshot{Started: true, Wanted: 2, Serving: 2, Instances: []admin.Instance{
		{Number: 0, Life: 1, State: "serving", Started: t0.Add(-90 * time.Second), Requests: 10},
		{Number: 1, Life: 3, State: "serving", Started: t0.Add(-30 * time.Second), Requests: 20, Restarts: 2, Crashes: 2, LastCrash: "panic: boom", LastCrashStack: "goroutine 7 [running]:\nmain.crash()"},
	}}
}

func newServer(t *testing.T, f *fake, mod func(*admin.Config)) *admin.Server {
	t.Helper()
	cfg := admin.Config{App: "demo", Control: f, Now: func() time.Time { return t0 }}
	if mod != nil {
		mod(&cfg)
	}
	return admin.New(cfg)
}

// do sends one request to h and returns the status and body.
func do(t *testing.T, h http.Handler, method, target string, header ...string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "127.0.0.1:9090" // the listener's own address
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body), rec.Result().Header
}

func TestVerbs(t *testing.T) {
	f := &fake{snap: serving()}
	s := newServer(t, f, nil)
	for _, c := range []struct {
		method, target string
		code           int
		call           string
	}{
		{"POST", "/reload", 200, "reload"},
		{"POST", "/upgrade", 200, "upgrade"},
		{"POST", "/scale?n=3", 200, "scale 3"},
		{"POST", "/instances/1/restart", 200, "restart 1"},
		{"POST", "/instances/0/drain", 200, "drain 0"},
		{"POST", "/instances/7/restart", 404, ""},
		{"POST", "/instances/x/restart", 400, ""},
		{"POST", "/instances/-1/drain", 400, ""},
		{"POST", "/scale?n=0", 400, ""},
		{"POST", "/scale?n=100000", 400, ""},
		{"POST", "/scale", 400, ""},
		{"GET", "/reload", 405, ""},
		{"GET", "/instances/1/restart", 405, ""},
		{"GET", "/scale?n=2", 405, ""},
	} {
		before := len(f.Calls())
		code, body, _ := do(t, s, c.method, c.target)
		if code != c.code {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.target, code, body, c.code)
			continue
		}
		calls := f.Calls()[before:]
		switch {
		case c.call == "" && len(calls) != 0:
			t.Errorf("%s %s: called %v, want no call", c.method, c.target, calls)
		case c.call != "" && (len(calls) != 1 || calls[0] != c.call):
			t.Errorf("%s %s: called %v, want [%s]", c.method, c.target, calls, c.call)
		}
		if code == 400 && !strings.Contains(body, "want") {
			t.Errorf("%s %s: 400 without saying what is wanted: %s", c.method, c.target, body)
		}
	}
	f.err = errors.New("reload in progress")
	if code, body, _ := do(t, s, "POST", "/reload"); code != 500 || !strings.Contains(body, "reload in progress") {
		t.Errorf("failing verb: %d %s, want 500 with the error", code, body)
	}
}

func TestInstancesJSON(t *testing.T) {
	f := &fake{snap: serving()}
	s := newServer(t, f, nil)
	s.Sample()
	f.snap.Instances[0].Requests = 60 // 50 more over 5s
	now := t0
	s = newServer(t, f, func(c *admin.Config) { c.Now = func() time.Time { return now } })
	f.snap.Instances[0].Requests = 10
	s.Sample()
	now = t0.Add(5 * time.Second)
	f.snap.Instances[0].Requests = 60
	s.Sample()
	code, body, h := do(t, s, "GET", "/instances")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /instances: %d %s", code, h.Get("Content-Type"))
	}
	var snap admin.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("GET /instances: %v\n%s", err, body)
	}
	if len(snap.Instances) != 2 || snap.Wanted != 2 {
		t.Fatalf("GET /instances: %+v", snap)
	}
	in0, in1 := snap.Instances[0], snap.Instances[1]
	if in0.RequestsPerSecond != 10 || in0.UptimeSeconds != 95 {
		t.Errorf("instance 0: %v req/s, uptime %vs; want 10 req/s, 95s", in0.RequestsPerSecond, in0.UptimeSeconds)
	}
	if in1.LastCrash != "panic: boom" || !strings.Contains(in1.LastCrashStack, "main.crash") || in1.Restarts != 2 {
		t.Errorf("instance 1: %+v", in1)
	}
	for _, key := range []string{`"number"`, `"life"`, `"state"`, `"uptime_seconds"`, `"requests"`, `"in_flight"`, `"restarts"`, `"last_crash"`, `"last_crash_stack"`, `"connections"`} {
		if !strings.Contains(body, key) {
			t.Errorf("GET /instances lacks %s:\n%s", key, body)
		}
	}
}

func TestReadyz(t *testing.T) {
	f := &fake{snap: serving()}
	s := newServer(t, f, nil)
	if code, body, _ := do(t, s, "GET", "/readyz"); code != 200 {
		t.Fatalf("readyz with every instance serving: %d %s", code, body)
	}
	for _, c := range []struct {
		name   string
		change func(*admin.Snapshot)
		reason string
	}{
		{"starting", func(s *admin.Snapshot) { s.Started = false }, "starting"},
		{"reloading", func(s *admin.Snapshot) { s.Reloading = true }, "reload is in progress"},
		{"one down", func(s *admin.Snapshot) { s.Serving = 1; s.Instances[1].State = "backoff" }, "1 of 2 wanted instances serve; instance #1 is backoff"},
		{"draining", func(s *admin.Snapshot) { s.Instances[0].State = "draining" }, "instance #0 is draining"},
	} {
		f.mu.Lock()
		f.snap = serving()
		c.change(&f.snap)
		f.mu.Unlock()
		code, body, _ := do(t, s, "GET", "/readyz")
		if code != 503 || !strings.Contains(body, c.reason) {
			t.Errorf("%s: readyz %d %s, want 503 naming %q", c.name, code, body, c.reason)
		}
	}
}

func TestHealthz(t *testing.T) {
	f := &fake{snap: serving()}
	s := newServer(t, f, func(c *admin.Config) { c.HealthTimeout = 50 * time.Millisecond })
	if code, body, _ := do(t, s, "GET", "/healthz"); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	hold := make(chan struct{})
	f.mu.Lock()
	f.hold = hold
	f.mu.Unlock()
	if code, body, _ := do(t, s, "GET", "/healthz"); code != 503 || !strings.Contains(body, "did not answer") {
		t.Errorf("healthz with a stuck runner: %d %s, want 503", code, body)
	}
	// The stuck probe is still out: the next one fails at once.
	if code, body, _ := do(t, s, "GET", "/healthz"); code != 503 || !strings.Contains(body, "previous health probe") {
		t.Errorf("second healthz with a stuck runner: %d %s, want 503", code, body)
	}
	f.mu.Lock()
	f.hold = nil
	f.mu.Unlock()
	close(hold)
	testutil.WaitFor(t, 5*time.Second, "healthz to recover once the runner answered", func() bool {
		code, _, _ := do(t, s, "GET", "/healthz")
		return code == 200
	})
}

func TestToken(t *testing.T) {
	f := &fake{snap: serving()}
	reg := prometheus.NewRegistry()
	s := newServer(t, f, func(c *admin.Config) { c.Token = "s3cret"; c.Gatherer = reg; c.Pprof = true })
	guarded := [][2]string{{"GET", "/"}, {"GET", "/instances"}, {"GET", "/metrics"}, {"POST", "/reload"}, {"POST", "/scale?n=2"},
		{"POST", "/instances/0/restart"}, {"POST", "/instances/0/drain"}, {"GET", "/debug/pprof/"}, {"GET", "/debug/pprof/goroutine?instance=0"}}
	for _, g := range guarded {
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret2", "Basic " + basic("x", "nope"), "Token s3cret"} {
			code, body, h := do(t, s, g[0], g[1], "Authorization", auth)
			if code != 401 || !strings.Contains(body, "--admin-token") || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %q: %d %s, want 401 asking for the token", g[0], g[1], auth, code, body)
			}
		}
		for _, auth := range []string{"Bearer s3cret", "bearer s3cret", "Basic " + basic("admin", "s3cret")} {
			if code, body, _ := do(t, s, g[0], g[1], "Authorization", auth); code != 200 {
				t.Errorf("%s %s with %q: %d %s, want 200", g[0], g[1], auth, code, body)
			}
		}
	}
	if n := len(f.Calls()); n != 12 { // 4 verbs x 3 good tokens; none for the bad ones
		t.Errorf("verbs called %d times, want 12: %v", n, f.Calls())
	}
	for _, open := range []string{"/healthz", "/readyz"} {
		if code, body, _ := do(t, s, "GET", open); code != 200 {
			t.Errorf("GET %s without a token: %d %s, want 200 (probes carry no token)", open, code, body)
		}
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestMetricsAndPprofOnlyWhenConfigured(t *testing.T) {
	s := newServer(t, &fake{snap: serving()}, nil)
	for _, p := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/goroutine"} {
		if code, _, _ := do(t, s, "GET", p); code != 404 {
			t.Errorf("GET %s without Gatherer/Pprof: %d, want 404", p, code)
		}
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "demo_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	s = newServer(t, &fake{snap: serving()}, func(c *admin.Config) { c.Gatherer = reg })
	if code, body, _ := do(t, s, "GET", "/metrics"); code != 200 || !strings.Contains(body, "demo_things_total 3") {
		t.Errorf("GET /metrics: %d %s", code, body)
	}
}

func TestStatusPage(t *testing.T) {
	f := &fake{snap: serving()}
	now := t0
	s := newServer(t, f, func(c *admin.Config) { c.Now = func() time.Time { return now } })
	for i := range 4 {
		f.snap.Instances[0].Requests += 50
		if i == 2 {
			f.snap.Instances[1].Crashes++
		}
		s.Sample()
		now = now.Add(5 * time.Second)
	}
	code, body, h := do(t, s, "GET", "/", "Accept", "text/html")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", code, h.Get("Content-Type"))
	}
	for _, want := range []string{`<table id="instances">`, `data-instance="0"`, `data-instance="1"`, "<svg", "<polyline", "<rect", "panic: boom", "setInterval", "?fragment=1", "demo"} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", "<link", "src="} {
		if strings.Contains(body, banned) {
			t.Errorf("status page loads something from elsewhere (%q): no CDN, no external file", banned)
		}
	}
	code, frag, _ := do(t, s, "GET", "/?fragment=1")
	if code != 200 || strings.Contains(frag, "<html") || !strings.Contains(frag, `<table id="instances">`) {
		t.Errorf("fragment: %d, want the live part only:\n%s", code, frag)
	}
	code, text, h := do(t, s, "GET", "/", "Accept", "text/plain")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET / as text: %d %s", code, h.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[2], "INSTANCE") || !strings.Contains(lines[0], "2 of 2 instances serving; ready") {
		t.Fatalf("text table:\n%s", text)
	}
	if f := strings.Fields(lines[4]); f[0] != "1" || f[1] != "3" || f[2] != "serving" || f[3] != "50s" || f[13] != "panic:" {
		t.Errorf("text row of instance 1: %q", lines[4])
	}
	if f := strings.Fields(lines[3]); f[4] != "10.0" {
		t.Errorf("text row of instance 0: req/s %q, want 10.0: %q", f[4], lines[3])
	}
}

func TestServeAndShutdown(t *testing.T) {
	s := newServer(t, &fake{snap: serving()}, func(c *admin.Config) { c.SampleEvery = time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz over the network: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after Shutdown: %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after Shutdown")
	}
	http.DefaultClient.CloseIdleConnections()
}

// polylineYs returns the y of each point of the chart's requests line.
func polylineYs(t *testing.T, page string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="`)
	if !ok {
		t.Fatalf("no requests line in:\n%s", page)
	}
	pts, _, _ := strings.Cut(rest, `"`)
	var ys []string
	for _, p := range strings.Fields(pts) {
		_, y, _ := strings.Cut(p, ",")
		ys = append(ys, y)
	}
	return ys
}

// TestStatusPageAcrossScaleDown: when an instance is scaled away while the
// load goes on at the same rate over the others, the chart's rate stays
// (the instance's requests leave the sum instead of making it drop to 0).
func TestStatusPageAcrossScaleDown(t *testing.T) {
	snap := serving()
	snap.Instances = append(snap.Instances, admin.Instance{Number: 2, Life: 1, State: "serving", Requests: 0})
	f := &fake{snap: snap}
	now := t0
	s := newServer(t, f, func(c *admin.Config) { c.Now = func() time.Time { return now } })
	for i := range 6 {
		if i == 3 { // scaled to 2: instance 2 is gone, its load moves to 0 and 1
			f.snap.Instances = f.snap.Instances[:2]
		}
		for j := range f.snap.Instances {
			f.snap.Instances[j].Requests += uint64(60 / len(f.snap.Instances))
		}
		s.Sample()
		now = now.Add(5 * time.Second)
	}
	_, body, _ := do(t, s, "GET", "/", "Accept", "text/html")
	ys := polylineYs(t, body)
	if len(ys) != 5 {
		t.Fatalf("%d points, want 5", len(ys))
	}
	for _, y := range ys {
		if y != ys[0] {
			t.Errorf("the rate changed across the scale-down (load steady at 12 req/s): y %v", ys)
			break
		}
	}
}

// TestStatusPageShowsProcessAndLatency: the version, uptime, last reload,
// p50/p99 and 5xx share of each instance, the labelled axes, and a refresh
// that works from a page opened with credentials in its URL and says when
// it failed.
func TestStatusPageShowsProcessAndLatency(t *testing.T) {
	snap := serving()
	snap.Build = admin.BuildInfo{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26"}
	snap.StartedAt = t0.Add(-2 * time.Hour)
	snap.LastReload = t0.Add(-time.Minute)
	bounds := []float64{0.0001, 0.001, 0.01}
	f := &fake{snap: snap}
	now := t0
	s := newServer(t, f, func(c *admin.Config) { c.Now = func() time.Time { return now } })
	for i := range 3 {
		n := uint64(100 * (i + 1))
		f.snap.Instances[0].Requests, f.snap.Instances[0].Errors = n, n/10
		// 90% under 1ms, 10% under 10ms.
		f.snap.Instances[0].Latency = admin.Histogram{Bounds: bounds, Counts: []uint64{0, n * 9 / 10, n}, Count: n}
		s.Sample()
		now = now.Add(5 * time.Second)
	}
	_, body, _ := do(t, s, "GET", "/", "Accept", "text/html")
	for _, want := range []string{`<b id="version">v1.2.3</b> (abc123), go1.26`, `up <span id="uptime">2h0m15s</span>`, `last reload <span id="last-reload">2026-12-01 22:59:00Z</span>`,
		`<td class="p50">600µs</td>`, `<td class="p99">9.1ms</td>`, `<td class="errors">10.0%</td>`,
		`id="y-axis"`, `req/s`, `time (a point every 5s)`, `>now<`, `location.origin + location.pathname`, `id="refresh-error"`, "Refreshing failed"} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	_, body, _ = do(t, s, "GET", "/instances")
	for _, want := range []string{`"latency_p50_seconds": 0.0006`, `"error_rate": 0.1`, `"errors": 30`, `"version": "v1.2.3"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/instances lacks %s:\n%s", want, body)
		}
	}
}
