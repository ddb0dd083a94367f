#!/usr/bin/env bash
# Container benchmarks: goangel's container beside samber/do v2, dig and a
# hand-written lock-free map, all in the same runs, printed as a markdown
# section (bench/results/container.md holds the last one).
#
#   bash bench/scripts/container.sh              # COUNT=6 BENCHTIME=500ms
#   COUNT=10 BENCHTIME=1s bash bench/scripts/container.sh
#   PEERS_DIR=/some/copy/of/bench/peers bash bench/scripts/container.sh
#
# Runs are interleaved (main module, then peers, COUNT times) so that load
# from elsewhere on the machine spreads over every implementation; each
# figure is benchstat's median of COUNT runs.
source "$(dirname "$0")/lib.sh"
BENCHTIME=${BENCHTIME:-500ms}
PEERS_DIR=${PEERS_DIR:-$root/bench/peers}

load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load)
for i in $(seq "$COUNT"); do
  echo "container: round $i/$COUNT" >&2
  go test -run '^$' -bench '^BenchmarkContainer' -benchtime "$BENCHTIME" -count 1 ./bench/ >>"$tmp/main.txt"
  (cd "$PEERS_DIR" && go test -run '^$' -bench '^BenchmarkContainer$' -benchtime "$BENCHTIME" -count 1 .) >>"$tmp/peers.txt"
  # The parallel case again at GOMAXPROCS=1 and =all cores: 8 goroutines either way.
  (cd "$PEERS_DIR" && go test -run '^$' -bench '^BenchmarkContainer$/./^case=parallel$' -cpu "1,$(nproc)" \
    -benchtime "$BENCHTIME" -count 1 .) >>"$tmp/scale.txt"
done
load_end=$(load)

benchstat -col /impl -row /case "$tmp/peers.txt" >"$tmp/peers.stat" 2>/dev/null
benchstat -col /impl -row /case -format csv "$tmp/peers.txt" >"$tmp/peers.csv" 2>/dev/null
benchstat "$tmp/main.txt" >"$tmp/main.stat" 2>/dev/null
benchstat -col /gomaxprocs -row /impl "$tmp/scale.txt" >"$tmp/scale.stat" 2>/dev/null
benchstat -col /gomaxprocs -row /impl -format csv "$tmp/scale.txt" >"$tmp/scale.csv" 2>/dev/null
benchstat -format csv "$tmp/main.txt" >"$tmp/main.csv" 2>/dev/null

# Flatten benchstat's CSV into "impl case unit median" lines.
flatten() { # $1: csv, $2: impl name for a single-column table
  awk -F, -v single="$2" '
    /^,/ && !hdr { n = split($0, impls, ","); hdr = 1; next }
    /^,/ && hdr { split($0, units, ","); next }
    /^$/ { hdr = 0; next }
    hdr && $1 != "geomean" {
      for (j = 2; j <= NF; j++) if (units[j] != "" && units[j] != "CI" && units[j] != "vs base" && units[j] != "P" && $j != "") {
        impl = impls[j]; if (impl == "" || single != "") impl = single
        name = $1; sub(/-[0-9]+$/, "", name); sub(/^Container\//, "", name); sub(/^case=/, "", name)
        print impl, name, units[j], $j
      }
    }' "$1"
}
flatten "$tmp/peers.csv" "" >"$tmp/peers.flat"
flatten "$tmp/main.csv" goangel-main >"$tmp/main.flat"

get() { # impl case unit file
  awk -v i="$1" -v c="$2" -v u="$3" '$1 == i && $2 == c && $3 == u { print $4; exit }' "$4"
}
ns() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { v *= 1e9; if (v >= 1000) printf "%.2f µs", v / 1000; else printf "%.1f ns", v }' || echo "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }' || echo "n/a"; }
num() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { printf "%g", v }' || echo "n/a"; }
bytes() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { printf "%.1f", v }' || echo "n/a"; }
cell() { # impl case file
  local t a
  t=$(get "$1" "$2" sec/op "$3"); a=$(get "$1" "$2" allocs/op "$3")
  [ -n "$t" ] && echo "$(ns "$t") ($(num "$a") allocs)" || echo "n/a"
}

cases=(singleton named child factory parallel request)
declare -A what=(
  [singleton]="resolve a singleton"
  [named]="resolve a named value"
  [child]="new child scope + lookup found in the parent"
  [factory]="resolve a factory (new value each time)"
  [parallel]="singleton resolve, 8 goroutines (ns per resolve)"
  [request]="whole request scope: child, lookup, close"
)
declare -A target=(
  [singleton]="≤ 20 ns, 0 allocs" [named]="≤ 25 ns" [child]="≤ 100 ns, ≤ 1 alloc"
  [factory]="—" [parallel]="scales with cores, no read lock" [request]="≤ 100 ns, ≤ 1 alloc, 0 B retained"
)

