package admin

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// history keeps the last samples of the runner's totals, for the status
// page's chart and the per-instance request rates.
type history struct {
	mu      sync.Mutex
	max     int
	samples []sample // oldest first
}

type sample struct {
	at  time.Time
	per map[int]instSample // by instance number
}

// instSample is one instance's cumulative counts in a sample.
type instSample struct {
	requests, crashes, errors uint64
	latency                   Histogram
}

func (h *history) add(at time.Time, snap Snapshot) {
	s := sample{at: at, per: make(map[int]instSample, len(snap.Instances))}
	for _, in := range snap.Instances {
		s.per[in.Number] = instSample{requests: in.Requests, crashes: in.Crashes, errors: in.Errors, latency: in.Latency}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if len(h.samples) > h.max {
		h.samples = append(h.samples[:0], h.samples[len(h.samples)-h.max:]...)
	}
}

// delta is what happened between two samples, summed over the instances
// of the later one: an instance scaled away leaves the sum instead of
// taking its requests with it, and one that appeared counts from zero.
func delta(a, b sample) (requests, crashes uint64) {
	for n, cur := range b.per {
		prev := a.per[n]
		if cur.requests >= prev.requests {
			requests += cur.requests - prev.requests
		}
		if cur.crashes >= prev.crashes {
			crashes += cur.crashes - prev.crashes
		}
	}
	return requests, crashes
}

// window is one instance's figures over the last sampling interval.
type window struct {
	rate, errorRate, p50, p99 float64
}

// windows returns each instance's figures between the last two samples.
func (h *history) windows() map[int]window {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int]window{}
	if len(h.samples) < 2 {
		return out
	}
	a, b := h.samples[len(h.samples)-2], h.samples[len(h.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return out
	}
	for n, cur := range b.per {
		prev := a.per[n]
		if cur.requests < prev.requests {
			continue
		}
		w := window{rate: float64(cur.requests-prev.requests) / dt}
		if req := cur.requests - prev.requests; req > 0 && cur.errors >= prev.errors {
			w.errorRate = float64(cur.errors-prev.errors) / float64(req)
		}
		d := cur.latency.Sub(prev.latency)
		w.p50, w.p99 = d.Quantile(0.5), d.Quantile(0.99)
		out[n] = w
	}
	return out
}

// Histogram is a cumulative latency histogram (the runner's request
// durations of one instance): Counts[i] requests took at most Bounds[i]
// seconds; Count is every request.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
}

// Sub returns h minus an earlier prev of the same buckets (h itself when
// the buckets differ or prev is empty).
func (h Histogram) Sub(prev Histogram) Histogram {
	if len(prev.Counts) != len(h.Counts) || prev.Count > h.Count {
		return h
	}
	d := Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Count: h.Count - prev.Count}
	for i := range h.Counts {
		if h.Counts[i] >= prev.Counts[i] {
			d.Counts[i] = h.Counts[i] - prev.Counts[i]
		}
	}
	return d
}

// Quantile is PromQL's histogram_quantile: linear interpolation within the
// bucket the rank falls in; 0 without requests, the last bound past it.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 || len(h.Bounds) == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	lower, below := 0.0, 0.0
	for i, b := range h.Bounds {
		if c := float64(h.Counts[i]); c >= rank {
			if c == below {
				return b
			}
			return lower + (b-lower)*(rank-below)/(c-below)
		}
		lower, below = b, float64(h.Counts[i])
	}
	return lower
}

// point is one interval of the chart.
type point struct {
	at       time.Time
	rate     float64 // requests per second over the interval
	crashes  uint64  // crashes within the interval
	duration time.Duration
}

func (h *history) points() []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []point
	for i := 1; i < len(h.samples); i++ {
		a, b := h.samples[i-1], h.samples[i]
		p := point{at: b.at, duration: b.at.Sub(a.at)}
		requests, crashes := delta(a, b)
		if dt := p.duration.Seconds(); dt > 0 {
			p.rate = float64(requests) / dt
		}
		p.crashes = crashes
		out = append(out, p)
	}
	return out
}

// Chart geometry, in SVG user units: the plot, with room on the left for
// the y axis's labels and below for the x axis's.
const (
	chartW, chartH = 640.0, 150.0
	chartPad       = 4.0
	chartLeft      = 56.0 // x of the y axis
	chartBottom    = 22.0 // below the x axis
	plotH          = chartH - chartBottom
)

// chart is what the page template draws.
type chart struct {
	Width, Height float64
	Left, PlotH   float64 // the axes: x of the y axis, y of the x axis
	TopY          float64 // y of MaxRate
	Requests      string  // polyline points
	Crashes       []crashMark
	MaxRate       string
	Span          string
	Empty         bool
}

type crashMark struct {
	X, Y, H float64
	N       uint64
}

