package production_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil/natstest"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/pubsub"
)

// allFeaturesApp is the app of TestAllFeaturesOn: / answers, /greet/{g}
// publishes a retained greeting that every other instance takes (and every
// later life gets when it subscribes), /greeting says this life's greeting,
// /crash ends the life, /block hangs until release is closed.
func allFeaturesApp(release chan struct{}) func(*production.App) error {
	return func(app *production.App) error {
		instanceHeader(app)
		var greeting atomic.Value
		greeting.Store("Hello")
		sub, err := pubsub.SubscribeAs[string](app.Context(), app.PubSub(), "greeting")
		if err != nil {
			return err
		}
		for queued := len(sub.C()); queued > 0; queued-- { // the retained one
			if g, _, err := sub.Receive(app.Context()); err == nil {
				greeting.Store(g)
			}
		}
		app.Go(func(ctx context.Context) error {
			for {
				g, _, err := sub.Receive(ctx)
				switch {
				case ctx.Err() != nil || errors.Is(err, pubsub.ErrClosed):
					return nil
				case err != nil:
					return err
				}
				greeting.Store(g)
			}
		})
		r := app.Router
		r.Get("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "Hello, production world!") })
		r.Get("/greeting", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, greeting.Load().(string)) })
		r.Get("/greet/{g}", func(w http.ResponseWriter, r *http.Request) {
			g := chi.URLParam(r, "g")
			greeting.Store(g)
			if _, err := pubsub.PublishAs(r.Context(), app.PubSub(), "greeting", g, pubsub.Retain()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			io.WriteString(w, "ok")
		})
		r.Get("/crash", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "crashing")
			app.Crash(errors.New("crash requested"))
		})
		r.Get("/block", func(w http.ResponseWriter, r *http.Request) { blockedHandler(release) })
		return nil
	}
}

