#!/usr/bin/env bash
# What a user sees, measured from outside the process (issue 26): goangel
# (bench/cmd/benchapp, its default CLI policy) and the same ten-route chi
# router on one plain net/http server (bench/cmd/plainapp), each its own
# process, loaded by clients in other processes over loopback:
#   - HTTP/1.1 requests/s, keep-alive and a new connection per request
#     ("Connection: close"), wrk -t1 -c16, goangel -j 1, 4, 16 and 64 against
#     the plain server;
#   - HTTP/2, h2load -t1 -c16 -m10: cleartext (h2c, prior knowledge) and over
#     TLS, goangel -j 4 --http2 [--ssl] against the plain server with the same
#     protocols;
#   - respawn: bench/cmd/outside crashes a life (GET /crash answers, then the
#     life ends) and polls GET /life on new connections until the crashed
#     instance's next life answers, -j 1 and -j 4; beside it, the same
#     client's plain new-connection round trip to the plain server (the floor:
#     the last poll is one such round trip);
#   - the reload's dip: goangel -j 4 under wrk with a SIGHUP every 2 s against
#     the same run without reloads, keep-alive and new connections.
# ROUNDS rounds (default 6); in each, the two sides of every throughput pair
# run A, B, B, A (B, A, A, B in even rounds), so that a drift of the shared
# machine during the pair hits both alike; the reload pairs run A, B, then
# B, A in the next round. The
# machine's load average is recorded per round. Every figure is the median of
# the rounds with their min–max; ratios are per round (both sides seconds
# apart), then their median. A failed request (a wrk socket error or non-2xx
# answer, an h2load failure, a failed poll) is reported in the table.
#
#   bash bench/scripts/outside.sh            # ~13 minutes
#   ROUNDS=2 bash bench/scripts/outside.sh   # a quick look
#   OLD=791bc96 bash bench/scripts/outside.sh   # goangel of an older commit
#
# Installs wrk and h2load (Debian's wrk and nghttp2-client) when it runs as
# root on Debian; else it says what to install. Prints a markdown section
# (bench/report.sh stores it in bench/results/outside.md).
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-6}
DUR=${DUR:-2}             # seconds per throughput run (each side runs twice per round)
CRASHES=${CRASHES:-200}   # timed crashes per respawn run
JS=${JS:-"1 4 16 64"}     # goangel instance counts for HTTP/1.1
say() { echo "outside: $*" >&2; }

# --- tools -------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} from Debian"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2
  else
    say "needs ${missing[*]} (Debian packages): apt-get install ${missing[*]}"
    exit 1
  fi
fi
bin=$tmp/bin
go build -o "$bin/" ./bench/cmd/benchapp ./bench/cmd/plainapp ./bench/cmd/outside
rev=$(git rev-parse --short HEAD)
if [ -n "${OLD:-}" ]; then
  # goangel as of commit OLD (its production/ and everything it imports),
  # built with this tree's bench apps: the "before" of a change.
  git worktree add --detach --quiet "$tmp/old" "$OLD"
  trap 'git worktree remove --force "$tmp/old" 2>/dev/null; rm -rf "$tmp"' EXIT
  rm -rf "$tmp/old/bench/cmd/benchapp"
  cp -r bench/cmd/benchapp "$tmp/old/bench/cmd/"
  cp bench/internal/workload/profile.go "$tmp/old/bench/internal/workload/"
  (cd "$tmp/old" && go build -o "$bin/" ./bench/cmd/benchapp)
  rev="$(git rev-parse --short "$OLD") (goangel of that commit, bench apps of $(git rev-parse --short HEAD))"
fi
"$bin/outside" cert -dir "$tmp"

# --- servers -----------------------------------------------------------------
pids=()
cleanup_servers() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'cleanup_servers; keep_raw; [ -z "${OLD:-}" ] || git worktree remove --force "$tmp/old" 2>/dev/null; rm -rf "$tmp"' EXIT

