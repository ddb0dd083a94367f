#!/usr/bin/env bash
# HTTP, container and pubsub before and after this round of work, in one run:
# commit 79382f2's BenchmarkHTTP, BenchmarkContainer and BenchmarkPubSub
# (memory fan-out and the channel floor) beside today's. Prints a markdown
# section (bench/report.sh stores it in bench/results/ab.md).
#
#   bash bench/scripts/ab.sh                        # -count 4
#   COUNT=6 OLD=79382f2 HTTP_REQS=40000 BENCHTIME=500ms bash bench/scripts/ab.sh
#   BENCH_REUSE=dir COUNT=6 bash bench/scripts/ab.sh  # re-render what BENCH_RAW=dir kept
#
# As respawn-ab.sh: the old code is checked out in a temporary git worktree
# (removed on exit), test binaries are built from both trees, and the rounds
# are interleaved with the side that runs first alternating.
COUNT=${COUNT:-4} # before lib.sh, whose default is 6
source "$(dirname "$0")/lib.sh"
OLD=${OLD:-79382f2}
HTTP_REQS=${HTTP_REQS:-40000} # requests per BenchmarkHTTP run
BENCHTIME=${BENCHTIME:-500ms} # per container and pubsub benchmark

if [ -n "${BENCH_REUSE:-}" ]; then # re-render the raw output that BENCH_RAW kept
  for f in "$BENCH_REUSE"/ab-*.txt; do b=$(basename "$f"); cp "$f" "$tmp/${b#ab-}"; done
  load0=${BENCH_LOAD0:-not recorded} load1=${BENCH_LOAD1:-not recorded}
else
  ab_build "$OLD"
fi

# The benchmarks of both trees, mapped explicitly (the names are the same in
# both trees; the new trees' extra cases are left out so both sides run the
# same work): HTTP without goangel-j4-wt0, container's six cases and the three
# of BenchmarkContainerDirect (Make called without the workload's function
# values, so a change of the harness shows apart from one of the container), pubsub's
# fan-out K=4 and K=16 through the memory broker and the plain-channel floor
# (without goangel-memory-retained and goangel-nats).
HTTP_RE='^BenchmarkHTTP$/./^server=(plain|goangel-j1|goangel-j4|goangel-j16)$'
CONT_RE='^BenchmarkContainer(Direct)?$'
PS_RE='^BenchmarkPubSub$/^fanout$/./^(channels|goangel-memory)$'
run() { # side round
  local t="$tmp/$1.test"
  # The new BenchmarkHTTP alternates the order of its servers with BENCH_HTTP_ROUND (the old one ignores it).
  BENCH_HTTP_ROUND=$2 "$t" -test.run '^$' -test.bench "$HTTP_RE" -test.benchtime "${HTTP_REQS}x" >>"$tmp/$1-http.txt"
  "$t" -test.run '^$' -test.bench "$CONT_RE" -test.benchtime "$BENCHTIME" >>"$tmp/$1-container.txt"
  "$t" -test.run '^$' -test.bench "$PS_RE" -test.benchtime "$BENCHTIME" >>"$tmp/$1-pubsub.txt"
}
old() { run old "$1"; }
new() { run new "$1"; }
[ -n "${BENCH_REUSE:-}" ] || ab_rounds ab

# cell B M FILE: "median (min–max)" of metric M of B, rounded to integers when large.
cell() {
  echo "$(median "$@" | awk '{ printf ($1 >= 100) ? "%.0f" : "%.3g", $1 }') ($(_values "$@" | awk 'NR==1 { lo=$1 } { hi=$1 }
    END { f = (hi >= 100) ? "%.0f–%.0f" : "%.3g–%.3g"; printf f, lo, hi }'))"
}
# ab B M KIND: new ÷ old (per-round) of metric M of B; KIND "time" (lower is
# better: printed as old ÷ new, the speed-up) or "rate" (higher is better).
ab() {
  local r
  if [ "$3" = time ]; then r=$(paired2 "$1" "$tmp/new-$4.txt" "$1" "$tmp/old-$4.txt" "$2")
  else r=$(paired2 "$1" "$tmp/old-$4.txt" "$1" "$tmp/new-$4.txt" "$2"); fi
  local v
  v=$(verdict "$r")
  echo "$v $5: $r" >>"$tmp/verdicts" # for the summary at the end
  echo "$r | $v"
}

H=BenchmarkHTTP
cat <<HDR
## HTTP, container and pubsub before and after this round (A/B) — in-process benchmarks

