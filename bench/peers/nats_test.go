package peers

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startNATS runs a NATS server inside the process on 127.0.0.1 (random
// port) until tb's cleanup, and returns its URL: the main module's
// bench.StartNATS, which lives in a test file there (so that nats-server
// stays out of the library's `go build ./...`) and so cannot be imported.
func startNATS(tb testing.TB) string {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatal("nats server not ready")
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}
