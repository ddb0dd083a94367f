// Package workload holds the benchmark workloads that goangel's own
// benchmarks (package bench, test files only) and the peer libraries' (the
// separate module bench/peers) run, so both sides run the very same loops.
//
// It is internal: benchmarks are not part of goangel's API. It starts no NATS
// server itself (GoangelNATS takes the server's URL), so that nats-server
// stays out of the library's `go build ./...`; the benchmarks start one in
// their test files.
package workload
