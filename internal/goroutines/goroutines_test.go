package goroutines_test

import (
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/goroutines"
	"github.com/goangel/angel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFilter(t *testing.T) {
	profile := "goroutine profile: total 5\n" +
		"2 @ 0x1 0x2\n# labels: {\"goangel_life\":\"app-0-1\", \"instance\":\"0\", \"life\":\"1\"}\n#\t0x1\tmain.a+0x1\ta.go:1\n\n" +
		"1 @ 0x3\n# labels: {\"goangel_life\":\"app-1-12\", \"instance\":\"1\", \"life\":\"12\"}\n#\t0x3\tmain.b+0x1\tb.go:1\n\n" +
		"1 @ 0x5\n# labels: {\"goangel_life\":\"app-1-2\", \"instance\":\"1\", \"life\":\"2\"}\n#\t0x5\tmain.e+0x1\te.go:1\n\n" +
		"1 @ 0x4\n#\t0x4\tmain.c+0x1\tc.go:1\n\n"
	for _, c := range []struct {
		want      []string
		has, hasn []string
	}{
		{[]string{"instance", "1"}, []string{"main.b", "main.e"}, []string{"main.a", "main.c"}},
		{[]string{"instance", "0", "life", "2"}, nil, []string{"main."}},
		{[]string{"instance", "0", "life", "1"}, []string{"main.a"}, []string{"main.b", "main.c", "main.e"}},
		{[]string{"life", "2"}, []string{"main.e"}, []string{"main.a", "main.b", "main.c"}}, // not life 12
		{[]string{"goangel_life", "app-1-2"}, []string{"main.e"}, []string{"main.a", "main.b", "main.c"}},
		{nil, []string{"main.a", "main.b", "main.c", "main.e"}, nil},
	} {
		header, stacks := goroutines.Filter(profile, c.want...)
		if header != "goroutine profile: total 5" {
			t.Errorf("%q: header %q", c.want, header)
		}
		for _, s := range c.has {
			if !strings.Contains(stacks, s) {
				t.Errorf("%q: %s missing from\n%s", c.want, s, stacks)
			}
		}
		for _, s := range c.hasn {
			if strings.Contains(stacks, s) {
				t.Errorf("%q: %s kept in\n%s", c.want, s, stacks)
			}
		}
	}
}

//go:noinline
func parkedLabelled(stop <-chan struct{}) { <-stop }

//go:noinline
func parkedPlain(stop <-chan struct{}) { <-stop }

// TestStacks reads the live profile: the goroutine labelled by Labels is
// found by each of its labels, the unlabelled one is not.
func TestStacks(t *testing.T) {
	stop := make(chan struct{})
	parked := make(chan struct{}, 2)
	done := make(chan struct{}, 2)
	go func() {
		pprof.SetGoroutineLabels(goroutines.Labels("app-3-7", 3, 7))
		parked <- struct{}{}
		parkedLabelled(stop)
		done <- struct{}{}
	}()
	go func() {
		parked <- struct{}{}
		parkedPlain(stop)
		done <- struct{}{}
	}()
	<-parked
	<-parked
	defer func() {
		close(stop)
		<-done
		<-done
	}()
	for _, want := range [][]string{{goroutines.LifeID, "app-3-7"}, {goroutines.Instance, "3", goroutines.Life, "7"}} {
		var header, stacks string
		// The goroutine may not have parked in its function yet.
		testutil.WaitFor(t, 10*time.Second, "the labelled goroutine in the profile", func() bool {
			var err error
			if header, stacks, err = goroutines.Stacks(want...); err != nil {
				t.Fatal(err)
			}
			return strings.Contains(stacks, "parkedLabelled")
		})
		if !strings.HasPrefix(header, "goroutine profile: total ") || !strings.Contains(stacks, "parkedLabelled") || strings.Contains(stacks, "parkedPlain") {
			t.Errorf("Stacks(%q): header %q, stacks\n%s", want, header, stacks)
		}
	}
}
