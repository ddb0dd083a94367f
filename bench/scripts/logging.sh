#!/usr/bin/env bash
# Logging benchmarks: goangel's logger and logrotate writer against a plain
# file (targets of issue #5), and file-rotatelogs / lumberjack used directly
# (bench/peers), LogWriters=8 goroutines writing at once. Prints a markdown
# section (bench/report.sh stores it in bench/results/logging.md).
#
#   bash bench/scripts/logging.sh            # -count 6
#   COUNT=10 bash bench/scripts/logging.sh
source "$(dirname "$0")/lib.sh"

# The machine is shared: run the COUNT rounds interleaved (-count 1 each),
# so that slow spells hit every benchmark alike rather than one of them.
load0=$(cut -d' ' -f1-3 /proc/loadavg)
go test -c -o "$tmp/goangel.test" ./bench/
(cd bench/peers && go test -c -o "$tmp/peers.test" .)
for _ in $(seq "$COUNT"); do
  (cd bench && "$tmp/goangel.test" -test.run '^$' -test.bench '^BenchmarkLogging$' -test.benchmem) >> "$tmp/goangel.txt"
  (cd bench/peers && "$tmp/peers.test" -test.run '^$' -test.bench '^BenchmarkLoggingPeers$' -test.benchmem) >> "$tmp/peers.txt"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# median ns/op, B/op, allocs/op per benchmark name (CPU suffix dropped)
medians() {
  awk '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name)
      for (i=3; i<NF; i++) if ($(i+1)=="ns/op") print name, $i }' "$1" | sort -k1,1 -k2,2g |
    awk '{ v[$1]=v[$1] " " $2; c[$1]++ }
      END { for (n in v) { split(substr(v[n],2), x, " "); k=c[n]; m=(k%2)?x[(k+1)/2]:(x[k/2]+x[k/2+1])/2; print n, m } }' |
    sort > "$1.ns"
  awk '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name)
      for (i=3; i<NF; i++) { if ($(i+1)=="B/op") b[name]=$i; if ($(i+1)=="allocs/op") a[name]=$i } }
    END { for (n in b) print n, b[n], a[n] }' "$1" | sort > "$1.mem"
  join "$1.ns" "$1.mem"
}
medians "$tmp/goangel.txt" > "$tmp/goangel.med"
medians "$tmp/peers.txt" > "$tmp/peers.med"
get() { awk -v n="$2" '$1==n {print $'"$3"'}' "$1"; }
verdict() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { print (a/b <= t) ? "met" : "**missed**" }'; }

B=BenchmarkLogging
lr=$(get "$tmp/goangel.med" $B/line/logrotate 2); lp=$(get "$tmp/goangel.med" $B/line/plain-file 2)
wr=$(get "$tmp/goangel.med" $B/write/logrotate 2); wp=$(get "$tmp/goangel.med" $B/write/plain-file 2)

cat <<HDR
## Logging — in-process benchmarks

$(date -u +%Y-%m-%d), \`bash bench/scripts/logging.sh\` ($COUNT interleaved rounds, medians), $(nproc) cores, $(go version | cut -d' ' -f3).
8 goroutines write at once (\`b.SetParallelism\`); files rotate by size every 16 MiB
(about 130k lines), so rotation is part of the cost. "line" is one instance log line
(app, instance, life plus three request fields) through goangel's logger set-up
(\`internal/logging\`, --quiet, text format); "write" is a raw 132-byte
\`Write\`. Every ratio is between two figures of the same run.
The machine is shared (load average $load0 at the start, $load1 at the end, on
$(nproc) cores): single figures swing by tens of percent (see the ± in the benchstat
block), the interleaved rounds make the ratios much steadier than the figures.

| target (issue #5) | goangel | baseline | ratio | target | |
|---|---:|---:|---:|---:|---|
| line: logger → rotating file vs same logger → plain file | $lr ns | $lp ns | $(ratio "$lr" "$lp") | ≤ 1.25x | $(verdict "$lr" "$lp" 1.25) |
| write: logrotate.Writer vs plain \*os.File | $wr ns | $wp ns | $(ratio "$wr" "$wp") | ≤ 1.3x | $(verdict "$wr" "$wp" 1.3) |

Peers used directly (bench/peers, one run; ratio against the plain file of that run):

| writer | write ns/op | ratio | B/op | allocs | line ns/op | ratio | B/op | allocs |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
HDR
P=BenchmarkLoggingPeers
pw=$(get "$tmp/peers.med" $P/write/plain-file 2); pl=$(get "$tmp/peers.med" $P/line/plain-file 2)
for w in plain-file logrotate file-rotatelogs lumberjack; do
  a=$(get "$tmp/peers.med" $P/write/$w 2); l=$(get "$tmp/peers.med" $P/line/$w 2)
  echo "| $w | $a | $(ratio "$a" "$pw") | $(get "$tmp/peers.med" $P/write/$w 3) | $(get "$tmp/peers.med" $P/write/$w 4) | $l | $(ratio "$l" "$pl") | $(get "$tmp/peers.med" $P/line/$w 3) | $(get "$tmp/peers.med" $P/line/$w 4) |"
done
echo
echo '<details><summary>benchstat</summary>'
echo
echo '```'
(cd "$tmp" && benchstat goangel.txt && echo && benchstat peers.txt) 2>&1
echo '```'
echo
echo '</details>'
