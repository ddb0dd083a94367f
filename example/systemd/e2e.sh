#!/usr/bin/env bash
# End-to-end test of the example under a real systemd: boots a Debian
# suite's systemd in a container (systemd-nspawn -b on a debootstrap tree):
# $E2E_SUITE, default bookworm (Debian 12, systemd 252); trixie has 257.
# installs the example and its units exactly as the README's "Deploy with
# systemd" section says, with NATS (JetStream) for pub/sub, the admin
# listener and a log file on, and drives start, reload, binary upgrades, a
# crash loop, a failed start and stop under a strict load client that never
# retries
# (internal/loadclient, as e2eclient), inside the container against its own
# loopback. One line per step, "N passed, M failed" at the end; exit 1 when
# a step failed.
#
# Run as root (CI runs it from .ci/run): sudo example/systemd/e2e.sh
# It installs the Debian packages it needs (systemd-container, debootstrap)
# when they are missing, and keeps the Debian tree of each suite under
# $GOANGEL_E2E_CACHE (default /var/tmp/goangel-e2e), so that the same
# machine downloads it once;
# nothing but Debian packages is downloaded. The tree is never changed: the
# container runs on a volatile overlay of it.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${GOANGEL_E2E_CACHE:-/var/tmp/goangel-e2e}
mirror=${GOANGEL_E2E_MIRROR:-http://deb.debian.org/debian}
suite=${E2E_SUITE:-bookworm}
unit=goangel-example
watchdog_sec=4 # WatchdogSec shortened for the test (30s in the unit)

die() { echo "e2e: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root: systemd-nspawn -b needs it"
[[ $suite =~ ^[a-z]+$ ]] || die "E2E_SUITE=$suite: want a Debian suite's code name, e.g. bookworm or trixie"
need() { command -v "$1" >/dev/null 2>&1; }
if ! need systemd-nspawn || ! need debootstrap; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd-container debootstrap ||
    die "cannot install systemd-container and debootstrap"
fi
need go || die "go is not on PATH"

# The suite's tree: minbase (no procps: units must not need /bin/kill) and
# systemd as init. Bump the number when the package list changes.
rootfs=$cache/rootfs-$suite-1
if [ ! -x "$rootfs/usr/lib/systemd/systemd" ]; then
  echo "e2e: building the Debian $suite tree in $rootfs (once per machine)"
  mkdir -p "$cache" && rm -rf "$rootfs.tmp" &&
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$suite" "$rootfs.tmp" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 &&
    rm -f "$rootfs.tmp/etc/machine-id" && mv "$rootfs.tmp" "$rootfs" ||
    die "debootstrap failed: see $cache/debootstrap-$suite.log"
fi

work=$(mktemp -d /var/tmp/goangel-e2e-run.XXXXXX)
nspawn=
load_pid=
cleanup() {
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
  if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
    kill "$nspawn" # nspawn asks the container's systemd to power off
    for _ in $(seq 50); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$nspawn" 2>/dev/null
    wait "$nspawn" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The README's commands of "Deploy with systemd", in order: go build runs
# here (its output in $work/src), the rest (sudo dropped) in the container,
# from a directory laid out as the repository. A command right under a
# "# systemd < N" comment is for systemd < N only: it is listed as
# "<N command" and run only when the container's `systemctl --version` is
# below N, as the README says.
readme_cmds=$(awk '/^## Deploy with systemd/{on=1; next} /^## /{on=0} on' "$root/README.md" |
  awk '/^ *# systemd < [0-9]/ { below = $0; sub(/.*# systemd < /, "", below); sub(/[^0-9].*/, "", below); next }
    /^ *(go build |sudo )/ { cmd = $0; sub(/^ */, "", cmd); sub(/ *#.*$/, "", cmd); print (below != "" ? "<" below " " : "") cmd }
    { below = "" }')
[ -n "$readme_cmds" ] || die "no commands found in README.md's Deploy with systemd section"
mkdir -p "$work/src/example"
cp -r "$root/example/systemd" "$work/src/example/"
build=$(grep '^go build' <<<"$readme_cmds" | head -1)
[ -n "$build" ] || die "README.md's Deploy with systemd section has no go build line"
(cd "$root" && ${build/-o goangel-example/-o $work/src/goangel-example}) || die "$build failed"
(cd "$root" && CGO_ENABLED=0 go build -o "$work/e2eclient" ./internal/loadclient/cmd/e2eclient) || die "building e2eclient failed"
# NATS for --pubsub-url: the server the tests embed, from the Go module proxy.
(cd "$root" && CGO_ENABLED=0 go build -o "$work/nats-server" github.com/nats-io/nats-server/v2) || die "building nats-server failed"

# --register=no --keep-unit: no systemd-machined, no transient scope (on a
# host without systemd as PID 1, as the machine this was made on, there is
# no bus to ask for one). On a host booted with systemd the container gets a
# delegated scope of its own, as systemd-nspawn(1) advises for --keep-unit.
#
# systemd >= 256 (trixie's 257) refuses to boot on cgroup v1; on a host
# with the legacy or hybrid hierarchy, systemd-nspawn would give the
# container the same: ask it for the unified one.
tree_systemd=$(dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f '${Version}' systemd) ||
  die "no systemd package in $rootfs"
[ "${tree_systemd%%[^0-9]*}" -ge 256 ] && export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
launcher=()
[ -d /run/systemd/system ] && launcher=(systemd-run --quiet --scope -p Delegate=yes --)
"${launcher[@]}" systemd-nspawn -q -D "$rootfs" --volatile=overlay -b --register=no --keep-unit \
  --private-network --console=read-only -M goangel-e2e --bind-ro="$work:/e2e" >"$work/console.log" 2>&1 &
nspawn=$!
leader=
for _ in $(seq 100); do
  leader=$(pgrep -P "$nspawn" -x systemd) && break
  kill -0 "$nspawn" 2>/dev/null || { cat "$work/console.log"; die "systemd-nspawn exited"; }
  sleep 0.1
done
[ -n "$leader" ] || die "the container's systemd did not start"
ct() { nsenter -t "$leader" -a "$@"; }
for _ in $(seq 100); do ct test -S /run/systemd/private && break; sleep 0.1; done
state=$(ct timeout 60 systemctl is-system-running --wait)
[ "$state" = running ] || { ct systemctl --failed --no-pager; die "the container's systemd is $state"; }

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $step${1:+: $1}"; }
fail() { failed=$((failed + 1)); echo "FAIL $step: $1"; }
show() { ct systemctl show -p "$1" --value "$unit"; }
journal() { ct journalctl -u "$unit" --no-pager -o cat "$@"; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds (0) or SECONDS pass (1).
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
status_is() { [ "$(show StatusText)" = "$1" ]; }
fresh="4/4 instances serving, 0 restarting"
# Strict load inside the container; stop_load prints its counts and fails
# when a request failed.
start_load() {
  nsenter -t "$leader" -a /e2e/e2eclient load -addr 127.0.0.1:3000 -keep-alive 4 -new 2 >"$work/load.out" 2>&1 &
  load_pid=$!
}
stop_load() {
  # nsenter forks the client into the container's pid namespace: signal
  # the client, nsenter then exits with its status.
  kill $(pgrep -P "$load_pid") 2>/dev/null || kill "$load_pid"
  wait "$load_pid"
  local rc=$?
  load_pid=
  load_counts=$(cat "$work/load.out")
  return $rc
}

# NATS with JetStream (retained messages), as a unit of its own.
ct systemd-run --quiet --unit=nats -p StateDirectory=nats /e2e/nats-server -a 127.0.0.1 -p 4222 -m 8222 -js -sd /var/lib/nats
wait_for 30 ct /e2e/e2eclient get http://127.0.0.1:8222/healthz >/dev/null 2>&1 || die "nats-server did not start"

# The flags for this run, as environment variables in the unit's
# EnvironmentFile: 4 instances, the admin listener (the upgrades pass it on),
# NATS, a log file, a short crash delay; and a shorter WatchdogSec.
ct sh -c "printf '%s\n' EXAMPLE_CONCURRENCY=4 EXAMPLE_ADMIN_ADDRESS=127.0.0.1:9090 EXAMPLE_PUBSUB_URL=nats://127.0.0.1:4222 EXAMPLE_CRASH_DELAY=100ms EXAMPLE_LOG_FILE=/var/log/$unit/example.log >/etc/default/$unit"
ct sh -c "mkdir -p /etc/systemd/system/$unit.service.d && printf '[Service]\nWatchdogSec=${watchdog_sec}s\n' >/etc/systemd/system/$unit.service.d/e2e.conf"

step="install as the README says"
# Steps 1 and 2 of the README up to `systemctl enable`, those for another
# systemd version left out.
version=$(ct systemctl --version | awk 'NR == 1 { print $2 }')
[[ $version =~ ^[0-9]+$ ]] || die "the container's systemctl --version: $(ct systemctl --version 2>&1 | head -1)"
install_cmds=$(awk '/ enable /{exit} /^(<[0-9]+ )?sudo /' <<<"$readme_cmds")
out=$(while read -r cmd; do
  if [[ $cmd =~ ^\<([0-9]+)\ (.*)$ ]]; then
    [ "$version" -lt "${BASH_REMATCH[1]}" ] || { echo "skipped: $cmd"; continue; }
    cmd=${BASH_REMATCH[2]}
  fi
  echo "ran: $cmd"
  ct sh -c "cd /e2e/src && ${cmd#sudo }" 2>&1 || echo "failed: $cmd"
done <<<"$install_cmds")
ran=$(grep -c '^ran: ' <<<"$out") skipped=$(grep -c '^skipped: ' <<<"$out")
# Type=notify-reload as shipped from 253 on; the drop-in's Type=notify below.
want_type=notify-reload
[ "$version" -ge 253 ] || want_type=notify
if grep -q '^failed: ' <<<"$out"; then fail "$(grep -v '^ran: ' <<<"$out")"
elif [ "$(show Type)" != "$want_type" ]; then fail "systemd $version: Type=$(show Type), want $want_type"
else pass "systemd $version: $ran commands, $skipped for another systemd left out, Type=$want_type"
fi

step="systemctl enable --now"
enable=$(grep ' enable ' <<<"$readme_cmds" | head -1)
if ! out=$(ct sh -c "${enable#sudo }" 2>&1); then
  fail "$enable: $out"
else
  st=$(show StatusText) as=$(show ActiveState) ss=$(show SubState) pid=$(show MainPID)
  # READY=1 (systemd's "Started") only after the 4th instance serves.
  order=$(journal | grep -n 'listening at\|^Started ' | tail -5 | cut -d: -f2- | cut -c1-30)
  if [ "$as/$ss" != active/running ] || [ "$st" != "$fresh" ] || [ "$pid" -le 0 ]; then
    fail "ActiveState=$as SubState=$ss StatusText=$st MainPID=$pid"
  elif [ "$(journal | grep -c 'listening at')" != 4 ] || ! journal | tail -n +1 | grep -q "^Started " ||
    [ "$(journal | grep 'listening at\|^Started ' | tail -1 | cut -c1-8)" != "Started " ]; then
    fail "READY=1 before every instance served: $order"
  else
    pass "$as/$ss, MainPID=$pid, \"$st\" once the 4th instance served"
  fi
fi

step="pub/sub through NATS"
# Every instance answers the greeting one of them was given (8 requests on
# new connections: twice round the 4 instances).
greeting_everywhere() {
  local i
  for i in $(seq 8); do
    [ "$(ct /e2e/e2eclient get http://127.0.0.1:3000/greeting 2>/dev/null)" = "200 $1" ] || return 1
  done
}
if ! out=$(ct /e2e/e2eclient get http://127.0.0.1:3000/change_greeting/e2e 2>&1); then fail "$out"
elif ! wait_for 10 greeting_everywhere e2e; then fail "not every instance answers the greeting: $(ct /e2e/e2eclient get http://127.0.0.1:3000/greeting 2>&1)"
else pass "every instance answers \"e2e\""
fi

step="systemctl reload x2 under load"
reload_cmd=$(grep ' reload ' <<<"$readme_cmds" | head -1)
start_load
ok=1 why=
for i in 1 2; do
  n=$(journal | grep -c 'Reloaded 4 instances')
  if ! out=$(ct sh -c "${reload_cmd#sudo }" 2>&1); then ok=; why="reload $i: $out"; break; fi
  if ! wait_for 60 sh -c "[ \$(nsenter -t $leader -a journalctl -u $unit -o cat | grep -c 'Reloaded 4 instances') -gt $n ]"; then
    ok=; why="reload $i did not finish within 60s"; break
  fi
  if ! wait_for 10 status_is "$fresh"; then ok=; why="after reload $i StatusText=$(show StatusText)"; break; fi
done
stop_load || { ok=; why="$why requests failed"; }
if [ -n "$ok" ]; then pass "status \"$fresh\" after each; $load_counts"; else fail "$why; $load_counts"; fi

step="3 binary upgrades (USR2, admin listener on) under load"
upgrade_cmds=$(sed -n '/ reload /,$p' <<<"$readme_cmds" | sed -n '/^sudo install/,/ kill /p' | sed 's/^sudo //' | paste -sd'&' | sed 's/&/ \&\& /g')
start_load
ok=1 why= pids=$(show MainPID)
for i in 1 2 3; do
  old=$(show MainPID)
  ct sh -c "cd /e2e/src && $upgrade_cmds"
  if ! wait_for 60 sh -c "p=\$(nsenter -t $leader -a systemctl show -p MainPID --value $unit); [ \$p != $old ] && [ \$p != 0 ]"; then
    ok=; why="upgrade $i: MainPID stayed $old"; break
  fi
  pids="$pids -> $(show MainPID)"
  # The old process drains and exits; the admin listener answers from the
  # new one.
  if ! wait_for 30 sh -c "! nsenter -t $leader -a kill -0 $old 2>/dev/null"; then ok=; why="upgrade $i: pid $old still runs"; break; fi
  if ! out=$(ct /e2e/e2eclient get http://127.0.0.1:9090/healthz 2>&1); then ok=; why="upgrade $i: admin /healthz: $out"; break; fi
done
last=$(show MainPID)
if [ -n "$ok" ]; then
  # The only fixed wait: no watchdog timeout within 2x WatchdogSec.
  sleep $((2 * watchdog_sec))
  if journal | grep -qi 'watchdog timeout'; then ok=; why="a watchdog timeout: $(journal | grep -i 'watchdog timeout' | head -1)"
  elif [ "$(show MainPID)" != "$last" ] || [ "$(show ActiveState)" != active ]; then ok=; why="MainPID $last -> $(show MainPID), $(show ActiveState)"
  elif [ "$(show NRestarts)" != 0 ]; then ok=; why="NRestarts=$(show NRestarts)"
  elif ! greeting_everywhere e2e; then ok=; why="the retained greeting is lost: $(ct /e2e/e2eclient get http://127.0.0.1:3000/greeting 2>&1)"
  fi
fi
stop_load || { ok=; why="$why requests failed"; }
if [ -n "$ok" ]; then pass "MainPID $pids, no watchdog timeout in $((2 * watchdog_sec))s, the retained greeting served; $load_counts"; else fail "$why; $load_counts"; fi

step="crash loop of instance #0 (12 lives)"
pid=$(show MainPID)
if ! out=$(ct /e2e/e2eclient crashloop -addr 127.0.0.1:3000 -admin http://127.0.0.1:9090 -instance 0 -n 12 2>&1); then
  fail "$out"
elif ! wait_for 30 status_is "$fresh"; then
  fail "StatusText=$(show StatusText)"
elif [ "$(show ActiveState)/$(show MainPID)/$(show NRestarts)" != "active/$pid/0" ]; then
  fail "ActiveState=$(show ActiveState) MainPID=$(show MainPID) (was $pid) NRestarts=$(show NRestarts)"
else
  pass "$(grep -c crashing <<<"$out") crashes; active, MainPID=$pid, \"$fresh\""
fi

step="systemctl stop under load"
start_load
invocation=$(show InvocationID) pid=$(show MainPID)
sleep 1 # the load runs against the serving process
why=
out=$(ct systemctl stop "$unit" 2>&1) || why="systemctl stop: $out"
# systemd's own lines on the stopped run (new connections may start a new
# one through the socket: it queues them meanwhile).
pid1=$(ct journalctl _PID=1 INVOCATION_ID="$invocation" --no-pager -o cat)
stop_load
rc=$?
if [ -n "$why" ]; then fail "$why"
elif grep -qi 'SIGKILL\|timed out' <<<"$pid1"; then fail "$(grep -i 'SIGKILL\|timed out' <<<"$pid1" | head -2 | tr '\n' ' ')"
elif ! grep -q 'Deactivated successfully' <<<"$pid1"; then fail "not a clean exit: $(tail -3 <<<"$pid1" | tr '\n' ' ')"
elif ! ct journalctl _PID="$pid" --no-pager -o cat | grep -q 'Stopping `example` application'; then fail "pid $pid did not log its drain"
elif [ $rc != 0 ]; then fail "$load_counts"
else pass "pid $pid drained, exited 0, no SIGKILL; $load_counts"
fi

step="the log file under LogsDirectory="
lines=$(ct sh -c "cat /var/log/$unit/example.log 2>/dev/null | wc -l")
if [ "${lines:-0}" -gt 0 ] && ct sh -c "grep -q 'Binary upgrade: the new process is ready' /var/log/$unit/example.log"; then
  pass "/var/log/$unit/example.log: $lines lines, every process of the upgrades wrote to it"
else
  fail "/var/log/$unit/example.log has ${lines:-0} lines"
fi

step="journalctl -p err shows a failed start whole"
# A start that fails (NATS unreachable: exit 78, not restarted): its error
# record is in journalctl -p err, every line of it at that priority.
ct sh -c "sed -i 's/:4222/:1/' /etc/default/$unit"
ct systemctl restart "$unit" >/dev/null 2>&1
pid=$(show ExecMainPID) code=$(show ExecMainStatus)
ct sh -c "sed -i 's/127.0.0.1:1\$/127.0.0.1:4222/' /etc/default/$unit"
all=$(ct journalctl _PID="$pid" --no-pager -o cat)
errs=$(ct journalctl _PID="$pid" -p err --no-pager -o cat)
record=$(sed -n '/start-up failed/,$p' <<<"$all")
if [ "$code" != 78 ]; then fail "exit status $code, want 78"
elif [ -z "$errs" ] || [ "$record" != "$errs" ]; then fail "-p err has $(wc -l <<<"$errs") line(s), the record $(wc -l <<<"$record"): $(head -c 300 <<<"$errs")"
else pass "$(head -1 <<<"$errs" | cut -c1-150) ($(wc -l <<<"$errs") line(s))"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
