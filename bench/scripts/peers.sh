#!/usr/bin/env bash
# goangel against what users would pick instead (issue #16): PM2 in cluster
# mode, gunicorn (gthread workers) and Puma (cluster mode), each running the
# same tiny app ("/" hello, "/id" which worker answered, "/crash" ends the
# worker: process.exit / os._exit / exit!), measured in one run on this
# machine by bench/cmd/peercheck with a strict client that never retries
# (internal/loadclient), loopback only:
#   - failed requests per crash, 8 keep-alive clients and 8 new-connection
#     clients, a /crash every 0.5s for 5s, and requests/s against the same
#     load without crashes, and whether the server was still up;
#   - crash-to-serving: from sending /crash to the first answer of a new
#     worker (polled on new connections), median of 5, with 2 workers;
#   - idle memory: RSS of the whole process tree at 2 and 16 workers.
# Installs what it needs: gunicorn and puma from Debian (apt-get), pm2 from
# npm (into $PEERS_DIR, default ~/.cache/goangel-peers); a peer that cannot
# be installed is skipped with a message on stderr and in the table.
# Takes about 5 minutes. Prints a markdown section (bench/report.sh stores it
# in bench/results/peers.md).
#
#   bash bench/scripts/peers.sh
#   LOAD=10s bash bench/scripts/peers.sh
source "$(dirname "$0")/lib.sh"

LOAD=${LOAD:-5s}
PEERS_DIR=${PEERS_DIR:-$HOME/.cache/goangel-peers}
mkdir -p "$PEERS_DIR"
say() { echo "peers: $*" >&2; }

# --- install -----------------------------------------------------------------
need_apt=()
command -v gunicorn >/dev/null || need_apt+=(gunicorn)
command -v puma >/dev/null || need_apt+=(puma)
{ command -v node >/dev/null && command -v npm >/dev/null; } || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${need_apt[*]} from Debian"
    apt-get update >&2 || say "apt-get update failed"
    for p in "${need_apt[@]}"; do
      DEBIAN_FRONTEND=noninteractive apt-get install -y "$p" >&2 || say "could not install $p from Debian"
    done
  else
    say "cannot install ${need_apt[*]}: needs root and apt-get"
  fi
fi
pm2_runtime=$PEERS_DIR/node/node_modules/.bin/pm2-runtime
if [ ! -x "$pm2_runtime" ] && command -v npm >/dev/null; then
  say "installing pm2 from npm into $PEERS_DIR/node"
  mkdir -p "$PEERS_DIR/node"
  npm install --no-audit --no-fund --prefix "$PEERS_DIR/node" pm2 >&2 || say "could not install pm2 from npm"
fi

# --- the apps ----------------------------------------------------------------
apps=$tmp/apps
mkdir -p "$apps"
go build -o "$apps/peercheck" ./bench/cmd/peercheck
go build -o "$apps/peerapp" ./bench/cmd/peerapp