$(date -u +%Y-%m-%d), \`bash bench/scripts/ab.sh\` (-count $COUNT, interleaved, the side that runs first
alternating round by round), $(nproc) cores, $(go version | cut -d' ' -f3); load average (1, 5, 15 min)
$load0 at the start, $load1 at the end. "Old" is commit $OLD (before this round of work), built
from a git worktree of that commit; "new" is this tree. Both run the same benchmarks under the
same names (the new tree's extra cases are left out). Each cell is the median of the rounds
(min–max); each ratio pairs the runs of one round (seconds apart) and gives the median of those
per-round ratios (min–max). Verdict: **better** when that median is ≥ 1.05 and every round is
above 1, **worse** when it is ≤ 0.95 and every round is below 1, **equal** otherwise (within the
noise of a shared 2-core machine).

### HTTP

\`BenchmarkHTTP\`: the ten-route chi app, $HTTP_REQS requests of \`GET /\` per run from 8 concurrent clients over
loopback, through goangel's Runner with 1, 4 and 16 instances on one shared listener and through
the same router on a plain \`net/http\` server, in the same process; keep-alive and a new connection
per request. The new tree alternates the order of the servers round by round; the old one always
runs the plain server first. The "-j 4 / plain" column is each side's own ratio (the one the
target ≥ 0.97 is about).

| case | side | plain req/s | goangel -j 1 | -j 4 | -j 16 | -j 4 / plain, per round |
|---|---|---|---|---|---|---|
HDR
for c in keepalive new; do
  for s in old new; do
    f="$tmp/$s-http.txt"
    printf '| %s | %s | %s | %s | %s | %s | **%s** |\n' "$c" "$s" "$(cell "$H/conn=$c/server=plain" req/s "$f")" \
      "$(cell "$H/conn=$c/server=goangel-j1" req/s "$f")" "$(cell "$H/conn=$c/server=goangel-j4" req/s "$f")" \
      "$(cell "$H/conn=$c/server=goangel-j16" req/s "$f")" \
      "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j4" req/s "$f")"
  done
done
cat <<SEC

New ÷ old req/s, per round:

| case | server | new ÷ old req/s | verdict |
|---|---|---|---|
SEC
for c in keepalive new; do
  for s in plain goangel-j1 goangel-j4 goangel-j16; do
    printf '| %s | %s | %s |\n' "$c" "$s" "$(ab "$H/conn=$c/server=$s" req/s rate http "HTTP conn=$c $s req/s new ÷ old")"
  done
done
cat <<SEC

B/op and allocs/op per request (median), old → new:

| case | plain | goangel -j 4 |
|---|---|---|
SEC
for c in keepalive new; do
  bo() { echo "$(median "$H/conn=$c/server=$1" B/op "$tmp/old-http.txt") B, $(median "$H/conn=$c/server=$1" allocs/op "$tmp/old-http.txt") allocs → $(median "$H/conn=$c/server=$1" B/op "$tmp/new-http.txt") B, $(median "$H/conn=$c/server=$1" allocs/op "$tmp/new-http.txt") allocs"; }
  printf '| %s | %s | %s |\n' "$c" "$(bo plain)" "$(bo goangel-j4)"
done

C=BenchmarkContainer
cat <<SEC

### Container

\`BenchmarkContainer\` (the same six cases in both trees, through the workload's function values)
and \`BenchmarkContainerDirect\` (\`direct/\`: \`container.Make\` called in the loop itself, the same in
both trees, so that a change of the benchmark harness shows apart from one of the container),
-benchtime $BENCHTIME. Speed-up is old ns/op ÷ new ns/op (above 1: the new container is faster).

| case | old ns/op | new ns/op | old allocs, B/op | new allocs, B/op | speed-up, per round | verdict |
|---|---|---|---|---|---|---|
SEC
for k in singleton named child factory parallel request direct/singleton direct/named direct/child; do
  b="$C/case=$k"
  [ "${k#direct/}" = "$k" ] || b="${C}Direct/case=${k#direct/}"
  printf '| %s | %s | %s | %s, %s | %s, %s | %s |\n' "$k" "$(cell "$b" ns/op "$tmp/old-container.txt")" "$(cell "$b" ns/op "$tmp/new-container.txt")" \
    "$(median "$b" allocs/op "$tmp/old-container.txt")" "$(median "$b" B/op "$tmp/old-container.txt")" \
    "$(median "$b" allocs/op "$tmp/new-container.txt")" "$(median "$b" B/op "$tmp/new-container.txt")" \
    "$(ab "$b" ns/op time container "container $k speed-up")"
done

P=BenchmarkPubSub/fanout
cat <<SEC

### Pubsub

\`BenchmarkPubSub\` fan-out (one publisher, K subscribers of one subject, every message delivered
to all K), -benchtime $BENCHTIME: goangel's memory broker (\`fanout/K=*/goangel-memory\` in both trees) and
the plain-channel floor (\`fanout/K=*/channels\`); deliveries per second. The new tree's
\`goangel-memory-retained\` and \`goangel-nats\` cases are left out.

| case | old deliveries/s | new deliveries/s | new ÷ old, per round | verdict | memory ÷ channels, old | memory ÷ channels, new |
|---|---|---|---|---|---|---|
SEC
for k in 4 16; do
  for t in goangel-memory channels; do
    b="$P/K=$k/$t"
    ro="" rn=""
    if [ $t = goangel-memory ]; then
      ro=$(paired "$P/K=$k/channels" "$b" deliveries/s "$tmp/old-pubsub.txt")
      rn=$(paired "$P/K=$k/channels" "$b" deliveries/s "$tmp/new-pubsub.txt")
    fi
    printf '| K=%s %s | %s | %s | %s | %s | %s |\n' "$k" "$t" "$(cell "$b" deliveries/s "$tmp/old-pubsub.txt")" \
      "$(cell "$b" deliveries/s "$tmp/new-pubsub.txt")" "$(ab "$b" deliveries/s rate pubsub "pubsub fan-out K=$k $t deliveries/s new ÷ old")" "$ro" "$rn"
  done
done

# In short: every row with its verdict, better and worse first.
echo
echo "### In short"
echo
for v in better worse equal; do
  rows=$(awk -v v="$v" '$1 == v { $1 = ""; sub(/^ /, ""); printf "%s%s", sep, $0; sep = "; " }' "$tmp/verdicts")
  printf -- '- **%s**: %s.\n' "$v" "${rows:-none}"
done
for c in keepalive new; do
  printf -- '- HTTP conn=%s, -j 4 / plain (target ≥ 0.97): old %s, new %s.\n' "$c" \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j4" req/s "$tmp/old-http.txt")" \
    "$(paired "$H/conn=$c/server=plain" "$H/conn=$c/server=goangel-j4" req/s "$tmp/new-http.txt")"
done
