# Sourced by bench/scripts/AREA.sh (not a section of its own): moves to the
# repository root, makes sure benchstat is installed, sets COUNT (default 6)
# and tmp, a scratch directory removed on exit; defines ratio.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
export PATH="$(go env GOPATH)/bin:$PATH"
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@latest
COUNT=${COUNT:-6}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ratio A B prints A/B as "1.23x".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a/b }'; }
