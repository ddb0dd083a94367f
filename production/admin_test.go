package production_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/pubsub"
)

// adminHarness is a Runner with its admin listener on 127.0.0.1:0.
type adminHarness struct {
	*harness
	admin string // http://ADDR of the admin listener
	token string
}

func startAdmin(t *testing.T, configure func(*production.App) error, args []string, opts ...production.Option) *adminHarness {
	t.Helper()
	args = append([]string{"--admin-address", "127.0.0.1:0"}, args...)
	h := &adminHarness{harness: startRunner(t, configure, args, opts...)}
	for i, a := range args {
		if a == "--admin-token" {
			h.token = args[i+1]
		}
	}
	addr := h.run.AdminAddr()
	if addr == nil {
		t.Fatal("AdminAddr() = nil with --admin-address")
	}
	h.admin = "http://" + addr.String()
	return h
}

// call sends method path to the admin listener (with the token, if any).
func (h *adminHarness) call(t *testing.T, method, path string) (int, string) {
	t.Helper()
	return h.callAuth(t, method, path, h.token)
}

func (h *adminHarness) callAuth(t *testing.T, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.admin+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics and parses it.
func (h *adminHarness) scrape(t *testing.T) metrics {
	t.Helper()
	code, body := h.call(t, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

type metrics map[string]*dto.MetricFamily

// sum adds the values (counter, gauge, or a histogram's sample count) of
// name's series whose labels include every pair of labels ("k", "v", ...);
// 0 when there is none (a vector without series is not exposed).
func (m metrics) sum(name string, labels ...string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var total float64
series:
	for _, s := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case s.Counter != nil:
			total += s.Counter.GetValue()
		case s.Gauge != nil:
			total += s.Gauge.GetValue()
		case s.Histogram != nil:
			total += float64(s.Histogram.GetSampleCount())
		}
	}
	return total
}

// has reports whether name has a series whose labels include every pair of
// labels ("k", "v", ...).
func (m metrics) has(name string, labels ...string) bool {
	f := m[name]
	if f == nil {
		return false
	}
series:
	for _, s := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range s.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		return true
	}
	return false
}

// expect checks exact values of series sums.
func expect(t *testing.T, m metrics, want map[string]float64) {
	t.Helper()
	for key, v := range want {
		parts := strings.Fields(key)
		if got := m.sum(parts[0], parts[1:]...); got != v {
			t.Errorf("%s = %v, want %v", key, got, v)
		}
	}
}

// postWatchingReadyz POSTs path in the background and waits until /readyz
// answers 503 while it runs (or the POST has answered). It returns the last
// /readyz body and the channel the POST's "CODE BODY" arrives on (still
// there if it already arrived).
func (h *adminHarness) postWatchingReadyz(t *testing.T, path, what string) (readyz string, result chan string) {
	t.Helper()
	result = make(chan string, 1)
	go func() {
		code, body := h.call(t, "POST", path)
		result <- strconv.Itoa(code) + " " + body
	}()
	waitFor(t, 10*time.Second, "readyz to answer 503 during "+what+" (or "+what+" to answer)", func() bool {
		select {
		case r := <-result:
			result <- r
			return true
		default:
		}
		var code int
		code, readyz = h.call(t, "GET", "/readyz")
		return code == 503
	})
	return readyz, result
}

// observed is the app of the admin tests: / answers, /panic panics, /crash
// crashes its life (App.Crash), /publish?n=N publishes N messages to
// topic "t", to which every life subscribes with a queue of 1 that it never
// reads (so that the other instance drops all but one).
func observed(app *production.App) error {
	instanceHeader(app)
	if _, err := app.PubSub().Subscribe(app.Context(), "t", pubsub.WithQueueSize(1), pubsub.WithPolicy(pubsub.DropNewest)); err != nil {
		return err
	}
	app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	app.Router.Get("/panic", func(w http.ResponseWriter, r *http.Request) { panic("handler panic") })
	app.Router.Get("/crash", func(w http.ResponseWriter, r *http.Request) {
		app.Crash(errors.New("boom"))
		io.WriteString(w, "crashing")
	})
	app.Router.Get("/publish", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for range n {
			if _, err := app.PubSub().Publish(r.Context(), "t", "hi"); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
	})
	return nil
}

