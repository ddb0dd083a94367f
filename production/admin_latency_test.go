package production_test

import (
	"context"
	"math"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/production"
)

// histogramQuantile is PromQL's histogram_quantile over the classic
// buckets of every series of f (summed): linear interpolation within the
// bucket the rank falls in.
func histogramQuantile(q float64, f *dto.MetricFamily) float64 {
	counts := map[float64]float64{}
	for _, m := range f.Metric {
		for _, b := range m.GetHistogram().GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) { // the text format lists it; the count is the same
				counts[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			}
		}
		counts[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
	}
	var bounds []float64
	for b := range counts {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	total := counts[math.Inf(1)]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		if c := counts[b]; c >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, counts[b]
	}
	return prevBound
}

// TestAdminLatencyQuantiles: the request-duration histogram resolves a
// handler of a few hundred microseconds: it has a bucket bound between half
// the handler's sleep and the sleep (the old buckets began at 5ms), and
// histogram_quantile of its p50 and p99 lies between half the sleep (no
// request takes less than the sleep; interpolation within a bucket may
// place it down to the bucket's lower bound) and twice what the strict
// client measured (the server's time is inside the client's; interpolation
// may overshoot to the bucket's upper bound). The client's time also holds
// what the server never sees (its own scheduling on a loaded machine), so
// nothing here depends on the machine's load.
func TestAdminLatencyQuantiles(t *testing.T) {
	const sleep = 300 * time.Microsecond
	configure := func(app *production.App) error {
		app.Router.Get("/work", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(sleep)
			w.Write([]byte("done"))
		})
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "2"})
	ctx, cancel := context.WithCancel(context.Background())
	l := loadclient.Start(ctx, loadclient.Config{Addr: h.run.Addr().String(), Path: "/work", Workers: 1, KeepAlive: true, Body: "done"})
	t.Cleanup(func() { cancel(); l.Wait() })
	waitFor(t, 60*time.Second, "1000 requests", func() bool { return l.Result().Count(loadclient.OK) >= 1000 })
	cancel()
	res := l.Wait()
	if res.Failed() > 0 {
		t.Fatalf("load: %v", res)
	}
	m := h.scrape(t)
	f := m["goangel_http_request_duration_seconds"]
	if got := m.sum("goangel_http_request_duration_seconds"); got != float64(res.Requests) {
		t.Fatalf("the histogram counted %v requests, the client sent %d", got, res.Requests)
	}
	resolved := false
	for _, b := range f.Metric[0].GetHistogram().GetBucket() {
		if d := time.Duration(b.GetUpperBound() * float64(time.Second)); d <= sleep && d >= sleep/2 {
			resolved = true
		}
	}
	if !resolved {
		t.Errorf("no bucket bound between %v and %v: the histogram cannot resolve a %v handler", sleep/2, sleep, sleep)
	}
	for _, q := range []float64{0.5, 0.99} {
		server := time.Duration(histogramQuantile(q, f) * float64(time.Second))
		client := res.Quantile(q)
		t.Logf("p%v: histogram_quantile %v, client %v", q*100, server, client)
		if server < sleep/2 || server > 2*client {
			t.Errorf("p%v: histogram_quantile %v, want between %v (half the handler's sleep) and %v (twice the client's)", q*100, server, sleep/2, 2*client)
		}
	}
}

// scrapeProto reads /metrics in the protobuf format (the one that carries
// native histograms).
func (h *adminHarness) scrapeProto(t *testing.T) metrics {
	t.Helper()
	req, _ := http.NewRequest("GET", h.admin+"/metrics", nil)
	req.Header.Set("Accept", `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`)
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	out := metrics{}
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err != nil {
			break
		}
		out[f.GetName()] = &f
	}
	return out
}

