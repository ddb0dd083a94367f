// Package natstest runs an embedded NATS server (nats-server/v2) for tests:
// on a free port of 127.0.0.1, silent, shut down when the test ends. It is a
// package of its own so that only the tests that need a server link one.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ready bounds the wait for the server to take connections.
const ready = 10 * time.Second

// Start runs a NATS server with opts (nil: a plain server) until t ends and
// returns it. Host and port default to 127.0.0.1 and a free port; logging
// and signal handling are always off. Set JetStream with a StoreDir (such as
// t.TempDir()) for retained messages.
func Start(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts == nil {
		opts = &server.Options{}
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(ready) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// JetStream runs a server with JetStream (its store in a temporary
// directory of t) until t ends, and returns its client URL.
func JetStream(t testing.TB) string {
	t.Helper()
	return Start(t, &server.Options{JetStream: true, StoreDir: t.TempDir()}).ClientURL()
}