func TestAdminMetricsAfterKnownEvents(t *testing.T) {
	h := startAdmin(t, observed, []string{"-j", "2"})
	for range 10 {
		if code, _, _, err := h.get("/"); err != nil || code != 200 {
			t.Fatalf("GET / = %d %v", code, err)
		}
	}
	m := h.scrape(t)
	expect(t, m, map[string]float64{
		"goangel_http_requests_total code 2xx":           10,
		"goangel_http_requests_total":                    10,
		"goangel_http_request_duration_seconds":          10,
		"goangel_http_requests_in_flight":                0,
		"goangel_lives_started_total":                    2,
		"goangel_lives_started_total goangel_instance 0": 1,
		"goangel_lives_started_total goangel_instance 1": 1,
		"goangel_instances_wanted":                       2,
		"goangel_instances_serving":                      2,
		"goangel_crashes_total":                          0,
		"goangel_handler_panics_total":                   0,
		"goangel_pubsub_published_total":                 0,
		"goangel_http_connections_accepted_total":        1, // one keep-alive connection
	})
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "goangel_log_lines_total"} {
		if m.sum(name) <= 0 {
			t.Errorf("%s missing or zero", name)
		}
	}

	// A handler panic: a 500, counted once.
	if code, _, _, err := h.get("/panic"); err != nil || code != 500 {
		t.Fatalf("GET /panic = %d %v", code, err)
	}
	expect(t, h.scrape(t), map[string]float64{
		"goangel_handler_panics_total":         1,
		"goangel_http_requests_total code 5xx": 1,
		"goangel_http_requests_total":          11,
		"goangel_crashes_total":                0,
	})

	// A crash: the life ends, is respawned and drains.
	code, _, crashed, err := h.get("/crash")
	if err != nil || code != 200 {
		t.Fatalf("GET /crash = %d %v", code, err)
	}
	h.tr.CloseIdleConnections() // let the crashed life drain at once
	waitFor(t, 10*time.Second, "the crashed life to be replaced and drained", func() bool {
		m := h.scrape(t)
		return m.sum("goangel_lives_started_total") == 3 && m.sum("goangel_lives_drained_total") == 1
	})
	expect(t, h.scrape(t), map[string]float64{
		"goangel_crashes_total": 1,
		"goangel_crashes_total cause crash goangel_instance " + crashed: 1,
		"goangel_respawns_total goangel_instance " + crashed:            1,
		"goangel_lives_started_total goangel_instance " + crashed:       2,
		"goangel_give_ups_total":                                        0,
		"goangel_instances_serving":                                     2,
	})
	_, body := h.call(t, "GET", "/instances")
	var snap admin.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("GET /instances: %v\n%s", err, body)
	}
	n, _ := strconv.Atoi(crashed)
	if in := snap.Instances[n]; in.LastCrash != "boom" || in.Restarts != 1 || in.Life != 2 || in.State != "serving" {
		t.Errorf("GET /instances: crashed instance %+v, want last crash boom, life 2, 1 restart, serving", in)
	}

	// A pub/sub drop: 3 messages to the other instance's queue of 1.
	if code, _, _, err := h.get("/publish?n=3"); err != nil || code != 200 {
		t.Fatalf("GET /publish = %d %v", code, err)
	}
	expect(t, h.scrape(t), map[string]float64{
		"goangel_pubsub_published_total": 3,
		"goangel_pubsub_delivered_total": 1,
		"goangel_pubsub_dropped_total":   2,
		// One slow episode: the queue filled once and was never read.
		"goangel_pubsub_slow_consumer_episodes_total": 1,
	})
	expect(t, h.scrape(t), map[string]float64{"goangel_pubsub_retain_load_failed_total": 0, "goangel_pubsub_retain_rejected_total": 0})

	t.Run("reload", func(t *testing.T) {
		code, body := h.call(t, "POST", "/reload")
		if code != 200 {
			t.Fatalf("POST /reload: %d %s", code, body)
		}
		expect(t, h.scrape(t), map[string]float64{
			"goangel_reloads_total outcome finished": 1,
			"goangel_reloads_total outcome aborted":  0,
			"goangel_reload_in_progress":             0,
			"goangel_lives_started_total":            5, // one more life per instance
			"goangel_crashes_total":                  1,
		})
	})
}

