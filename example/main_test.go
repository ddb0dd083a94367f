package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/internal/testutil/natstest"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
	"github.com/goangel/angel/pubsub"
)

// syncBuffer and waitFor are shared with the other packages' tests.
type syncBuffer = testutil.Buffer

var waitFor = testutil.WaitFor

func TestMain(m *testing.M) {
	if os.Getenv("EXAMPLE_TEST_RUN_MAIN") == "1" {
		// TestProcess runs this test binary as the example program itself.
		os.Args = append(os.Args[:1], strings.Fields(os.Getenv("EXAMPLE_TEST_ARGS"))...)
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// storm crashes every life that is running when it fires, at once.
type storm struct {
	mu sync.Mutex
	ch chan struct{}
}

// join makes app's life crash at the next fire.
func (s *storm) join(app *production.App) {
	s.mu.Lock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	ch := s.ch
	s.mu.Unlock()
	app.Go(func(ctx context.Context) error {
		select {
		case <-ch:
			app.Crash(errors.New("crash storm"))
		case <-ctx.Done():
		}
		return nil
	})
}

func (s *storm) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}

// tagged wraps the example's configure: every response says which instance
// (and life) served it, received counts the greeting messages each
// instance's pub/sub client receives, and every life joins the storm.
func tagged(received *counter, st *storm) func(app *production.App) error {
	return func(app *production.App) error {
		info := app.Info()
		if st != nil {
			st.join(app)
		}
		app.Router.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Instance", strconv.Itoa(info.Number))
				w.Header().Set("X-Life", strconv.Itoa(info.Life))
				next.ServeHTTP(w, r)
			})
		})
		if received != nil {
			sub, err := pubsub.SubscribeAs[string](app.Context(), app.PubSub(), greetingTopic)
			if err != nil {
				return err
			}
			app.Go(func(ctx context.Context) error {
				for {
					if _, _, err := sub.Receive(ctx); err != nil {
						return nil
					}
					received.add(info.ID)
				}
			})
		}
		return configure(app)
	}
}

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

// start runs the example (with every response tagged) on 127.0.0.1:0 with
// 4 instances unless args say otherwise; it is stopped when the test ends.
func start(t *testing.T, received *counter, args ...string) *productiontest.Runner {
	t.Helper()
	return startStorm(t, received, nil, args...)
}

func startStorm(t *testing.T, received *counter, st *storm, args ...string) *productiontest.Runner {
	t.Helper()
	return productiontest.Start(t, "example", tagged(received, st), append([]string{"-j", "4"}, args...), production.WithFlags(&Flags{}))
}

type answer struct {
	code           int
	body           string
	instance, life string
}

// get does one GET on a new connection (so that it lands on the next instance).
func get(t *testing.T, url string) answer {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return answer{resp.StatusCode, string(b), resp.Header.Get("X-Instance"), resp.Header.Get("X-Life")}
}

// everyInstanceSays waits until each of the runner's 4 instances has answered
// path with want.
func everyInstanceSays(t *testing.T, rn *productiontest.Runner, path, want string) {
	t.Helper()
	seen := map[string]bool{}
	waitFor(t, 10*time.Second, fmt.Sprintf("every instance to answer %s with %q", path, want), func() bool {
		a := get(t, rn.URL+path)
		if a.code == 200 && a.body == want {
			seen[a.instance] = true
		}
		return len(seen) == 4
	})
}

func TestRoutes(t *testing.T) {
	rn := start(t, nil, "--crash-delay", "20ms")
	for _, c := range []struct {
		path string
		code int
		body string
	}{
		{"/", 200, "Hello, production world!"},
		{"/greeting", 200, "Hello"},
		{"/404", 404, "404 page not found\n"},
		{"/nowhere", 404, "404 page not found\n"},
	} {
		if a := get(t, rn.URL+c.path); a.code != c.code || a.body != c.body {
			t.Errorf("GET %s = %d %q, want %d %q", c.path, a.code, a.body, c.code, c.body)
		}
	}

	// A greeting changed on one instance is served by all of them.
	if a := get(t, rn.URL+"/change_greeting/Howdy"); a.code != 200 || a.body != "Changed greeting -> Howdy" {
		t.Fatalf("GET /change_greeting/Howdy = %d %q", a.code, a.body)
	}
	everyInstanceSays(t, rn, "/greeting", "Howdy")

	// /crash: the instance answers, crashes after --crash-delay (a
	// supervised timer) and is respawned; the others keep serving.
	a := get(t, rn.URL+"/crash")
	if a.code != 200 || a.body != "Crashing in 20ms..." {
		t.Fatalf("GET /crash = %d %q", a.code, a.body)
	}
	n, _ := strconv.Atoi(a.instance)
	waitFor(t, 10*time.Second, "the crashed instance to be respawned", func() bool {
		s := rn.Stats().Instances[n]
		return s.Restarts == 1 && s.Crashes == 1 && s.Up
	})
	waitFor(t, 10*time.Second, "its second life to serve", func() bool {
		a := get(t, rn.URL+"/")
		return a.instance == strconv.Itoa(n) && a.life == "2" && a.body == "Hello, production world!"
	})
	// The new life got the retained greeting before serving: it serves
	// "Howdy", not the default it started with.
	waitFor(t, 10*time.Second, "the second life to answer /greeting", func() bool {
		a := get(t, rn.URL+"/greeting")
		if a.instance == strconv.Itoa(n) && a.life == "2" {
			if a.body != "Howdy" {
				t.Fatalf("the respawned life serves %q, want the retained Howdy", a.body)
			}
			return true
		}
		return false
	})
	for i, s := range rn.Stats().Instances {
		if i != n && (s.Crashes != 0 || !s.Up) {
			t.Errorf("instance %d: %+v, want untouched", i, s)
		}
	}
	if want := fmt.Sprintf("Instance #%d crashed: crash requested via /crash. Respawning at once: life 1 served", n); !strings.Contains(rn.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, rn.Log())
	}
}

