package production

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// deadlineRecorder is a response writer that records the read deadlines set
// on it (as net/http's HTTP/2 writer takes them).
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	set []time.Time
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

// TestLazyReadDeadline: over HTTP/2, --read-timeout's deadline is set at the
// body's first read and cleared at its end; a handler that set its own
// deadline first keeps it (neither is set nor cleared for it).
func TestLazyReadDeadline(t *testing.T) {
	h2 := func() *http.Request {
		r := httptest.NewRequest("POST", "/", io.NopCloser(strings.NewReader("body")))
		r.ProtoMajor = 2
		return r
	}
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw := newRespWriter(rec)
	r := withReadTimeout(rw, h2(), time.Minute)
	if len(rec.set) != 0 {
		t.Fatalf("a deadline was set before the body was read: %v", rec.set)
	}
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != "body" {
		t.Fatalf("body %q %v", b, err)
	}
	if len(rec.set) != 2 || rec.set[0].IsZero() || !rec.set[1].IsZero() {
		t.Errorf("read deadlines set %v, want one at the first read and a clear at the end", rec.set)
	}
	rw.release()

	rec = &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	rw = newRespWriter(rec)
	r = withReadTimeout(rw, h2(), time.Minute)
	own := time.Now().Add(time.Hour)
	if err := http.NewResponseController(rw).SetReadDeadline(own); err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r.Body)
	if len(rec.set) != 1 || !rec.set[0].Equal(own) {
		t.Errorf("read deadlines set %v, want only the handler's own %v", rec.set, own)
	}
	rw.release()
}
