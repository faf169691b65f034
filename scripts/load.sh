#!/usr/bin/env bash
# load.sh — measure the real daemons on loopback with the load tool (tests/load):
#
#  (a) plain NTP throughput of timegate and of chronyd 4.3, in the same run,
#      with the same tool: PLAIN_SECONDS at saturation (-rate 0), then
#      PLAIN_SECONDS at PLAIN_RATE requests/s, the whole cycle PLAIN_REPEAT
#      times with the order of the two servers alternating; both pinned to
#      SERVER_CPU (timegate with GOMAXPROCS=1; chronyd is single-threaded),
#      the load tool pinned to LOAD_CPU; no rate limiting on either
#      (chronyd has none unless configured; timegate gets `ratelimit off`);
#  (b) a spoofed flood of SPOOF_SOURCES distinct source addresses in
#      127.0.0.0/8 (raw socket, root) against a fresh timegate with its
#      default `ratelimit` and `clientloglimit`, pinned as above: first at
#      SPOOF_RATE requests/s (about what one core of timegate answers) for
#      at most SPOOF_MAX, then (unless SPOOF_FLATOUT=0) the same sources
#      again as fast as the sender goes, sampling timegate's VmRSS/VmHWM
#      before, every SAMPLE_EVERY (5 s flat out) during, and after.
#
# Traffic goes only to 127.0.0.1; every request loop is bounded in count and
# time; chronyd runs with -x and without CAP_SYS_TIME. Daemons are stopped
# on exit, whatever happens. Results (text and JSON) go to LOAD_OUT (default
# a new /tmp/timegate-load-results.XXXXXX), which is kept.
#
# Usage: scripts/load.sh            (or: make load)
# Knobs (environment): PLAIN_SECONDS=10 PLAIN_RATE=50000 PLAIN_REPEAT=3 CONNS=4
#   SPOOF_SOURCES=10000000 SPOOF_RATE=60000 SPOOF_MAX=200s SPOOF_FLATOUT=1 SAMPLE_EVERY=10s
#   SERVER_CPU=0 LOAD_CPU=1 SKIP_CHRONY=0 SKIP_SPOOF=0 LOAD_OUT=DIR
set -euo pipefail
export GOTOOLCHAIN=go1.27.3

PLAIN_SECONDS=${PLAIN_SECONDS:-10}
PLAIN_RATE=${PLAIN_RATE:-50000}
PLAIN_REPEAT=${PLAIN_REPEAT:-3}
CONNS=${CONNS:-4}
SPOOF_SOURCES=${SPOOF_SOURCES:-10000000}
SPOOF_RATE=${SPOOF_RATE:-60000}
SPOOF_MAX=${SPOOF_MAX:-200s}
SPOOF_FLATOUT=${SPOOF_FLATOUT:-1}
SAMPLE_EVERY=${SAMPLE_EVERY:-10s}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_CHRONY=${SKIP_CHRONY:-0}
SKIP_SPOOF=${SKIP_SPOOF:-0}

cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work=$(mktemp -d /tmp/timegate-load.XXXXXX)
out=${LOAD_OUT:-$(mktemp -d /tmp/timegate-load-results.XXXXXX)}
mkdir -p "$out"

started=() # PIDs of the daemons this script started, and only those

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		# An exited child stays a zombie until waited for: look at its state.
		if [[ ! -e /proc/$pid/stat ]] || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
			break
		fi
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	# Forget it, so that cleanup never signals a reused PID.
	local keep=() p
	for p in "${started[@]+"${started[@]}"}"; do
		[[ $p == "$pid" ]] || keep+=("$p")
	done
	started=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
	local pid
	for pid in "${started[@]+"${started[@]}"}"; do
		stop_pid "$pid"
	done
	rm -rf "$work"
	echo "results kept in $out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*" | tee -a "$out/summary.txt"; }

# Pinning prefixes: one CPU for the servers, the other for the load, when
# there are two or more. (Arrays, not a function: `CMD &` must leave $! as
# the daemon's own PID, which a backgrounded shell function would not.)
pin_server=() pin_load=()
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then
	pin_server=(taskset -c "$SERVER_CPU")
	pin_load=(taskset -c "$LOAD_CPU")
