#!/usr/bin/env bash
# Pub/sub benchmarks: goangel's in-memory and NATS brokers beside the
# plain-channel floor, cskr/pubsub, watermill's gochannel and bare nats.go
# (embedded server), all in the same `go test` runs of bench/peers, printed as
# a markdown section (bench/results/pubsub.md holds the last one).
#
#   bash bench/scripts/pubsub.sh                  # COUNT=6 BENCHTIME=1s NATS_COUNT=10
#   COUNT=10 bash bench/scripts/pubsub.sh
#
# After the full rounds, a focused A/B of goangel's NATS backend against bare
# nats.go with the same JSON codec (fan-out, K = 4 and 16): NATS_COUNT
# interleaved runs of just those four benchmarks (issue #15 asks for >= 10).
# BENCH_REUSE=dir re-renders the raw output a BENCH_RAW=dir run kept.
#
# Each figure is the median of COUNT runs (computed here; benchstat's own
# output is in the details block).
source "$(dirname "$0")/lib.sh"
BENCHTIME=${BENCHTIME:-1s}
NATS_COUNT=${NATS_COUNT:-10}

if [ -n "${BENCH_REUSE:-}" ]; then # re-render the raw output that BENCH_RAW kept
  cp "$BENCH_REUSE/pubsub-peers.txt" "$tmp/peers.txt"; cp "$BENCH_REUSE/pubsub-nats.txt" "$tmp/nats.txt"
  load0=${BENCH_LOAD0:-not recorded} load1=${BENCH_LOAD1:-not recorded} load2=${BENCH_LOAD2:-not recorded}
else
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  (cd "$root/bench/peers" && go test -c -o "$tmp/peers.test" .)
  for i in $(seq "$COUNT"); do
    echo "pubsub: round $i/$COUNT" >&2
    (cd "$root/bench/peers" && "$tmp/peers.test" -test.run '^$' -test.bench '^BenchmarkPubSubPeers$' -test.benchtime "$BENCHTIME") >>"$tmp/peers.txt"
  done
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  for i in $(seq "$NATS_COUNT"); do
    echo "pubsub: NATS A/B round $i/$NATS_COUNT" >&2
    (cd "$root/bench/peers" && "$tmp/peers.test" -test.run '^$' -test.bench '^BenchmarkPubSubPeers$/^fanout$/^K=(4|16)$/^(nats.go-json|goangel-nats)$' \
      -test.benchtime "$BENCHTIME") >>"$tmp/nats.txt"
  done
  load2=$(cut -d' ' -f1-3 /proc/loadavg)
fi
benchstat "$tmp/peers.txt" >"$tmp/peers.stat" 2>/dev/null || true
benchstat "$tmp/nats.txt" >"$tmp/nats.stat" 2>/dev/null || true

# "name unit value" lines (name without the Benchmark prefix and -GOMAXPROCS),
# then the median per name and unit ($1.med) and the min and max ($1.range).
summarise() {
  awk '/^BenchmarkPubSubPeers\// {
    name = $1; sub(/^BenchmarkPubSubPeers\//, "", name); sub(/-[0-9]+$/, "", name)
    for (j = 3; j < NF; j += 2) print name, $(j + 1), $j
  }' "$1" | sort -k1,1 -k2,2 -k3,3g >"$1.all"
  awk '
    function flush() { if (n) print key, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }
    { k = $1 " " $2; if (k != key) { flush(); key = k; n = 0 } v[++n] = $3 }
    END { flush() }' "$1.all" >"$1.med"
  awk '{ k = $1 " " $2; if (!(k in lo) || $3 < lo[k]) lo[k] = $3; if (!(k in hi) || $3 > hi[k]) hi[k] = $3 }
    END { for (k in lo) print k, lo[k], hi[k] }' "$1.all" >"$1.range"
}
summarise "$tmp/peers.txt"
summarise "$tmp/nats.txt"
cp "$tmp/peers.txt.med" "$tmp/med"
cp "$tmp/peers.txt.range" "$tmp/range"

get() { awk -v n="$1" -v u="$2" '$1 == n && $2 == u { print $3; exit }' "${3:-$tmp/med}"; }
fmt() { [ -n "$1" ] && awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo "n/a"; }
span() { awk -v n="$1" -v u="$2" '$1 == n && $2 == u { printf "%.2g–%.2g", $3 / 1e6, $4 / 1e6; exit }' "$tmp/range"; }
mdps() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.2fM", v / 1e6; else printf "%.0fk", v / 1e3 }' || echo "n/a"; }

systems=(channels channels-nonblocking goangel-memory goangel-memory-retained cskr-pubsub watermill-gochannel nats.go-raw nats.go-json goangel-nats)
declare -A label=(
  [channels]="plain buffered channels (floor)" [channels-nonblocking]="the same, each send tried non-blocking first"
  [goangel-memory]="**goangel memory**"
  [goangel-memory-retained]="goangel memory, every publish retained"
  [cskr-pubsub]="cskr/pubsub v1.0.2" [watermill-gochannel]="watermill gochannel v1.5.1"
  [nats.go-raw]="nats.go, 8 raw bytes" [nats.go-json]="nats.go + encoding/json"
  [goangel-nats]="**goangel NATS** (JSON codec)"
)