func (h *history) chart() chart {
	pts := h.points()
	c := chart{Width: chartW, Height: chartH, Left: chartLeft, PlotH: plotH, Empty: len(pts) == 0}
	if c.Empty {
		return c
	}
	maxRate, maxCrash := 1.0, uint64(1)
	for _, p := range pts {
		maxRate = max(maxRate, p.rate)
		maxCrash = max(maxCrash, p.crashes)
	}
	step := (chartW - chartLeft - 2*chartPad) / float64(max(len(pts)-1, 1))
	var b strings.Builder
	for i, p := range pts {
		x := chartLeft + chartPad + float64(i)*step
		y := plotH - chartPad - (plotH-2*chartPad)*p.rate/(maxRate*1.15) // headroom above the peak
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		if p.crashes > 0 {
			hgt := (plotH / 3) * float64(p.crashes) / float64(maxCrash)
			c.Crashes = append(c.Crashes, crashMark{X: x - 2, Y: plotH - chartPad - hgt, H: hgt, N: p.crashes})
		}
	}
	c.TopY = plotH - chartPad - (plotH-2*chartPad)/1.15
	c.Requests = strings.TrimSpace(b.String())
	c.MaxRate = strconv.FormatFloat(maxRate, 'f', 1, 64)
	c.Span = pts[len(pts)-1].at.Sub(pts[0].at.Add(-pts[0].duration)).Round(time.Second).String()
	return c
}

type pageData struct {
	App      string
	Snap     Snapshot
	Ready    string // "" when ready
	Chart    chart
	Now      string
	Interval int    // refresh interval in milliseconds
	Every    string // the history's sampling interval
	Fragment bool   // rendering the live part for the page's refresh
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	snap := s.snapshot()
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, "text/plain") && !strings.Contains(accept, "text/html") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		writeTable(w, s.cfg.App, snap)
		return
	}
	d := pageData{
		App:      s.cfg.App,
		Snap:     snap,
		Ready:    NotReady(snap),
		Chart:    s.hist.chart(),
		Now:      s.cfg.Now().UTC().Format(time.RFC3339),
		Interval: 2000,
		Every:    s.cfg.SampleEvery.String(),
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	name := "page"
	if r.URL.Query().Get("fragment") == "1" {
		name, d.Fragment = "live", true
	}
	if err := pageTemplate.ExecuteTemplate(w, name, d); err != nil && s.cfg.ErrorLog != nil {
		s.cfg.ErrorLog.Printf("admin: status page: %v", err)
	}
}

// writeTable writes the instances as a text table (Accept: text/plain).
func writeTable(w http.ResponseWriter, app string, snap Snapshot) {
	ready := "ready"
	if why := NotReady(snap); why != "" {
		ready = "not ready: " + why
	}
	fmt.Fprintf(w, "%s: %d of %d instances serving; %s\n\n", app, snap.Serving, snap.Wanted, ready)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tLIFE\tSTATE\tUPTIME\tREQ/S\tREQUESTS\tIN FLIGHT\tCONNS\tP50\tP99\t5XX\tRESTARTS\tCRASHES\tLAST CRASH")
	for _, in := range snap.Instances {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.1f\t%d\t%d\t%d\t%s\t%s\t%.1f%%\t%d\t%d\t%s\n", in.Number, in.Life, in.State,
			uptime(in.UptimeSeconds), in.RequestsPerSecond, in.Requests, in.InFlight, in.Connections,
			latency(in.LatencyP50Seconds), latency(in.LatencyP99Seconds), 100*in.ErrorRate,
			in.Restarts, in.Crashes, oneLine(in.LastCrash, 60))
	}
	_ = tw.Flush()
}