fi

free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! ss -Hlun "sport = :$p" | grep -q .; then
			echo "$p"
			return 0
		fi
	done
	echo "no free UDP port" >&2
	return 1
}

# wait_port PORT PID NAME: until PID holds UDP PORT (10 s at most).
wait_port() {
	local port=$1 pid=$2 name=$3
	for _ in $(seq 100); do
		if ss -Hlunp "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"; then
			return 0
		fi
		if [[ ! -e /proc/$pid/stat ]] || [[ $(awk '{print $3}' "/proc/$pid/stat") == Z ]]; then
			echo "$name exited; its log:" >&2
			cat "$work/$name.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$name did not bind UDP port $port within 10 s; its log:" >&2
	cat "$work/$name.log" >&2
	return 1
}

rss() { grep -E '^(VmRSS|VmHWM)' "/proc/$1/status" | tr -s ' \t' ' ' | paste -sd' '; }

# start_timegate NAME CONF_EXTRA: starts timegate on a free port; sets tg_pid, tg_port.
start_timegate() {
	local name=$1 extra=$2
	tg_port=$(free_port)
	printf 'port %s\nntsport 0\nbindaddress 127.0.0.1\nlocal stratum 2\n%s\n' "$tg_port" "$extra" >"$work/$name.conf"
	GOMAXPROCS=1 "${pin_server[@]+"${pin_server[@]}"}" "$work/timegate" -config "$work/$name.conf" -state "$work/$name-state" \
		>"$work/$name.log" 2>&1 &
	tg_pid=$!
	started+=("$tg_pid")
	wait_port "$tg_port" "$tg_pid" "$name"
	cp "$work/$name.conf" "$out/"
}

# start_chronyd: chronyd 4.3 as a plain server on a free port; sets ch_pid, ch_port.
start_chronyd() {
	local d=$work/chrony chronyd
	chronyd=$(command -v chronyd || echo /usr/sbin/chronyd)
	ch_port=$(free_port)
	mkdir -p "$d/dump" "$d/nts" "$d/log"
	cat >"$d/chrony.conf" <<EOF
pidfile $d/chronyd.pid
bindcmdaddress $d/run/chronyd.sock
cmdport 0
dumpdir $d/dump
ntsdumpdir $d/nts
logdir $d/log
port $ch_port
bindaddress 127.0.0.1
allow 127.0.0.0/8
local stratum 2
EOF
	# -x: never touch the clock; setpriv removes CAP_SYS_TIME as well.
	"${pin_server[@]+"${pin_server[@]}"}" setpriv --bounding-set -sys_time --inh-caps -sys_time \
		"$chronyd" -x -d -u root -f "$d/chrony.conf" >"$work/chronyd.log" 2>&1 &
	ch_pid=$!
	started+=("$ch_pid")
	wait_port "$ch_port" "$ch_pid" chronyd
	cp "$d/chrony.conf" "$out/"
}

# plain NAME PORT PID RATE ROUND: one plain run, text on the terminal, JSON kept.
plain() {
	local name=$1 port=$2 pid=$3 rate=$4 round=$5
	say "plain $name round $round: rate $rate (0 = saturation), ${PLAIN_SECONDS}s, $CONNS sockets"
	"${pin_load[@]+"${pin_load[@]}"}" "$work/load" -mode plain -target "127.0.0.1:$port" -rate "$rate" \
		-duration "${PLAIN_SECONDS}s" -conns "$CONNS" -pid "$pid" -every 5s -quiet \
		-json-out "$out/plain-$name-rate$rate-$round.json" | tee -a "$out/summary.txt"
}

# spoof NAME RATE EVERY: one spoofed flood against the running timegate.
spoof() {
	local name=$1 rate=$2 every=$3
	say "spoof $name: $SPOOF_SOURCES distinct sources, rate $rate (0 = as fast as possible), at most $SPOOF_MAX"
	"${pin_load[@]+"${pin_load[@]}"}" "$work/load" -mode spoof -target "127.0.0.1:$tg_port" -sources "$SPOOF_SOURCES" \
		-rate "$rate" -duration "$SPOOF_MAX" -pid "$tg_pid" -every "$every" \
		-json-out "$out/spoof-$name.json" | tee -a "$out/summary.txt"
}

