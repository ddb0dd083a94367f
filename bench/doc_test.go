// Package bench holds goangel's benchmarks: HTTP through the Runner, respawn
// latency (to the new life's first HTTP answer), crash loops and the verbs
// under load, per-instance cost, and the pubsub, container and logging hot
// paths.
// It has test files only: benchmarks are not part of goangel's API.
//
// Run them with
//
//	go test -run '^$' -bench . ./bench/...
//
// The same workloads (package bench/internal/workload) run through the peer
// libraries (watermill, cskr/pubsub, NATS, samber/do, dig, file-rotatelogs,
// lumberjack, a plain chi server) in the separate module bench/peers, so that
// the library itself never depends on them. Whole servers (PM2, gunicorn,
// Puma) are compared by bench/scripts/peers.sh, which runs the same tiny app
// in each (goangel's is bench/cmd/peerapp) under bench/cmd/peercheck.
// bench/report.sh regenerates BENCHMARKS.md from a full run.
package bench
