package production

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/pubsub"
)

// adminState is the admin listener of one Run and what feeds it: the
// Prometheus registry (always there, so that apps can register their
// collectors), and, with --admin-address, the runner's metrics and the HTTP
// server. What it shows of the instances is Runner.Stats, read when asked;
// the events move the counters and say when the last reload finished.
type adminState struct {
	rs  *runState
	reg *prometheus.Registry
	red redactor    // the secrets of the command line
	m   *runMetrics // nil without --admin-address: no per-request cost

	build       admin.BuildInfo
	startedAt   time.Time
	generation  int
	lastUpgrade time.Time // when a binary upgrade started this process

	mu         sync.Mutex
	lastReload time.Time // EventReloadFinished

	srv    *admin.Server
	ln     net.Listener // --admin-address
	sock   net.Listener // --admin-socket
	served chan struct{}
}

// AdminSocket returns the path of the admin listener's Unix socket, or ""
// when there is none (no --admin-socket, or before Run has bound it).
func (r *Runner) AdminSocket() string {
	if a := r.admin.Load(); a != nil && a.sock != nil {
		return a.sock.Addr().String()
	}
	return ""
}

// AdminAddr returns the address the admin listener is bound to, or nil when
// there is none (no --admin-address, or before Run has bound it).
func (r *Runner) AdminAddr() net.Addr {
	if a := r.admin.Load(); a != nil && a.ln != nil {
		return a.ln.Addr()
	}
	return nil
}

// validateAdmin checks --metrics-buckets, --admin-socket, --admin-address
// and --admin-token (from Validate).
func (c *Config) validateAdmin() error {
	for i, b := range c.MetricsBuckets {
		if b <= 0 || (i > 0 && b <= c.MetricsBuckets[i-1]) {
			return fmt.Errorf("--metrics-buckets %v: want positive durations in increasing order, e.g. 100us,1ms,10ms,100ms,1s", c.MetricsBuckets)
		}
	}
	if c.AdminSocket != "" {
		if err := c.validateAdminSocket(); err != nil {
			return err
		}
	}
	if c.AdminAddress == "" {
		if c.AdminSocket == "" && (c.AdminToken != "" || c.Pprof || len(c.AdminHosts) > 0) {
			return errors.New("--admin-token, --admin-host and --pprof need --admin-address HOST:PORT or --admin-socket PATH")
		}
		return nil
	}
	return c.validateAdminAddress()
}

// validateAdminAddress checks --admin-address: HOST:PORT, and a token
// unless it listens on loopback only.
func (c *Config) validateAdminAddress() error {
	host, port, err := net.SplitHostPort(c.AdminAddress)
	if err != nil {
		return fmt.Errorf("--admin-address %q: want HOST:PORT, e.g. 127.0.0.1:9090: %w", c.AdminAddress, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--admin-address %q: the port must be a number in 0..65535", c.AdminAddress)
	}
	if !isLoopback(host) && c.AdminToken == "" {
		return fmt.Errorf("--admin-address %q is not a loopback address: give --admin-token too (clients then send \"Authorization: Bearer TOKEN\"), or listen on 127.0.0.1", c.AdminAddress)
	}
	return nil
}

// isLoopback: host is "localhost" or a loopback IP ("" means every interface).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tcpNetwork returns the network to listen on address HOST:PORT: an IPv4
// address (0.0.0.0 included) binds IPv4 only and an IPv6 address IPv6 only,
// as -a/--address does (Go's "tcp" binds 0.0.0.0 on both); a host name
// binds whatever it resolves to.
func tcpNetwork(address string) string {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return "tcp"
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return "tcp"
	case ip.Unmap().Is4():
		return "tcp4"
	}
	return "tcp6"
}

