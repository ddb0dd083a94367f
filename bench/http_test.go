package bench

import (
	"fmt"
	"testing"
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
			url, stop := PlainServer(b)
			defer stop()
			DriveHTTP(b, url+"/", conn.keepAlive)
		})
		for _, n := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("conn=%s/server=goangel-j%d", conn.name, n), func(b *testing.B) {
				r := StartRunner(b, n, HelloApp)
				DriveHTTP(b, r.URL+"/", conn.keepAlive)
			})
		}
	}
}
