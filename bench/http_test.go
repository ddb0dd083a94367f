package bench

import (
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkHTTP serves the benchmark routes through goangel's Runner with 1, 4
// and 16 instances on one shared listener, and through one plain net/http
// server with the same chi router, in the same run, over loopback: with
// keep-alive connections and with a new connection per request. goangel-j4
// runs once more with --write-timeout 0 (goangel-j4-wt0): the default
// --write-timeout wraps every connection to bound a stalled write, and that
// case shows what the wrapper costs.
//
// The order of the servers is that of round BENCH_HTTP_ROUND (default 0):
// even rounds run plain, j1, j4, j4-wt0, j16; odd rounds the reverse. The
// script (bench/scripts/http.sh) runs one round per process and counts the
// rounds, so that no server always runs first in its process (the first one
// is flattered or penalised by warm-up). -count repeats each sub-benchmark in
// place, so it cannot alternate the order itself.
func BenchmarkHTTP(b *testing.B) {
	round := 0
	if s := os.Getenv("BENCH_HTTP_ROUND"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("BENCH_HTTP_ROUND=%q: want a round number (0, 1, 2, …)", s)
		}
		round = n
	}
	type server struct {
		name      string
		instances int // 0: the plain server
		args      []string
	}
	servers := []server{
		{"plain", 0, nil},
		{"goangel-j1", 1, nil},
		{"goangel-j4", 4, nil},
		{"goangel-j4-wt0", 4, []string{"--write-timeout", "0"}},
		{"goangel-j16", 16, nil},
	}
	if round%2 == 1 {
		slices.Reverse(servers)
	}
	for _, conn := range []struct {
		name      string
		keepAlive bool
	}{{"keepalive", true}, {"new", false}} {
		for _, s := range servers {
			b.Run("conn="+conn.name+"/server="+s.name, func(b *testing.B) {
				if s.instances == 0 {
					url, stop := workload.PlainServer(b)
					defer stop()
					workload.DriveHTTP(b, url+"/", conn.keepAlive)
					return
				}
				r := workload.StartRunner(b, s.instances, workload.HelloApp, s.args...)
				workload.DriveHTTP(b, r.URL+"/", conn.keepAlive)
			})
		}
	}
}
