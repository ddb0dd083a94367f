#!/usr/bin/env bash
# HTTP, respawn, crash-loop and per-instance benchmarks (issue #6 and #16
# targets). Prints a markdown section (bench/report.sh stores it in
# bench/results/http.md). Every figure is the median of the rounds with the
# min–max of the rounds beside it.
#
#   bash bench/scripts/http.sh           # -count 6
#   COUNT=10 bash bench/scripts/http.sh
#   BENCH_REUSE=dir bash bench/scripts/http.sh  # re-render what BENCH_RAW=dir kept
source "$(dirname "$0")/lib.sh"
HTTP_REQS=${HTTP_REQS:-20000} # requests per BenchmarkHTTP run

if [ -n "${BENCH_REUSE:-}" ]; then # re-render the raw output that BENCH_RAW kept
  for f in http respawn crashloop instances; do cp "$BENCH_REUSE/http-$f.txt" "$tmp/$f.txt"; done
  load0=${BENCH_LOAD0:-not recorded} load1=${BENCH_LOAD1:-not recorded}
else
  go test -c -o "$tmp/bench.test" ./bench/
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  # Interleave the runs (one -count at a time) so slow drift of a noisy machine
  # hits goangel and the plain server alike.
  # BENCH_HTTP_ROUND alternates the order of the servers in BenchmarkHTTP from
  # round to round (plain first, then goangel first), so that no server always
  # runs first in the process.
  for i in $(seq "$COUNT"); do
    BENCH_HTTP_ROUND=$i "$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkHTTP$' -test.benchtime "${HTTP_REQS}x" >> "$tmp/http.txt"
    "$tmp/bench.test" -test.run '^$' -test.bench '^Benchmark(Respawn|CrashStorm)$' -test.benchtime 2000x >> "$tmp/respawn.txt"
    "$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkCrashLoop$' -test.benchtime 200x >> "$tmp/crashloop.txt"
    "$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkInstances$' -test.benchtime 5x >> "$tmp/instances.txt"
  done
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
fi

H=BenchmarkHTTP
cat <<HDR
## HTTP through the Runner — in-process benchmarks

$(date -u +%Y-%m-%d), \`bash bench/scripts/http.sh\` (-count $COUNT, interleaved, medians with the min–max of the runs), $(nproc) cores, $(go version | cut -d' ' -f3);
load average (1, 5, 15 min) $load0 at the start, $load1 at the end.
The ten-route chi app answers \`GET /\` to $HTTP_REQS requests per run from 8 concurrent clients over loopback,
through goangel's Runner with 1, 4 and 16 instances on one shared listener, and through the same
chi router on one plain \`net/http\` server, in the same run; with keep-alive connections and with a
new connection per request (client closes with SO_LINGER 0). goangel -j 4 runs twice: with the
default \`--write-timeout\` (60s: every connection is wrapped so that a stalled write is cut) and
with \`--write-timeout 0\` (no wrapper), to show what the wrapper costs. The order of the servers
alternates round by round (plain server first, then goangel -j 16 first), so that none always runs first in
its process. The client runs on the same 2 cores, so these are whole-system rates. Each cell is
the median of the rounds, (min–max) below it; benchstat's ± is the 95 % confidence interval
of the median. The third row of each case pairs the runs of one round (the same process,
seconds apart) and gives the median of those per-round ratios with their min–max: the ratio
least disturbed by slow drifts of the shared machine.

| case | plain server req/s | goangel -j 1 | -j 4 | -j 4 --write-timeout 0 | -j 16 | ratio -j 4 / plain (target ≥ 0.97) | -j 4 with / without the write timeout |
|---|---|---|---|---|---|---|---|
HDR
for c in keepalive new; do
  p=$(median "$H/conn=$c/server=plain" req/s "$tmp/http.txt")
  j1=$(median "$H/conn=$c/server=goangel-j1" req/s "$tmp/http.txt")
  j4=$(median "$H/conn=$c/server=goangel-j4" req/s "$tmp/http.txt")
  w0=$(median "$H/conn=$c/server=goangel-j4-wt0" req/s "$tmp/http.txt")
  j16=$(median "$H/conn=$c/server=goangel-j16" req/s "$tmp/http.txt")
  printf '| %s | %.0f | %.0f (%s) | %.0f (%s) | %.0f (%s) | %.0f (%s) | **%s** | %s |\n' "$c" "$p" "$j1" "$(ratio "$j1" "$p")" "$j4" "$(ratio "$j4" "$p")" \
    "$w0" "$(ratio "$w0" "$p")" "$j16" "$(ratio "$j16" "$p")" "$(ratio "$j4" "$p")" "$(ratio "$j4" "$w0")"
  printf '| (min–max) | %s | %s | %s | %s | %s | | |\n' "$(spread "$H/conn=$c/server=plain" req/s "$tmp/http.txt")" \
    "$(spread "$H/conn=$c/server=goangel-j1" req/s "$tmp/http.txt")" "$(spread "$H/conn=$c/server=goangel-j4" req/s "$tmp/http.txt")" \
    "$(spread "$H/conn=$c/server=goangel-j4-wt0" req/s "$tmp/http.txt")" "$(spread "$H/conn=$c/server=goangel-j16" req/s "$tmp/http.txt")"
  printf '| (per-round ratio: median, min–max) | | %s | %s | %s | %s | %s | %s |\n' \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j1" req/s "$tmp/http.txt")" \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j4" req/s "$tmp/http.txt")" \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j4-wt0" req/s "$tmp/http.txt")" \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j16" req/s "$tmp/http.txt")" \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j4" req/s "$tmp/http.txt")" \
    "$(paired "$H/conn=$c/server=goangel-j4-wt0" "$H/conn=$c/server=goangel-j4" req/s "$tmp/http.txt")"
done
echo
echo "benchstat, req/s (columns by server; the delta column is against the plain server; B/op and allocs/op are equal across servers):"
echo
echo '```'
# keep only the req/s table of benchstat's output (blocks are separated by blank lines)
benchstat -col '/server@(plain goangel-j1 goangel-j4 goangel-j4-wt0 goangel-j16)' "$tmp/http.txt" | awk -v RS= '/req\/s/ { print; exit }'
echo '```'

