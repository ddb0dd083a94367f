package faults

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production/productiontest"
)

// TestBlockedHandlerAtCrash: a request blocked on its context when its life
// crashes does not hold the instance: the replacement serves at once, and
// the blocked request's context ends at --drain-timeout, which closes its
// connection.
func TestBlockedHandlerAtCrash(t *testing.T) {
	a := faultapp.New()
	r := productiontest.Start(t, "faultapp", a.Configure, []string{"-j", "1", "--drain-timeout", "500ms"}, stormPolicy)
	addr := r.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	testutil.WaitFor(t, 10*time.Second, "/block in flight", func() bool { return strings.Contains(r.Log(), "/block in flight") })

	before := restarts(r)
	if code, _, err := rawGet(addr, "/crash/error"); err != nil || code != 200 {
		t.Fatalf("GET /crash/error = %d %v", code, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the instance respawned", func() bool { return restarts(r) > before })
	// The blocked request is still in flight on the old life; the new one serves.
	if code, _, err := rawGet(addr, "/ok"); err != nil || code != 200 {
		t.Fatalf("GET /ok while a request blocks the old life = %d %v", code, err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the blocked request's connection: %v (got %q), want it ended at the drain timeout", err, got)
	}
}