echo "building timegate and the load tool"
go build -o "$work/timegate" ./cmd/timegate
go build -o "$work/load" ./tests/load
{
	echo "timegate $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' (dirty tree)'), $(go version | cut -d' ' -f3)"
	echo "$(nproc) CPUs, kernel $(uname -r), $(date -u +%FT%TZ)"
	if [[ ${#pin_server[@]} -gt 0 ]]; then echo "servers pinned to CPU $SERVER_CPU (timegate GOMAXPROCS=1), load tool to CPU $LOAD_CPU"; else echo "not pinned (one CPU or no taskset)"; fi
} | tee "$out/summary.txt"

if [[ $(id -u) -ne 0 ]]; then
	echo "not root: chronyd (refuses to start as another user) and the spoofed flood (raw socket) are skipped"
	SKIP_CHRONY=1 SKIP_SPOOF=1
fi

# (a) throughput, timegate and chronyd alike.
start_timegate timegate-plain "ratelimit off"
say "timegate (plain, ratelimit off) pid $tg_pid port $tg_port: $(rss "$tg_pid")"
if [[ $SKIP_CHRONY != 1 ]]; then
	start_chronyd
	say "chronyd $("$(command -v chronyd || echo /usr/sbin/chronyd)" -v | awk '{print $4}') pid $ch_pid port $ch_port: $(rss "$ch_pid")"
fi
for round in $(seq "$PLAIN_REPEAT"); do
	for rate in 0 "$PLAIN_RATE"; do
		if ((round % 2 == 1)); then
			plain timegate "$tg_port" "$tg_pid" "$rate" "$round"
		fi
		if [[ $SKIP_CHRONY != 1 ]]; then
			plain chronyd "$ch_port" "$ch_pid" "$rate" "$round"
		fi
		if ((round % 2 == 0)); then
			plain timegate "$tg_port" "$tg_pid" "$rate" "$round"
		fi
	done
done
say "after the plain runs: timegate $(rss "$tg_pid")"
stop_pid "$tg_pid"
[[ $SKIP_CHRONY == 1 ]] || stop_pid "$ch_pid"

# (b) the spoofed flood against the defaults that matter: ratelimit and clientloglimit.
if [[ $SKIP_SPOOF != 1 ]]; then
	start_timegate timegate-spoof "# default ratelimit (interval 3 burst 8 leak 2) and clientloglimit (524288)"
	sleep 1
	say "spoofed flood: timegate pid $tg_pid port $tg_port, before: $(rss "$tg_pid")"
	spoof paced "$SPOOF_RATE" "$SAMPLE_EVERY"
	if [[ $SPOOF_FLATOUT == 1 ]]; then
		say "between the floods: timegate $(rss "$tg_pid")"
		spoof flatout 0 5s
	fi
	sleep 5
	say "5 s after the flood: timegate $(rss "$tg_pid")"
fi

if command -v jq >/dev/null; then
	say "summary"
	for f in "$out"/plain-*.json; do
		jq -r --arg f "$(basename "$f" .json)" \
			'"\($f): sent \(.sent_per_s|floor)/s replies \(.replies_per_s|floor)/s loss \(.loss_pct*100|round/100) % p50 \(.latency_p50_us|round) µs p99 \(.latency_p99_us|round) µs target drops \(.target_socket_drops // "?")"' "$f"
	done | tee -a "$out/summary.txt"
	for f in "$out"/spoof-*.json; do
		[[ -f $f ]] || continue
		jq -r --arg f "$(basename "$f" .json)" '"\($f): \(.sent) requests from \(.sources) sources in \(.seconds*10|round/10) s (\(.sent_per_s|floor)/s), answered \(.answered_pct*100|round/100) %, target drops \(.target_socket_drops // "?"); VmRSS kB: \([.samples[].vmrss_kb]|map(tostring)|join(" ")); VmHWM end \(.samples[-1].vmhwm_kb) kB"' "$f"
	done | tee -a "$out/summary.txt"
fi