// startAdmin provides the prometheus.Registerer in the runner's container
// and, with --admin-address, registers the metrics, hooks the event stream
// and the logger, binds the admin listener and serves it.
func (rs *runState) startAdmin() error {
	a := &adminState{rs: rs, reg: prometheus.NewRegistry(), red: newRedactor(rs.cfg.secrets()),
		build: buildInfo(), startedAt: rs.clock.Now()}
	d := rs.r.sys.Load()
	child := d != nil && d.child
	a.generation = upgradeGeneration(child)
	if child {
		a.lastUpgrade = a.startedAt
	}
	if err := errors.Join(
		container.Provide[prometheus.Registerer](rs.root, a.reg),
		container.Provide[prometheus.Gatherer](rs.root, a.reg),
	); err != nil {
		return err
	}
	cfg := rs.cfg
	if cfg.AdminAddress == "" && cfg.AdminSocket == "" {
		rs.r.admin.Store(a)
		return nil
	}
	a.m = newRunMetrics(cfg)
	if err := a.register(); err != nil {
		return fmt.Errorf("registering the metrics: %w", err)
	}
	a.m.zeroRunner()
	for n := range cfg.Concurrency {
		a.m.zeroInstance(strconv.Itoa(n))
	}
	lns, err := a.listen(child)
	if err != nil {
		return err
	}
	rs.r.onEvent(a.onEvent)
	rs.logs.AddHook(logLineCounter{a.m.logLines})
	errLog := log.New(logWriter{rs.entry.WithField("listener", "admin")}, "", 0)
	a.srv = admin.New(admin.Config{
		App:      rs.r.name,
		Control:  adminControl{a},
		Gatherer: a.reg,
		Token:    cfg.AdminToken,
		Pprof:    cfg.Pprof,
		Cmdline:  func() []string { return a.red.redactArgs(os.Args) },
		Hosts:    cfg.AdminHosts,
		Now:      rs.clock.Now, // uptimes against Started, read on the same clock
		ErrorLog: errLog,
	})
	rs.r.admin.Store(a)
	a.serve(lns)
	return nil
}

// listen binds --admin-address (or takes it from the old process of a
// binary upgrade) and --admin-socket.
func (a *adminState) listen(child bool) ([]net.Listener, error) {
	rs, cfg := a.rs, a.rs.cfg
	var lns []net.Listener
	if cfg.AdminAddress != "" {
		ln, err := rs.listenAdmin(func() (net.Listener, error) { // listen_systemd.go: passed on by binary upgrades
			var lc net.ListenConfig
			return lc.Listen(rs.baseCtx, tcpNetwork(cfg.AdminAddress), cfg.AdminAddress)
		})
		if err != nil {
			return nil, fmt.Errorf("cannot listen on --admin-address %s: %w", cfg.AdminAddress, err)
		}
		a.ln = ln
		lns = append(lns, ln)
	}
	if cfg.AdminSocket != "" {
		ln, err := listenAdminSocket(rs.baseCtx, rs.r.adminSocketPath(cfg.AdminSocket), cfg.adminSocketMode(), child)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		a.sock = ln
		lns = append(lns, ln)
	}
	return lns, nil
}

// serve serves the admin listeners until stopAdmin; a.served is closed
// once every one has returned.
func (a *adminState) serve(lns []net.Listener) {
	rs := a.rs
	a.served = make(chan struct{})
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() {
			if err := a.srv.Serve(ln); err != nil {
				rs.entry.WithError(err).Error("The admin listener failed")
			}
		})
		if ln.Addr().Network() == "unix" {
			rs.entry.Infof("Admin listener at unix:%s (metrics at /metrics)", ln.Addr())
		} else {
			rs.entry.Infof("Admin listener at http://%s (metrics at /metrics)", ln.Addr())
		}
	}
	go func() {
		wg.Wait()
		close(a.served)
	}()
}

// stopAdmin stops the admin listener (deferred by run, so it answers until
// every instance has stopped).
func (rs *runState) stopAdmin() {
	a := rs.r.admin.Load()
	if a == nil || a.srv == nil {
		return
	}
	ctx, cancel := withDeadline(context.Background(), rs.clock, rs.clock.Now().Add(rs.cfg.DrainTimeout))
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		rs.entry.WithError(err).Warn("Stopping the admin listener")
	}
	<-a.served
}

// onEvent moves the metrics (see docs/ADMIN.md for the table of events and
// metrics).
func (a *adminState) onEvent(ev Event) {
	if ev.Instance < 0 {
		a.onRunnerEvent(ev)
		return
	}
	inst := strconv.Itoa(ev.Instance)
	// An instance's series exist at 0 before its first event counts (a
	// no-op once they do).
	a.m.zeroInstance(inst)
	a.onInstanceEvent(ev, inst)
}