// TestAdminHistogramOptions: the request-duration histogram is a native
// histogram beside its classic buckets (off with
// --no-metrics-native-histograms), and --metrics-buckets sets the buckets.
func TestAdminHistogramOptions(t *testing.T) {
	native := func(m metrics) bool {
		f := m["goangel_http_request_duration_seconds"]
		if f == nil || len(f.Metric) == 0 {
			t.Fatal("no goangel_http_request_duration_seconds")
		}
		return f.Metric[0].GetHistogram().Schema != nil
	}
	h := startAdmin(t, hello, []string{"-j", "1"})
	if code, _, _, err := h.get("/"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	m := h.scrapeProto(t)
	if !native(m) {
		t.Error("the request-duration histogram is not a native histogram by default")
	}
	var bounds []float64
	for _, b := range m["goangel_http_request_duration_seconds"].Metric[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if len(bounds) != 22 || bounds[0] != 5e-6 || bounds[21] < 10 {
		t.Errorf("default buckets %v, want 22 from 5us to about 10s", bounds)
	}

	h = startAdmin(t, hello, []string{"-j", "1", "--no-metrics-native-histograms", "--metrics-buckets", "100us,1ms,10ms"})
	m = h.scrapeProto(t)
	if native(m) {
		t.Error("a native histogram with --no-metrics-native-histograms")
	}
	bounds = nil
	for _, b := range m["goangel_http_request_duration_seconds"].Metric[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if len(bounds) != 3 || bounds[0] != 1e-4 || bounds[2] != 1e-2 {
		t.Errorf("--metrics-buckets 100us,1ms,10ms: buckets %v", bounds)
	}

	out := &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, out), production.WithLookupEnv(noEnv))
	err := r.Run(context.Background(), []string{"--admin-address", "127.0.0.1:0", "--metrics-buckets", "1ms,1ms"})
	if production.ExitCode(err) != production.ExitUsage || !strings.Contains(out.String(), "--metrics-buckets [1ms 1ms]: want positive durations in increasing order") {
		t.Errorf("--metrics-buckets 1ms,1ms: %v\n%s", err, out)
	}
}

// TestAdminProcessInfo: the build, the start, the last reload, the upgrade
// generation and each instance's last crash, on /metrics and /instances.
func TestAdminProcessInfo(t *testing.T) {
	crash := make(chan struct{}, 1)
	before := time.Now()
	h := startAdmin(t, func(app *production.App) error { return crashOnSignal(app, crash) }, []string{"-j", "2"})
	m := h.scrape(t)
	if !m.has("goangel_build_info", "goversion", runtime.Version()) || m.sum("goangel_build_info") != 1 {
		t.Errorf("goangel_build_info: %v, want 1 with goversion %s", m["goangel_build_info"], runtime.Version())
	}
	if st := m.sum("goangel_start_time_seconds"); st < float64(before.Unix()) || st > float64(time.Now().Unix()+1) {
		t.Errorf("goangel_start_time_seconds %v, want about %d", st, before.Unix())
	}
	expect(t, m, map[string]float64{
		"goangel_last_reload_timestamp_seconds":  0,
		"goangel_upgrade_generation":             0,
		"goangel_last_upgrade_timestamp_seconds": 0,
		"goangel_last_crash_timestamp_seconds":   0,
	})
	if !m.has("goangel_last_crash_timestamp_seconds", "goangel_instance", "1") {
		t.Error("goangel_last_crash_timestamp_seconds of instance 1 is not exposed")
	}
	crash <- struct{}{}
	waitFor(t, 10*time.Second, "the crash's time", func() bool { return h.scrape(t).sum("goangel_last_crash_timestamp_seconds") > 0 })
	if code, body := h.call(t, "POST", "/reload"); code != 200 {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
	if v := h.scrape(t).sum("goangel_last_reload_timestamp_seconds"); v < float64(before.Unix()) {
		t.Errorf("goangel_last_reload_timestamp_seconds %v after a reload", v)
	}
	_, body := h.call(t, "GET", "/instances")
	for _, want := range []string{`"goversion": "` + runtime.Version() + `"`, `"started_at": "`, `"last_reload": "`, `"last_crash_time": "`, `"generation": 0`, `"uptime_seconds"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/instances lacks %s:\n%s", want, body)
		}
	}
}