func TestHelpListsAppFlags(t *testing.T) {
	out := &syncBuffer{}
	r := production.New("example", configure, production.WithFlags(&Flags{}), production.WithOutput(out, out))
	if err := r.Run(context.Background(), []string{"--help"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--crash-delay=3s") || !strings.Contains(out.String(), "$EXAMPLE_CRASH_DELAY") {
		t.Errorf("--help does not list --crash-delay:\n%s", out)
	}
	// Bounded, should it start serving after all.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := production.New("example", configure, production.WithFlags(&Flags{}), production.WithOutput(io.Discard, io.Discard)).
		Run(ctx, []string{"-p", "0", "--crash-delay", "soon"})
	if production.ExitCode(err) != production.ExitUsage || !errors.Is(err, production.ErrUsage) {
		t.Errorf("--crash-delay soon: %v, want a usage error", err)
	}
}

// TestNATS runs two Runners (standing for two processes) on one embedded
// nats-server: a greeting changed on one reaches every instance of both, and
// no client receives its own message.
func TestNATS(t *testing.T) {
	url := natstest.JetStream(t)
	recvA, recvB := &counter{}, &counter{}
	a := start(t, recvA, "--pubsub-url", url)
	b := start(t, recvB, "--pubsub-url", url)

	ans := get(t, a.URL+"/change_greeting/Bonjour")
	if ans.code != 200 || ans.body != "Changed greeting -> Bonjour" {
		t.Fatalf("change_greeting on A = %d %q", ans.code, ans.body)
	}
	everyInstanceSays(t, a, "/greeting", "Bonjour")
	everyInstanceSays(t, b, "/greeting", "Bonjour")

	num, _ := strconv.Atoi(ans.instance)
	life, _ := strconv.Atoi(ans.life)
	sender := pubsub.InstanceID("example", num, life)
	waitFor(t, 10*time.Second, "every other client to receive the greeting once", func() bool {
		for i := range 4 {
			id := pubsub.InstanceID("example", i, 1)
			if recvB.get(id) != 1 || (id != sender && recvA.get(id) != 1) {
				return false
			}
		}
		return true
	})
	if n := recvA.get(sender); n != 0 {
		t.Errorf("the sender %s received its own message %d times", sender, n)
	}
	for i := range 4 {
		id := pubsub.InstanceID("example", i, 1)
		if recvA.get(id) > 1 || recvB.get(id) > 1 {
			t.Errorf("%s received the greeting more than once: A %d, B %d", id, recvA.get(id), recvB.get(id))
		}
	}
}

// TestCrashStorm: every instance crashes at once, right after a greeting
// change, round after round; after each storm every instance serves the
// last greeting. On NATS the greeting lives in the server: a second runner
// (another process) started afterwards serves it too.
func TestCrashStorm(t *testing.T) {
	for _, tc := range []struct {
		name string
		nats bool
	}{{"memory", false}, {"nats", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.nats {
				args = []string{"--pubsub-url", natstest.JetStream(t)}
			}
			st := &storm{}
			rn := startStorm(t, nil, st, args...)
			for round, g := range []string{"Howdy", "Bonjour", "Hola"} {
				if a := get(t, rn.URL+"/change_greeting/"+g); a.code != 200 {
					t.Fatalf("change_greeting/%s = %d %q", g, a.code, a.body)
				}
				st.fire()
				waitFor(t, 20*time.Second, fmt.Sprintf("storm %d: every instance to crash and serve again", round+1), func() bool {
					for _, s := range rn.Stats().Instances {
						if s.Crashes != uint64(round+1) || !s.Up {
							return false
						}
					}
					return true
				})
				everyInstanceSays(t, rn, "/greeting", g)
			}
			if tc.nats {
				other := startStorm(t, nil, nil, args...)
				everyInstanceSays(t, other, "/greeting", "Hola")
			}
		})
	}
}

// TestNATSWithoutJetStream: start-up says clearly that retained messages
// are not available; the example still serves and passes greetings live.
func TestNATSWithoutJetStream(t *testing.T) {
	rn := start(t, nil, "--pubsub-url", natstest.Start(t, nil).ClientURL())
	if want := "the NATS server has no JetStream: retained messages are not available"; !strings.Contains(rn.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, rn.Log())
	}
	if a := get(t, rn.URL+"/change_greeting/Ahoy"); a.code != 200 {
		t.Fatalf("change_greeting without JetStream: %d %q", a.code, a.body)
	}
	everyInstanceSays(t, rn, "/greeting", "Ahoy")
}

