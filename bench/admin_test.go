package bench

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
)

// BenchmarkAdmin serves the benchmark app through a Runner with 4 instances
// over keep-alive connections, without the admin listener (admin=off: no
// per-request metrics) and with it (admin=on: --admin-address, every
// request counted by status class, timed into the latency histogram and
// kept in flight, its goroutine labelled by instance), in the same run.
// Target: admin=on ≥ 0.97x admin=off in req/s. After the load, admin=on
// scrapes /metrics and checks that every request was counted.
func BenchmarkAdmin(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "admin=off"
		var args []string
		if on {
			name, args = "admin=on", []string{"--admin-address", "127.0.0.1:0"}
		}
		b.Run(name, func(b *testing.B) {
			r := workload.StartRunner(b, 4, workload.HelloApp, args...)
			workload.DriveHTTP(b, r.URL+"/", true)
			if !on {
				return
			}
			if n := countedRequests(b, "http://"+r.AdminAddr().String()+"/metrics"); n < float64(b.N) {
				b.Fatalf("goangel_http_requests_total = %v after %d requests", n, b.N)
			}
		})
	}
}

var requestsLine = regexp.MustCompile(`(?m)^goangel_http_requests_total\{[^}]*\} ([0-9.e+]+)$`)

// countedRequests scrapes url and sums goangel_http_requests_total.
func countedRequests(b *testing.B, url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, m := range requestsLine.FindAllStringSubmatch(string(body), -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			b.Fatal(err)
		}
		sum += v
	}
	http.DefaultClient.CloseIdleConnections()
	return sum
}