// gated makes life 2 (and later) of instance 1 wait in configure until gate
// is closed; crash ends instance 1's first life.
func gated(gate <-chan struct{}, crash <-chan struct{}) func(*production.App) error {
	return func(app *production.App) error {
		info := app.Info()
		if info.Number == 1 && info.Life == 1 {
			goCrashOn(app, crash)
		}
		if info.Number == 1 && info.Life > 1 {
			<-gate
		}
		return hello(app)
	}
}

func TestAdminReadyz(t *testing.T) {
	gate, crash := make(chan struct{}), make(chan struct{})
	h := startAdmin(t, gated(gate, crash), []string{"-j", "2"})
	if code, body := h.call(t, "GET", "/readyz"); code != 200 {
		t.Fatalf("readyz after start: %d %s", code, body)
	}
	if code, body := h.call(t, "GET", "/healthz"); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	close(crash)
	var body string
	waitFor(t, 10*time.Second, "readyz to answer 503 while instance 1 respawns", func() bool {
		var code int
		code, body = h.call(t, "GET", "/readyz")
		return code == 503
	})
	if !strings.Contains(body, "1 of 2 wanted instances serve") {
		t.Errorf("readyz 503 does not say why: %s", body)
	}
	if code, body := h.call(t, "GET", "/healthz"); code != 200 {
		t.Errorf("healthz while an instance respawns: %d %s, want 200 (the supervisor answers)", code, body)
	}
	close(gate)
	waitFor(t, 10*time.Second, "readyz to answer 200 once instance 1 serves again", func() bool {
		code, _ := h.call(t, "GET", "/readyz")
		return code == 200
	})
}

func TestAdminReadyzDuringReload(t *testing.T) {
	var hold atomic.Bool
	gate := make(chan struct{})
	configure := func(app *production.App) error {
		if app.Info().Life > 1 && hold.Load() {
			<-gate
		}
		return hello(app)
	}
	h := startAdmin(t, configure, []string{"-j", "2"})
	hold.Store(true)
	body, result := h.postWatchingReadyz(t, "/reload", "the reload")
	select {
	case r := <-result:
		close(gate)
		t.Fatalf("POST /reload answered before its new lives configured: %s", r)
	default:
	}
	if !strings.Contains(body, "reload") {
		t.Errorf("readyz during a reload: %s, want it to name the reload", body)
	}
	close(gate)
	select {
	case r := <-result:
		if !strings.HasPrefix(r, "200 ") {
			t.Fatalf("POST /reload: %s", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("POST /reload did not answer")
	}
	if code, body := h.call(t, "GET", "/readyz"); code != 200 {
		t.Errorf("readyz after the reload: %d %s", code, body)
	}
}

func TestAdminRestartUnderLoad(t *testing.T) {
	h := startAdmin(t, hello, []string{"-j", "2"})
	if code, body := h.call(t, "POST", "/instances/1/restart"); code != 200 {
		t.Fatalf("POST /instances/1/restart: %d %s", code, body)
	}
	// Under load: 4 keep-alive clients until the restart has answered.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Go(func() {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				code, _, _, err := getWith(c, h.run.URL+"/")
				if err != nil || code != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %v", code, err))
					continue
				}
				ok.Add(1)
			}
		})
	}
	waitFor(t, 10*time.Second, "the load to start", func() bool { return ok.Load() > 50 })
	lifeBefore := h.run.Stats().Instances[1].Life
	code, body := h.call(t, "POST", "/instances/1/restart")
	close(stop)
	wg.Wait()
	if code != 200 {
		t.Fatalf("POST /instances/1/restart under load: %d %s", code, body)
	}
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during the restart (first: %v)", f, f+ok.Load(), firstErr.Load())
	}
	if life := h.run.Stats().Instances[1].Life; life <= lifeBefore {
		t.Errorf("instance 1 life %d after the restart, want > %d", life, lifeBefore)
	}
	if code, body := h.call(t, "POST", "/instances/9/restart"); code != 404 || !strings.Contains(body, "no such instance") {
		t.Errorf("POST /instances/9/restart: %d %s, want 404", code, body)
	}
}

