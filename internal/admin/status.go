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
	at       time.Time
	requests uint64         // over every instance
	crashes  uint64         // over every instance
	per      map[int]uint64 // requests per instance number
}

func (h *history) add(at time.Time, snap Snapshot) {
	s := sample{at: at, per: make(map[int]uint64, len(snap.Instances))}
	for _, in := range snap.Instances {
		s.requests += in.Requests
		s.crashes += in.Crashes
		s.per[in.Number] = in.Requests
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if len(h.samples) > h.max {
		h.samples = append(h.samples[:0], h.samples[len(h.samples)-h.max:]...)
	}
}

// rates returns each instance's requests per second between the last two
// samples.
func (h *history) rates() map[int]float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int]float64{}
	if len(h.samples) < 2 {
		return out
	}
	a, b := h.samples[len(h.samples)-2], h.samples[len(h.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 {
		return out
	}
	for n, req := range b.per {
		if prev, ok := a.per[n]; ok && req >= prev {
			out[n] = float64(req-prev) / dt
		}
	}
	return out
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
		if dt := p.duration.Seconds(); dt > 0 && b.requests >= a.requests {
			p.rate = float64(b.requests-a.requests) / dt
		}
		if b.crashes >= a.crashes {
			p.crashes = b.crashes - a.crashes
		}
		out = append(out, p)
	}
	return out
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 600.0, 120.0
	chartPad       = 4.0
)

// chart is what the page template draws.
type chart struct {
	Width, Height float64
	Requests      string // polyline points
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
	c := chart{Width: chartW, Height: chartH, Empty: len(pts) == 0}
	if c.Empty {
		return c
	}
	maxRate, maxCrash := 1.0, uint64(1)
	for _, p := range pts {
		maxRate = max(maxRate, p.rate)
		maxCrash = max(maxCrash, p.crashes)
	}
	step := (chartW - 2*chartPad) / float64(max(len(pts)-1, 1))
	var b strings.Builder
	for i, p := range pts {
		x := chartPad + float64(i)*step
		y := chartH - chartPad - (chartH-2*chartPad)*p.rate/(maxRate*1.15) // headroom above the peak
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		if p.crashes > 0 {
			hgt := (chartH / 3) * float64(p.crashes) / float64(maxCrash)
			c.Crashes = append(c.Crashes, crashMark{X: x - 2, Y: chartH - chartPad - hgt, H: hgt, N: p.crashes})
		}
	}
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
	Interval int  // refresh interval in milliseconds
	Fragment bool // rendering the live part for the page's refresh
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
	fmt.Fprintln(tw, "INSTANCE\tLIFE\tSTATE\tUPTIME\tREQ/S\tREQUESTS\tIN FLIGHT\tCONNS\tRESTARTS\tCRASHES\tLAST CRASH")
	for _, in := range snap.Instances {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%s\n", in.Number, in.Life, in.State,
			uptime(in.UptimeSeconds), in.RequestsPerSecond, in.Requests, in.InFlight, in.Connections,
			in.Restarts, in.Crashes, oneLine(in.LastCrash, 60))
	}
	_ = tw.Flush()
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
details pre { white-space: pre-wrap; font-size: 12px; max-width: 60em; }
</style>
</head>
<body>
<div id="live">{{template "live" .}}</div>
<script>
(function () {
  var live = document.getElementById("live");
  setInterval(function () {
    fetch(location.pathname + "?fragment=1", {headers: {Accept: "text/html"}, cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { live.innerHTML = html; })
      .catch(function () {});
  }, {{.Interval}});
})();
</script>
</body>
</html>
{{define "live"}}
<h1>{{.App}}</h1>
<div class="sub">{{.Snap.Serving}} of {{.Snap.Wanted}} instances serving ·
{{if .Ready}}<span class="bad" id="ready">not ready: {{.Ready}}</span>{{else}}<span class="ok" id="ready">ready</span>{{end}}
{{if .Snap.Reloading}} · reloading{{end}} · <span id="rendered" data-by="{{if .Fragment}}refresh{{else}}page{{end}}">{{.Now}}</span></div>
<div class="legend"><span class="req">&#9644; requests/s (max {{.Chart.MaxRate}})</span><span class="crash">&#9646; crashes</span>{{if .Chart.Span}}<span>last {{.Chart.Span}}</span>{{end}}</div>
<svg id="chart" width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img" aria-label="requests and crashes over the last minutes">
{{if .Chart.Empty}}<text x="12" y="24" fill="#5a6473">collecting samples…</text>{{end}}
{{if .Chart.Requests}}<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{{.Chart.Requests}}"/>{{end}}
{{range .Chart.Crashes}}<rect x="{{.X}}" y="{{.Y}}" width="4" height="{{.H}}" fill="#b3261e"><title>{{.N}} crash(es)</title></rect>{{end}}
</svg>
<table id="instances">
<thead><tr><th>#</th><th>life</th><th class="l">state</th><th>uptime</th><th>req/s</th><th>requests</th><th>in flight</th><th>conns</th><th>restarts</th><th>crashes</th><th class="l">last crash</th></tr></thead>
<tbody>
{{range .Snap.Instances}}<tr data-instance="{{.Number}}">
<td>{{.Number}}</td><td>{{.Life}}</td><td class="l state-{{.State}}">{{.State}}</td><td>{{uptime .UptimeSeconds}}</td><td>{{rate .RequestsPerSecond}}</td><td>{{.Requests}}</td><td>{{.InFlight}}</td><td>{{.Connections}}</td><td>{{.Restarts}}</td><td>{{.Crashes}}</td>
<td class="l">{{if .LastCrash}}<details><summary>{{oneLine .LastCrash 60}}</summary>{{if .LastCrashStack}}<pre>{{.LastCrashStack}}</pre>{{end}}</details>{{else}}-{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{end}}`))
