package production_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
	"github.com/goangel/angel/production/productiontest"
)

// syncBuffer and waitFor are shared with the other packages' tests.
type syncBuffer = testutil.Buffer

var waitFor = testutil.WaitFor

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noEnv(string) (string, bool) { return "", false }

// harness is a Runner running in the background on 127.0.0.1:0 (its log in
// run.Log()), with a keep-alive client.
type harness struct {
	run    *productiontest.Runner
	client *http.Client
	tr     *http.Transport
}

// instanceHeader tags every response with the instance number and life.
func instanceHeader(app *production.App) {
	info := app.Info()
	num, life := strconv.Itoa(info.Number), strconv.Itoa(info.Life)
	app.Router.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Instance", num)
			w.Header().Set("X-Life", life)
			next.ServeHTTP(w, r)
		})
	})
}

func startRunner(t testing.TB, configure func(*production.App) error, args []string, opts ...production.Option) *harness {
	t.Helper()
	h := &harness{run: productiontest.Start(t, "test", configure, args, opts...)}
	h.tr = &http.Transport{MaxIdleConnsPerHost: 64}
	h.client = &http.Client{Transport: h.tr, Timeout: 10 * time.Second}
	t.Cleanup(h.tr.CloseIdleConnections)
	return h
}

// stop stops the runner and returns what Run returned.
func (h *harness) stop() error {
	err := h.run.Stop()
	h.tr.CloseIdleConnections()
	return err
}

// get does a GET and returns status, body and the serving instance.
func (h *harness) get(path string) (int, string, string, error) {
	return getWith(h.client, h.run.URL+path)
}

func getWith(c *http.Client, url string) (int, string, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", "", err
	}
	return resp.StatusCode, string(b), resp.Header.Get("X-Instance"), nil
}

// fresh returns a client that opens a new connection for every request.
func fresh() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

func hello(app *production.App) error {
	instanceHeader(app)
	app.Router.Get("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Hello, production world!")
	})
	app.Router.Get("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("handler panic")
	})
	app.Router.Get("/twice", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.WriteHeader(http.StatusOK) // net/http complains through Server.ErrorLog
	})
	return nil
}

func TestHello(t *testing.T) {
	h := startRunner(t, hello, []string{"-j", "4"})
	code, body, _, err := h.get("/")
	if err != nil || code != 200 || body != "Hello, production world!" {
		t.Fatalf("GET / = %d %q %v", code, body, err)
	}
	if _, port, _ := net.SplitHostPort(h.run.Addr().String()); port == "0" {
		t.Fatalf("Addr() = %v: want the real port", h.run.Addr())
	}
	// A handler panic is a 500, counted, and the instance keeps serving.
	code, _, _, err = h.get("/panic")
	if err != nil || code != 500 {
		t.Fatalf("GET /panic = %d %v, want 500", code, err)
	}
	code, _, _, err = h.get("/")
	if err != nil || code != 200 {
		t.Fatalf("GET / after a panic = %d %v", code, err)
	}
	if code, _, _, err := h.get("/twice"); err != nil || code != http.StatusTeapot {
		t.Fatalf("GET /twice = %d %v", code, err)
	}
	var panics uint64
	for _, s := range h.run.Stats().Instances {
		panics += s.Panics
	}
	if panics != 1 {
		t.Errorf("Stats panics = %d, want 1", panics)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	out := h.run.Log()
	for _, want := range []string{
		"Starting `test` application...",
		fmt.Sprintf("Instance #3 listening at http://%s", h.run.Addr()),
		"Recovered from a panic in a handler: handler panic",
		"superfluous response.WriteHeader call", // http.Server.ErrorLog goes to logrus
	} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
