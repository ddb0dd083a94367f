package admin

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Control is what the admin listener needs from the runner: its verbs and a
// view of its instances. Every method must be safe for concurrent use.
type Control interface {
	// Snapshot returns the current state of the runner and its instances.
	Snapshot() Snapshot
	// Reload replaces every instance's life, rolling and surge-first.
	Reload(ctx context.Context) error
	// Scale sets the number of instances (n >= 1).
	Scale(ctx context.Context, n int) error
	// Restart replaces one instance's life, surge-first.
	Restart(ctx context.Context, instance int) error
	// Drain takes one instance out of the rotation, drains and removes it.
	Drain(ctx context.Context, instance int) error
	// Upgrade replaces the process by a new one of the binary on disk
	// (a binary upgrade), returning once the new one serves.
	Upgrade(ctx context.Context) error
}

// ErrNoInstance is what Control's Restart and Drain return (wrapped) for an
// instance number that does not exist; the API answers 404.
var ErrNoInstance = errors.New("admin: no such instance")

// ErrRefused is what Control's verbs return (wrapped) for a request the
// runner will not carry out as asked (a Scale beyond --max-instances); the
// API answers 400 with the reason.
var ErrRefused = errors.New("admin: refused")

// Snapshot is the state of the runner at one moment.
type Snapshot struct {
	// PID is the process's (filled by the server): after a binary upgrade,
	// the new process answers with its own.
	PID   int       `json:"pid"`
	Build BuildInfo `json:"build"`
	// StartedAt is when the runner started; UptimeSeconds the time since
	// (filled by the server).
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// LastReload is when the last rolling reload finished (zero: none).
	LastReload time.Time `json:"last_reload,omitzero"`
	// Generation counts the binary upgrades that led to this process (0:
	// started fresh); LastUpgrade is when this process was started by one.
	Generation  int       `json:"generation"`
	LastUpgrade time.Time `json:"last_upgrade,omitzero"`
	// Started: every instance's first life came up (the runner is ready).
	Started bool `json:"started"`
	// Wanted is the number of instances the runner keeps; Serving the number
	// of them whose life serves.
	Wanted  int `json:"wanted"`
	Serving int `json:"serving"`
	// Reloading: a rolling reload is under way.
	Reloading bool       `json:"reloading"`
	Instances []Instance `json:"instances"`
}

