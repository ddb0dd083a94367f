#!/usr/bin/env bash
# Pub/sub benchmarks: goangel's in-memory and NATS brokers beside the
# plain-channel floor, cskr/pubsub, watermill's gochannel and bare nats.go
# (embedded server), all in the same `go test` runs of bench/peers, printed as
# a markdown section (bench/results/pubsub.md holds the last one).
#
#   bash bench/scripts/pubsub.sh                  # COUNT=6 BENCHTIME=1s
#   COUNT=10 bash bench/scripts/pubsub.sh
#
# Each figure is the median of COUNT runs (computed here; benchstat's own
# output is in the details block).
source "$(dirname "$0")/lib.sh"
BENCHTIME=${BENCHTIME:-1s}

for i in $(seq "$COUNT"); do
  echo "pubsub: round $i/$COUNT" >&2
  (cd "$root/bench/peers" && go test -run '^$' -bench '^BenchmarkPubSubPeers$' -benchtime "$BENCHTIME" -count 1 .) >>"$tmp/peers.txt"
done
benchstat "$tmp/peers.txt" >"$tmp/peers.stat" 2>/dev/null || true

# "name unit value" lines (name without the Benchmark prefix and -GOMAXPROCS),
# then the median per name and unit.
awk '/^BenchmarkPubSubPeers\// {
  name = $1; sub(/^BenchmarkPubSubPeers\//, "", name); sub(/-[0-9]+$/, "", name)
  for (j = 3; j < NF; j += 2) print name, $(j + 1), $j
}' "$tmp/peers.txt" | sort -k1,1 -k2,2 -k3,3g >"$tmp/all"
awk '
  function flush() { if (n) print key, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }
  { k = $1 " " $2; if (k != key) { flush(); key = k; n = 0 } v[++n] = $3 }
  END { flush() }' "$tmp/all" >"$tmp/med"
# min and max per name and unit, to show the spread of the runs.
awk '{ k = $1 " " $2; if (!(k in lo) || $3 < lo[k]) lo[k] = $3; if (!(k in hi) || $3 > hi[k]) hi[k] = $3 }
  END { for (k in lo) print k, lo[k], hi[k] }' "$tmp/all" >"$tmp/range"

get() { awk -v n="$1" -v u="$2" '$1 == n && $2 == u { print $3; exit }' "$tmp/med"; }
fmt() { [ -n "$1" ] && awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo "n/a"; }
span() { awk -v n="$1" -v u="$2" '$1 == n && $2 == u { printf "%.2g–%.2g", $3 / 1e6, $4 / 1e6; exit }' "$tmp/range"; }
mdps() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.2fM", v / 1e6; else printf "%.0fk", v / 1e3 }' || echo "n/a"; }

systems=(channels goangel-memory cskr-pubsub watermill-gochannel nats.go-raw nats.go-json goangel-nats)
declare -A label=(
  [channels]="plain buffered channels (floor)" [goangel-memory]="**goangel memory**"
  [cskr-pubsub]="cskr/pubsub v1.0.2" [watermill-gochannel]="watermill gochannel v1.5.1"
  [nats.go-raw]="nats.go, 8 raw bytes" [nats.go-json]="nats.go + encoding/json"
  [goangel-nats]="**goangel NATS** (JSON codec)"
)

cat <<EOF
## Pub/sub

