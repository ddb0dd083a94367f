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
source "$(dirname "$0")/lib.sh"
CRASHES=${CRASHES:-500}
JS=${JS:-"1 4"}
bin=$tmp/bin
go build -o "$bin/" ./bench/cmd/benchapp ./bench/cmd/outside
for j in $JS; do
  port=$("$bin/outside" freeport)
  BENCHAPP_TRACE=$tmp/server-$j.txt "$bin/benchapp" -a 127.0.0.1 -p "$port" --quiet -j "$j" >"$tmp/app-$j.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; keep_raw; rm -rf "$tmp"' EXIT
  "$bin/outside" wait -addr "127.0.0.1:$port"
  echo "### -j $j: $("$bin/outside" respawn -addr "127.0.0.1:$port" -n "$CRASHES" -trace "$tmp/client-$j.txt")"
  kill "$pid"
  wait "$pid" || true
  echo '```'
  "$bin/outside" trace -server "$tmp/server-$j.txt" -client "$tmp/client-$j.txt"
  echo '```'
done