// TestAllFeaturesOn runs a real Runner with every feature on at once (admin
// listener, pprof, hang timeout, recycling, TLS with HTTP/2, the access log,
// NATS with retained messages, NOTIFY_SOCKET and the watchdog), drives it
// through crashes, a reload, a scale up and down, a hung handler and a stop,
// all under a strict load over TLS, and checks that no request failed and
// that the events, the metrics, Stats, the access log and the notify
// datagrams agree with what happened (issue 20's proof).
func TestAllFeaturesOn(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "200000") // a ping every 100ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	natsURL := natstest.JetStream(t)
	dir := t.TempDir()
	cert, key := writePair(t, dir, "server")
	accessLog := filepath.Join(dir, "access.log")
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	var ev eventLog
	sigs := make(chan os.Signal, 4)
	h := startAdmin(t, allFeaturesApp(release), []string{
		"-j", "3", "--pprof", "--hang-timeout", "1s", "--drain-timeout", "1s",
		"--max-requests", "300", "--max-requests-jitter", "100",
		"--ssl", "--http2", "--certificate-file", cert, "--key-file", key,
		"--access-log-file", accessLog, "--pubsub-url", natsURL,
	}, production.WithEventHook(ev.hook), production.WithSignals(sigs))

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the runner's log:\n%s", h.run.Log())
		}
	})
	pemBytes, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	tlsConfig := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	appURL := "https://" + h.run.Addr().String()

	// READY=1 once every instance serves.
	waitFor(t, 10*time.Second, "READY=1 with 3/3 serving", func() bool {
		for _, m := range sock.all() {
			if v, _ := field(m, "READY"); v == "1" {
				st, _ := field(m, "STATUS")
				return st == "3/3 instances serving, 0 restarting"
			}
		}
		return false
	})

	// The strict load over TLS: keep-alive clients and a new connection
	// per request, each answer checked whole.
	ctx, cancelLoad := context.WithCancel(context.Background())
	defer cancelLoad()
	cfg := loadclient.Config{Addr: h.run.Addr().String(), Path: "/", Body: "Hello, production world!", TLS: tlsConfig}
	ka, nc := cfg, cfg
	ka.Workers, ka.KeepAlive = 3, true
	nc.Workers = 1
	var loads []*loadclient.Load
	startLoads := func() {
		loads = append(loads, loadclient.Start(ctx, ka), loadclient.Start(ctx, nc))
	}
	startLoads()
	ok := func() (n int) {
		for _, l := range loads {
			n += l.Result().Count(loadclient.OK)
		}
		return n
	}
	failed := func() (n int) {
		for _, l := range loads {
			n += l.Result().Failed()
		}
		return n
	}
	under := func(n int) { // let n more requests be answered
		t.Helper()
		target := ok() + n
		waitFor(t, 30*time.Second, fmt.Sprintf("%d more requests answered", n), func() bool { return ok() >= target })
	}
	under(200)

	// Our own requests, counted for the access log and Stats. h2 serves
	// clients that offer it. (Each transport gets its own tls.Config: the
	// HTTP/2 transport adds "h2" to the one it is given.)
	var mine atomic.Int64
	// A transport per request, so that each lands on the next instance:
	// HTTP/2 with DisableKeepAlives (a single-use client connection) once
	// failed a first request with "http2: client conn could not be
	// established", a client-side path no other client here takes.
	var lastLife atomic.Value // X-Life of the last answer to get
	get := func(path string) (int, string, string, string) {
		t.Helper()
		h2 := &http.Transport{TLSClientConfig: tlsConfig.Clone(), ForceAttemptHTTP2: true}
		defer h2.CloseIdleConnections()
		resp, err := (&http.Client{Transport: h2, Timeout: 10 * time.Second}).Get(appURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		mine.Add(1)
		lastLife.Store(resp.Header.Get("X-Life"))
		return resp.StatusCode, string(b), resp.Header.Get("X-Instance"), resp.Proto
	}
	if code, _, _, proto := get("/"); code != 200 || proto != "HTTP/2.0" {
		t.Errorf("GET / with h2 offered = %d over %s, want 200 over HTTP/2.0", code, proto)
	}

	// A greeting through NATS, retained in JetStream: every instance takes
	// it, and so does every later life.
	if code, body, _, _ := get("/greet/Howdy"); code != 200 {
		t.Fatalf("GET /greet/Howdy = %d %s", code, body)
	}
	everyInstanceSays := func(what string, n int) {
		t.Helper()
		waitFor(t, 20*time.Second, fmt.Sprintf("%d instances saying %q", n, what), func() bool {
			seen := map[string]bool{}
			for range 3 * n {
				if code, body, inst, _ := get("/greeting"); code == 200 && body == what {
					seen[inst] = true
				}
			}
			return len(seen) == n
		})
	}
	everyInstanceSays("Howdy", 3)

	// Crashes: three lives end; each is respawned (it had served) and the
	// respawn has the retained greeting.
	// A /crash that reaches a life already ended (its replacement serves,
	// but its view may take a connection until its drain starts) crashes
	// nothing more: crash until three lives did.
	for i := 0; crashes(h.run.Stats()) < 3 && i < 20; i++ {
		code, _, inst, _ := get("/crash")
		if code != 200 {
			t.Fatalf("GET /crash = %d", code)
		}
		num, _ := strconv.Atoi(inst)
		life, _ := strconv.Atoi(lastLife.Load().(string))
		waitFor(t, 20*time.Second, "the respawn", func() bool {
			s := h.run.Stats()
			for _, is := range s.Instances {
				if is.Number == num && (is.Life <= life || !is.Up) {
					return false
				}
			}
			return s.Serving == 3
		})
	}
	if n := crashes(h.run.Stats()); n != 3 {
		t.Fatalf("%d crashes counted, want 3", n)
	}
	everyInstanceSays("Howdy", 3)
	under(200)

	// A reload (SIGHUP): RELOADING=1 … READY=1.
	sigs <- syscall.SIGHUP
	waitFor(t, 30*time.Second, "the reload", func() bool { return ev.count(production.EventReloadFinished) == 1 })
	under(200)

	// Scale up and down (SIGTTIN, SIGTTOU twice).
	sigs <- syscall.SIGTTIN
	waitFor(t, 30*time.Second, "4 instances", func() bool { return h.run.Stats().Serving == 4 })
	everyInstanceSays("Howdy", 4)
	sigs <- syscall.SIGTTOU
	sigs <- syscall.SIGTTOU
	waitFor(t, 30*time.Second, "2 instances", func() bool {
		s := h.run.Stats()
		return s.Wanted == 2 && len(s.Instances) == 2 && s.Serving == 2
	})
	under(200)

	// A hung handler: its life is replaced and its stack reported (or, when
	// --max-requests recycles its life first, the life abandons it at the
	// drain deadline and that report has the stack), and the handler is
	// abandoned at the drain deadline. The load pauses meanwhile.
	cancelLoad()
	for _, l := range loads {
		l.Wait()
	}
	ctx, cancelLoad = context.WithCancel(context.Background())
	defer cancelLoad()
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig.Clone(), DisableKeepAlives: true}, Timeout: 60 * time.Second}
		if resp, err := c.Get(appURL + "/block"); err == nil {
			resp.Body.Close()
		}
	}()
	mine.Add(1)
	waitFor(t, 30*time.Second, "the hung handler reported", func() bool {
		return ev.count(production.EventHung) == 1 || ev.count(production.EventAbandoned) == 1
	})
	kind := production.EventHung
	if ev.count(production.EventHung) == 0 {
		kind = production.EventAbandoned
	}
	if e, _ := ev.find(kind); !strings.Contains(e.Stack, "blockedHandler") {
		t.Errorf("with the admin listener on, the %v event's stack does not show the blocked handler (issue 20 item 5):\n%q", kind, e.Stack)
	}
	waitFor(t, 30*time.Second, "the abandoned handler counted", func() bool { return h.run.Stats().Abandoned == 1 })
	startLoads()
	under(200)
	// pprof serves beside the metrics.
	if code, body := h.call(t, "GET", "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("GET /debug/pprof/goroutine = %d", code)
	}

	// The metrics agree with the events (read together until a recycle
	// does not fall between them).
	var diffs []string
	if !within(30*time.Second, func() bool {
		diffs = metricsAgainstEvents(h.scrape(t), ev.all(), h.run.Stats())
		return len(diffs) == 0
	}) {
		t.Errorf("the metrics disagree with the events and Stats: %s", strings.Join(diffs, "; "))
	}
	if f := failed(); f != 0 {
		t.Errorf("%d requests failed before the stop", f)
	}

	// Release the hung handler, then stop under load (SIGTERM).
	unblock()
	<-blocked
	for _, l := range loads[2:] {
		l.Stopping()
	}
	sigs <- syscall.SIGTERM
	if err := h.run.Wait(30 * time.Second); err != nil {
		t.Errorf("Run = %v, want a clean stop", err)
	}
	cancelLoad()
	var answered int
	for i, l := range loads {
		res := l.Wait()
		answered += res.Count(loadclient.OK)
		if res.Failed() != 0 {
			t.Errorf("load %d: %v: want no failed request", i, res)
		}
	}

	// Stats after Run keeps what the instances still there counted; the
	// access log has a line for every request answered (the load's and
	// the test's own, the released hung one included).
	s := h.run.Stats()
	if len(s.Instances) != 2 {
		t.Errorf("Stats after Run has %d instances, want 2", len(s.Instances))
	}
	for _, is := range s.Instances {
		if is.Requests == 0 || is.State != production.InstanceStopped {
			t.Errorf("instance #%d after Run: %d requests, state %q", is.Number, is.Requests, is.State)
		}
	}
	var lines int
	want := answered + int(mine.Load())
	if !within(10*time.Second, func() bool {
		lines = countLines(t, accessLog)
		return lines == want
	}) {
		t.Errorf("the access log has %d lines; the load had %d answers and the test sent %d requests", lines, answered, mine.Load())
	}

	// The notify datagrams: READY, then RELOADING … READY for the reload,
	// then STOPPING; watchdog pings until STOPPING, none after; the last
	// STATUS= before STOPPING=1 says what served then.
	sock.sync(t)
	var seq []string
	lastStatus, pings, pingsAfterStop := "", 0, 0
	for _, m := range sock.all() {
		set := func(key string) bool { v, ok := field(m, key); return ok && v == "1" }
		stopping := len(seq) > 0 && seq[len(seq)-1] == "STOPPING"
		switch {
		case m == "WATCHDOG=1" && stopping:
			pingsAfterStop++
		case m == "WATCHDOG=1":
			pings++
		case set("STOPPING"):
			seq = append(seq, "STOPPING")
		case set("RELOADING"):
			seq = append(seq, "RELOADING")
		case set("READY"):
			seq = append(seq, "READY")
		}
		if st, ok := field(m, "STATUS"); ok && !stopping && !set("STOPPING") {
			lastStatus = st
		}
	}
	if got := strings.Join(seq, " "); got != "READY RELOADING READY STOPPING" {
		t.Errorf("notifications %s, want READY RELOADING READY STOPPING; all: %q", got, sock.all())
	}
	if pings < 3 || pingsAfterStop > 0 {
		t.Errorf("%d watchdog pings while serving (want at least 3), %d after STOPPING=1 (want 0)", pings, pingsAfterStop)
	}
	if want := "2/2 instances serving, 0 restarting"; lastStatus != want {
		t.Errorf("last STATUS= before STOPPING=1 is %q, want %q", lastStatus, want)
	}
	t.Logf("%d requests answered under load, %d sent by the test; %d lives started, %d recycled", answered, mine.Load(), ev.count(production.EventStarted), ev.count(production.EventRecycled))
}