# start NAME [TLS] -- command…: starts a server on a free port (the command's
# {port} is replaced), waits until it answers, sets port_NAME and pid_NAME.
start() {
  local name=$1 tls=$2 port
  shift 3
  port=$("$bin/outside" freeport)
  "${@//\{port\}/$port}" >>"$tmp/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local wflag=()
  [ "$tls" = tls ] && wflag=(-tls)
  "$bin/outside" wait -addr "127.0.0.1:$port" ${wflag[@]+"${wflag[@]}"} || { say "$name did not start: $(tail -5 "$tmp/$name.log")"; exit 1; }
  printf -v "port_$name" %s "$port"
  printf -v "pid_$name" %s "$pid"
}
goangel() { # goangel NAME [tls] -j N [flags…]
  local name=$1 tls=plain
  shift
  [ "${1:-}" = tls ] && { tls=tls; shift; }
  start "$name" "$tls" -- "$bin/benchapp" -a 127.0.0.1 -p '{port}' --quiet "$@"
}
plain() { # plain NAME [tls] [flags…]
  local name=$1 tls=plain
  shift
  [ "${1:-}" = tls ] && { tls=tls; shift; }
  start "$name" "$tls" -- "$bin/plainapp" -addr '127.0.0.1:{port}' "$@"
}

