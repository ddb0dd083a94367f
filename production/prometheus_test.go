package production_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// promServer is a real Prometheus server (Debian's prometheus) started by a
// test, scraping one target every second.
type promServer struct {
	base string // http://127.0.0.1:PORT
	out  *syncBuffer
}

// startPrometheus runs prometheus scraping target (HOST:PORT) as job
// "goangel" every second, with token as the bearer credential.
func startPrometheus(t *testing.T, target, token string) *promServer {
	t.Helper()
	bin := testutil.NeedTool(t, "prometheus", "prometheus")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	// The scrape config docs/ADMIN.md shows, with a 1s interval.
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: goangel
    authorization:
      credentials_file: %s
    static_configs:
      - targets: [%q]
`, tokenFile, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	p := &promServer{base: "http://" + addr, out: &syncBuffer{}}
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting prometheus: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	waitFor(t, 60*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// promSample is one element of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return f
}

// query runs an instant PromQL query (at time at, unless zero) and returns
// the vector.
func (p *promServer) query(t *testing.T, q string, at float64) []promSample {
	t.Helper()
	v := url.Values{"query": {q}}
	if at != 0 {
		v.Set("time", strconv.FormatFloat(at, 'f', 3, 64))
	}
	resp, err := http.Get(p.base + "/api/v1/query?" + v.Encode())
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %s %v %s", q, resp.Status, err, body)
	}
	return r.Data.Result
}

// scalar runs q and returns its single value (NaN-free), failing otherwise.
func (p *promServer) scalar(t *testing.T, q string, at float64) float64 {
	t.Helper()
	r := p.query(t, q, at)
	if len(r) != 1 {
		t.Fatalf("query %s: %d samples, want 1: %+v", q, len(r), r)
	}
	return r[0].float(t)
}

// TestPrometheusScrapesRunner runs Debian's Prometheus against a runner
// (admin listener with a token, scraped every second with docs/ADMIN.md's
// config) through load, scaling up and down, 3 crashes and a reload, then
// asserts with PromQL: up == 1, increase(goangel_crashes_total) equals the
// crashes made exactly, one finished reload, no exported_instance series,
// and the p99 of the request-duration histogram within 2x of the client's.
func TestPrometheusScrapesRunner(t *testing.T) {
	const token = "prometheus-test-token"
	crash := make(chan struct{}, 8)
	configure := func(app *production.App) error {
		app.Router.Get("/work", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Microsecond)
			w.Write([]byte("done"))
		})
		goCrashOn(app, crash)
		return nil
	}
	var ev eventLog
	h := startAdmin(t, configure, []string{"-j", "2", "--admin-token", token}, production.WithEventHook(ev.hook))
	prom := startPrometheus(t, strings.TrimPrefix(h.admin, "http://"), token)
	waitFor(t, 60*time.Second, "three scrapes with up == 1", func() bool {
		r := prom.query(t, `count_over_time(up{job="goangel"}[1h]) >= 3 and up{job="goangel"} == 1`, 0)
		return len(r) == 1
	})

	ctx, cancel := context.WithCancel(context.Background())
	load := loadclient.Start(ctx, loadclient.Config{Addr: h.run.Addr().String(), Path: "/work", Workers: 1, KeepAlive: true, Body: "done"})
	t.Cleanup(func() { cancel(); load.Wait() })
	waitFor(t, 30*time.Second, "500 requests", func() bool { return load.Result().Count(loadclient.OK) >= 500 })

	// Scaling first (the removed instance's series then end without an
	// increase), then the crashes and the reload.
	if code, body := h.call(t, "POST", "/scale?n=3"); code != 200 {
		t.Fatalf("POST /scale?n=3: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "instance 2 scraped", func() bool {
		return len(prom.query(t, `goangel_lives_started_total{goangel_instance="2"} == 1`, 0)) == 1
	})
	if code, body := h.call(t, "POST", "/scale?n=2"); code != 200 {
		t.Fatalf("POST /scale?n=2: %d %s", code, body)
	}
	const crashes = 3
	for i := range crashes {
		crash <- struct{}{}
		waitFor(t, 30*time.Second, "the crash replaced", func() bool {
			return ev.count(production.EventEnded) >= i+1+1 && h.run.Stats().Serving == 2 // +1: the scale-down's end
		})
		waitFor(t, 30*time.Second, "the crash scraped", func() bool {
			return len(prom.query(t, fmt.Sprintf(`sum(goangel_crashes_total) == %d`, i+1), 0)) == 1
		})
	}
	if code, body := h.call(t, "POST", "/reload"); code != 200 {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the reload scraped", func() bool {
		return len(prom.query(t, `goangel_reloads_total{outcome="finished"} == 1`, 0)) == 1
	})
	waitFor(t, 30*time.Second, "500 more requests", func() bool { return load.Result().Count(loadclient.OK) >= 1000 })
	cancel()
	res := load.Wait()
	// The scrape after the last request.
	served := float64(res.Requests)
	waitFor(t, 30*time.Second, "every request scraped", func() bool {
		return len(prom.query(t, fmt.Sprintf(`sum(goangel_http_requests_total) >= %v`, served), 0)) == 1
	})

	// Evaluate at the last scrape, so that increase() extrapolates nothing
	// at the end; at the start every series began at 0.
	at := prom.scalar(t, `max(timestamp(up{job="goangel"}))`, 0)
	if up := prom.scalar(t, `up{job="goangel"}`, at); up != 1 {
		t.Errorf("up = %v, want 1", up)
	}
	gotCrashes := prom.scalar(t, `sum(increase(goangel_crashes_total[1h]))`, at)
	if gotCrashes != crashes {
		t.Errorf("sum(increase(goangel_crashes_total[1h])) = %v, want %d (the crashes made)", gotCrashes, crashes)
	}
	if got := prom.scalar(t, `sum(increase(goangel_reloads_total{outcome="finished"}[1h]))`, at); got != 1 {
		t.Errorf("increase(goangel_reloads_total{outcome=\"finished\"}[1h]) = %v, want 1", got)
	}
	if r := prom.query(t, `count({exported_instance!=""})`, at); len(r) != 0 {
		t.Errorf("series with exported_instance: %+v", r)
	}
	// Prometheus's own instance label is the target; ours is goangel_instance
	// (instance 2 keeps its series after the scale-down: counters do not
	// vanish).
	target := strings.TrimPrefix(h.admin, "http://")
	if r := prom.query(t, fmt.Sprintf(`count by (goangel_instance) (goangel_http_requests_total{job="goangel", instance=%q})`, target), at); len(r) != 3 {
		t.Errorf("goangel_http_requests_total of target %s by goangel_instance: %+v, want instances 0, 1 and 2", target, r)
	}
	p99 := prom.scalar(t, `histogram_quantile(0.99, sum by (le) (increase(goangel_http_request_duration_seconds_bucket[1h])))`, at)
	p50 := prom.scalar(t, `histogram_quantile(0.5, sum by (le) (increase(goangel_http_request_duration_seconds_bucket[1h])))`, at)
	c99, c50 := res.Quantile(0.99), res.Quantile(0.5)
	server99 := time.Duration(p99 * float64(time.Second))
	server50 := time.Duration(p50 * float64(time.Second))
	t.Logf("PromQL: up 1, increase(crashes) %v (made %d), p50 %v (client %v), p99 %v (client %v); %v", gotCrashes, crashes, server50, c50, server99, c99, res)
	// The server's time is inside the client's (bucket interpolation may
	// overshoot it a little); the client's also holds what the server never
	// sees (the accept wait, its own scheduling on a loaded machine), so
	// the window below is wide: it catches a unit or a bucket scale off by
	// orders of magnitude, not the machine's noise.
	if ratio := float64(server99) / float64(c99); ratio < 0.1 || ratio > 2 {
		t.Errorf("p99: histogram_quantile %v, the client's %v: not within 0.1x..2x", server99, c99)
	}
}