func TestAdminToken(t *testing.T) {
	h := startAdmin(t, hello, []string{"-j", "1", "--admin-token", "tok3n", "--pprof"})
	for _, c := range [][2]string{{"GET", "/metrics"}, {"GET", "/instances"}, {"GET", "/"}, {"POST", "/reload"},
		{"POST", "/scale?n=2"}, {"POST", "/instances/0/restart"}, {"POST", "/instances/0/drain"}, {"GET", "/debug/pprof/"}} {
		for _, tok := range []string{"", "wrong"} {
			if code, body := h.callAuth(t, c[0], c[1], tok); code != 401 {
				t.Errorf("%s %s with token %q: %d %s, want 401", c[0], c[1], tok, code, body)
			}
		}
	}
	for _, p := range []string{"/metrics", "/instances", "/", "/debug/pprof/"} {
		if code, body := h.call(t, "GET", p); code != 200 {
			t.Errorf("GET %s with the token: %d %s", p, code, body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := h.callAuth(t, "GET", p, ""); code != 200 {
			t.Errorf("GET %s without a token: %d %s, want 200", p, code, body)
		}
	}
	if code, _ := h.call(t, "GET", "/reload"); code != 405 {
		t.Errorf("GET /reload: %d, want 405 (state changes are POST)", code)
	}
	if strings.Contains(h.run.Log(), "was requested") {
		t.Errorf("a verb refused for its token was logged as requested:\n%s", h.run.Log())
	}
	h.call(t, "POST", "/scale?n=1") // the answer depends on the sup branch; the log line does not
	if !strings.Contains(h.run.Log(), "Admin listener: scaling to 1 instances was requested") {
		t.Errorf("the log lacks the admin request:\n%s", h.run.Log())
	}
	if strings.Contains(h.run.Log(), "tok3n") {
		t.Errorf("the log shows the admin token:\n%s", h.run.Log())
	}
}

func TestAdminUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--admin-address", "0.0.0.0:9090"}, `--admin-address "0.0.0.0:9090" is not a loopback address: give --admin-token too`},
		{[]string{"--admin-address", ":9090"}, "is not a loopback address"},
		{[]string{"--admin-address", "192.0.2.1:9090"}, "is not a loopback address"},
		{[]string{"--admin-address", "localhost"}, `--admin-address "localhost": want HOST:PORT`},
		{[]string{"--admin-address", "127.0.0.1:http"}, "the port must be a number"},
		{[]string{"--pprof"}, "--admin-token, --admin-host and --pprof need --admin-address HOST:PORT or --admin-socket PATH"},
		{[]string{"--admin-socket", "a.sock", "--admin-socket-mode", "rw"}, `--admin-socket-mode "rw": want octal permissions`},
		{[]string{"--admin-token", "x"}, "--admin-token, --admin-host and --pprof need --admin-address"},
	} {
		out := &syncBuffer{}
		r := production.New("test", hello, production.WithOutput(out, out), production.WithLookupEnv(noEnv))
		err := r.Run(context.Background(), c.args)
		if code := production.ExitCode(err); code != production.ExitUsage || !errors.Is(err, production.ErrUsage) {
			t.Errorf("%v: exit code %d (%v), want %d", c.args, code, err, production.ExitUsage)
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: output lacks %q:\n%s", c.args, c.want, out)
		}
	}
	// An admin address that cannot be bound is a start-up failure, named.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	out := &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, out), production.WithLookupEnv(noEnv))
	err = r.Run(context.Background(), []string{"-a", "127.0.0.1", "-p", "0", "-j", "1", "--admin-address", busy.Addr().String()})
	if code := production.ExitCode(err); code != production.ExitStartup || !strings.Contains(err.Error(), "cannot listen on --admin-address "+busy.Addr().String()) {
		t.Errorf("admin address in use: exit code %d (%v), want %d naming the address", code, err, production.ExitStartup)
	}
	// With a token, a non-loopback address is allowed (here: every
	// interface, port 0).
	h := startAdmin(t, hello, []string{"-j", "1", "--admin-address", "0.0.0.0:0", "--admin-token", "t"})
	if code, body := h.call(t, "GET", "/readyz"); code != 200 {
		t.Errorf("readyz on 0.0.0.0 with a token: %d %s", code, body)
	}
}

