package production_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/internal/admin"
	"github.com/goangel/angel/production"
)

// TestInstanceStateJSON: InstanceStats.State is a typed value, but Stats in
// JSON still says "serving" (as it did when the state was a string), and it
// decodes back; an unknown state is an error naming the ones there are.
func TestInstanceStateJSON(t *testing.T) {
	h := startRunner(t, hello, []string{"-j", "2", "--quiet"})
	s := h.run.Stats()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"State":"serving"`); n != 2 {
		t.Errorf("Stats in JSON has %d instances \"serving\", want 2: %s", n, b)
	}
	var back production.Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decoding Stats: %v", err)
	}
	for i, is := range back.Instances {
		if is.State != production.InstanceServing || is.State != s.Instances[i].State {
			t.Errorf("instance #%d decoded as %v, want serving", is.Number, is.State)
		}
	}
	var st production.InstanceState
	if err := json.Unmarshal([]byte(`"asleep"`), &st); err == nil || !strings.Contains(err.Error(), "starting, serving, draining, backoff, stopped") {
		t.Errorf("decoding \"asleep\": %v, want an error naming the states", err)
	}
	for st, want := range map[production.InstanceState]string{
		production.InstanceStarting: "starting", production.InstanceServing: "serving", production.InstanceDraining: "draining",
		production.InstanceBackoff: "backoff", production.InstanceStopped: "stopped", production.InstanceState(7): "InstanceState(7)",
	} {
		if got := st.String(); got != want {
			t.Errorf("InstanceState(%d).String() = %q, want %q", int32(st), got, want)
		}
	}
	if _, err := json.Marshal(production.InstanceStats{State: 7}); err == nil {
		t.Error("encoding state 7: no error")
	}
}

// TestInFlightOverDrainingLives: a request still running on a replaced life
// is in flight for Stats, /instances and goangel_http_requests_in_flight
// alike (Stats counted the serving life's only, the admin listener every
// life's, each in its own counter).
func TestInFlightOverDrainingLives(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	configure := func(app *production.App) error {
		app.Router.Get("/slow", func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			io.WriteString(w, "done")
		})
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "1", "--quiet"})
	answered := make(chan error, 1)
	go func() {
		code, _, _, err := getWith(fresh(), h.run.URL+"/slow")
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		answered <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("GET /slow never reached its handler")
	}
	if err := h.run.Restart(context.Background(), 0); err != nil {
		close(release)
		t.Fatal(err)
	}
	is := h.run.Stats().Instances[0]
	_, body := h.call(t, "GET", "/instances")
	var snap admin.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("GET /instances: %v\n%s", err, body)
	}
	m := h.scrape(t)
	close(release)
	if is.Life != 2 || is.InFlight != 1 || is.Connections < 1 {
		t.Errorf("Stats after the restart: life %d, %d in flight, %d connections; want life 2, 1, at least 1", is.Life, is.InFlight, is.Connections)
	}
	if in := snap.Instances[0]; in.InFlight != 1 || in.Connections != is.Connections {
		t.Errorf("GET /instances: %d in flight, %d connections; want 1 and %d", in.InFlight, in.Connections, is.Connections)
	}
	if v := m.sum("goangel_http_requests_in_flight"); v != 1 {
		t.Errorf("goangel_http_requests_in_flight = %v, want 1", v)
	}
	if err := <-answered; err != nil {
		t.Fatalf("GET /slow: %v", err)
	}
	waitFor(t, 10*time.Second, "no request in flight", func() bool { return h.run.Stats().Instances[0].InFlight == 0 })
}

// TestTimeoutStatusAgrees: a request answered 503 at --request-timeout
// while its handler goes on to write its own answer is a 503 for the
// client, the access log and goangel_http_requests_total alike (the access
// log had its own writer inside the timeout's, and logged the handler's
// status 200 that never reached the client).
func TestTimeoutStatusAgrees(t *testing.T) {
	configure := func(app *production.App) error {
		app.Router.Get("/late", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "too late") // fails with http.ErrHandlerTimeout
		})
		return nil
	}
	h := startAdmin(t, configure, []string{"-j", "1", "--access-log", "--request-timeout", "100ms"})
	code, _, _, err := getWith(fresh(), h.run.URL+"/late")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("GET /late = %d %v, want 503", code, err)
	}
	waitFor(t, 10*time.Second, "the request counted", func() bool {
		return h.scrape(t).sum("goangel_http_requests_total") == 1
	})
	expect(t, h.scrape(t), map[string]float64{"goangel_http_requests_total code 5xx": 1})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.SplitSeq(h.run.Log(), "\n") {
		if strings.Contains(l, "uri=/late") {
			line = l
		}
	}
	if !strings.Contains(line, "status=503") {
		t.Errorf("access log line of GET /late: %q, want status=503", line)
	}
}