cat <<EOF
## Container — in-process benchmarks

\`bash bench/scripts/container.sh\` — $COUNT interleaved runs of $BENCHTIME per benchmark; medians by benchstat; the spread of the runs is the ± beside each figure in the benchstat output at the end (its 95 % confidence interval of the median).
goangel, samber/do v2 (v2.0.0), go.uber.org/dig (v1.19.0) and a hand-written lock-free map
(\`bench/peers/container_test.go\`) run the same workloads (\`bench/internal/workload/container.go\`)
in one \`go test\` run, so the ratios are the figures to read. $(nproc) cores shared with other
busy jobs: absolute times move by ±15 % or more from run to run, ratios much less.
Load average (1, 5, 15 min) when the runs started: $load_start; when they ended: $load_end.

### goangel beside its peers (median time per op, allocations)

| case | goangel | samber/do v2 | dig | map baseline | samber/do ÷ goangel | dig ÷ goangel | map ÷ goangel |
|---|---|---|---|---|---|---|---|
EOF
for c in "${cases[@]}"; do
  g=$(get goangel "$c" sec/op "$tmp/peers.flat")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c: ${what[$c]}" \
    "$(cell goangel "$c" "$tmp/peers.flat")" "$(cell samberdo "$c" "$tmp/peers.flat")" \
    "$(cell dig "$c" "$tmp/peers.flat")" "$(cell map "$c" "$tmp/peers.flat")" \
    "$(ratio "$(get samberdo "$c" sec/op "$tmp/peers.flat")" "$g")" \
    "$(ratio "$(get dig "$c" sec/op "$tmp/peers.flat")" "$g")" \
    "$(ratio "$(get map "$c" sec/op "$tmp/peers.flat")" "$g")"
done
cat <<EOF

dig has no per-resolve factory, so its factory row is empty. samber/do needs a unique name per
child scope (a counter formatted per request, counted in its figures); dig copies its graph
into every child scope and keeps every child until the container is dropped.

### Bytes kept alive per finished request scope

Heap still reachable after \`runtime.GC()\`, divided by the number of request scopes run.

| goangel | samber/do v2 | dig | map baseline |
|---|---|---|---|
EOF
printf '| %s B | %s B | %s B | %s B |\n' \
  "$(bytes "$(get goangel request B-retained/scope "$tmp/peers.flat")")" \
  "$(bytes "$(get samberdo request B-retained/scope "$tmp/peers.flat")")" \
  "$(bytes "$(get dig request B-retained/scope "$tmp/peers.flat")")" \
  "$(bytes "$(get map request B-retained/scope "$tmp/peers.flat")")"

cat <<EOF

### goangel against the targets of issue #4

"main" is \`BenchmarkContainer\` in the main module (\`bench/container_test.go\`), "peers" the
goangel column above, "direct" calls \`container.Make\` without the workload's function value.

| case | target | goangel (main) | goangel (peers) | goangel (direct) |
|---|---|---|---|---|
EOF
for c in "${cases[@]}"; do
  d=$(get goangel-main "ContainerDirect/case=$c" sec/op "$tmp/main.flat")
  [ -n "$d" ] && d="$(cell goangel-main "ContainerDirect/case=$c" "$tmp/main.flat")" || d="—"
  extra=""
  [ "$c" = request ] && extra=", $(bytes "$(get goangel-main request B-retained/scope "$tmp/main.flat")") B retained"
  printf '| %s | %s | %s%s | %s | %s |\n' "$c" "${target[$c]}" \
    "$(cell goangel-main "$c" "$tmp/main.flat")" "$extra" "$(cell goangel "$c" "$tmp/peers.flat")" "$d"
done
cat <<EOF

### Parallel resolves: scaling with cores

The singleton resolve from 8 goroutines, with GOMAXPROCS=1 and GOMAXPROCS=$(nproc) (time per
resolve). The ideal speed-up is $(nproc)× on an idle machine; on this shared one other jobs take
some of the cores, so read goangel's speed-up beside the map baseline's, which has no lock either.

| impl | GOMAXPROCS=1 | GOMAXPROCS=$(nproc) | speed-up |
|---|---|---|---|
EOF
awk -F, '/sec\/op/ { on = 1; next } /^$/ { on = 0 } on && $1 != "geomean" { print $1, $2, $4 }' "$tmp/scale.csv" |
  while read -r impl one all; do
    printf '| %s | %s | %s | %s |\n' "$impl" "$(ns "$one")" "$(ns "$all")" "$(ratio "$one" "$all")"
  done

cat <<EOF

<details><summary>benchstat output</summary>

\`\`\`
$(cat "$tmp/peers.stat")
\`\`\`

\`\`\`
$(cat "$tmp/main.stat")
\`\`\`

\`\`\`
$(cat "$tmp/scale.stat")
\`\`\`

</details>
EOF