func TestAdminOffByDefault(t *testing.T) {
	var found atomic.Bool
	configure := func(app *production.App) error {
		// Apps register their collectors through the runner's container,
		// admin listener or not.
		reg := container.MustMake[prometheus.Registerer](app.Container)
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_things_total", Help: "Things."})
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return err
		}
		found.Store(true)
		return hello(app)
	}
	h := startRunner(t, configure, []string{"-j", "2"})
	if a := h.run.AdminAddr(); a != nil {
		t.Errorf("AdminAddr() = %v without --admin-address", a)
	}
	if !found.Load() {
		t.Error("configure did not find the prometheus.Registerer")
	}
	if code, _, _, err := h.get("/metrics"); err != nil || code != 404 {
		t.Errorf("GET /metrics on the app's listener: %d %v, want 404 (never on the app's listener)", code, err)
	}
}

func TestAdminAppCollectors(t *testing.T) {
	configure := func(app *production.App) error {
		reg := container.MustMake[prometheus.Registerer](app.Container)
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_things_total", Help: "Things."})
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
			c = are.ExistingCollector.(prometheus.Counter)
		}
		if err := hello(app); err != nil {
			return err
		}
		app.Router.Get("/thing", func(w http.ResponseWriter, r *http.Request) { c.Inc() })
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "2"})
	for range 3 {
		if code, _, _, err := getWith(fresh(), h.run.URL+"/thing"); err != nil || code != 200 {
			t.Fatalf("GET /thing: %d %v", code, err)
		}
	}
	expect(t, h.scrape(t), map[string]float64{"app_things_total": 3})
}

// parkedInHandler blocks a request until release is closed; its name is
// what the goroutine profile must show.
func parkedInHandler(parked chan<- string, release <-chan struct{}, instance string) {
	parked <- instance
	<-release
}

func TestAdminPprof(t *testing.T) {
	parked, release := make(chan string, 1), make(chan struct{})
	configure := func(app *production.App) error {
		if err := hello(app); err != nil {
			return err
		}
		num := strconv.Itoa(app.Info().Number)
		app.Router.Get("/park", func(w http.ResponseWriter, r *http.Request) { parkedInHandler(parked, release, num) })
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "2", "--pprof"})
	done := make(chan error, 1)
	go func() {
		_, _, _, err := getWith(fresh(), h.run.URL+"/park")
		done <- err
	}()
	var inst string
	select {
	case inst = <-parked:
	case <-time.After(10 * time.Second):
		t.Fatal("the /park request did not reach its handler")
	}
	other := map[string]string{"0": "1", "1": "0"}[inst]
	code, body := h.call(t, "GET", "/debug/pprof/goroutine?instance="+inst)
	if code != 200 || !strings.Contains(body, "parkedInHandler") {
		t.Errorf("goroutines of instance %s: %d, want parkedInHandler:\n%s", inst, code, body)
	}
	if _, body := h.call(t, "GET", "/debug/pprof/goroutine?instance="+other); strings.Contains(body, "parkedInHandler") {
		t.Errorf("goroutines of instance %s show instance %s's handler:\n%s", other, inst, body)
	}
	if _, body := h.call(t, "GET", "/debug/pprof/goroutine?instance="+inst+"&life=1"); !strings.Contains(body, "parkedInHandler") {
		t.Errorf("goroutines of instance %s life 1 lack the handler:\n%s", inst, body)
	}
	if code, _ := h.call(t, "GET", "/debug/pprof/goroutine?debug=1"); code != 200 {
		t.Errorf("unfiltered goroutine profile: %d", code)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("GET /park: %v", err)
	}
	// Without --pprof there is no /debug/pprof/.
	h2 := startAdmin(t, hello, []string{"-j", "1"})
	if code, _ := h2.call(t, "GET", "/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without --pprof: %d, want 404", code)
	}
}

