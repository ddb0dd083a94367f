// Package bench holds goangel's benchmarks: HTTP through the Runner, respawn
// latency, per-instance cost, and the pubsub, container and logging hot paths.
// It has test files only: benchmarks are not part of goangel's API.
//
// Run them with
//
//	go test -run '^$' -bench . ./bench/...
//
// The same workloads (package bench/internal/workload) run through the peer
// libraries (watermill, cskr/pubsub, NATS, samber/do, dig, file-rotatelogs,
// lumberjack, a plain chi server) in the separate module bench/peers, so that
// the library itself never depends on them. bench/report.sh regenerates
// BENCHMARKS.md from a full run.
package bench
