# Sourced by bench/scripts/AREA.sh (not a section of its own): moves to the
# repository root, makes sure benchstat is installed, sets COUNT (default 6)
# and tmp, a scratch directory removed on exit (BENCH_RAW=dir keeps the raw
# benchmark output, tmp's *.txt, in dir); defines ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
export PATH="$(go env GOPATH)/bin:$PATH"
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest
COUNT=${COUNT:-6}
tmp=$(mktemp -d)
# keep_raw copies the raw output to $BENCH_RAW/AREA-*.txt (when set).
keep_raw() {
  [ -n "${BENCH_RAW:-}" ] || return 0
  mkdir -p "$BENCH_RAW"
  for f in "$tmp"/*.txt; do [ -f "$f" ] && cp "$f" "$BENCH_RAW/$(basename "$0" .sh)-$(basename "$f")"; done
  return 0
}
trap 'keep_raw; rm -rf "$tmp"' EXIT

# ratio A B prints A/B as "1.23x".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a/b }'; }

# median B M FILE: the median of metric M of benchmark B (name without the
# -GOMAXPROCS suffix) over the runs in FILE ("nan" when there is none).
median() {
  _values "$@" | awk '{ x[NR]=$1 } END { if (NR==0) { print "nan"; exit } print (NR%2) ? x[(NR+1)/2]+0 : (x[NR/2]+x[NR/2+1])/2 }'
}
# spread B M FILE: "min–max" of metric M of benchmark B over the runs in FILE.
spread() { _values "$@" | awk 'NR==1 { lo=$1 } { hi=$1 } END { if (NR==0) print "nan"; else printf "%g–%g", lo, hi }'; }
# medspread B M FILE: "median (min–max)".
medspread() { echo "$(median "$@") ($(spread "$@"))"; }
_values() {
  awk -v n="$1" -v m="$2" '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); if (name != n) next
      for (i=3; i<NF; i++) if ($(i+1)==m) print $i }' "$3" | sort -g
}
# paired A B M FILE: the ratio B/A of metric M within each round (the i-th
# run of B over the i-th run of A: the same round, seconds apart), as
# "median (min–max)" over the rounds.
paired() {
  awk -v a="$1" -v b="$2" -v m="$3" '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name)
      for (i=3; i<NF; i++) if ($(i+1)==m) { if (name==a) x[++na]=$i; else if (name==b) y[++nb]=$i } }
    END { for (i=1; i<=na && i<=nb; i++) print y[i]/x[i] }' "$4" | sort -g |
    awk '{ v[NR]=$1 } END { if (NR==0) { print "nan"; exit }
      printf "%.2fx (%.2f–%.2f)", (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2, v[1], v[NR] }'
}

# paired2 A FA B FB M: the ratio B/A of metric M within each round, where A's
# runs are in file FA and B's in file FB (the i-th run of B over the i-th run
# of A), as "median (min–max)" over the rounds.
paired2() {
  paste <(_runs "$1" "$5" "$2") <(_runs "$3" "$5" "$4") | awk 'NF==2 { print $2/$1 }' | sort -g |
    awk '{ v[NR]=$1 } END { if (NR==0) { print "nan"; exit }
      printf "%.2fx (%.2f–%.2f)", (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2, v[1], v[NR] }'
}
# _runs B M FILE: metric M of benchmark B, one line per run, in run order.
_runs() {
  awk -v n="$1" -v m="$2" '/^Benchmark/ { name=$1; sub(/-[0-9]+$/, "", name); if (name != n) next
      for (i=3; i<NF; i++) if ($(i+1)==m) print $i }' "$3"
}
# verdict R: "better", "worse" or "equal" for a per-round ratio R as printed
# by paired/paired2 ("1.23x (1.10–1.40)"), where above 1 is better: better
# when the median is ≥ 1.05 and every round is above 1, worse when the median
# is ≤ 0.95 and every round is below 1, equal otherwise.
verdict() {
  echo "$1" | tr -d 'x()' | tr '–' ' ' | awk '{ m=$1; lo=$2; hi=$3
    if (m >= 1.05 && lo > 1) print "better"; else if (m <= 0.95 && hi < 1) print "worse"; else print "equal" }'
}

# A/B of an old commit against this tree (bench/scripts/*-ab.sh, ab.sh).
# ab_build OLD: checks commit OLD out in a temporary git worktree (removed on
# exit, with tmp) and builds the bench test binaries of both trees,
# $tmp/old.test and $tmp/new.test.
ab_build() {
  git worktree add --detach --quiet "$tmp/old" "$1"
  trap 'keep_raw; git worktree remove --force "$tmp/old" 2>/dev/null; rm -rf "$tmp"' EXIT
  (cd "$tmp/old" && go test -c -o "$tmp/old.test" ./bench/)
  go test -c -o "$tmp/new.test" ./bench/
}
# ab_rounds LABEL: COUNT rounds of the caller's functions old and new (each
# given the round number), interleaved, the side that runs first alternating
# round by round so that a slow spell of the shared machine and the warm-up of
# the first process hit both; sets load0 and load1 (load average before, after).
ab_rounds() {
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  local i
  for i in $(seq "$COUNT"); do
    echo "$1: round $i/$COUNT" >&2
    if ((i % 2)); then old "$i"; new "$i"; else new "$i"; old "$i"; fi
  done
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
}
