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
