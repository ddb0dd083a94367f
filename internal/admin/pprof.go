package admin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/goangel/angel/internal/goroutines"
)

// pprofRoutes serves net/http/pprof on this server's mux only (never on
// http.DefaultServeMux). /debug/pprof/goroutine?instance=N (and &life=L)
// lists only the goroutines labelled with that instance (and life): the
// runner labels every goroutine of a life (internal/goroutines).
func (s *Server) pprofRoutes(guarded func(string, http.HandlerFunc)) {
	guarded("GET /debug/pprof/", pprof.Index)
	guarded("GET /debug/pprof/cmdline", s.cmdline)
	guarded("GET /debug/pprof/profile", pprof.Profile)
	guarded("GET /debug/pprof/symbol", pprof.Symbol)
	guarded("POST /debug/pprof/symbol", pprof.Symbol)
	guarded("GET /debug/pprof/trace", pprof.Trace)
	guarded("GET /debug/pprof/goroutine", labelledGoroutines)
}

// labelledGoroutines is pprof's goroutine profile, filtered by the instance and
// life labels when the query names them.
func labelledGoroutines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var want []string
	for _, key := range []string{goroutines.Instance, goroutines.Life} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		if _, err := strconv.Atoi(v); err != nil {
			http.Error(w, fmt.Sprintf("%s=%q: want a number", key, v), http.StatusBadRequest)
			return
		}
		want = append(want, key, v)
	}
	if len(want) == 0 {
		pprof.Handler("goroutine").ServeHTTP(w, r)
		return
	}
	header, stacks, err := goroutines.Stacks(want...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, header+"\n\n"+stacks)
}