R=BenchmarkRespawn
cat <<SEC

### Respawn

Time from a panic in a supervised goroutine (\`app.Go\`) of instance #0 to the first HTTP answer
of its next life (fresh chi router and container, ten routes; \`GET /life\` polled on new
connections until the new life answers: clock=http), 2000 crashes per run; the replacement starts before the
crashed life is torn down in the background. Side by side: no restart policy to speak of
(\`WithRestartPolicy\`, respawn at once however often) and goangel's default policy (each
crashed life had answered a request, so it is respawned at once and does not count toward giving
up). With 4 instances the poll goes round the instances, so it may include an answer or three of
the others. The last two columns stop the clock earlier, when the Runner's \`Stats\` first show the
new life up (clock=flag, no HTTP poll: the clock of the benchmark before the supervisor redesign;
see the A/B section). Median of the runs (min–max). Targets: p50 ≤ 200 µs, p99 < 2 ms.

| instances | policy none, clock=http: p50 µs | p99 µs | default policy, clock=http: p50 µs | p99 µs | policy none, clock=flag: p50 µs | p99 µs |
|---|---|---|---|---|---|---|
| 1 | $(medspread "$R/policy=none/instances=1/clock=http" p50-µs "$tmp/respawn.txt") | $(medspread "$R/policy=none/instances=1/clock=http" p99-µs "$tmp/respawn.txt") | $(medspread "$R/policy=default/instances=1/clock=http" p50-µs "$tmp/respawn.txt") | $(medspread "$R/policy=default/instances=1/clock=http" p99-µs "$tmp/respawn.txt") | $(medspread "$R/policy=none/instances=1/clock=flag" p50-µs "$tmp/respawn.txt") | $(medspread "$R/policy=none/instances=1/clock=flag" p99-µs "$tmp/respawn.txt") |
| 4 | $(medspread "$R/policy=none/instances=4/clock=http" p50-µs "$tmp/respawn.txt") | $(medspread "$R/policy=none/instances=4/clock=http" p99-µs "$tmp/respawn.txt") | $(medspread "$R/policy=default/instances=4/clock=http" p50-µs "$tmp/respawn.txt") | $(medspread "$R/policy=default/instances=4/clock=http" p99-µs "$tmp/respawn.txt") | $(medspread "$R/policy=none/instances=4/clock=flag" p50-µs "$tmp/respawn.txt") | $(medspread "$R/policy=none/instances=4/clock=flag" p99-µs "$tmp/respawn.txt") |

Crash storm: 8 keep-alive clients load 4 instances while instance #0 is crashed again as soon as
it is back (storm=on) or never (storm=off). No request failed in any run (a failure fails the
benchmark).

| | p50 µs | p99 µs | crashes/s |
|---|---|---|---|
| storm=off | $(medspread BenchmarkCrashStorm/storm=off p50-µs "$tmp/respawn.txt") | $(medspread BenchmarkCrashStorm/storm=off p99-µs "$tmp/respawn.txt") | 0 |
| storm=on | $(medspread BenchmarkCrashStorm/storm=on p50-µs "$tmp/respawn.txt") | $(medspread BenchmarkCrashStorm/storm=on p99-µs "$tmp/respawn.txt") | $(medspread BenchmarkCrashStorm/storm=on crashes/s "$tmp/respawn.txt") |

### Crash loop of every instance

\`BenchmarkCrashLoop\`, goangel's default restart policy (no flags): 8 strict clients
(\`internal/loadclient\`: never retry, every failure counts) load 4 instances for 5 s per run while
every instance crashes on its next request (a poison request: answered, then the life ends):
never (off), every 0.5 s, or again as soon as its new life starts (back to back). Target: no
failed request, the process stays up. Median of the runs (min–max).

| conn | loop | req/s | × off | crashes/s | failed (all runs) | stayed up (runs) |
|---|---|---|---|---|---|---|
SEC
CL=BenchmarkCrashLoop
for c in keepalive new; do
  off=$(median "$CL/conn=$c/loop=off" req/s "$tmp/crashloop.txt")
  for l in off 500ms backtoback; do
    f="$CL/conn=$c/loop=$l"
    printf '| %s | %s | %s | %s | %s | %s | %s of %s |\n' "$c" "$l" "$(medspread "$f" req/s "$tmp/crashloop.txt")" \
      "$(ratio "$(median "$f" req/s "$tmp/crashloop.txt")" "$off")" "$(medspread "$f" crashes/s "$tmp/crashloop.txt")" \
      "$(_values "$f" failed "$tmp/crashloop.txt" | awk '{ s+=$1 } END { print s+0 }')" \
      "$(_values "$f" up "$tmp/crashloop.txt" | awk '{ s+=$1 } END { print s+0 }')" "$(_values "$f" up "$tmp/crashloop.txt" | wc -l)"
  done
done
cat <<SEC

### Instances

A Runner of N idle instances of the ten-route app: start time (Run to Ready) and what each
instance keeps (the runner's own fixed cost is shared out too, so N=1 is the worst case).
Targets: ≤ 32 KiB and ≤ 3 goroutines per idle instance; start cost linear in N. Median (min–max).

| N | start µs/instance | heap B/instance | heap+stacks B/instance | goroutines/instance |
|---|---|---|---|---|
SEC
for n in 1 16 256 1024; do
  f="BenchmarkInstances/instances=$n"
  printf '| %s | %s | %s | %s | %s |\n' "$n" "$(medspread "$f" start-µs/instance "$tmp/instances.txt")" \
    "$(medspread "$f" heap-B/instance "$tmp/instances.txt")" "$(medspread "$f" mem-B/instance "$tmp/instances.txt")" \
    "$(medspread "$f" goroutines/instance "$tmp/instances.txt")"
done

# The marginal cost of one more instance: (total at 1024 - total at 1) / 1023.
marginal() {
  awk -v a="$(median "BenchmarkInstances/instances=1024" "$1" "$tmp/instances.txt")" \
      -v b="$(median "BenchmarkInstances/instances=1" "$1" "$tmp/instances.txt")" \
      'BEGIN { printf "%.0f", (a*1024 - b) / 1023 }'
}
printf '| one more instance (1 → 1024, marginal) | | %s | %s | %s |\n' \
  "$(marginal heap-B/instance)" "$(marginal mem-B/instance)" \
  "$(awk -v a="$(median "BenchmarkInstances/instances=1024" goroutines/instance "$tmp/instances.txt")" -v b="$(median "BenchmarkInstances/instances=1" goroutines/instance "$tmp/instances.txt")" 'BEGIN { printf "%.2f", (a*1024 - b) / 1023 }')"