// onInstanceEvent moves the metrics of one instance.
func (a *adminState) onInstanceEvent(ev Event, inst string) {
	m := a.m
	switch ev.Kind {
	case EventStarted:
		m.lives.WithLabelValues(inst).Inc()
		m.backoff.WithLabelValues(inst).Set(0)
	case EventEnded:
		if ev.Cause != CauseNone {
			m.crashes.WithLabelValues(inst, ev.Cause.String()).Inc()
		}
	case EventRespawning:
		m.respawns.WithLabelValues(inst).Inc()
		if ev.Delay > 0 {
			m.backoff.WithLabelValues(inst).Set(1)
		}
	case EventGaveUp:
		m.giveUps.WithLabelValues(inst).Inc()
		m.backoff.WithLabelValues(inst).Set(0)
	case EventStopped:
		m.drained.WithLabelValues(inst).Inc()
	case EventRecycled:
		m.recycles.WithLabelValues(inst).Inc()
	case EventHung:
		m.hung.WithLabelValues(inst).Inc()
	case EventAbandoned:
		m.abandoned.WithLabelValues(inst).Add(float64(max(ev.Count, 1)))
	default:
		a.onRunnerEvent(ev)
	}
}

// onRunnerEvent moves the metrics of the runner as a whole.
func (a *adminState) onRunnerEvent(ev Event) {
	m := a.m
	switch ev.Kind {
	case EventAcceptError:
		m.acceptErrors.Inc()
	case EventReloadStarted:
		m.reloading.Set(1)
	case EventReloadFinished, EventReloadAborted:
		outcome := "aborted"
		if ev.Kind == EventReloadFinished {
			outcome = "finished"
			a.mu.Lock()
			a.lastReload = ev.Time
			a.mu.Unlock()
		}
		m.reloading.Set(0)
		m.reloads.WithLabelValues(outcome).Inc()
	case EventScaled:
		m.scales.Inc()
		// Scaling up takes the lowest free numbers: their series exist at 0
		// from now on, before a crash of their first life can reach them.
		for n := range ev.Count {
			m.zeroInstance(strconv.Itoa(n))
		}
	case EventCrashLoop:
		m.crashLoops.WithLabelValues(strconv.Itoa(ev.Instance)).Inc()
	}
}

// adminControl is the Runner as the admin listener's Control: the runner's
// own verbs, and a snapshot of Stats.
type adminControl struct{ a *adminState }

func (c adminControl) Reload(ctx context.Context) error {
	c.logf("a reload")
	return c.a.rs.r.Reload(ctx)
}

func (c adminControl) Scale(ctx context.Context, n int) error {
	c.logf("scaling to %d instances", n)
	err := c.a.rs.r.Scale(ctx, n)
	if errors.Is(err, ErrTooManyInstances) {
		return fmt.Errorf("%w: %w", admin.ErrRefused, err)
	}
	return err
}

func (c adminControl) Restart(ctx context.Context, n int) error {
	if err := c.check(n); err != nil {
		return err
	}
	c.logf("a restart of instance #%d", n)
	return c.a.rs.r.Restart(ctx, n)
}

func (c adminControl) Drain(ctx context.Context, n int) error {
	if err := c.check(n); err != nil {
		return err
	}
	c.logf("a drain of instance #%d", n)
	return c.a.rs.r.Drain(ctx, n)
}

func (c adminControl) Upgrade(ctx context.Context) error {
	c.logf("a binary upgrade")
	return c.a.rs.r.Upgrade(ctx)
}

// logf logs what the admin listener was asked to do.
func (c adminControl) logf(format string, args ...any) {
	c.a.rs.entry.WithField("listener", "admin").Infof("Admin listener: "+format+" was requested", args...)
}

// check returns an error wrapping admin.ErrNoInstance unless instance n runs.
func (c adminControl) check(n int) error {
	var nums []string
	for _, is := range c.a.rs.r.Stats().Instances {
		if is.Number == n {
			return nil
		}
		nums = append(nums, strconv.Itoa(is.Number))
	}
	return fmt.Errorf("%w: #%d (running: %s)", admin.ErrNoInstance, n, strings.Join(nums, ", "))
}

