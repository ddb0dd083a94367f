package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/goangel/angel/container"
	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
	"github.com/goangel/angel/pubsub"
)

// fresh is a client that opens a connection per request.
func fresh() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// cluster is a NATS cluster with JetStream inside the test process: every
// node on 127.0.0.1, its ports chosen by the system at first start and
// kept when it is started again (its store too).
type cluster struct {
	t     testing.TB
	nodes []*node
}

type node struct {
	name        string
	dir         string
	port, route int // client and cluster ports, once started
	s           *server.Server
}

func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	c := &cluster{t: t}
	// JetStream in a cluster wants its routes configured: the route ports
	// are taken from the system first.
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		route := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), port: -1, route: route})
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	for _, nd := range c.nodes {
		c.ready(nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.Stop(nd)
		}
	})
	c.waitJetStream()
	return c
}

func (c *cluster) start(nd *node) {
	c.t.Helper()
	var routes []*url.URL
	for _, o := range c.nodes {
		if o != nd {
			routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", fmt.Sprint(o.route))})
		}
	}
	opts := &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.port,
		JetStream:  true,
		StoreDir:   nd.dir,
		Cluster:    server.ClusterOpts{Name: "goangel", Host: "127.0.0.1", Port: nd.route},
		Routes:     routes,
		NoLog:      true,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		c.t.Fatalf("nats node %s: %v", nd.name, err)
	}
	s.Start()
	nd.s = s
}

// ready waits until nd takes clients.
func (c *cluster) ready(nd *node) {
	c.t.Helper()
	if !nd.s.ReadyForConnections(20 * time.Second) {
		c.t.Fatalf("nats node %s not ready", nd.name)
	}
	nd.port = nd.s.Addr().(*net.TCPAddr).Port
}

// Stop shuts nd down (and waits for it), unless it is down.
func (c *cluster) Stop(nd *node) {
	if nd.s == nil {
		return
	}
	nd.s.Shutdown()
	nd.s.WaitForShutdown()
	nd.s = nil
}

// Restart starts nd again on its ports, with its store.
func (c *cluster) Restart(nd *node) {
	c.t.Helper()
	c.start(nd)
	c.ready(nd)
}

// URL is the comma-separated list of every node's client URL.
func (c *cluster) URL() string {
	var us []string
	for _, nd := range c.nodes {
		us = append(us, fmt.Sprintf("nats://127.0.0.1:%d", nd.port))
	}
	return strings.Join(us, ",")
}

// Node returns the node named name.
func (c *cluster) Node(name string) *node {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// js is a JetStream context on a connection of the test's own.
func (c *cluster) js() jetstream.JetStream {
	c.t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return js
}

// waitJetStream waits until the cluster's JetStream has a meta leader.
func (c *cluster) waitJetStream() {
	c.t.Helper()
	js := c.js()
	testutil.WaitFor(c.t, 20*time.Second, "JetStream cluster ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	// A meta leader answers before every node has joined: a stream asked
	// for then finds too few peers (and auto replicas step down). Wait
	// until the leader knows every other node as current.
	testutil.WaitFor(c.t, 20*time.Second, fmt.Sprintf("every one of the %d JetStream nodes current", len(c.nodes)), func() bool {
		for _, nd := range c.nodes {
			info, err := nd.s.Jsz(nil)
			if err != nil || info.Meta == nil || info.Meta.Leader != nd.name {
				continue
			}
			current := 0
			for _, p := range info.Meta.Replicas {
				if p.Current && !p.Offline {
					current++
				}
			}
			return current == len(c.nodes)-1
		}
		return false
	})
}

// Leader is the name of the node leading stream.
func (c *cluster) Leader(js jetstream.JetStream, stream string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return ""
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		return ""
	}
	return info.Cluster.Leader
}

// clusterApp is the app of TestNATSClusterNodeDeath: each life keeps the
// last greeting (a retained topic) and counts the numbered messages of
// topic "seq" it gets, twice or more being a failure.
type clusterApp struct {
	mu      sync.Mutex
	lives   map[string]*clusterLife // by "instance/life"
	broker  *pubsub.NATS            // the runner's
	started map[string]bool
	failed  []string // lives that ended with an error before they served
	gaveUp  bool
}

type clusterLife struct {
	greeting atomic.Pointer[string]
	retained atomic.Int32 // greetings that came as retained messages
	maxSeq   atomic.Int64
	dups     atomic.Int64
	ended    atomic.Bool
}

func (a *clusterApp) configure(app *production.App) error {
	info := app.Info()
	key := fmt.Sprintf("%d/%d", info.Number, info.Life)
	l := &clusterLife{}
	a.mu.Lock()
	if a.broker == nil {
		b, err := container.Make[pubsub.Broker](app.Container)
		if err != nil {
			a.mu.Unlock()
			return err
		}
		a.broker = b.(*pubsub.NATS)
	}
	a.lives[key] = l
	a.mu.Unlock()
	app.OnDrain(func(context.Context) { l.ended.Store(true) })

	c := app.PubSub()
	greetings, err := pubsub.SubscribeAs[string](app.Context(), c, "greeting", pubsub.WithPolicy(pubsub.DropOldest))
	if err != nil {
		return err
	}
	seqs, err := pubsub.SubscribeAs[int64](app.Context(), c, "seq", pubsub.WithQueueSize(4096))
	if err != nil {
		return err
	}
	app.Go(func(ctx context.Context) error {
		for {
			g, m, err := greetings.Receive(ctx)
			if err != nil {
				return nil
			}
			l.greeting.Store(&g)
			if m.Retained() {
				l.retained.Add(1)
			}
		}
	})
	app.Go(func(ctx context.Context) error {
		seen := map[int64]bool{}
		for {
			n, _, err := seqs.Receive(ctx)
			if err != nil {
				return nil
			}
			if seen[n] {
				l.dups.Add(1)
			}
			seen[n] = true
			if n > l.maxSeq.Load() {
				l.maxSeq.Store(n)
			}
		}
	})
	app.Router.Get("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	app.Router.Get("/crash", func(w http.ResponseWriter, _ *http.Request) {
		app.AfterFunc(0, func() { app.Crash(errors.New("crash requested by the test")) })
		_, _ = io.WriteString(w, "crashing")
	})
	return nil
}

