package production_test

import (
	"encoding/json"
	"strings"
	"testing"

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