func (c adminControl) Snapshot() admin.Snapshot {
	a, r := c.a, c.a.rs.r
	s := r.Stats()
	snap := admin.Snapshot{Wanted: s.Wanted, Serving: s.Serving, Reloading: s.Reloading,
		Build: a.build, StartedAt: a.startedAt, Generation: a.generation, LastUpgrade: a.lastUpgrade}
	select {
	case <-r.ready:
		snap.Started = true
	default:
	}
	a.mu.Lock()
	snap.LastReload = a.lastReload
	a.mu.Unlock()
	for _, is := range s.Instances {
		in := admin.Instance{
			Number:         is.Number,
			Life:           is.Life,
			State:          is.State.String(),
			Started:        is.Started,
			Requests:       is.Requests,
			InFlight:       is.InFlight,
			Connections:    is.Connections,
			Restarts:       is.Restarts,
			Crashes:        is.Crashes,
			Panics:         is.Panics,
			LastCrash:      a.red.String(is.LastCrash),
			LastCrashStack: a.red.String(is.LastCrashStack),
			LastCrashTime:  is.LastCrashTime,
		}
		in.Errors, in.Latency = a.m.answers(strconv.Itoa(is.Number))
		snap.Instances = append(snap.Instances, in)
	}
	return snap
}

// instLabel is the label of the instance number on the runner's metrics:
// not "instance" (nor "job"), which are the Prometheus server's target
// labels (a series of ours with "instance" arrives as "exported_instance").
const instLabel = "goangel_instance"

// The values of the labels of fixed sets, each series exposed at 0 from the
// start so that increase() counts the first event.
var (
	codeClasses    = []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}
	reloadOutcomes = []string{"finished", "aborted"}
)

// zeroInstance exposes every per-instance series of instance inst at 0
// (a no-op for those that already exist).
func (m *runMetrics) zeroInstance(inst string) {
	for _, v := range []*prometheus.CounterVec{m.lives, m.respawns, m.giveUps, m.drained, m.recycles, m.hung, m.abandoned, m.crashLoops, m.connsAccepted} {
		v.WithLabelValues(inst)
	}
	for _, c := range crashCauses {
		m.crashes.WithLabelValues(inst, c.String())
	}
	for _, c := range codeClasses {
		m.requests.WithLabelValues(inst, c)
	}
	m.backoff.WithLabelValues(inst)
	m.duration.WithLabelValues(inst)
}

// zeroRunner exposes the series without an instance label at 0.
func (m *runMetrics) zeroRunner() {
	for _, o := range reloadOutcomes {
		m.reloads.WithLabelValues(o)
	}
	for _, l := range logrus.AllLevels {
		m.logLines.WithLabelValues(l.String())
	}
}

// answers returns instance inst's 5xx answers and its cumulative
// request-duration histogram (for the status page and /instances).
func (m *runMetrics) answers(inst string) (errors uint64, h admin.Histogram) {
	var pb dto.Metric
	if c, ok := m.requests.WithLabelValues(inst, "5xx").(prometheus.Metric); ok && c.Write(&pb) == nil {
		errors = uint64(pb.GetCounter().GetValue())
	}
	pb.Reset()
	if o, ok := m.duration.WithLabelValues(inst).(prometheus.Metric); ok && o.Write(&pb) == nil {
		hist := pb.GetHistogram()
		h.Count = hist.GetSampleCount()
		for _, b := range hist.GetBucket() {
			h.Bounds = append(h.Bounds, b.GetUpperBound())
			h.Counts = append(h.Counts, b.GetCumulativeCount())
		}
	}
	return errors, h
}

// runMetrics are the runner's own metrics (names: docs/ADMIN.md).
type runMetrics struct {
	lives, respawns, giveUps, drained, recycles, hung, abandoned, crashLoops *prometheus.CounterVec
	crashes, reloads, requests, connsAccepted, logLines                      *prometheus.CounterVec
	backoff                                                                  *prometheus.GaugeVec
	duration                                                                 *prometheus.HistogramVec
	acceptErrors, scales                                                     prometheus.Counter
	reloading                                                                prometheus.Gauge
}

// defaultBuckets are the request-duration histogram's bucket bounds
// without --metrics-buckets: 5µs doubling to 10.5s, so that a quantile read
// from them is within 2x of the truth anywhere in that range.
var defaultBuckets = prometheus.ExponentialBuckets(5e-6, 2, 22)