func (a *clusterApp) hook(ev production.Event) {
	key := fmt.Sprintf("%d/%d", ev.Instance, ev.Life)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch ev.Kind {
	case production.EventStarted:
		a.started[key] = true
	case production.EventEnded:
		if ev.Err != nil && !a.started[key] {
			a.failed = append(a.failed, fmt.Sprintf("life %s: %v", key, ev.Err))
		}
	case production.EventGaveUp:
		a.gaveUp = true
	}
}

// serving returns the lives that serve now.
func (a *clusterApp) serving() map[string]*clusterLife {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string]*clusterLife{}
	for k, l := range a.lives {
		if a.started[k] && !l.ended.Load() {
			m[k] = l
		}
	}
	return m
}

// TestNATSClusterNodeDeath: a runner of 4 instances on a 3-node NATS
// cluster with JetStream, under HTTP load, while another process
// publishes numbered messages and retained greetings. The node leading the
// retained messages' stream dies, then the node the runner is connected
// to, then two nodes at once (the stream loses its quorum), each time
// with lives crashing and respawning meanwhile: no HTTP request fails, no
// life fails to start, no instance gets a message twice, and every
// instance ends with the last greeting the stream kept.
func TestNATSClusterNodeDeath(t *testing.T) {
	c := startCluster(t, 3)
	url := c.URL()
	const stream = "GOANGEL_RETAINED_cluster"
	// A stream made with one replica (as before) is updated to three.
	if r := newNATS(t, url, pubsub.WithNamespace("cluster"), pubsub.WithRetainReplicas(1)).RetainReplicas(); r != 1 {
		t.Fatalf("retained stream replicas %d, want 1 as asked", r)
	}
	pb := newNATS(t, url, pubsub.WithNamespace("cluster"), pubsub.WithReconnect(10*time.Millisecond, 0))
	if r := pb.RetainReplicas(); r != 3 {
		t.Fatalf("retained stream replicas %d, want 3 (min(3, 3 nodes))", r)
	}
	pub := register(t, pb, "publisher")
	publishRetained(t, pub, "greeting", "g0")
	var stored atomic.Pointer[string] // the last greeting the stream kept
	g0 := "g0"
	stored.Store(&g0)

	a := &clusterApp{lives: map[string]*clusterLife{}, started: map[string]bool{}}
	run := productiontest.Start(t, "cluster", a.configure, []string{"-j", "4", "--pubsub-url", url}, production.WithEventHook(a.hook))
	hasLast := func(l *clusterLife) bool {
		g := l.greeting.Load()
		return g != nil && *g == *stored.Load()
	}
	testutil.WaitFor(t, wait, "4 instances with greeting g0", func() bool {
		s := a.serving()
		for _, l := range s {
			if !hasLast(l) {
				return false
			}
		}
		return len(s) == 4
	})

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	load := loadclient.Start(ctx, loadclient.Config{Addr: strings.TrimPrefix(run.URL, "http://"), Path: "/", Workers: 4, KeepAlive: true, Body: "ok"})
	// The publisher: numbered messages, every tenth with a retained
	// greeting (paused while the stream has lost its quorum, as a retained
	// publish that is not stored is still delivered live).
	var seq atomic.Int64
	var retainOn atomic.Bool
	var retainMu sync.Mutex // held around a retained publish
	retainOn.Store(true)
	var pubWG sync.WaitGroup
	pubWG.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n := seq.Add(1)
			if _, err := pub.Publish(ctx, "seq", n); err != nil && ctx.Err() == nil {
				t.Errorf("publish %d: %v", n, err)
				return
			}
			retainMu.Lock()
			if n%10 == 0 && retainOn.Load() {
				g := fmt.Sprint("g", n)
				if _, err := pub.Publish(ctx, "greeting", g, pubsub.Retain()); err == nil {
					stored.Store(&g)
				}
			}
			retainMu.Unlock()
		}
	})
	defer pubWG.Wait()
	defer stop()

	crash := func() {
		t.Helper()
		resp, err := fresh().Get(run.URL + "/crash")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	// progress waits until every serving life has got numbered messages
	// published from now on, and the greeting the stream kept last.
	progress := func(what string, within time.Duration) {
		t.Helper()
		from := seq.Load()
		var state string
		defer func() {
			if t.Failed() {
				t.Logf("%s: from message %d, stored %q; %s", what, from, *stored.Load(), state)
			}
		}()
		testutil.WaitFor(t, within, what, func() bool {
			s := a.serving()
			state = ""
			ok := len(s) == 4
			for k, l := range s {
				g := "(none)"
				if p := l.greeting.Load(); p != nil {
					g = *p
				}
				state += fmt.Sprintf("life %s: message %d, greeting %s; ", k, l.maxSeq.Load(), g)
				if l.maxSeq.Load() <= from+20 || !hasLast(l) {
					ok = false
				}
			}
			return ok
		})
	}
	js := c.js()
	leaderOf := func() string { return c.Leader(js, stream) }

	// 1. The node leading the stream dies, lives respawn meanwhile.
	leader := leaderOf()
	if leader == "" {
		t.Fatal("the stream has no leader")
	}
	storedBefore := *stored.Load()
	c.Stop(c.Node(leader))
	crash()
	crash()
	testutil.WaitFor(t, 2*wait, "a new stream leader and a greeting stored since", func() bool {
		l := leaderOf()
		return l != "" && l != leader && *stored.Load() != storedBefore
	})
	progress("instances up to date after the leader's death", 2*wait)
	c.Restart(c.Node(leader))

	// 2. The node the runner is connected to dies.
	a.mu.Lock()
	rb := a.broker
	a.mu.Unlock()
	connected := rb.Conn().ConnectedServerName()
	c.Stop(c.Node(connected))
	crash()
	testutil.WaitFor(t, 2*wait, "the runner on another node", func() bool {
		n := rb.Conn().ConnectedServerName()
		return rb.Conn().IsConnected() && n != "" && n != connected
	})
	progress("instances up to date after their node's death", 2*wait)
	c.Restart(c.Node(connected))
	testutil.WaitFor(t, 4*wait, "the stream's replicas current again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})

	// 3. Every node dies: a life that starts meanwhile starts without its
	// retained greeting, and gets it when the cluster is back.
	retainMu.Lock()
	retainOn.Store(false) // a retained publish that is not stored is still delivered live
	retainMu.Unlock()
	for _, nd := range c.nodes {
		c.Stop(nd)
	}
	testutil.WaitFor(t, wait, "the runner reconnecting", rb.Conn().IsReconnecting)
	failedBefore := rb.Stats().RetainLoadFailed
	livesBefore := len(a.serving())
	crash()
	testutil.WaitFor(t, 2*wait, "a life started without its retained greeting", func() bool {
		return rb.Stats().RetainLoadFailed > failedBefore && len(a.serving()) == livesBefore
	})
	for _, nd := range c.nodes {
		c.start(nd)
	}
	for _, nd := range c.nodes {
		c.ready(nd)
	}
	progress("instances up to date once the cluster is back", 6*wait)
	retainMu.Lock()
	retainOn.Store(true)
	retainMu.Unlock()
	progress("greetings stored again", 2*wait)

	stop()
	pubWG.Wait()
	res := load.Wait()
	if res.Failed() != 0 || res.Requests == 0 {
		t.Errorf("HTTP load: %v, want no failure", res)
	}
	if err := run.Stop(); err != nil {
		t.Errorf("runner: %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.failed) > 0 || a.gaveUp {
		t.Errorf("lives that failed to start: %v (gave up: %v)", a.failed, a.gaveUp)
	}
	for k, l := range a.lives {
		if d := l.dups.Load(); d > 0 {
			t.Errorf("life %s got %d numbered messages twice", k, d)
		}
	}
	t.Logf("HTTP load: %v; %d lives; %d messages published", res, len(a.lives), seq.Load())
}
