#!/usr/bin/env bash
# Respawn before and after the supervisor redesign, in one run: commit
# 79382f2's BenchmarkRespawn and BenchmarkCrashStorm beside today's, with the
# same clock (the new benchmark's clock=flag case stops, like the old one,
# when the Runner's Stats first show the new life up). Prints a markdown
# section (bench/report.sh stores it in bench/results/respawn-ab.md).
#
#   bash bench/scripts/respawn-ab.sh                  # -count 6
#   COUNT=10 OLD=79382f2 bash bench/scripts/respawn-ab.sh
#
# The old code is checked out in a temporary git worktree (removed on exit).
# Rounds are interleaved and alternate which side runs first, so that a slow
# spell of the shared machine and the warm-up of the first process hit both.
source "$(dirname "$0")/lib.sh"
OLD=${OLD:-79382f2}
CRASHES=${CRASHES:-2000} # crashes (and storm requests) per run

ab_build "$OLD"

old() {
  "$tmp/old.test" -test.run '^$' -test.bench '^Benchmark(Respawn|CrashStorm)$' -test.benchtime "${CRASHES}x" >>"$tmp/old.txt"
}
new() {
  "$tmp/new.test" -test.run '^$' -test.bench '^BenchmarkRespawn$/^policy=none$/./^clock=flag$' -test.benchtime "${CRASHES}x" >>"$tmp/new.txt"
  "$tmp/new.test" -test.run '^$' -test.bench '^BenchmarkCrashStorm$' -test.benchtime "${CRASHES}x" >>"$tmp/new.txt"
}
ab_rounds respawn-ab

O=BenchmarkRespawn
N=BenchmarkRespawn/policy=none
cat <<HDR
## Respawn before and after the supervisor redesign (A/B) — in-process benchmarks

$(date -u +%Y-%m-%d), \`bash bench/scripts/respawn-ab.sh\` (-count $COUNT, interleaved, the side that runs
first alternating round by round; medians with the min–max of the runs), $(nproc) cores, $(go version | cut -d' ' -f3);
load average (1, 5, 15 min) $load0 at the start, $load1 at the end.
"Before" is commit $OLD (the runner before the supervisor redesign), built from a git worktree of
that commit; "after" is this tree. Both crash instance #0 by a panic in a supervised goroutine,
$CRASHES times per run, and stop the clock when the Runner's \`Stats\` first show the new life up
(before: \`BenchmarkRespawn/instances=N\`; after: \`BenchmarkRespawn/policy=none/instances=N/clock=flag\`,
the same restart policy, its app has one route more, \`GET /life\`). This is not the clock of the
Respawn table above (first HTTP answer of the new life), which has no "before".

| instances | p50 µs before | p50 µs after | after ÷ before | p99 µs before | p99 µs after | after ÷ before |
|---|---|---|---|---|---|---|
HDR
for n in 1 4; do
  o="$O/instances=$n" w="$N/instances=$n/clock=flag"
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$n" \
    "$(medspread "$o" p50-µs "$tmp/old.txt")" "$(medspread "$w" p50-µs "$tmp/new.txt")" \
    "$(ratio "$(median "$w" p50-µs "$tmp/new.txt")" "$(median "$o" p50-µs "$tmp/old.txt")")" \
    "$(medspread "$o" p99-µs "$tmp/old.txt")" "$(medspread "$w" p99-µs "$tmp/new.txt")" \
    "$(ratio "$(median "$w" p99-µs "$tmp/new.txt")" "$(median "$o" p99-µs "$tmp/old.txt")")"
done
cat <<SEC

Crash storm, before and after (the same benchmark in both trees): 8 keep-alive clients load 4
instances while instance #0 is crashed again as soon as it is back (storm=on) or never
(storm=off); the clients' latency and the crashes per second. A failed request fails the
benchmark, so every figure comes from runs in which no request failed.

| | p50 µs before | p50 µs after | p99 µs before | p99 µs after | crashes/s before | crashes/s after |
|---|---|---|---|---|---|---|
SEC
for s in off on; do
  f=BenchmarkCrashStorm/storm=$s
  c0=0 c1=0
  [ $s = on ] && c0=$(medspread "$f" crashes/s "$tmp/old.txt") c1=$(medspread "$f" crashes/s "$tmp/new.txt")
  printf '| storm=%s | %s | %s | %s | %s | %s | %s |\n' "$s" \
    "$(medspread "$f" p50-µs "$tmp/old.txt")" "$(medspread "$f" p50-µs "$tmp/new.txt")" \
    "$(medspread "$f" p99-µs "$tmp/old.txt")" "$(medspread "$f" p99-µs "$tmp/new.txt")" "$c0" "$c1"
done
