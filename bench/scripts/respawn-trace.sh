#!/usr/bin/env bash
# Where a respawn's time goes, seen from outside (issue 26.1): benchapp
# (BENCHAPP_TRACE) stamps each step of the respawn path — the /crash handler
# calling App.Crash, the Runner's EventEnded, EventRespawning and
# EventStarted, configure's start and end, the new life's first request —
# and `outside respawn -trace` stamps the client's: sending /crash, reading
# its answer, sending the poll that reached the new life, reading that
# answer. `outside trace` lines them up (one machine: one clock) and prints
# the median and p99 of each step, counted from the App.Crash call.
#
#   bash bench/scripts/respawn-trace.sh          # -j 1 and -j 4, 500 crashes each
#   CRASHES=2000 JS=4 bash bench/scripts/respawn-trace.sh
#
# Prints a markdown section (bench/report.sh stores it in
# bench/results/respawn-trace.md).
source "$(dirname "$0")/lib.sh"
CRASHES=${CRASHES:-500}
JS=${JS:-"1 4"}
bin=$tmp/bin
go build -o "$bin/" ./bench/cmd/benchapp ./bench/cmd/outside
cat <<HDR
## The respawn path, traced from outside

$(date -u +%Y-%m-%d), \`bash bench/scripts/respawn-trace.sh\` at $(git rev-parse --short HEAD), $(nproc) cores, $(go version | cut -d' ' -f3);
load average (1, 5, 15 min) $(cut -d' ' -f1-3 /proc/loadavg) at the start.
benchapp (goangel, default flags) stamps each step of the path (BENCHAPP_TRACE), the client
(\`outside respawn -trace\`, $CRASHES crashes, 10 ms apart) stamps its own, and \`outside trace\`
lines them up: µs from the /crash handler's call of App.Crash, median and p99 over the
crashes. ended, respawning and started are the Runner's events (EventEnded, EventRespawning,
EventStarted: the new life serves); configure-start and -end bracket the app's configure of
the new life; first-request is the new life's first request entering its handler; the
client-* steps are the client's (sending /crash, reading its answer, sending the poll that
reached the new life, reading that poll's answer).

HDR
for j in $JS; do
  port=$("$bin/outside" freeport)
  BENCHAPP_TRACE=$tmp/server-$j.txt "$bin/benchapp" -a 127.0.0.1 -p "$port" --quiet -j "$j" >"$tmp/app-$j.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; keep_raw; rm -rf "$tmp"' EXIT
  "$bin/outside" wait -addr "127.0.0.1:$port"
  echo "### -j $j"
  echo
  echo "outside respawn: $("$bin/outside" respawn -addr "127.0.0.1:$port" -n "$CRASHES" -trace "$tmp/client-$j.txt")"
  sleep 0.3 # benchapp writes its trace every 100 ms
  kill "$pid"
  wait "$pid" || true
  echo
  echo '```'
  "$bin/outside" trace -server "$tmp/server-$j.txt" -client "$tmp/client-$j.txt"
  echo '```'
  echo
done