# --- load --------------------------------------------------------------------
# wrk_rate PORT ka|new [SECONDS]: requests/s of GET /; a failed request ends
# the run with an error.
wrk_rate() {
  local hdr=() out
  [ "$2" = new ] && hdr=(-H 'Connection: close')
  out=$(wrk -t1 -c16 -d"${3:-$DUR}s" ${hdr[@]+"${hdr[@]}"} "http://127.0.0.1:$1/")
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
    say "failed requests (wrk, port $1, $2): $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr '\n' ' ')"
    echo "failed" >>"$tmp/failures"
  fi
  awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
# h2_rate URL: requests/s of GET / over HTTP/2 (h2load: -c16 -m10).
h2_rate() {
  local out
  out=$(h2load -t1 -c16 -m10 -D "$DUR" "$1" 2>&1)
  if ! grep -qE 'requests: .* 0 failed, 0 errored, 0 timeout' <<<"$out"; then
    say "failed requests (h2load $1): $(grep -E '^requests:' <<<"$out")"
    echo "failed" >>"$tmp/failures"
  fi
  awk '/^finished in/ { for (i=1; i<=NF; i++) if ($(i+1)=="req/s,") print $i }' <<<"$out"
}
# pair ROUND KEY A-CMD B-CMD: runs A, B, B, A in odd rounds and B, A, A, B
# in even ones (a drift of the machine during the four runs hits both sides
# alike), and records "KEY a b" in $tmp/pairs, each side the mean of its two
# runs.
pair() {
  local r=$1 key=$2 a1 a2 b1 b2
  if ((r % 2)); then
    a1=$(eval "$3"); b1=$(eval "$4"); b2=$(eval "$4"); a2=$(eval "$3")
  else
    b1=$(eval "$4"); a1=$(eval "$3"); a2=$(eval "$3"); b2=$(eval "$4")
  fi
  echo "$key $(awk -v x="$a1" -v y="$a2" 'BEGIN { print (x+y)/2 }') $(awk -v x="$b1" -v y="$b2" 'BEGIN { print (x+y)/2 }')" >>"$tmp/pairs"
}
# pair2 ROUND KEY A-CMD B-CMD: A then B in odd rounds, B then A in even ones
# (for the long reload runs).
pair2() {
  local r=$1 key=$2 a b
  if ((r % 2)); then a=$(eval "$3"); b=$(eval "$4"); else b=$(eval "$4"); a=$(eval "$3"); fi
  echo "$key $a $b" >>"$tmp/pairs"
}

# reload_rate PORT PID ka|new: requests/s under wrk for 3 reload periods with
# a SIGHUP every 2 s.
reload_rate() {
  local secs=6
  (for _ in 1 2 3; do sleep 1; kill -HUP "$2"; sleep 1; done) &
  local hup=$!
  wrk_rate "$1" "$3" "$secs"
  wait "$hup"
}

: >"$tmp/pairs"
: >"$tmp/respawn"
: >"$tmp/loads"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  say "round $r/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))"
  echo "$r $(cut -d' ' -f1-3 /proc/loadavg)" >>"$tmp/loads"
  plain p1
  for j in $JS; do
    goangel g -j "$j"
    for c in ka new; do
      pair "$r" "http-$c-j$j" "wrk_rate $port_p1 $c" "wrk_rate $port_g $c"
    done
    cleanup_servers
    plain p1
  done
  cleanup_servers

  plain p2 -http2
  goangel g2 -j 4 --http2
  pair "$r" h2c "h2_rate http://127.0.0.1:$port_p2/" "h2_rate http://127.0.0.1:$port_g2/"
  cleanup_servers
  plain p3 tls -http2 -cert "$tmp/cert.pem" -key "$tmp/key.pem"
  goangel g3 tls -j 4 --ssl --http2 --certificate-file "$tmp/cert.pem" --key-file "$tmp/key.pem"
  pair "$r" h2tls "h2_rate https://127.0.0.1:$port_p3/" "h2_rate https://127.0.0.1:$port_g3/"
  cleanup_servers

  plain pf
  for j in 1 4; do
    goangel gr -j "$j"
    floor=$("$bin/outside" rtt -addr "127.0.0.1:$port_pf" -n 500)
    line=$("$bin/outside" respawn -addr "127.0.0.1:$port_gr" -n "$CRASHES")
    echo "$r j=$j $line $(sed -E 's/(rtt-p[0-9]+-µs)=/plain-\1=/g; s/n=[0-9]+ //' <<<"$floor")" >>"$tmp/respawn"
    kill "$pid_gr"
    wait "$pid_gr" 2>/dev/null || true
  done
  cleanup_servers

  goangel gd -j 4
  for c in ka new; do
    pair2 "$r" "reload-$c" "wrk_rate $port_gd $c 6" "reload_rate $port_gd $pid_gd $c"
  done
  cleanup_servers
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$tmp/pairs" "$tmp/pairs.txt"
cp "$tmp/respawn" "$tmp/respawn.txt"

# --- table -------------------------------------------------------------------
# stats KEY COL: "median (min–max)" of column COL (2: a, 3: b, 4: b/a) of KEY.
stats() {
  awk -v k="$1" -v c="$2" '$1==k { v = (c==4) ? $3/$2 : $c; print v }' "$tmp/pairs" | sort -g |
    awk -v c="$2" '{ x[NR]=$1 } END { if (NR==0) { print "–"; exit }
      m = (NR%2) ? x[(NR+1)/2] : (x[NR/2]+x[NR/2+1])/2
      if (c==4) printf "%.2fx (%.2f–%.2f)", m, x[1], x[NR]; else printf "%.0f (%.0f–%.0f)", m, x[1], x[NR] }'
}
# rounds KEY: the per-round ratios b/a of KEY, in round order.
rounds() { awk -v k="$1" '$1==k { printf "%s%.2f", sep, $3/$2; sep=" " }' "$tmp/pairs"; }
# rstat FIELD J [FORMAT]: "median (min–max)" of FIELD over the respawn runs
# of -j J.
rstat() {
  awk -v j="j=$2" -v f="$1" '$2==j { for (i=3; i<=NF; i++) { split($i, kv, "="); if (kv[1]==f) print kv[2] } }' "$tmp/respawn" | sort -g |
    awk -v fmt="${3:-%.0f}" '{ x[NR]=$1 } END { if (NR==0) { print "–"; exit }
      printf fmt " (" fmt "–" fmt ")", (NR%2) ? x[(NR+1)/2] : (x[NR/2]+x[NR/2+1])/2, x[1], x[NR] }'
}
fails=$( [ -s "$tmp/failures" ] && wc -l <"$tmp/failures" || echo 0)

cat <<HDR
## From outside the process${OLD:+: before (goangel as of $OLD)}