cat <<EOF
## Pub/sub — in-process benchmarks

$(date -u +%Y-%m-%d), \`bash bench/scripts/pubsub.sh\` — $COUNT runs of $BENCHTIME per benchmark, medians, then $NATS_COUNT runs of the NATS fan-out A/B;
load average (1, 5, 15 min) $load0 at the start, $load1 after the full runs, $load2 after the A/B. Every system runs
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
The second floor makes each send as goangel's broker must: a non-blocking try (select with
default), a waiting send only when it fails. A publisher may not wait on a full queue while it
holds the fence against the closing of queues, so no broker that closes a subscription's channel
under its publishers can send faster than that; its gap to the first floor is the price of the
try alone (the runtime reads the channel's count before taking its lock, one more cache-line
transfer per send when a receiver is busy on the other core).

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

cat <<EOF

**Request/reply:** one asker, one responder that answers every request with its payload, one
round trip after the other (\`Client.Request\`; bare nats.go: \`RequestWithContext\` with the
same JSON payload); ns and allocations per round trip.

| system | p50 | p99 | ns / round trip | allocs / round trip |
|---|---|---|---|---|
EOF
declare -A rlabel=([goangel-memory]="**goangel memory**" [nats.go-json]="nats.go + encoding/json" [goangel-nats]="**goangel NATS** (JSON codec)")
for s in goangel-memory nats.go-json goangel-nats; do
  printf '| %s | %s µs | %s µs | %s | %s |\n' "${rlabel[$s]}" "$(fmt "$(get "request/$s" p50-µs)" "%.1f")" "$(fmt "$(get "request/$s" p99-µs)" "%.1f")" \
    "$(fmt "$(get "request/$s" ns/op)" "%.0f")" "$(fmt "$(get "request/$s" allocs/op)" "%g")"
done

N="$tmp/nats.txt.med"
cat <<EOF

**NATS backend, focused A/B:** the K = 4 and K = 16 fan-out of goangel's NATS backend and of bare
nats.go with the same JSON codec, $NATS_COUNT interleaved runs of just those four (one embedded
server per run), medians (min–max of ns per publish).

| K | bare nats.go + JSON: ns / publish | goangel NATS: ns / publish | goangel ÷ bare (target ≤ 1.1) |
|---|---|---|---|
EOF
for k in 4 16; do
  r=$(awk -v n="fanout/K=$k/nats.go-json" '$1 == n && $2 == "ns/op" { printf "%.0f–%.0f", $3, $4; exit }' "$tmp/nats.txt.range")
  g=$(awk -v n="fanout/K=$k/goangel-nats" '$1 == n && $2 == "ns/op" { printf "%.0f–%.0f", $3, $4; exit }' "$tmp/nats.txt.range")
  printf '| %s | %s (%s) | %s (%s) | **%s** |\n' "$k" "$(fmt "$(get "fanout/K=$k/nats.go-json" ns/op "$N")" "%.0f")" "$r" \
    "$(fmt "$(get "fanout/K=$k/goangel-nats" ns/op "$N")" "%.0f")" "$g" \
    "$(ratio "$(get "fanout/K=$k/goangel-nats" ns/op "$N")" "$(get "fanout/K=$k/nats.go-json" ns/op "$N")")"
done

# verdict A OP B: "met" or "**not met**" for A OP B (OP: ge, le, lt).
verdict() { [ -n "$1" ] && [ -n "$3" ] && [ "$1" != n/a ] && awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
  ok = (op == "ge") ? a >= b : (op == "le") ? a <= b : a < b; print ok ? "met" : "**not met**" }' || echo "n/a"; }
dps() { get "fanout/K=$1/$2" deliveries/s; }
nsp() { get "fanout/K=$1/$2" ns/op; }
cat <<EOF

### goangel against the targets of issues #3 and #15

| target | measured (this run) | verdict |
|---|---|---|
EOF
for k in 4 16; do
  printf '| memory fan-out ≥ cskr/pubsub, K = %s (deliveries/s) | %s × cskr (%s vs %s) | %s |\n' "$k" \
    "$(ratio "$(dps $k goangel-memory)" "$(dps $k cskr-pubsub)")" "$(mdps "$(dps $k goangel-memory)")" "$(mdps "$(dps $k cskr-pubsub)")" \
    "$(verdict "$(dps $k goangel-memory)" ge "$(dps $k cskr-pubsub)")"
done
r4=$(ratio "$(dps 4 goangel-memory)" "$(dps 4 channels)")
F=BenchmarkPubSubPeers/fanout
printf '| memory fan-out ≥ 0.7 × the channel floor, K = 4 | %s × (ratio of the medians; within each round: %s) | %s |\n' "$r4" \
  "$(paired "$F/K=4/channels" "$F/K=4/goangel-memory" deliveries/s "$tmp/peers.txt")" "$(verdict "$r4" ge 0.7)"
printf '| (K = 16, for reference) | %s × | |\n' "$(ratio "$(dps 16 goangel-memory)" "$(dps 16 channels)")"
printf '| (for reference: the non-blocking floor ÷ the floor, K = 4 / 16; goangel ÷ the non-blocking floor) | %s × / %s ×; %s × / %s × | |\n' \
  "$(ratio "$(dps 4 channels-nonblocking)" "$(dps 4 channels)")" "$(ratio "$(dps 16 channels-nonblocking)" "$(dps 16 channels)")" \
  "$(ratio "$(dps 4 goangel-memory)" "$(dps 4 channels-nonblocking)")" "$(ratio "$(dps 16 goangel-memory)" "$(dps 16 channels-nonblocking)")"
a4=$(get fanout/K=4/goangel-memory allocs/op); a16=$(get fanout/K=16/goangel-memory allocs/op)
printf '| ≤ 1 allocation per publish, any K | K=4: %s, K=16: %s | %s |\n' "$(fmt "$a4" "%g")" "$(fmt "$a16" "%g")" \
  "$(verdict "$(awk -v a="$a4" -v b="$a16" 'BEGIN { print (a > b) ? a : b }')" le 1)"
for k in 4 16; do
  rr=$(ratio "$(nsp $k goangel-memory-retained)" "$(nsp $k goangel-memory)")
  printf '| retained publish ≤ 1.5 × a plain publish (ns per publish), K = %s | %s × (within each round: %s) | %s |\n' "$k" "$rr" \
    "$(paired "$F/K=$k/goangel-memory" "$F/K=$k/goangel-memory-retained" ns/op "$tmp/peers.txt")" "$(verdict "$rr" le 1.5)"
done
rq=$(get request/goangel-memory p50-µs)
printf '| request/reply round trip p50 ≤ 20 µs (memory) | %s µs (p99 %s µs) | %s |\n' "$(fmt "$rq" "%.1f")" "$(fmt "$(get request/goangel-memory p99-µs)" "%.1f")" "$(verdict "$rq" le 20)"
lp50=$(get latency/goangel-memory p50-µs); lp99=$(get latency/goangel-memory p99-µs)
printf '| latency p50 ≤ 10 µs, p99 ≤ 50 µs at 10k msg/s (memory) | %s µs / %s µs (the channel floor: %s µs / %s µs) | %s / %s |\n' "$(fmt "$lp50" "%.1f")" "$(fmt "$lp99" "%.1f")" \
  "$(fmt "$(get latency/channels p50-µs)" "%.1f")" "$(fmt "$(get latency/channels p99-µs)" "%.1f")" "$(verdict "$lp50" le 10)" "$(verdict "$lp99" le 50)"
for k in 4 16; do
  nr=$(ratio "$(get "fanout/K=$k/goangel-nats" ns/op "$N")" "$(get "fanout/K=$k/nats.go-json" ns/op "$N")")
  printf '| NATS backend within 1.1 × bare nats.go + JSON (ns per publish, focused A/B), K = %s | %s × (full runs: %s ×; vs raw bytes: %s ×) | %s |\n' "$k" "$nr" \
    "$(ratio "$(nsp $k goangel-nats)" "$(nsp $k nats.go-json)")" "$(ratio "$(nsp $k goangel-nats)" "$(nsp $k nats.go-raw)")" "$(verdict "$nr" le 1.1)"
done
echo
cat <<EOF
The fan-out payload is an int64 0 (boxing it costs nothing), so the allocations are the
broker's own. A payload whose boxing allocates (a non-constant string, a large int) costs that
one allocation, once per publish whatever K (\`TestPublishAllocs\` in pubsub checks ≤ 1 at K = 1
and K = 16).
Bare nats.go subscribes K times on one connection, so the server sends K copies and nats.go
parses K messages; goangel's NATS broker subscribes once per pattern and fans out to its K
local queues, which is why it can beat bare nats.go at fan-out while paying a queue hop and
the JSON codec (a plain publish carries its sender in its reply subject, so there is no header
to encode and parse: see pubsub.HeaderSender). Its latency adds the hop from nats.go's delivery goroutine to
the subscription's channel. The NATS figures spread the most from run to run (see the min–max
column and benchstat's ± below): on this loaded 2-core machine one NATS run of the same code can
be twice as fast as the next, so the NATS ratio of one run is a rough figure.

<details><summary>benchstat output</summary>

\`\`\`
$(cat "$tmp/peers.stat")
\`\`\`

The NATS A/B:

\`\`\`
$(cat "$tmp/nats.stat")
\`\`\`

</details>
EOF
