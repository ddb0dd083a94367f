package peers

import (
	"testing"

	bench "github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkHTTPPeers runs the HTTP workload of bench.BenchmarkHTTP through the
// peer, a plain chi router on one net/http server, beside goangel's Runner with
// 4 instances, in one run.
func BenchmarkHTTPPeers(b *testing.B) {
	for _, conn := range []struct {
		name      string
		keepAlive bool
	}{{"keepalive", true}, {"new", false}} {
		b.Run("conn="+conn.name+"/server=plain-chi", func(b *testing.B) {
			url, stop := bench.PlainServer(b)
			defer stop()
			bench.DriveHTTP(b, url+"/", conn.keepAlive)
		})
		b.Run("conn="+conn.name+"/server=goangel-j4", func(b *testing.B) {
			r := bench.StartRunner(b, 4, bench.HelloApp)
			bench.DriveHTTP(b, r.URL+"/", conn.keepAlive)
		})
	}
}