// latency formats seconds for people: 850µs, 12.3ms, 1.2s; "-" for none.
func latency(sec float64) string {
	if sec <= 0 {
		return "-"
	}
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func uptime(sec float64) string {
	if sec <= 0 {
		return "-"
	}
	return (time.Duration(sec) * time.Second).Round(time.Second).String()
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"uptime":  uptime,
	"oneLine": oneLine,
	"rate":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"latency": latency,
	"percent": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
	"div": func(a, b float64) float64 { return a / b },
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.App}} · goangel</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
.sub { color: #5a6473; margin-bottom: 1em; }
.ok { color: #11772d; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 0 0 1px #dde1e6; }
th, td { padding: .35em .8em; text-align: right; border-bottom: 1px solid #eef0f3; }
th { background: #f1f3f6; font-weight: 600; }
td.l, th.l { text-align: left; }
.state-serving { color: #11772d; }
.state-backoff, .state-starting, .state-draining { color: #9a6700; }
.state-stopped { color: #b3261e; }
svg { background: #fff; box-shadow: 0 0 0 1px #dde1e6; margin: .5em 0 1.2em; }
.legend span { margin-right: 1.2em; }
.req { color: #1f6feb; } .crash { color: #b3261e; }
.axis { font-size: 11px; fill: #5a6473; }
details pre { white-space: pre-wrap; font-size: 12px; max-width: 60em; }
</style>
</head>
<body>
<div id="refresh-error" class="bad" hidden></div>
<div id="live">{{template "live" .}}</div>
<script>
(function () {
  var live = document.getElementById("live"), failed = document.getElementById("refresh-error");
  // location.origin has no user:password@: fetch refuses a URL with
  // credentials (the page opened as http://:TOKEN@host/), while the
  // browser still sends the Basic credentials it has for this origin.
  var url = location.origin + location.pathname + "?fragment=1";
  setInterval(function () {
    fetch(url, {headers: {Accept: "text/html"}, cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject("HTTP " + r.status); })
      .then(function (html) { live.innerHTML = html; failed.hidden = true; })
      .catch(function (e) {
        failed.textContent = "Refreshing failed (" + e + ") at " + new Date().toISOString() + ": the figures below are not live.";
        failed.hidden = false;
      });
  }, {{.Interval}});
})();
</script>
</body>
</html>
{{define "live"}}
<h1>{{.App}}</h1>
<div class="sub" id="process">version <b id="version">{{.Snap.Build.Version}}</b>{{if .Snap.Build.Revision}} ({{.Snap.Build.Revision}}){{end}}, {{.Snap.Build.GoVersion}} · pid {{.Snap.PID}} · up <span id="uptime">{{uptime .Snap.UptimeSeconds}}</span> · last reload <span id="last-reload">{{when .Snap.LastReload}}</span> · upgrade generation {{.Snap.Generation}}{{if not .Snap.LastUpgrade.IsZero}} (upgraded {{when .Snap.LastUpgrade}}){{end}}</div>
<div class="sub">{{.Snap.Serving}} of {{.Snap.Wanted}} instances serving ·
{{if .Ready}}<span class="bad" id="ready">not ready: {{.Ready}}</span>{{else}}<span class="ok" id="ready">ready</span>{{end}}
{{if .Snap.Reloading}} · reloading{{end}} · <span id="rendered" data-by="{{if .Fragment}}refresh{{else}}page{{end}}">{{.Now}}</span></div>
<div class="legend"><span class="req">&#9644; requests/s (max {{.Chart.MaxRate}})</span><span class="crash">&#9646; crashes</span>{{if .Chart.Span}}<span>last {{.Chart.Span}}</span>{{end}}</div>
<svg id="chart" width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img" aria-label="requests and crashes over the last minutes">
{{if .Chart.Empty}}<text x="12" y="24" fill="#5a6473">collecting samples…</text>{{end}}
<line x1="{{.Chart.Left}}" y1="0" x2="{{.Chart.Left}}" y2="{{.Chart.PlotH}}" stroke="#8b95a3"/>
<line x1="{{.Chart.Left}}" y1="{{.Chart.PlotH}}" x2="{{.Chart.Width}}" y2="{{.Chart.PlotH}}" stroke="#8b95a3"/>
<text class="axis" id="y-axis" x="4" y="12">req/s</text>
{{if .Chart.MaxRate}}<text class="axis" x="{{sub .Chart.Left 4}}" y="{{add .Chart.TopY 4}}" text-anchor="end">{{.Chart.MaxRate}}</text>{{end}}
<text class="axis" x="{{sub .Chart.Left 4}}" y="{{.Chart.PlotH}}" text-anchor="end">0</text>
<text class="axis" id="x-axis" x="{{.Chart.Left}}" y="{{sub .Chart.Height 6}}">{{if .Chart.Span}}−{{.Chart.Span}}{{end}}</text>
<text class="axis" x="{{div .Chart.Width 2}}" y="{{sub .Chart.Height 6}}" text-anchor="middle">time (a point every {{.Every}})</text>
<text class="axis" x="{{.Chart.Width}}" y="{{sub .Chart.Height 6}}" text-anchor="end">now</text>
{{if .Chart.Requests}}<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{{.Chart.Requests}}"/>{{end}}
{{range .Chart.Crashes}}<rect x="{{.X}}" y="{{.Y}}" width="4" height="{{.H}}" fill="#b3261e"><title>{{.N}} crash(es)</title></rect>{{end}}
</svg>
<table id="instances">
<thead><tr><th>#</th><th>life</th><th class="l">state</th><th>uptime</th><th>req/s</th><th>requests</th><th>in flight</th><th>conns</th><th>p50</th><th>p99</th><th>5xx</th><th>restarts</th><th>crashes</th><th class="l">last crash</th></tr></thead>
<tbody>
{{range .Snap.Instances}}<tr data-instance="{{.Number}}">
<td>{{.Number}}</td><td>{{.Life}}</td><td class="l state-{{.State}}">{{.State}}</td><td>{{uptime .UptimeSeconds}}</td><td>{{rate .RequestsPerSecond}}</td><td>{{.Requests}}</td><td>{{.InFlight}}</td><td>{{.Connections}}</td><td class="p50">{{latency .LatencyP50Seconds}}</td><td class="p99">{{latency .LatencyP99Seconds}}</td><td class="errors">{{percent .ErrorRate}}</td><td>{{.Restarts}}</td><td>{{.Crashes}}</td>
<td class="l">{{if .LastCrash}}<details><summary>{{oneLine .LastCrash 60}}{{if not .LastCrashTime.IsZero}} ({{when .LastCrashTime}}){{end}}</summary>{{if .LastCrashStack}}<pre>{{.LastCrashStack}}</pre>{{end}}</details>{{else}}-{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{end}}`))
