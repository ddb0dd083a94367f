#!/usr/bin/env bash
# Operating a running app (issue #9's verbs) and the admin listener's cost
# (issue #11): BenchmarkVerbs and BenchmarkAdmin. Prints a markdown section
# (bench/report.sh stores it in bench/results/verbs.md). Every figure is the
# median of the rounds with the min–max of the rounds beside it.
#
#   bash bench/scripts/verbs.sh           # -count 6
#   COUNT=10 bash bench/scripts/verbs.sh
#   BENCH_REUSE=dir bash bench/scripts/verbs.sh  # re-render what BENCH_RAW=dir kept
source "$(dirname "$0")/lib.sh"

if [ -n "${BENCH_REUSE:-}" ]; then # re-render the raw output that BENCH_RAW kept
  for f in verbs admin failures; do cp "$BENCH_REUSE/verbs-$f.txt" "$tmp/$f.txt" 2>/dev/null || true; done
  load0=${BENCH_LOAD0:-not recorded} load1=${BENCH_LOAD1:-not recorded}
else
  go test -c -o "$tmp/bench.test" ./bench/
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  # Interleaved rounds (one -count at a time), so that a slow spell of the
  # shared machine hits every case alike.
  # A run in which a request fails ends with the benchmark's failure: the
  # round goes on, the failure is kept (failures.txt) and the tables count the
  # runs each figure comes from. BenchmarkAdmin's two cases run in their own
  # processes, in an order that alternates round by round.
  admin() { "$tmp/bench.test" -test.run '^$' -test.bench "^BenchmarkAdmin\$/^admin=$1\$" -test.benchtime 20000x >> "$tmp/admin.txt" ||
    echo "BenchmarkAdmin/admin=$1 failed in round $i" >> "$tmp/failures.txt"; }
  for i in $(seq "$COUNT"); do
    echo "verbs: round $i/$COUNT" >&2
    "$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkVerbs$' -test.benchtime 40000x > "$tmp/round.out" ||
      { echo "BenchmarkVerbs failed in round $i:" >> "$tmp/failures.txt"; grep -E -- '--- FAIL|^    [a-z_]+_test\.go:[0-9]+:' "$tmp/round.out" | sed 's/^.*--- FAIL/--- FAIL/' >> "$tmp/failures.txt"; }
    cat "$tmp/round.out" >> "$tmp/verbs.txt"
    if ((i % 2)); then admin off; admin on; else admin on; admin off; fi
  done
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
fi
touch "$tmp/failures.txt"

V=BenchmarkVerbs
cat <<HDR
## Operating a running app: the verbs — in-process benchmarks

$(date -u +%Y-%m-%d), \`bash bench/scripts/verbs.sh\` (-count $COUNT, interleaved, medians with the min–max of the runs), $(nproc) cores, $(go version | cut -d' ' -f3);
load average (1, 5, 15 min) $load0 at the start, $load1 at the end.
\`BenchmarkVerbs\`: 8 clients (keep-alive, then a new connection per request) send 40000 requests per
run to 4 instances of the ten-route app while one verb runs again and again: nothing (the
baseline), a rolling \`Reload\` of every instance, recycling (\`--max-requests 500\`: a life is
replaced every few hundred requests), a scale-down and back up (\`Scale(3)\`, \`Scale(4)\`), or a
crash of instance #0 (respawned as soon as it is back). A failed request fails the benchmark, so
every figure below comes from runs in which no request failed.

| conn | verb | req/s | × none | × none per round: median (min–max) | verbs/s | failed (all runs) | runs |
|---|---|---|---|---|---|---|---|
HDR
for c in keepalive newconn; do
  none=$(median "$V/$c/verb=none" req/s "$tmp/verbs.txt")
  for v in none reload recycle scaledown crash; do
    f="$V/$c/verb=$v"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s of %s |\n' "$c" "$v" "$(medspread "$f" req/s "$tmp/verbs.txt")" \
      "$(ratio "$(median "$f" req/s "$tmp/verbs.txt")" "$none")" "$([ "$v" = none ] && echo 1.00x || paired "$V/$c/verb=none" "$f" req/s "$tmp/verbs.txt")" "$(medspread "$f" verbs/s "$tmp/verbs.txt")" \
      "$(_values "$f" failed "$tmp/verbs.txt" | awk '{ s+=$1 } END { print s+0 }')" "$(_values "$f" req/s "$tmp/verbs.txt" | wc -l)" "$COUNT"
  done
done

if [ -s "$tmp/failures.txt" ]; then
  echo
  echo "Failed runs (their figures are not in the table; the benchmark stops at its first failure):"
  echo
  echo '```'
  cat "$tmp/failures.txt"
  echo '```'
else
  echo
  echo "No run failed: every request of every run got a whole 200 answer."
fi

A=BenchmarkAdmin
off=$(median "$A/admin=off" req/s "$tmp/admin.txt")
on=$(median "$A/admin=on" req/s "$tmp/admin.txt")
cat <<SEC

### The admin listener's cost

\`BenchmarkAdmin\`: 8 keep-alive clients, 20000 requests per run to 4 instances, without the admin
listener (no per-request metrics) and with it (\`--admin-address\`: every request counted by status
class, timed into the latency histogram, kept in flight), each in its own process, the order
alternating round by round. Target: admin=on ≥ 0.97x admin=off.

| admin=off req/s | admin=on req/s | ratio of the medians | per-round ratio: median (min–max) |
|---|---|---|---|
| $(medspread "$A/admin=off" req/s "$tmp/admin.txt") | $(medspread "$A/admin=on" req/s "$tmp/admin.txt") | **$(ratio "$on" "$off")** | $(paired "$A/admin=off" "$A/admin=on" req/s "$tmp/admin.txt") |
SEC