cat > "$apps/app.js" <<'JS'
const http = require('http');
http.createServer((req, res) => {
  if (req.url === '/crash') process.exit(1);
  res.end(req.url === '/id' ? String(process.pid) : 'hello');
}).listen(Number(process.env.PORT), '127.0.0.1');
JS
cat > "$apps/app.py" <<'PY'
import os
def app(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/crash':
        os._exit(1)
    body = str(os.getpid()).encode() if path == '/id' else b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
PY
cat > "$apps/config.ru" <<'RU'
run lambda { |env|
  path = env['PATH_INFO']
  exit!(1) if path == '/crash'
  [200, {'Content-Type' => 'text/plain'}, [path == '/id' ? Process.pid.to_s : 'hello']]
}
RU

# name, version, extra processes beside the workers, command
declare -A cmd version extra
skipped=()
order=(goangel)
cmd[goangel]="$apps/peerapp --quiet -a 127.0.0.1 -p {port} -j {workers}"
version[goangel]="$(go version | cut -d' ' -f3) (bench/cmd/peerapp, this commit)"
extra[goangel]=-1 # one process whatever the instances
if [ -x "$pm2_runtime" ] && command -v node >/dev/null; then
  order+=(pm2)
  export PM2_HOME=$tmp/pm2home
  cmd[pm2]="$pm2_runtime start $apps/app.js -i {workers}"
  # (not "pm2 --version": the pm2 command starts a daemon)
  version[pm2]="PM2 $(node -p "require('$PEERS_DIR/node/node_modules/pm2/package.json').version") cluster mode, node $(node --version)"
  extra[pm2]=1
else
  say "skipping PM2: pm2 (npm) or node could not be installed"
  skipped+=("PM2 (pm2 or node not installable here)")
fi
if command -v gunicorn >/dev/null; then
  order+=(gunicorn)
  cmd[gunicorn]="gunicorn --chdir $apps -b 127.0.0.1:{port} -w {workers} -k gthread --threads 4 --log-level warning app:app"
  version[gunicorn]="gunicorn $(gunicorn --version 2>&1 | awk '{print $NF}' | tr -d ')') gthread (4 threads), $(/usr/bin/python3 --version 2>&1)"
  extra[gunicorn]=1
else
  say "skipping gunicorn: not installable here"
  skipped+=("gunicorn (not installable here)")
fi
if command -v puma >/dev/null; then
  order+=(puma)
  cmd[puma]="puma --dir $apps -w {workers} -t 4:4 -b tcp://127.0.0.1:{port} --quiet $apps/config.ru"
  version[puma]="Puma $(puma --version | awk '{print $3}') cluster mode (4 threads), $(ruby --version | cut -d' ' -f1-2)"
  extra[puma]=1
else
  say "skipping Puma: not installable here"
  skipped+=("Puma (not installable here)")
fi

# --- measure -----------------------------------------------------------------
load0=$(cut -d' ' -f1-3 /proc/loadavg)
procs() { if [ "${extra[$1]}" = -1 ]; then echo 1; else echo $(($2 + ${extra[$1]})); fi; }
declare -A res mem2 mem16
for p in "${order[@]}"; do
  say "$p: crash"
  # shellcheck disable=SC2086 # the command is split on purpose
  res[$p]=$("$apps/peercheck" -mode crash -workers 2 -procs "$(procs "$p" 2)" -load "$LOAD" -log "$tmp/$p.crash.log" -- ${cmd[$p]}) ||
    { say "$p: crash run failed:"; tail -20 "$tmp/$p.crash.log" >&2; res[$p]=failed; }
  for w in 2 16; do
    say "$p: memory at $w workers"
    # shellcheck disable=SC2086
    m=$("$apps/peercheck" -mode memory -workers "$w" -procs "$(procs "$p" "$w")" -log "$tmp/$p.mem$w.log" -- ${cmd[$p]}) ||
      { say "$p: memory run failed:"; tail -20 "$tmp/$p.mem$w.log" >&2; m=rss_mib=failed; }
    m=${m#rss_mib=}
    if [ "$w" = 2 ]; then mem2[$p]=${m%% *}; else mem16[$p]=${m%% *}; fi
  done
done

load1=$(cut -d' ' -f1-3 /proc/loadavg)
# field NAME LINE: the value of NAME=… in LINE
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1==k { print $2 }'; }
cat <<HDR
## Against PM2, gunicorn and Puma

$(date -u +%Y-%m-%d), \`bash bench/scripts/peers.sh\` (one run), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')) shared with
other jobs and noisy (load average $load0 at the start, $load1 at the end), $(go version | cut -d' ' -f3).
The same tiny app in each ("/" hello, "/id" which worker answered, "/crash" ends the worker:
goangel \`app.Crash\`, node \`process.exit\`, Python \`os._exit\`, Ruby \`exit!\`), 2 workers, measured by
\`bench/cmd/peercheck\` with a strict client that never retries (\`internal/loadclient\`) over loopback.
**Failed/crash**: 8 clients load "/" for $LOAD while "/crash" is sent every 0.5 s (its own request not
counted); every request that did not get a whole 200 answer counts. **req/s** is with crashes /
without crashes (the same load just before and just after, their mean). **Crash-to-serving**: from sending "/crash" to the first
answer of a new worker, polled on new connections (median of 5, min–max). **Idle memory**: RSS of
the whole process tree (master and workers) 2 s after every worker is up.

| server | failed/crash keep-alive | failed/crash new conn | req/s keep-alive, crashes / none | req/s new conn, crashes / none | stayed up | crash-to-serving ms | idle RSS 2 workers | 16 workers |
|---|---|---|---|---|---|---|---|---|
HDR
for p in "${order[@]}"; do
  r=${res[$p]}
  name=$p; [ "$p" = goangel ] && name="**goangel**"
  if [ "$r" = failed ]; then
    printf '| %s | run failed | | | | | | %s MiB | %s MiB |\n' "$name" "${mem2[$p]}" "${mem16[$p]}"
    continue
  fi
  up=yes
  [ "$(field ka_up "$r")" = true ] && [ "$(field new_up "$r")" = true ] || up=no
  printf '| %s | %s (%s in %s crashes) | %s (%s in %s) | %s / %s | %s / %s | %s | %s (%s–%s) | %s MiB | %s MiB |\n' "$name" \
    "$(field ka_failed_per_crash "$r")" "$(field ka_failed "$r")" "$(field ka_crashes "$r")" \
    "$(field new_failed_per_crash "$r")" "$(field new_failed "$r")" "$(field new_crashes "$r")" \
    "$(field ka_rps_crash "$r")" "$(field ka_rps_base "$r")" "$(field new_rps_crash "$r")" "$(field new_rps_base "$r")" \
    "$up" "$(field respawn_ms "$r")" "$(field respawn_min_ms "$r")" "$(field respawn_max_ms "$r")" \
    "${mem2[$p]}" "${mem16[$p]}"
done
echo
echo "Failed requests by kind (with crashes; reset: connection reset, eof: closed before a whole answer, timeout: no answer within 5 s):"
for p in "${order[@]}"; do
  [ "${res[$p]}" = failed ] || echo "- $p: keep-alive $(field ka_kinds "${res[$p]}" | tr ',:' '; '), new connections $(field new_kinds "${res[$p]}" | tr ',:' '; ')"
done
echo
echo "Versions:"
for p in "${order[@]}"; do
  c=${cmd[$p]//$PEERS_DIR\/node\/node_modules\/.bin\//}
  echo "- $p: ${version[$p]}: \`${c//$apps/.}\`"
done
for s in "${skipped[@]}"; do echo "- skipped: $s"; done
