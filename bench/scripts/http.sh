#!/usr/bin/env bash
# HTTP, respawn and per-instance benchmarks (issue #6 targets). Prints a
# markdown section (bench/report.sh stores it in bench/results/http.md).
#
#   bash bench/scripts/http.sh           # -count 6
#   COUNT=10 bash bench/scripts/http.sh
source "$(dirname "$0")/lib.sh"

go test -c -o "$tmp/bench.test" ./bench/
# Interleave the runs (one -count at a time) so slow drift of a noisy machine
# hits goangel and the plain server alike.
for _ in $(seq "$COUNT"); do
  "$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkHTTP$' -test.benchtime 20000x >> "$tmp/http.txt"
  "$tmp/bench.test" -test.run '^$' -test.bench '^Benchmark(Respawn|CrashStorm)$' -test.benchtime 2000x >> "$tmp/respawn.txt"
  "$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkInstances$' -test.benchtime 5x >> "$tmp/instances.txt"
done

# median of metric $2 for benchmark $1 in file $3
median() {
  awk -v n="$1" -v m="$2" '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); if (name != n) next
      for (i=3; i<NF; i++) if ($(i+1)==m) print $i }' "$3" | sort -g |
    awk '{ x[NR]=$1 } END { if (NR==0) { print "nan"; exit } print (NR%2) ? x[(NR+1)/2] : (x[NR/2]+x[NR/2+1])/2 }'
}
H=BenchmarkHTTP
cat <<HDR
## HTTP through the Runner

$(date -u +%Y-%m-%d), \`bash bench/scripts/http.sh\` (-count $COUNT, interleaved, medians), $(nproc) cores, $(go version | cut -d' ' -f3).
The ten-route chi app answers \`GET /\` to ${COUNT}×20000 requests from 8 concurrent clients over loopback,
through goangel's Runner with 1, 4 and 16 instances on one shared listener, and through the same
chi router on one plain \`net/http\` server, in the same run; with keep-alive connections and with a
new connection per request (client closes with SO_LINGER 0). The client runs on the same 2 cores,
so these are whole-system rates.

| case | plain server req/s | goangel -j 1 | -j 4 | -j 16 | ratio -j 4 / plain (target ≥ 0.97) |
|---|---|---|---|---|---|
HDR
for c in keepalive new; do
  p=$(median "$H/conn=$c/server=plain" req/s "$tmp/http.txt")
  j1=$(median "$H/conn=$c/server=goangel-j1" req/s "$tmp/http.txt")
  j4=$(median "$H/conn=$c/server=goangel-j4" req/s "$tmp/http.txt")
  j16=$(median "$H/conn=$c/server=goangel-j16" req/s "$tmp/http.txt")
  printf '| %s | %.0f | %.0f (%s) | %.0f (%s) | %.0f (%s) | **%s** |\n' "$c" "$p" "$j1" "$(ratio "$j1" "$p")" "$j4" "$(ratio "$j4" "$p")" "$j16" "$(ratio "$j16" "$p")" "$(ratio "$j4" "$p")"
done
echo
echo "benchstat, req/s (columns by server; the delta column is against the plain server; B/op and allocs/op are equal across servers):"
echo
echo '```'
# keep only the req/s table of benchstat's output (blocks are separated by blank lines)
benchstat -col /server "$tmp/http.txt" | awk -v RS= '/req\/s/ { print; exit }'
echo '```'

R=BenchmarkRespawn
cat <<SEC

### Respawn

Time from a panic in a supervised goroutine (\`app.Go\`) of instance #0 to its next life serving
again (fresh chi router and container, ten routes), 2000 crashes per run; the replacement starts
before the crashed life is torn down in the background. Targets: p50 ≤ 200 µs, p99 < 2 ms.

| instances | p50 µs | p99 µs |
|---|---|---|
| 1 | $(median "$R/instances=1" p50-µs "$tmp/respawn.txt") | $(median "$R/instances=1" p99-µs "$tmp/respawn.txt") |
| 4 | $(median "$R/instances=4" p50-µs "$tmp/respawn.txt") | $(median "$R/instances=4" p99-µs "$tmp/respawn.txt") |

Crash storm: 8 keep-alive clients load 4 instances while instance #0 is crashed again as soon as
it is back (storm=on) or never (storm=off). No request failed in any run (a failure fails the
benchmark).

| | p50 µs | p99 µs | crashes/s |
|---|---|---|---|
| storm=off | $(median BenchmarkCrashStorm/storm=off p50-µs "$tmp/respawn.txt") | $(median BenchmarkCrashStorm/storm=off p99-µs "$tmp/respawn.txt") | 0 |
| storm=on | $(median BenchmarkCrashStorm/storm=on p50-µs "$tmp/respawn.txt") | $(median BenchmarkCrashStorm/storm=on p99-µs "$tmp/respawn.txt") | $(median BenchmarkCrashStorm/storm=on crashes/s "$tmp/respawn.txt") |

### Instances

A Runner of N idle instances of the ten-route app: start time (Run to Ready) and what each
instance keeps (the runner's own fixed cost is shared out too, so N=1 is the worst case).
Targets: ≤ 32 KiB and ≤ 3 goroutines per idle instance; start cost linear in N.

| N | start µs/instance | heap B/instance | heap+stacks B/instance | goroutines/instance |
|---|---|---|---|---|
SEC
for n in 1 16 256 1024; do
  f="BenchmarkInstances/instances=$n"
  printf '| %s | %s | %s | %s | %s |\n' "$n" "$(median "$f" start-µs/instance "$tmp/instances.txt")" \
    "$(median "$f" heap-B/instance "$tmp/instances.txt")" "$(median "$f" mem-B/instance "$tmp/instances.txt")" \
    "$(median "$f" goroutines/instance "$tmp/instances.txt")"
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
