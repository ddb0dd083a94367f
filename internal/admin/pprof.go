package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/pprof"
	runtimepprof "runtime/pprof"
	"strconv"
	"strings"
)

// pprofRoutes serves net/http/pprof on this server's mux only (never on
// http.DefaultServeMux). /debug/pprof/goroutine?instance=N (and &life=L)
// lists only the goroutines labelled with that instance (and life): the
// runner labels each request's goroutine with "instance" and "life".
func (s *Server) pprofRoutes(guarded func(string, http.HandlerFunc)) {
	guarded("GET /debug/pprof/", pprof.Index)
	guarded("GET /debug/pprof/cmdline", s.cmdline)
	guarded("GET /debug/pprof/profile", pprof.Profile)
	guarded("GET /debug/pprof/symbol", pprof.Symbol)
	guarded("POST /debug/pprof/symbol", pprof.Symbol)
	guarded("GET /debug/pprof/trace", pprof.Trace)
	guarded("GET /debug/pprof/goroutine", goroutines)
}

// goroutines is pprof's goroutine profile, filtered by the instance and
// life labels when the query names them.
func goroutines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var want []string
	for _, key := range []string{"instance", "life"} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		if _, err := strconv.Atoi(v); err != nil {
			http.Error(w, fmt.Sprintf("%s=%q: want a number", key, v), http.StatusBadRequest)
			return
		}
		want = append(want, fmt.Sprintf("%q:%q", key, v))
	}
	if len(want) == 0 {
		pprof.Handler("goroutine").ServeHTTP(w, r)
		return
	}
	var buf bytes.Buffer
	if err := runtimepprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		http.Error(w, "goroutine profile: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(FilterGoroutines(buf.Bytes(), want...))
}

// FilterGoroutines keeps, from a goroutine profile in text form (debug=1),
// the header and the stacks whose "# labels:" line holds every one of want
// (each `"key":"value"`).
func FilterGoroutines(profile []byte, want ...string) []byte {
	stanzas := strings.Split(string(profile), "\n\n")
	var out strings.Builder
	for i, st := range stanzas {
		if i == 0 && strings.HasPrefix(st, "goroutine profile:") {
			// The header line is followed directly by the first stack.
			head, rest, _ := strings.Cut(st, "\n")
			out.WriteString(head + "\n\n")
			st = rest
		}
		if st == "" || !hasLabels(st, want) {
			continue
		}
		out.WriteString(st)
		out.WriteString("\n\n")
	}
	return []byte(out.String())
}

func hasLabels(stanza string, want []string) bool {
	for line := range strings.SplitSeq(stanza, "\n") {
		labels, ok := strings.CutPrefix(line, "# labels: ")
		if !ok {
			continue
		}
		for _, kv := range want {
			if !strings.Contains(labels, kv) {
				return false
			}
		}
		return true
	}
	return false
}
