package loadclient_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/loadclient"
	"github.com/goangel/angel/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Config.Body: an answer with the expected status but another body is a
// failure of its own kind; the right body is OK.
func TestBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		body string
		want loadclient.Kind
	}{{"hello", loadclient.OK}, {"bye", loadclient.BadBody}} {
		ctx, cancel := context.WithCancel(context.Background())
		l := loadclient.Start(ctx, loadclient.Config{Addr: addr, Path: "/", KeepAlive: true, Body: tc.body, Timeout: 5 * time.Second})
		t.Cleanup(func() { cancel(); l.Wait() }) // also when WaitFor fails
		testutil.WaitFor(t, 10*time.Second, "ten requests of kind "+tc.want.String(), func() bool { return l.Result().Count(tc.want) >= 10 })
		cancel()
		res := l.Wait()
		if res.Count(tc.want) < 10 || res.Count(tc.want) != res.Requests {
			t.Errorf("Body %q: %v; want every request %v", tc.body, res, tc.want)
		}
	}
}

// Result.Quantile: the client's own latency quantiles cover the time the
// server took (a handler that sleeps 2ms on every 10th request and answers
// at once otherwise): p50 below 2ms, p99 at least 2ms.
func TestQuantile(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	l := loadclient.Start(ctx, loadclient.Config{Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/", KeepAlive: true, Timeout: 5 * time.Second})
	t.Cleanup(func() { cancel(); l.Wait() })
	testutil.WaitFor(t, 20*time.Second, "200 requests", func() bool { return l.Result().Count(loadclient.OK) >= 200 })
	cancel()
	res := l.Wait()
	if p50, p99 := res.Quantile(0.5), res.Quantile(0.99); p50 >= 2*time.Millisecond || p99 < 2*time.Millisecond {
		t.Errorf("p50 %v, p99 %v; want p50 < 2ms <= p99 (%v)", p50, p99, res)
	}
	if (&loadclient.Result{}).Quantile(0.5) != 0 {
		t.Error("the quantile of no requests is not 0")
	}
}