// TestAdminMetricsKeepWriterInterfaces: with the metrics middleware in the
// chain, handlers still flush, hijack and reach the connection through
// http.ResponseController; the status classes follow.
func TestAdminMetricsKeepWriterInterfaces(t *testing.T) {
	configure := func(app *production.App) error {
		if err := hello(app); err != nil {
			return err
		}
		app.Router.Get("/flush", func(w http.ResponseWriter, r *http.Request) {
			if _, ok := w.(http.Flusher); !ok {
				http.Error(w, "no Flusher", 500)
				return
			}
			io.WriteString(w, "a")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
			if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("SetWriteDeadline through Unwrap: %v", err)
			}
		})
		app.Router.Get("/hijack", func(w http.ResponseWriter, r *http.Request) {
			c, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer c.Close()
			rw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
			rw.Flush()
		})
		app.Router.Get("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "1"})
	for path, want := range map[string]string{"/flush": "a", "/hijack": "hi"} {
		code, body, _, err := getWith(fresh(), h.run.URL+path)
		if err != nil || code != 200 || body != want {
			t.Errorf("GET %s = %d %q %v, want 200 %q", path, code, body, err, want)
		}
	}
	if code, _, _, err := h.get("/teapot"); err != nil || code != http.StatusTeapot {
		t.Errorf("GET /teapot = %d %v", code, err)
	}
	if code, _, _, err := h.get("/nope"); err != nil || code != 404 {
		t.Errorf("GET /nope = %d %v", code, err)
	}
	// The hijacked request is counted when its handler returns, which may
	// be after the client has read its answer.
	waitFor(t, 10*time.Second, "the four requests to be counted", func() bool {
		return h.scrape(t).sum("goangel_http_requests_total") == 4
	})
	expect(t, h.scrape(t), map[string]float64{
		"goangel_http_requests_total code 2xx": 1, // /flush
		"goangel_http_requests_total code 1xx": 1, // /hijack: the handler owns the connection
		"goangel_http_requests_total code 4xx": 2,
		"goangel_http_requests_total":          4,
	})
}

func TestAdminReadyzDuringDrain(t *testing.T) {
	parked, release := make(chan string, 1), make(chan struct{})
	configure := func(app *production.App) error {
		if err := hello(app); err != nil {
			return err
		}
		num := strconv.Itoa(app.Info().Number)
		app.Router.Get("/park", func(w http.ResponseWriter, r *http.Request) { parkedInHandler(parked, release, num) })
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "2"})
	parkedDone := make(chan error, 1)
	go func() {
		_, _, _, err := getWith(fresh(), h.run.URL+"/park")
		parkedDone <- err
	}()
	var inst string
	select {
	case inst = <-parked:
	case <-time.After(10 * time.Second):
		t.Fatal("the /park request did not reach its handler")
	}
	// The parked request keeps the drain of its instance going.
	body, result := h.postWatchingReadyz(t, "/instances/"+inst+"/drain", "the drain")
	select {
	case r := <-result:
		close(release)
		<-parkedDone
		t.Fatalf("POST /instances/%s/drain answered while a request of it was still in flight: %s", inst, r)
	default:
	}
	if !strings.Contains(body, "draining") {
		t.Errorf("readyz during a drain: %s, want it to name the draining instance", body)
	}
	close(release)
	if err := <-parkedDone; err != nil {
		t.Errorf("the request in flight during the drain failed: %v", err)
	}
	select {
	case r := <-result:
		if !strings.HasPrefix(r, "200 ") {
			t.Fatalf("POST /instances/%s/drain: %s", inst, r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("POST /instances/N/drain did not answer")
	}
	if code, body := h.call(t, "GET", "/readyz"); code != 200 {
		t.Errorf("readyz after the drain: %d %s", code, body)
	}
	expect(t, h.scrape(t), map[string]float64{"goangel_instances_wanted": 1, "goangel_instances_serving": 1})
}

// TestAdminHungReportKeepsStack: with the admin listener (its metrics
// middleware) and pprof on, a hung life's report still holds the stack of
// its hung handler, and /debug/pprof/goroutine?instance=N still finds it:
// both read the one label scheme set once per request.
func TestAdminHungReportKeepsStack(t *testing.T) {
	release := make(chan struct{})
	configure := func(app *production.App) error {
		if err := hello(app); err != nil {
			return err
		}
		app.Router.Get("/block", func(w http.ResponseWriter, r *http.Request) { blockedHandler(release) })
		return nil
	}
	var ev eventLog
	h := startAdmin(t, configure, []string{"-j", "1", "--pprof", "--hang-timeout", "300ms", "--drain-timeout", "300ms", "--max-abandoned", "5"}, production.WithEventHook(ev.hook))
	defer close(release)
	go func() {
		if resp, err := fresh().Get(h.run.URL + "/block"); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, 10*time.Second, "the blocked handler in instance 0's goroutines", func() bool {
		_, body := h.call(t, "GET", "/debug/pprof/goroutine?instance=0&life=1")
		return strings.Contains(body, "blockedHandler")
	})
	waitFor(t, 20*time.Second, "the hung life reported", func() bool { return ev.count(production.EventHung) == 1 })
	e, _ := ev.find(production.EventHung)
	if !strings.Contains(e.Stack, "blockedHandler") {
		t.Errorf("with --admin-address, the hung event's stack does not show the blocked handler:\n%s", e.Stack)
	}
}

// TestAdminAddressIPv4Only: --admin-address 0.0.0.0:P listens on IPv4
// only, like -a 0.0.0.0 (Go's "tcp" would also open [::]:P).
func TestAdminAddressIPv4Only(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	h := startRunner(t, hello, []string{"-j", "1", "--admin-address", "0.0.0.0:0", "--admin-token", "s3cret"})
	addr := h.run.AdminAddr()
	if addr == nil {
		t.Fatal("AdminAddr() = nil with --admin-address")
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if host != "0.0.0.0" {
		t.Errorf("AdminAddr() = %s, want 0.0.0.0:%s", addr, port)
	}
	c, err := net.DialTimeout("tcp4", "127.0.0.1:"+port, 5*time.Second)
	if err != nil {
		t.Fatalf("dialing the admin listener over IPv4: %v", err)
	}
	c.Close()
	if c, err := net.DialTimeout("tcp6", "[::1]:"+port, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("--admin-address 0.0.0.0:%s also accepts on [::1]:%s", port, port)
	}
}

// TestAdminMetricsExistAtZero: every counter family of the runner exists at
// 0 before its first event (per instance as instances appear), so that
// Prometheus's increase() counts that event; no series of ours carries the
// Prometheus server's target labels instance or job.
func TestAdminMetricsExistAtZero(t *testing.T) {
	h := startAdmin(t, hello, []string{"-j", "2"})
	m := h.scrape(t)
	perInstance := []string{
		"goangel_lives_started_total", "goangel_crashes_total", "goangel_respawns_total", "goangel_give_ups_total",
		"goangel_lives_drained_total", "goangel_recycles_total", "goangel_hung_instances_total",
		"goangel_abandoned_goroutines_total", "goangel_crash_loops_total", "goangel_http_requests_total",
		"goangel_http_connections_accepted_total", "goangel_restart_backoff", "goangel_http_request_duration_seconds",
		"goangel_handler_panics_total", "goangel_http_requests_in_flight", "goangel_http_connections_open",
	}
	for _, name := range perInstance {
		for _, inst := range []string{"0", "1"} {
			if !m.has(name, "goangel_instance", inst) {
				t.Errorf("%s{goangel_instance=%q} is not exposed before its first event", name, inst)
			}
		}
	}
	for _, key := range []string{
		"goangel_crashes_total goangel_instance 1 cause configure", "goangel_crashes_total goangel_instance 1 cause panic",
		"goangel_crashes_total goangel_instance 1 cause error", "goangel_crashes_total goangel_instance 1 cause crash",
		"goangel_reloads_total outcome finished", "goangel_reloads_total outcome aborted",
		"goangel_log_lines_total level error", "goangel_pubsub_slow_consumer_episodes_total",
		"goangel_http_requests_total goangel_instance 0 code 5xx",
	} {
		parts := strings.Fields(key)
		if !m.has(parts[0], parts[1:]...) {
			t.Errorf("%s is not exposed before its first event", key)
		}
	}
	expect(t, m, map[string]float64{"goangel_crashes_total": 0, "goangel_reloads_total": 0, "goangel_respawns_total": 0})
	for name, f := range m {
		if !strings.HasPrefix(name, "goangel_") {
			continue
		}
		for _, s := range f.Metric {
			for _, lp := range s.Label {
				if lp.GetName() == "instance" || lp.GetName() == "job" {
					t.Errorf("%s has the label %s, which Prometheus renames to exported_%s", name, lp.GetName(), lp.GetName())
				}
			}
		}
	}

	// A scaled-up instance's series are there before its first crash.
	if code, body := h.call(t, "POST", "/scale?n=3"); code != 200 {
		t.Fatalf("POST /scale?n=3: %d %s", code, body)
	}
	// Beyond --max-instances: refused as a bad request, with the reason.
	if code, body := h.call(t, "POST", "/scale?n=100000"); code != 400 || !strings.Contains(body, "--max-instances") {
		t.Errorf("POST /scale?n=100000: %d %s, want 400 naming --max-instances", code, body)
	}
	if m := h.scrape(t); !m.has("goangel_crashes_total", "goangel_instance", "2", "cause", "crash") || !m.has("goangel_recycles_total", "goangel_instance", "2") {
		t.Error("the counters of instance 2 are not exposed after scaling to 3")
	}
}

// TestAdminSecretsNotShown: a secret of the command line (here the admin
// token) that reaches a log line or a crash reason is shown redacted, in
// the log and in /instances.
func TestAdminSecretsNotShown(t *testing.T) {
	const secret = "t0ken-of-the-admin"
	crash := make(chan struct{}, 1)
	configure := func(app *production.App) error {
		app.Logger.Infof("configure saw the token %s", secret)
		app.Go(func(ctx context.Context) error {
			select {
			case <-crash:
				return errors.New("refused with " + secret)
			case <-ctx.Done():
				return nil
			}
		})
		return hello(app)
	}
	logFile := filepath.Join(t.TempDir(), "app.log")
	h := startAdmin(t, configure, []string{"-j", "1", "--admin-token", secret, "--log-file", logFile})
	crash <- struct{}{}
	var body string
	waitFor(t, 10*time.Second, "the crash in /instances", func() bool {
		_, body = h.call(t, "GET", "/instances")
		return strings.Contains(body, "refused with")
	})
	if strings.Contains(body, secret) || !strings.Contains(body, "refused with [redacted]") {
		t.Errorf("/instances shows the secret or no redacted crash:\n%s", body)
	}
	waitFor(t, 10*time.Second, "the log lines", func() bool { return strings.Count(h.run.Log(), "configure saw the token") >= 2 })
	if log := h.run.Log(); strings.Contains(log, secret) || !strings.Contains(log, "configure saw the token [redacted]") {
		t.Errorf("the log shows the secret:\n%s", log)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if log := string(b); strings.Contains(log, secret) || !strings.Contains(log, "configure saw the token [redacted]") {
		t.Errorf("the log file shows the secret:\n%s", log)
	}
}
