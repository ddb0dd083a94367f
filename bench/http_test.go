package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkHTTP serves the benchmark routes through goangel's Runner with 1, 4
// and 16 instances on one shared listener, and through one plain net/http
// server with the same chi router, in the same run, over loopback: with
// keep-alive connections and with a new connection per request.
//
// The order of the servers is that of round BENCH_HTTP_ROUND (default 0):
// even rounds run plain, j1, j4, j16; odd rounds the reverse. The script
// (bench/scripts/http.sh) runs one round per process and counts the rounds,
// so that no server always runs first in its process (the first one is
// flattered or penalised by warm-up). -count repeats each sub-benchmark in
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
	servers := []int{0, 1, 4, 16} // 0: the plain server
	if round%2 == 1 {
		slices.Reverse(servers)
	}
	for _, conn := range []struct {
		name      string
		keepAlive bool
	}{{"keepalive", true}, {"new", false}} {
		for _, n := range servers {
			if n == 0 {
				b.Run("conn="+conn.name+"/server=plain", func(b *testing.B) {
					url, stop := workload.PlainServer(b)
					defer stop()
					workload.DriveHTTP(b, url+"/", conn.keepAlive)
				})
				continue
			}
			b.Run(fmt.Sprintf("conn=%s/server=goangel-j%d", conn.name, n), func(b *testing.B) {
				r := workload.StartRunner(b, n, workload.HelloApp)
				workload.DriveHTTP(b, r.URL+"/", conn.keepAlive)
			})
		}
	}
}