$(date -u +%Y-%m-%d), \`${OLD:+OLD=$OLD }bash bench/scripts/outside.sh\` at $rev ($ROUNDS rounds; in each, the two sides of
a throughput pair run A, B, B, A or B, A, A, B, ${DUR} s each), $(nproc) cores, $(go version | cut -d' ' -f3),
wrk $(wrk --version 2>&1 | head -1 | cut -d' ' -f2), h2load $(h2load --version | cut -d' ' -f2 | tr -d '\n').
Load average (1 min) per round: $(awk '{ printf "%s%s", sep, $2; sep=", " }' "$tmp/loads"); (1, 5, 15 min) $load0 at the start, $load1 at the end.
Runs with a failed request: $fails.

Every server is its own process (\`bench/cmd/benchapp\`: goangel with its default flags;
\`bench/cmd/plainapp\`: the same ten-route chi router on one plain \`net/http\` server), and every
client another (wrk -t1 -c16 for HTTP/1.1, a new connection per request by "Connection: close";
h2load -t1 -c16 -m10 for HTTP/2), all on the same $(nproc) cores over loopback. Cells: median of the
rounds (min–max); ratios are taken within each round, then their median; the per-round
ratios are listed in round order.

| case | plain req/s | goangel req/s | goangel ÷ plain | per round |
|---|---|---|---|---|
HDR
for j in $JS; do
  for c in ka new; do
    k=http-$c-j$j
    lbl="HTTP/1.1 $([ $c = ka ] && echo keep-alive || echo 'new connection'), -j $j"
    printf '| %s | %s | %s | **%s** | %s |\n' "$lbl" "$(stats "$k" 2)" "$(stats "$k" 3)" "$(stats "$k" 4)" "$(rounds "$k")"
  done
done
printf '| h2c, -j 4 --http2 | %s | %s | **%s** | %s |\n' "$(stats h2c 2)" "$(stats h2c 3)" "$(stats h2c 4)" "$(rounds h2c)"
printf '| h2 over TLS, -j 4 --ssl --http2 | %s | %s | **%s** | %s |\n' "$(stats h2tls 2)" "$(stats h2tls 3)" "$(stats h2tls 4)" "$(rounds h2tls)"

cat <<SEC

The reload's dip: goangel -j 4 under the same wrk load for 6 s, without reloads and with a
SIGHUP (a rolling reload of every instance) every 2 s.

| load | req/s, no reload | req/s, a reload every 2 s | with ÷ without | per round |
|---|---|---|---|---|
| keep-alive | $(stats reload-ka 2) | $(stats reload-ka 3) | **$(stats reload-ka 4)** | $(rounds reload-ka) |
| new connection | $(stats reload-new 2) | $(stats reload-new 3) | **$(stats reload-new 4)** | $(rounds reload-new) |

Respawn, from outside: \`outside respawn\` sends GET /crash on a new connection (the life that
answers it ends right after its answer), then polls GET /life on new connections (one after
the other) until the crashed instance's next life answers; $CRASHES crashes per round, 10 ms
apart, after 10 not timed. The clock starts when the /crash answer has been read and stops
at the new life's first answer, so it includes that last poll's whole round trip: the floor
column is the same client's new-connection round trip to the plain server in the same round
(\`outside rtt\`), which no server can beat. µs, median of the rounds (min–max).

| instances | p50 | p99 | polls per crash | floor p50 (plain server) | floor p99 | p50 ÷ floor p50, per round | from sending /crash: p50 |
|---|---|---|---|---|---|---|---|
SEC
for j in 1 4; do
  printf '| %s | **%s** | **%s** | %s | %s | %s | %s | %s |\n' "$j" "$(rstat p50-µs "$j")" "$(rstat p99-µs "$j")" \
    "$(rstat polls "$j" %.2f)" "$(rstat plain-rtt-p50-µs "$j")" "$(rstat plain-rtt-p99-µs "$j")" \
    "$(awk -v j="j=$j" '$2==j { for (i=3; i<=NF; i++) { split($i, kv, "="); v[kv[1]]=kv[2] } printf "%s%.2f", sep, v["p50-µs"]/v["plain-rtt-p50-µs"]; sep=" " }' "$tmp/respawn")" \
    "$(rstat send-p50-µs "$j")"
done