// TestNamespaces: two apps on one NATS server are apart by default (each
// app's name prefixes its subjects); with one --pubsub-namespace they talk.
func TestNamespaces(t *testing.T) {
	url := natstest.JetStream(t)
	run := func(name string, args ...string) *productiontest.Runner {
		return productiontest.Start(t, name, tagged(nil, nil), append([]string{"-j", "2", "--pubsub-url", url}, args...), production.WithFlags(&Flags{}))
	}
	shop, blog := run("shop"), run("blog")
	if a := get(t, shop.URL+"/change_greeting/Sale"); a.code != 200 {
		t.Fatal(a)
	}
	if a := get(t, blog.URL+"/change_greeting/Posted"); a.code != 200 {
		t.Fatal(a)
	}
	// A third app in blog's namespace takes blog's retained greeting,
	// never shop's.
	reader := run("reader", "--pubsub-namespace", "blog")
	seen := map[string]bool{}
	waitFor(t, 10*time.Second, "both instances of reader to answer /greeting", func() bool {
		a := get(t, reader.URL+"/greeting")
		if a.body != "Posted" {
			t.Fatalf("reader (namespace blog) serves %q, want blog's Posted", a.body)
		}
		seen[a.instance] = true
		return len(seen) == 2
	})
	seen = map[string]bool{}
	waitFor(t, 10*time.Second, "both instances of shop to answer /greeting", func() bool {
		a := get(t, shop.URL+"/greeting")
		if a.body != "Sale" {
			t.Fatalf("shop serves %q, want its own Sale (blog's messages leaked in?)", a.body)
		}
		seen[a.instance] = true
		return len(seen) == 2
	})
}

// process runs the example program (this test binary, see TestMain) with args.
// listeningURL waits until the example's output says where it listens and
// returns that URL.
func listeningURL(t *testing.T, out *syncBuffer) string {
	t.Helper()
	var base string
	waitFor(t, 20*time.Second, "the example to listen", func() bool {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			return true
		}
		return false
	})
	return base
}

// listening matches the log line of the second instance with its URL.
var listening = regexp.MustCompile(`Instance #1 listening at (http://[0-9.:]+)`)

func process(t *testing.T, args string, stdout, stderr io.Writer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "EXAMPLE_TEST_RUN_MAIN=1", "EXAMPLE_TEST_ARGS="+args)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A test that fails before exitCode has waited for the process must
	// not leave it running.
	startCmd(t, cmd)
	return cmd
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("the example did not exit within 30s")
		return -1
	}
}

// TestProcess runs the example as a real process through Main: it serves,
// stops cleanly with exit code 0 on SIGTERM, and exits 64 on a usage error.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	out := &syncBuffer{}
	cmd := process(t, "-a 127.0.0.1 -p 0 -j 2", out, out)
	base := listeningURL(t, out)
	if a := get(t, base+"/"); a.code != 200 || a.body != "Hello, production world!" {
		t.Errorf("GET / = %d %q", a.code, a.body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, out)
	}

	errOut := &syncBuffer{}
	cmd = process(t, "-j 0", io.Discard, errOut)
	if code := exitCode(t, cmd); code != production.ExitUsage {
		t.Errorf("-j 0: exit code %d, want %d", code, production.ExitUsage)
	}
	if !strings.Contains(errOut.String(), "example: error: -j/--concurrency must be at least 1, got 0") || !strings.Contains(errOut.String(), "Usage: example [flags]") {
		t.Errorf("-j 0: stderr:\n%s", errOut)
	}
}

// startCmd starts cmd and kills it when the test ends, if it still runs.
func startCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

// TestGreetingStoredFailed: when storing the greeting in JetStream fails
// (here the stream was deleted under the runner, as when the node holding
// it is lost), /change_greeting still answers 200 within the client's 10s
// (the broker retries a store for 10s: the example bounds the wait), the
// other instances take the greeting, and the storage failure is logged
// (issue 20: it answered 500 "could not tell the other instances").
func TestGreetingStoredFailed(t *testing.T) {
	url := natstest.JetStream(t)
	rn := start(t, nil, "--pubsub-url", url)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deleted := 0
	for name := range js.StreamNames(ctx).Name() {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if deleted == 0 {
		t.Fatal("the runner made no JetStream stream for retained messages")
	}
	if a := get(t, rn.URL+"/change_greeting/Hej"); a.code != 200 || a.body != "Changed greeting -> Hej" {
		t.Fatalf("GET /change_greeting/Hej with the store gone = %d %q, want 200", a.code, a.body)
	}
	everyInstanceSays(t, rn, "/greeting", "Hej")
	if want := "The greeting reached the other instances but was not stored for lives that start later"; !strings.Contains(rn.Log(), want) {
		t.Errorf("log lacks %q:\n%s", want, rn.Log())
	}
}
