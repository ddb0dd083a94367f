package bench

import "testing"

// BenchmarkHTTPPlain is the baseline: the benchmark routes on one plain
// net/http server. BenchmarkHTTPRunner (http_runner_test.go) measures the
// same load through goangel's Runner in the same run.
func BenchmarkHTTPPlain(b *testing.B) {
	for _, tc := range []struct {
		name      string
		keepAlive bool
	}{{"conn=keepalive", true}, {"conn=new", false}} {
		b.Run(tc.name, func(b *testing.B) {
			url, stop := PlainServer(b)
			defer stop()
			DriveHTTP(b, url+"/", tc.keepAlive)
		})
	}
}