// durationOpts are the options of the request-duration histogram.
func durationOpts(cfg *Config) prometheus.HistogramOpts {
	o := prometheus.HistogramOpts{
		Name: "goangel_http_request_duration_seconds", Help: "Time from the start of a request to the end of its handler.",
		Buckets: defaultBuckets,
	}
	if len(cfg.MetricsBuckets) > 0 {
		o.Buckets = make([]float64, len(cfg.MetricsBuckets))
		for i, b := range cfg.MetricsBuckets {
			o.Buckets[i] = b.Seconds()
		}
	}
	if cfg.NativeHistograms {
		o.NativeHistogramBucketFactor = 1.1
		o.NativeHistogramMaxBucketNumber = 160
		o.NativeHistogramMinResetDuration = time.Hour
		o.NativeHistogramZeroThreshold = 1e-7 // 100ns
	}
	return o
}

func newRunMetrics(cfg *Config) *runMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "goangel_" + name, Help: help}, labels)
	}
	return &runMetrics{
		lives:         counter("lives_started_total", "Lives of an instance that configured and served.", instLabel),
		crashes:       counter("crashes_total", "Lives ended by a crash, by cause (panic, crash, error, configure).", instLabel, "cause"),
		respawns:      counter("respawns_total", "Respawns of a crashed instance.", instLabel),
		giveUps:       counter("give_ups_total", "Instances that exceeded the restart intensity.", instLabel),
		drained:       counter("lives_drained_total", "Ended lives that drained and released everything.", instLabel),
		recycles:      counter("recycles_total", "Lives replaced after serving their share of requests.", instLabel),
		hung:          counter("hung_instances_total", "Lives found hung and replaced.", instLabel),
		abandoned:     counter("abandoned_goroutines_total", "Goroutines left behind by replaced lives.", instLabel),
		crashLoops:    counter("crash_loops_total", "Crash loops detected.", instLabel),
		reloads:       counter("reloads_total", "Rolling reloads, by outcome (finished, aborted).", "outcome"),
		requests:      counter("http_requests_total", "HTTP requests answered, by status class (1xx … 5xx).", instLabel, "code"),
		connsAccepted: counter("http_connections_accepted_total", "Connections handed to the instance by the shared listener.", instLabel),
		logLines:      counter("log_lines_total", "Log lines written by the runner's logger, by level.", "level"),
		backoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "goangel_restart_backoff", Help: "1 while the instance waits for its restart backoff.",
		}, []string{instLabel}),
		duration:     prometheus.NewHistogramVec(durationOpts(cfg), []string{instLabel}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "goangel_accept_errors_total", Help: "Accept errors on the shared socket that the acceptor survived."}),
		scales:       prometheus.NewCounter(prometheus.CounterOpts{Name: "goangel_scales_total", Help: "Changes of the number of instances."}),
		reloading:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "goangel_reload_in_progress", Help: "1 while a rolling reload runs."}),
	}
}

func (a *adminState) register() error {
	m := a.m
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.lives, m.crashes, m.respawns, m.giveUps, m.drained, m.recycles, m.hung, m.abandoned, m.crashLoops,
		m.reloads, m.requests, m.connsAccepted, m.logLines, m.backoff, m.duration, m.acceptErrors, m.scales, m.reloading,
		runnerCollector{a}, infoCollector{a},
	}
	if b, ok := a.rs.broker.(interface{ Stats() pubsub.Stats }); ok {
		stat := func(name, help string, f func(pubsub.Stats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "goangel_pubsub_" + name, Help: help},
				func() float64 { return float64(f(b.Stats())) })
		}
		cs = append(cs,
			stat("published_total", "Messages published.", func(s pubsub.Stats) uint64 { return s.Published }),
			stat("delivered_total", "Messages handed to subscription queues.", func(s pubsub.Stats) uint64 { return s.Delivered }),
			stat("dropped_total", "Messages dropped by subscription overflow policies.", func(s pubsub.Stats) uint64 { return s.Dropped }),
			stat("retain_rejected_total", "Retained publishes delivered but not retained.", func(s pubsub.Stats) uint64 { return s.RetainRejected }),
			stat("retain_load_failed_total", "Subscriptions that started without their retained messages (NATS: the stream did not answer); they get them when it does.", func(s pubsub.Stats) uint64 { return s.RetainLoadFailed }),
			stat("slow_consumer_episodes_total", "Times a pub/sub subscription's queue became full (once per episode).", func(s pubsub.Stats) uint64 { return s.SlowConsumers }),
		)
	}
	if b, ok := a.rs.broker.(interface{ TopicStats() []pubsub.TopicStats }); ok {
		cs = append(cs, topicCollector{b})
	}
	var errs []error
	for _, c := range cs {
		errs = append(errs, a.reg.Register(c))
	}
	return errors.Join(errs...)
}

