package bench

import (
	"fmt"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkHTTP serves the benchmark routes through goangel's Runner with 1, 4
// and 16 instances on one shared listener, and through one plain net/http
// server with the same chi router, in the same run, over loopback: with
// keep-alive connections and with a new connection per request.
func BenchmarkHTTP(b *testing.B) {
	for _, conn := range []struct {
		name      string
		keepAlive bool
	}{{"keepalive", true}, {"new", false}} {
		b.Run("conn="+conn.name+"/server=plain", func(b *testing.B) {
			url, stop := workload.PlainServer(b)
			defer stop()
			workload.DriveHTTP(b, url+"/", conn.keepAlive)
		})
		for _, n := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("conn=%s/server=goangel-j%d", conn.name, n), func(b *testing.B) {
				r := workload.StartRunner(b, n, workload.HelloApp)
				workload.DriveHTTP(b, r.URL+"/", conn.keepAlive)
			})
		}
	}
}