// Instance is one instance in a Snapshot.
type Instance struct {
	Number int    `json:"number"`
	Life   int    `json:"life"`
	State  string `json:"state"` // starting, serving, draining, backoff, stopped
	// Started is when the current life started (zero: none yet).
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"` // filled by the server
	Requests      uint64    `json:"requests"`
	// RequestsPerSecond is the rate over the last sampling interval
	// (filled by the server).
	RequestsPerSecond float64 `json:"requests_per_second"`
	// Errors counts the answers with a 5xx status; ErrorRate is their share
	// of the answers over the last sampling interval (filled by the server).
	Errors    uint64  `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	// LatencyP50Seconds and LatencyP99Seconds are the median and 99th
	// percentile of the request durations over the last sampling interval
	// (filled by the server from Latency; over the whole run before the
	// first interval).
	LatencyP50Seconds float64 `json:"latency_p50_seconds"`
	LatencyP99Seconds float64 `json:"latency_p99_seconds"`
	// Latency is the cumulative histogram of the request durations.
	Latency     Histogram `json:"-"`
	InFlight    int64     `json:"in_flight"`
	Connections int64     `json:"connections"`
	Restarts    uint64    `json:"restarts"`
	Crashes     uint64    `json:"crashes"`
	Panics      uint64    `json:"panics"`
	LastCrash   string    `json:"last_crash,omitempty"`
	// LastCrashTime is when the last crash ended a life (zero: none).
	LastCrashTime  time.Time `json:"last_crash_time,omitzero"`
	LastCrashStack string    `json:"last_crash_stack,omitempty"`
}

// BuildInfo is the running binary (runtime/debug.ReadBuildInfo).
type BuildInfo struct {
	Version   string `json:"version"`   // the main module's version, "(devel)" for a local build
	Revision  string `json:"revision"`  // the VCS revision, with "-dirty" for modified sources ("" unknown)
	GoVersion string `json:"goversion"` // the Go toolchain
}

// Config configures a Server.
type Config struct {
	// App is the app's name, shown on the status page.
	App string
	// Control is the runner (required).
	Control Control
	// Gatherer serves /metrics; nil answers 404 there.
	Gatherer prometheus.Gatherer
	// Token, when set, is required (bearer, or basic-auth password) by
	// every endpoint but /healthz and /readyz.
	Token string
	// Pprof serves /debug/pprof/.
	Pprof bool
	// Cmdline returns the command line /debug/pprof/cmdline shows, its
	// secrets redacted (nil: os.Args as it is).
	Cmdline func() []string
	// Hosts are the host names, beside IP addresses and localhost, that
	// requests may name in their Host header (DNS rebinding: a page on a
	// name the attacker controls, resolved to the listener's address).
	Hosts []string
	// SampleEvery is the interval of the status page's history (default
	// 5s); History the number of samples kept (default 60).
	SampleEvery time.Duration
	History     int
	// HealthTimeout bounds how long /healthz waits for a Snapshot (default 2s).
	HealthTimeout time.Duration
	// Now replaces time.Now (tests).
	Now func() time.Time
	// ErrorLog receives the http.Server's errors (nil: the standard logger).
	ErrorLog *log.Logger
}

// Server is the admin listener's HTTP server.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler // mux behind guard
	hist    history
	probing chan struct{} // holds a token while a /healthz probe runs

	srv       *http.Server
	stop      chan struct{}
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
}

// New returns a Server; it panics when cfg.Control is nil (a programming error).
func New(cfg Config) *Server {
	if cfg.Control == nil {
		panic("admin: New with a nil Control")
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 60
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), probing: make(chan struct{}, 1), stop: make(chan struct{})}
	s.hist.max = cfg.History
	s.routes()
	s.handler = s.guard(s.mux)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          cfg.ErrorLog,
	}
	return s
}

func (s *Server) routes() {
	open := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, h) }
	guarded := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.auth(h)) }
	open("GET /healthz", s.healthz)
	open("GET /readyz", s.readyz)
	guarded("GET /{$}", s.status)
	guarded("GET /instances", s.instances)
	guarded("POST /instances/{n}/restart", s.restart)
	guarded("POST /instances/{n}/drain", s.drain)
	guarded("POST /scale", s.scale)
	guarded("POST /reload", s.reload)
	guarded("POST /upgrade", s.upgrade)
	if s.cfg.Gatherer != nil {
		h := promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: s.cfg.ErrorLog})
		guarded("GET /metrics", h.ServeHTTP)
	}
	if s.cfg.Pprof {
		s.pprofRoutes(guarded)
	}
}

// ServeHTTP serves the admin API (what Serve serves).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Serve serves on ln until Shutdown, and samples the history (from the
// first call on); it returns nil after Shutdown. It may be called for
// several listeners (a TCP address and a Unix socket), each in its own
// goroutine.
func (s *Server) Serve(ln net.Listener) error {
	s.startOnce.Do(func() {
		s.wg.Add(1)
		go s.sampleLoop()
	})
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the server (waiting for requests in flight until ctx ends)
// and the sampler.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		if err = s.srv.Shutdown(ctx); err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		s.wg.Wait()
	})
	return err
}

func (s *Server) sampleLoop() {
	defer s.wg.Done()
	s.Sample()
	t := time.NewTicker(s.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sample()
		}
	}
}

// Sample records one point of the status page's history (Serve calls it
// every SampleEvery; tests call it directly).
func (s *Server) Sample() { s.hist.add(s.cfg.Now(), s.cfg.Control.Snapshot()) }

// auth requires the token, when one is set.
func (s *Server) auth(h http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare(tokenOf(r), want) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("WWW-Authenticate", `Bearer realm="goangel admin"`)
		w.Header().Add("WWW-Authenticate", `Basic realm="goangel admin"`)
		writeError(w, http.StatusUnauthorized, "this admin listener needs its token: send \"Authorization: Bearer TOKEN\" (the value of --admin-token)")
	})
}

// tokenOf returns the bearer token or the basic-auth password of r.
func tokenOf(r *http.Request) []byte {
	h := r.Header.Get("Authorization")
	scheme, value, ok := strings.Cut(h, " ")
	if !ok {
		return nil
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		return []byte(strings.TrimSpace(value))
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
		if err != nil {
			return nil
		}
		_, pass, _ := strings.Cut(string(raw), ":")
		return []byte(pass)
	}
	return nil
}

// healthz answers 200 when the runner answers a Snapshot within
// HealthTimeout. At most one probe waits on the runner at a time: while one
// is stuck, others fail at once instead of piling up goroutines.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	select {
	case s.probing <- struct{}{}:
	default:
		writeError(w, http.StatusServiceUnavailable, "the runner has not answered the previous health probe yet")
		return
	}
	answered := make(chan struct{})
	go func() {
		s.cfg.Control.Snapshot()
		<-s.probing // free before answering: the next probe may start at once
		close(answered)
	}()
	t := time.NewTimer(s.cfg.HealthTimeout)
	defer t.Stop()
	select {
	case <-answered:
		writeText(w, http.StatusOK, "ok")
	case <-t.C:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the runner did not answer within %v", s.cfg.HealthTimeout))
	case <-r.Context().Done():
	}
}

// NotReady returns why snap is not ready to serve, or "".
func NotReady(snap Snapshot) string {
	var reasons []string
	if !snap.Started {
		reasons = append(reasons, "the runner is starting")
	}
	if snap.Reloading {
		reasons = append(reasons, "a reload is in progress")
	}
	if snap.Serving < snap.Wanted {
		reasons = append(reasons, fmt.Sprintf("%d of %d wanted instances serve", snap.Serving, snap.Wanted))
	}
	for _, in := range snap.Instances {
		if in.State != "serving" && in.State != "stopped" {
			reasons = append(reasons, fmt.Sprintf("instance #%d is %s", in.Number, in.State))
		}
	}
	return strings.Join(reasons, "; ")
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if why := NotReady(s.cfg.Control.Snapshot()); why != "" {
		writeError(w, http.StatusServiceUnavailable, "not ready: "+why)
		return
	}
	writeText(w, http.StatusOK, "ready")
}

// snapshot is Control.Snapshot with the fields the server computes.
func (s *Server) snapshot() Snapshot {
	snap := s.cfg.Control.Snapshot()
	snap.PID = os.Getpid()
	now := s.cfg.Now()
	if !snap.StartedAt.IsZero() {
		snap.UptimeSeconds = now.Sub(snap.StartedAt).Seconds()
	}
	windows := s.hist.windows()
	for i := range snap.Instances {
		in := &snap.Instances[i]
		if !in.Started.IsZero() && in.State == "serving" {
			in.UptimeSeconds = now.Sub(in.Started).Seconds()
		}
		w, ok := windows[in.Number]
		if !ok { // no interval yet: the whole run
			w.p50, w.p99 = in.Latency.Quantile(0.5), in.Latency.Quantile(0.99)
			if in.Requests > 0 {
				w.errorRate = float64(in.Errors) / float64(in.Requests)
			}
		}
		in.RequestsPerSecond, in.ErrorRate = w.rate, w.errorRate
		in.LatencyP50Seconds, in.LatencyP99Seconds = w.p50, w.p99
	}
	return snap
}

func (s *Server) instances(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshot())
}

// instanceArg parses the {n} of the path; it answers 400 and returns false
// when it is not a number.
func instanceArg(w http.ResponseWriter, r *http.Request) (int, bool) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("instance %q: want an instance number (0, 1, ...; see GET /instances)", r.PathValue("n")))
		return 0, false
	}
	return n, true
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) {
	if n, ok := instanceArg(w, r); ok {
		s.verb(w, fmt.Sprintf("restarted instance #%d", n), s.cfg.Control.Restart(r.Context(), n))
	}
}

func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if n, ok := instanceArg(w, r); ok {
		s.verb(w, fmt.Sprintf("drained instance #%d", n), s.cfg.Control.Drain(r.Context(), n))
	}
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) {
	arg := r.URL.Query().Get("n")
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("scale: n=%q: want the number of instances, at least 1 (POST /scale?n=4)", arg))
		return
	}
	s.verb(w, fmt.Sprintf("scaled to %d instances", n), s.cfg.Control.Scale(r.Context(), n))
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	s.verb(w, "reloaded", s.cfg.Control.Reload(r.Context()))
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	err := s.cfg.Control.Upgrade(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// This process hands over and drains: its snapshot is no longer the
	// service's.
	writeJSON(w, http.StatusOK, struct {
		Result string `json:"result"`
	}{"upgraded: a new process serves; this one drains and exits"})
}

// verb answers a state change: 200 with the new snapshot, 404 for an
// unknown instance, 400 for a refused request, 500 with the error otherwise.
func (s *Server) verb(w http.ResponseWriter, done string, err error) {
	switch {
	case errors.Is(err, ErrNoInstance):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrRefused):
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, struct {
			Result string   `json:"result"`
			State  Snapshot `json:"state"`
		}{done, s.snapshot()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

// writeError answers JSON {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