// The per-topic counters of --pubsub-metrics-topics, by pattern.
var (
	descTopicPublished = prometheus.NewDesc("goangel_pubsub_topic_published_total", "Messages published to a topic the pattern matches (--pubsub-metrics-topics).", []string{"pattern"}, nil)
	descTopicDelivered = prometheus.NewDesc("goangel_pubsub_topic_delivered_total", "Messages of a topic the pattern matches handed to subscription queues.", []string{"pattern"}, nil)
	descTopicDropped   = prometheus.NewDesc("goangel_pubsub_topic_dropped_total", "Messages of a topic the pattern matches dropped by subscription overflow policies.", []string{"pattern"}, nil)
	descTopicSlow      = prometheus.NewDesc("goangel_pubsub_topic_slow_consumer_episodes_total", "Slow-consumer episodes begun by a message of a topic the pattern matches.", []string{"pattern"}, nil)
)

// topicCollector reads the broker's TopicStats at scrape time: one series
// per pattern of --pubsub-metrics-topics, none without the flag.
type topicCollector struct {
	b interface{ TopicStats() []pubsub.TopicStats }
}

func (topicCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTopicPublished, descTopicDelivered, descTopicDropped, descTopicSlow} {
		ch <- d
	}
}

func (c topicCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.b.TopicStats() {
		ch <- prometheus.MustNewConstMetric(descTopicPublished, prometheus.CounterValue, float64(s.Published), s.Pattern)
		ch <- prometheus.MustNewConstMetric(descTopicDelivered, prometheus.CounterValue, float64(s.Delivered), s.Pattern)
		ch <- prometheus.MustNewConstMetric(descTopicDropped, prometheus.CounterValue, float64(s.Dropped), s.Pattern)
		ch <- prometheus.MustNewConstMetric(descTopicSlow, prometheus.CounterValue, float64(s.SlowConsumer), s.Pattern)
	}
}

// runnerCollector reads Runner.Stats at scrape time.
type runnerCollector struct{ a *adminState }

var (
	descWanted   = prometheus.NewDesc("goangel_instances_wanted", "Instances the runner keeps.", nil, nil)
	descServing  = prometheus.NewDesc("goangel_instances_serving", "Instances whose life serves.", nil, nil)
	descPanics   = prometheus.NewDesc("goangel_handler_panics_total", "Handler panics recovered (answered 500).", []string{instLabel}, nil)
	descInFlight = prometheus.NewDesc("goangel_http_requests_in_flight", "Requests being handled.", []string{instLabel}, nil)
	descConns    = prometheus.NewDesc("goangel_http_connections_open", "Open connections.", []string{instLabel}, nil)
	descWErrors  = prometheus.NewDesc("goangel_log_write_errors_total", "Writes to the log files that failed (those lines are lost).", []string{"log"}, nil)
)

func (runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWanted, descServing, descPanics, descInFlight, descConns, descWErrors} {
		ch <- d
	}
}

func (c runnerCollector) Collect(ch chan<- prometheus.Metric) {
	snap := adminControl(c).Snapshot()
	ch <- prometheus.MustNewConstMetric(descWanted, prometheus.GaugeValue, float64(snap.Wanted))
	ch <- prometheus.MustNewConstMetric(descServing, prometheus.GaugeValue, float64(snap.Serving))
	for _, in := range snap.Instances {
		n := strconv.Itoa(in.Number)
		ch <- prometheus.MustNewConstMetric(descPanics, prometheus.CounterValue, float64(in.Panics), n)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(in.InFlight), n)
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(in.Connections), n)
	}
	logs := c.a.rs.logs
	if logs.File != nil {
		ch <- prometheus.MustNewConstMetric(descWErrors, prometheus.CounterValue, float64(logs.File.Stats().WriteErrors), "main")
	}
	if logs.AccessFile != nil {
		ch <- prometheus.MustNewConstMetric(descWErrors, prometheus.CounterValue, float64(logs.AccessFile.Stats().WriteErrors), "access")
	}
}

// logLineCounter counts the lines of the runner's logger by level.
type logLineCounter struct{ lines *prometheus.CounterVec }

func (logLineCounter) Levels() []logrus.Level { return logrus.AllLevels }

func (h logLineCounter) Fire(e *logrus.Entry) error {
	h.lines.WithLabelValues(e.Level.String()).Inc()
	return nil
}