\`bash bench/scripts/pubsub.sh\` — $COUNT runs of $BENCHTIME per benchmark, medians. Every system runs
the same workloads (\`bench/internal/workload/pubsub.go\`) in one \`go test\` run of bench/peers
(\`bench/peers/pubsub_test.go\`); NATS is a nats-server v2.15 embedded in the test process on
127.0.0.1, one server for every NATS system of the run. $(nproc) cores shared with other busy jobs:
absolute figures move by ±15 % or more from run to run (and by more between runs), so read
the ratios to the floor measured in the same run.

**Fan-out:** one publisher, K receiving clients (each its own goroutine), every message to every
receiver, lossless: the floor sends on K buffered channels of 1024; goangel memory uses Block
subscriptions of 1024; cskr blocks; goangel NATS uses the default policy (the K receivers of the
broker share one NATS subscription) with a queue larger than the 4096 messages the workload lets
be in flight. ns and allocations are per publish, the whole process counted (receivers too).

| K | system | deliveries/s | (min–max of the runs, M/s) | × floor | ns / publish | allocs / publish |
|---|---|---|---|---|---|---|
EOF
for k in 4 16; do
  floor=$(get "fanout/K=$k/channels" deliveries/s)
  for s in "${systems[@]}"; do
    n="fanout/K=$k/$s"
    d=$(get "$n" deliveries/s)
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$k" "${label[$s]}" "$(mdps "$d")" "$(span "$n" deliveries/s)" "$(ratio "$d" "$floor")" \
      "$(fmt "$(get "$n" ns/op)" "%.0f")" "$(fmt "$(get "$n" allocs/op)" "%g")"
  done
done

cat <<EOF

**Latency:** 4 receivers, one publish every 100 µs (10k msg/s) stamped with its time; every
publish-to-receive delay of every receiver counted.

| system | p50 | p99 |
|---|---|---|
EOF
for s in "${systems[@]}"; do
  printf '| %s | %s µs | %s µs |\n' "${label[$s]}" "$(fmt "$(get "latency/$s" p50-µs)" "%.1f")" "$(fmt "$(get "latency/$s" p99-µs)" "%.1f")"
done

g4=$(get fanout/K=4/goangel-memory deliveries/s); f4=$(get fanout/K=4/channels deliveries/s)
g16=$(get fanout/K=16/goangel-memory deliveries/s); f16=$(get fanout/K=16/channels deliveries/s)
cat <<EOF

### goangel against the targets of issue #3

| target | measured (this run) |
|---|---|
| memory fan-out ≥ 0.6 × the channel floor, K = 4 | $(ratio "$g4" "$f4") × |
| memory fan-out ≥ 0.6 × the channel floor, K = 16 | $(ratio "$g16" "$f16") × |
| ≤ 1 allocation per publish, any K | K=4: $(fmt "$(get fanout/K=4/goangel-memory allocs/op)" "%g"), K=16: $(fmt "$(get fanout/K=16/goangel-memory allocs/op)" "%g") |
| p50 ≤ 10 µs, p99 ≤ 50 µs at 10k msg/s | $(fmt "$(get latency/goangel-memory p50-µs)" "%.1f") µs / $(fmt "$(get latency/goangel-memory p99-µs)" "%.1f") µs |
| NATS backend within 1.2 × bare nats.go (ns per publish, same server, same JSON) | K=4: $(ratio "$(get fanout/K=4/goangel-nats ns/op)" "$(get fanout/K=4/nats.go-json ns/op)") ×, K=16: $(ratio "$(get fanout/K=16/goangel-nats ns/op)" "$(get fanout/K=16/nats.go-json ns/op)") × (vs raw bytes: $(ratio "$(get fanout/K=4/goangel-nats ns/op)" "$(get fanout/K=4/nats.go-raw ns/op)") ×, $(ratio "$(get fanout/K=16/goangel-nats ns/op)" "$(get fanout/K=16/nats.go-raw ns/op)") ×) |

The fan-out payload is an int64 0 (boxing it costs nothing), so the allocations are the
broker's own. A payload whose boxing allocates (a non-constant string, a large int) costs that
one allocation, once per publish whatever K (\`TestPublishAllocs\` in pubsub checks ≤ 1 at K = 1
and K = 16).
Bare nats.go subscribes K times on one connection, so the server sends K copies and nats.go
parses K messages; goangel's NATS broker subscribes once per pattern and fans out to its K
local queues, which is why it can beat bare nats.go at fan-out while paying a header, a
queue hop and the JSON codec. Its latency adds the hop from nats.go's delivery goroutine to
the subscription's channel. The NATS figures spread the most from run to run (see the min–max
column and benchstat's ± below): on this loaded 2-core machine one NATS run of the same code can
be twice as fast as the next, so the NATS ratio of one run is a rough figure.

<details><summary>benchstat output</summary>

\`\`\`
$(cat "$tmp/peers.stat")
\`\`\`

</details>
EOF