// metricsAgainstEvents lists where /metrics disagrees with the events seen
// and with Stats.
func metricsAgainstEvents(m metrics, events []production.Event, s production.Stats) []string {
	count := func(k production.EventKind, crash bool) float64 {
		n := 0
		for _, e := range events {
			if e.Kind == k && (!crash || e.Cause != production.CauseNone) {
				n++
			}
		}
		return float64(n)
	}
	var serving float64
	for _, is := range s.Instances {
		if is.Up {
			serving++
		}
	}
	want := map[string]float64{
		"goangel_lives_started_total":            count(production.EventStarted, false),
		"goangel_crashes_total":                  count(production.EventEnded, true),
		"goangel_respawns_total":                 count(production.EventRespawning, false),
		"goangel_lives_drained_total":            count(production.EventStopped, false),
		"goangel_recycles_total":                 count(production.EventRecycled, false),
		"goangel_hung_instances_total":           count(production.EventHung, false),
		"goangel_reloads_total outcome finished": count(production.EventReloadFinished, false),
		"goangel_scales_total":                   count(production.EventScaled, false),
		"goangel_abandoned_goroutines_total":     float64(s.Abandoned),
		"goangel_instances_wanted":               float64(s.Wanted),
		"goangel_instances_serving":              serving,
		"goangel_crashes_total cause crash":      3,
	}
	var diffs []string
	for key, v := range want {
		parts := strings.Fields(key)
		if got := m.sum(parts[0], parts[1:]...); got != v {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", key, got, v))
		}
	}
	return diffs
}

// within polls cond until it holds or d has passed, and reports whether it
// held (for conditions whose failure the caller describes itself).
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func crashes(s production.Stats) (n uint64) {
	for _, is := range s.Instances {
		n += is.Crashes
	}
	return n
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}
