package loadclient_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
