package production

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAccounting: the accounting middleware counts every request, keeps the
// handler in flight while it runs, asks for a recycle at --max-requests, and
// says "Connection: close" once the life drains (not before).
func TestAccounting(t *testing.T) {
	l := &life{
		rs:        &runState{cfg: &Config{}},
		counts:    &instanceCounts{},
		changed:   make(chan struct{}, 1),
		recycle:   make(chan struct{}, 1),
		recycleAt: 2,
		labels:    lifeLabels(InstanceInfo{}),
	}
	var inFlight int64
	h := l.accounting(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight = l.handlers.Load()
	}))
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec
	}

	if rec := get(); rec.Header().Get("Connection") != "" {
		t.Errorf("a serving life answered Connection: %q", rec.Header().Get("Connection"))
	}
	if inFlight != 1 || l.handlers.Load() != 0 {
		t.Errorf("handlers in flight: %d while serving, %d after, want 1 and 0", inFlight, l.handlers.Load())
	}
	select {
	case <-l.recycle:
		t.Fatal("recycle asked for after 1 request, want at --max-requests 2")
	default:
	}
	get()
	select {
	case <-l.recycle:
	default:
		t.Error("no recycle asked for at --max-requests 2")
	}

	l.draining.Store(true)
	if rec := get(); rec.Header().Get("Connection") != "close" {
		t.Errorf("a draining life answered Connection: %q, want close", rec.Header().Get("Connection"))
	}
	if n, m := l.counts.requests.Load(), l.requests.Load(); n != 3 || m != 3 {
		t.Errorf("requests counted: instance %d, life %d, want 3 and 3", n, m)
	}
}
