#!/usr/bin/env bash
# load.sh — measure the real daemons with the load tool (tests/load), on
# loopback or (NETNS=1, `make load-veth`) through a veth pair between two
# network namespaces the script creates and always deletes:
#
#  (a) side by side, in the same run, with the same tool, server pinned to
#      SERVER_CPU and load tool to LOAD_CPU, no rate limiting anywhere:
#      - echo: the load tool's bare batched UDP answer (recvmmsg/sendmmsg,
#        mode 4 and the nonce echoed, nothing else): the practical ceiling
#        of a Go server on this path;
#      - timegate (GOMAXPROCS=1, ntpworkers 1), plain NTP and NTS;
#      - chronyd 4.3 (single-threaded), plain NTP and NTS;
#      each at saturation (-rate 0, PLAIN_SECONDS, ROUNDS times, the order
#      alternating; with NETNS=1 also counted as sent, at the server's end
#      of the veth pair, since one load core cannot read every reply of a
#      fast server), then the highest offered rate with < 1 % loss, found by
#      bisecting LOSS_ITER times between 0 and the best saturation rate
#      (LOSS_SECONDS each), with its p99 latency; one table, ratios printed;
#      then NTS-KE: sessions per second from CONNS clients on the load core
#      and per second of the server's CPU time (its capacity per core);
#      and plain NTP at BESIDE_RATE alone and beside NTS-KE at half that
#      measured rate, for the p50/p99 latency and the p99 of the server's
#      own residence (transmit − receive timestamp: free of the load
#      core's scheduling, which the KE clients share); both again (unless
#      SKIP_NICE=1) for timegate with `ntskenice NICE` (column tg-nice),
#      and (unless SKIP_INPROC=1) for timegate with `ntsprocesses 0`
#      (NTS-KE in the NTP process, not in a helper; summary lines only);
#  (s) scaling (unless SKIP_SCALING=1): timegate with 1 and 2 workers
#      (ntpworkers and GOMAXPROCS), nothing pinned, plain saturation;
#  (b) a spoofed flood of SPOOF_SOURCES distinct source addresses in
#      127.0.0.0/8 (raw socket, root) against a fresh timegate with its
#      default `ratelimit` and `clientloglimit`, pinned as above: first at
#      SPOOF_RATE requests/s for at most SPOOF_MAX, then (unless
#      SPOOF_FLATOUT=0) the same sources again as fast as the sender goes,
#      sampling timegate's VmRSS/VmHWM before, every SAMPLE_EVERY (5 s flat
#      out) during, and after.
#
# NETNS=1: namespaces tgload-srv-PID and tgload-cli-PID joined by a veth
# pair on the benchmarking network 198.18.0.0/15 (RFC 2544): servers at
# 198.18.0.1 in the first, the load tool at 198.18.0.2 (KE clients from
# 198.19.N.1, one /24 each) in the second; the spoofed flood (127/8 raw
# sources) is skipped. This is the set-up of issue 10's reference figures.
#
# Traffic goes only to 127.0.0.1 or, with NETNS=1, to 198.18.0.1 inside the
# script's own namespaces; every request loop is bounded in count and
# time; chronyd runs with -x and without CAP_SYS_TIME. Daemons are stopped
# on exit, whatever happens. Results (text and JSON) go to LOAD_OUT (default
# a new /tmp/timegate-load-results.XXXXXX), which is kept. The NTS
# certificate is a throw-away self-signed P-256 one made with openssl.
# Needs jq and openssl.
#
# Usage: scripts/load.sh            (or: make load; make load-veth = NETNS=1 SKIP_SPOOF=1)
# Knobs (environment): NETNS=0 PLAIN_SECONDS=10 ROUNDS=2 LOSS_SECONDS=4
#   LOSS_ITER=5 CONNS=4 NTS_RING=16384 BESIDE_RATE=20000
#   SPOOF_SOURCES=10000000 SPOOF_RATE=60000 SPOOF_MAX=200s SPOOF_FLATOUT=1 SAMPLE_EVERY=10s
#   NICE=10 SKIP_NICE=0 (NTS-KE rows again for timegate with `ntskenice NICE`)
#   SKIP_INPROC=0 (1: no NTS-KE rows for timegate with `ntsprocesses 0`)
#   TG_GOMAXPROCS=(timegate's ntpworkers) SKIP_SAT=0 (1: side by side without the saturation and loss runs)
#   TG_BIN=PATH (a timegate binary to measure instead of building this tree)
#   TG_CONF="LINES" (appended to every timegate configuration, e.g. "ntprcvbuf 0" to
#   measure with the kernel's default receive buffer)
#   TG_AFTER_START="COMMANDS" (run after each timegate starts, with $tg_pid set)
#   RUN_NICE=0 SERVER_CPU=0 LOAD_CPU=1 REPORT_ONLY=0 (1: print the table of LOAD_OUT again) SKIP_SIDE=0 SKIP_CHRONY=0 SKIP_NTS=0 SKIP_SCALING=0 SKIP_SPOOF=0 LOAD_OUT=DIR
set -euo pipefail
export GOTOOLCHAIN=go1.27.3

PLAIN_SECONDS=${PLAIN_SECONDS:-10}
ROUNDS=${ROUNDS:-2}
LOSS_SECONDS=${LOSS_SECONDS:-4}
LOSS_ITER=${LOSS_ITER:-5}
NETNS=${NETNS:-0}
REPORT_ONLY=${REPORT_ONLY:-0}
CONNS=${CONNS:-4}
NTS_RING=${NTS_RING:-16384}
BESIDE_RATE=${BESIDE_RATE:-20000}
SPOOF_SOURCES=${SPOOF_SOURCES:-10000000}
SPOOF_RATE=${SPOOF_RATE:-60000}
SPOOF_MAX=${SPOOF_MAX:-200s}
SPOOF_FLATOUT=${SPOOF_FLATOUT:-1}
SAMPLE_EVERY=${SAMPLE_EVERY:-10s}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SKIP_CHRONY=${SKIP_CHRONY:-0}
SKIP_NTS=${SKIP_NTS:-0}
SKIP_SCALING=${SKIP_SCALING:-0}
SKIP_SIDE=${SKIP_SIDE:-0}
SKIP_SAT=${SKIP_SAT:-0}
SKIP_NICE=${SKIP_NICE:-0}
NICE=${NICE:-10}
SKIP_SPOOF=${SKIP_SPOOF:-0}

cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work=$(mktemp -d /tmp/timegate-load.XXXXXX)
out=${LOAD_OUT:-$(mktemp -d /tmp/timegate-load-results.XXXXXX)}
mkdir -p "$out"

started=() # PIDs of the daemons this script started, and only those
netns_made=() # network namespaces this script created, and only those

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
	local pid ns
	for pid in "${started[@]+"${started[@]}"}"; do
		stop_pid "$pid"
	done
	# Deleting a namespace deletes the veth end in it, and with it the pair;
	# an end not yet moved is deleted by name.
	ip link del "$veth_srv" 2>/dev/null || true
	for ns in "${netns_made[@]+"${netns_made[@]}"}"; do
		ip netns del "$ns" 2>/dev/null || echo "could not delete network namespace $ns" >&2
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
# RUN_NICE (root, e.g. -10): servers and load tool at that nice value, so
# that other work on a shared machine takes less of their cores. The
# scaling runs (nothing pinned) are not reniced. `ntskenice N` sets an
# absolute nice value, so under RUN_NICE its handshake threads sit
# further below the NTP worker than they would otherwise.
if [[ ${RUN_NICE:-0} != 0 ]]; then
	pin_server=(nice -n "$RUN_NICE" "${pin_server[@]+"${pin_server[@]}"}")
	pin_load=(nice -n "$RUN_NICE" "${pin_load[@]+"${pin_load[@]}"}")
fi

# Namespace prefixes (empty on loopback): `ip netns exec` execs the command
# in place, so $! is still the daemon's own PID.
in_srv=() in_cli=() srv_ip=127.0.0.1
veth_srv=tgls$$ veth_cli=tglc$$
if [[ $NETNS == 1 ]]; then
	in_srv=(ip netns exec "tgload-srv-$$")
	in_cli=(ip netns exec "tgload-cli-$$")
	srv_ip=198.18.0.1
fi

# setup_netns: the two namespaces and the veth pair between them.
setup_netns() {
	local s=tgload-srv-$$ c=tgload-cli-$$ i
	ip netns add "$s"
	netns_made+=("$s")
	ip netns add "$c"
	netns_made+=("$c")
	ip link add "$veth_srv" type veth peer name "$veth_cli"
	ip link set "$veth_srv" netns "$s"
	ip link set "$veth_cli" netns "$c"
	ip -n "$s" addr add 198.18.0.1/15 dev "$veth_srv"
	ip -n "$c" addr add 198.18.0.2/15 dev "$veth_cli"
	for i in $(seq "$CONNS"); do
		ip -n "$c" addr add "198.19.$i.1/15" dev "$veth_cli"
	done
	for ns in "$s" "$c"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$s" link set "$veth_srv" up
	ip -n "$c" link set "$veth_cli" up
	# KE clients open thousands of connections a second from one address
	# each: without reuse of TIME_WAIT ports (on by default for loopback
	# only) they run out of source ports within a minute, and the dial
	# failures would be counted against the server.
	ip netns exec "$c" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
	# Both ends up (carrier on both sides); IPv4 needs no address
	# detection, so the pair is usable then.
	for _ in $(seq 50); do
		if ip -n "$s" link show dev "$veth_srv" | grep -q 'state UP' &&
			ip -n "$c" link show dev "$veth_cli" | grep -q 'state UP'; then
			return 0
		fi
		sleep 0.1
	done
	echo "veth pair did not come up" >&2
	return 1
}

free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! "${in_srv[@]+"${in_srv[@]}"}" ss -Hlun "sport = :$p" | grep -q .; then
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
		if "${in_srv[@]+"${in_srv[@]}"}" ss -Hlunp "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"; then
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

# start_timegate NAME CONF_EXTRA [WORKERS [PIN]]: starts timegate on a free
# port (NTS-KE on another when CONF_EXTRA names a certificate) with WORKERS
# sockets and as many threads (default 1), pinned unless PIN=0; sets tg_pid,
# tg_port, tg_ke.
start_timegate() {
	local name=$1 extra=$2 workers=${3:-1} pin=${4:-1} ke=0
	tg_port=$(free_port)
	if [[ $extra == *ntsservercert* ]]; then ke=$(free_port); fi
	tg_ke=$ke
	printf 'port %s\nntsport %s\nbindaddress %s\nlocal stratum 2\nntpworkers %s\nntsdumpdir %s\n%s\n%s\n' \
		"$tg_port" "$ke" "$srv_ip" "$workers" "$work/$name-state" "$extra" "${TG_CONF:-}" >"$work/$name.conf"
	local prefix=("${in_srv[@]+"${in_srv[@]}"}")
	if [[ $pin == 1 ]]; then prefix+=("${pin_server[@]+"${pin_server[@]}"}"); fi
	GOMAXPROCS=${TG_GOMAXPROCS:-$workers} "${prefix[@]+"${prefix[@]}"}" "$work/timegate" -config "$work/$name.conf" -state "$work/$name-state" \
		>"$work/$name.log" 2>&1 &
	tg_pid=$!
	started+=("$tg_pid")
	wait_port "$tg_port" "$tg_pid" "$name"
	cp "$work/$name.conf" "$out/"
	if [[ -n ${TG_AFTER_START:-} ]]; then
		# An experiment's hook, with tg_pid and name set (e.g. a
		# scheduling policy for the NTS-KE helper, `pgrep -P $tg_pid`).
		tg_name=$name eval "$TG_AFTER_START"
	fi
}

# start_echo: the load tool's echo server on a free port; sets echo_pid, echo_port.
start_echo() {
	echo_port=$(free_port)
	GOMAXPROCS=1 "${in_srv[@]+"${in_srv[@]}"}" "${pin_server[@]+"${pin_server[@]}"}" "$work/load" -mode echo -target "$srv_ip:$echo_port" \
		-duration 10m >"$work/echo.log" 2>&1 &
	echo_pid=$!
	started+=("$echo_pid")
	wait_port "$echo_port" "$echo_pid" echo
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
bindaddress $srv_ip
allow 127.0.0.0/8
allow 198.18.0.0/15
local stratum 2
EOF
	if [[ $SKIP_NTS != 1 ]]; then
		ch_ke=$(free_port)
		printf 'ntsservercert %s\nntsserverkey %s\nntsport %s\n' "$work/cert.pem" "$work/key.pem" "$ch_ke" >>"$d/chrony.conf"
	fi
	# -x: never touch the clock; setpriv removes CAP_SYS_TIME as well.
	"${in_srv[@]+"${in_srv[@]}"}" "${pin_server[@]+"${pin_server[@]}"}" setpriv --bounding-set -sys_time --inh-caps -sys_time \
		"$chronyd" -x -d -u root -f "$d/chrony.conf" >"$work/chronyd.log" 2>&1 &
	ch_pid=$!
	started+=("$ch_pid")
	wait_port "$ch_port" "$ch_pid" chronyd
	cp "$d/chrony.conf" "$out/"
}

# measure NAME MODE PORT PID KE RATE SECONDS TAG: one run of the load tool,
# pinned; MODE plain or nts (KE: the NTS-KE port); JSON kept as TAG.json.
measure() {
	local name=$1 mode=$2 port=$3 pid=$4 ke=$5 rate=$6 secs=$7 tag=$8 extra=()
	if [[ $mode == nts ]]; then extra=(-ke "$srv_ip:$ke" -ca "$work/cert.pem" -ring "$NTS_RING"); fi
	say "$mode $name: rate $rate (0 = saturation), ${secs}s, $CONNS sockets"
	local tx0
	tx0=$(srv_tx_packets)
	"${in_cli[@]+"${in_cli[@]}"}" "${pin_load[@]+"${pin_load[@]}"}" "$work/load" -mode "$mode" -target "$srv_ip:$port" -rate "$rate" \
		-duration "${secs}s" -conns "$CONNS" -pid "$pid" -every 5s -quiet "${extra[@]+"${extra[@]}"}" \
		-json-out "$out/$tag.json" | tee -a "$out/summary.txt"
	if [[ -n $tx0 ]]; then
		echo $(($(srv_tx_packets) - tx0)) >"$out/$tag.srvtx"
		echo "server namespace transmitted $(cat "$out/$tag.srvtx") packets" | tee -a "$out/summary.txt"
	fi
}

# srv_tx_packets: packets the server namespace's end of the veth pair has
# transmitted (empty on loopback). At saturation the load tool, on one
# core, cannot read every reply (its "own socket drops"), so what it
# receives understates what a fast server answers; the kernel's count of
# what left the server's namespace does not depend on the tool keeping up.
# Only the server under load sends anything meanwhile (no upstreams).
srv_tx_packets() {
	[[ $NETNS == 1 ]] || return 0
	"${in_srv[@]}" cat "/sys/class/net/$veth_srv/statistics/tx_packets"
}

# cputicks PID: user+system clock ticks of PID and its children (chronyd
# runs NTS-KE in a helper process it forks).
cputicks() {
	local p t=0
	for p in "$1" $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}

# kerate NAME PID KE: NTS-KE sessions back to back for PLAIN_SECONDS from
# CONNS clients on the load core, and the server's CPU time meanwhile: a KE
# client costs about what the server does, so handshakes per server CPU
# second is the server's capacity per core, whatever the client reached.
kerate() {
	local name=$1 pid=$2 ke=$3 t0 t1 hz
	hz=$(getconf CLK_TCK)
	say "NTS-KE $name: ${PLAIN_SECONDS}s, $CONNS clients"
	t0=$(cputicks "$pid")
	"${in_cli[@]+"${in_cli[@]}"}" "${pin_load[@]+"${pin_load[@]}"}" "$work/load" -mode ke -ke "$srv_ip:$ke" -ca "$work/cert.pem" \
		-duration "${PLAIN_SECONDS}s" -conns "$CONNS" -pid "$pid" -every 5s -quiet \
		-json-out "$out/ke-$name.json" | tee -a "$out/summary.txt"
	t1=$(cputicks "$pid")
	awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { print (b - a) / hz }' >"$out/ke-$name.cpu"
	jq -r --arg n "$name" --argjson cpu "$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN { print (b - a) / hz }')" \
		'"\($n): \(.replies) handshakes in \(.seconds*10|round/10) s (\(.replies_per_s|floor)/s, failed \(.send_errors)\(if .first_error then ", first: " + .first_error else "" end)), server CPU \($cpu) s: \(if $cpu > 0 then (.replies / $cpu | floor) else "?" end) handshakes per server CPU second, p50 \(.latency_p50_us|floor) µs p99 \(.latency_p99_us|floor) µs"' \
		"$out/ke-$name.json" | tee -a "$out/summary.txt" "$work/ke.txt"
}

# besideke NAME PORT PID KE: plain NTP at BESIDE_RATE alone, then again
# while NTS-KE sessions run at half the rate kerate measured for NAME (the
# KE clients on the load core too): does KE work delay NTP replies?
besideke() {
	local name=$1 port=$2 pid=$3 ke=$4 half kepid
	half=$(jq '.replies_per_s / 2 | floor' "$out/ke-$name.json")
	# Let the sessions the KE run left behind (up to the 2 s KE timeout) end.
	sleep 3
	measure "$name" plain "$port" "$pid" 0 "$BESIDE_RATE" "$PLAIN_SECONDS" "beside-$name-alone"
	"${in_cli[@]+"${in_cli[@]}"}" "${pin_load[@]+"${pin_load[@]}"}" "$work/load" -mode ke -ke "$srv_ip:$ke" -ca "$work/cert.pem" -rate "$half" \
		-duration "$((PLAIN_SECONDS + 2))s" -conns "$CONNS" -quiet -json-out "$out/beside-$name-ke.json" >/dev/null &
	kepid=$!
	sleep 1
	measure "$name" plain "$port" "$pid" 0 "$BESIDE_RATE" "$PLAIN_SECONDS" "beside-$name-with-ke"
	wait "$kepid" || true
	jq -r -s --arg n "$name" --argjson half "$half" '"\($n) plain at \(.[0].rate_target|floor)/s: alone p50 \(.[0].latency_p50_us|floor) µs p99 \(.[0].latency_p99_us|floor) µs loss \(.[0].loss_pct*100|round/100) %; beside NTS-KE at \($half)/s (achieved \(.[2].replies_per_s|floor)/s): p50 \(.[1].latency_p50_us|floor) µs p99 \(.[1].latency_p99_us|floor) µs loss \(.[1].loss_pct*100|round/100) %"' \
		"$out/beside-$name-alone.json" "$out/beside-$name-with-ke.json" "$out/beside-$name-ke.json" | tee -a "$out/summary.txt" "$work/ke.txt"
}

# lossfree NAME MODE PORT PID KE: the highest offered rate with < 1 % loss,
# bisecting LOSS_ITER times between 0 (lossless) and the best saturation
# rate measured for NAME/MODE (lossy), to 1/2^LOSS_ITER of that rate.
lossfree() {
	local name=$1 mode=$2 port=$3 pid=$4 ke=$5 peak lo hi rate loss
	peak=$(jq -s 'map(.replies_per_s) | max | floor' "$out"/sat-"$name"-"$mode"-*.json)
	lo=0 hi=$peak i=0
	# LOSS_ITER steps, and up to 4 more halvings while none lost < 1 %.
	while ((i < LOSS_ITER || (lo == 0 && i < LOSS_ITER + 4))); do
		i=$((i + 1))
		rate=$(((lo + hi) / 2000 * 1000))
		if ((rate <= lo || rate == 0)); then break; fi
		measure "$name" "$mode" "$port" "$pid" "$ke" "$rate" "$LOSS_SECONDS" "loss-$name-$mode-$rate"
		loss=$(jq '.loss_pct' "$out/loss-$name-$mode-$rate.json")
		if awk -v l="$loss" 'BEGIN { exit !(l < 1) }'; then lo=$rate; else hi=$rate; fi
	done
}

# spoof NAME RATE EVERY: one spoofed flood against the running timegate.
spoof() {
	local name=$1 rate=$2 every=$3
	say "spoof $name: $SPOOF_SOURCES distinct sources, rate $rate (0 = as fast as possible), at most $SPOOF_MAX"
	"${in_cli[@]+"${in_cli[@]}"}" "${pin_load[@]+"${pin_load[@]}"}" "$work/load" -mode spoof -target "127.0.0.1:$tg_port" -sources "$SPOOF_SOURCES" \
		-rate "$rate" -duration "$SPOOF_MAX" -pid "$tg_pid" -every "$every" \
		-json-out "$out/spoof-$name.json" | tee -a "$out/summary.txt"
}

if [[ $REPORT_ONLY == 1 ]]; then
	[[ -n ${LOAD_OUT:-} ]] || { echo "REPORT_ONLY=1 needs LOAD_OUT=DIR of an earlier run" >&2; exit 2; }
	NETNS=0 SKIP_SIDE=1 SKIP_SCALING=1 SKIP_SPOOF=1
else
echo "building timegate and the load tool"
if [[ -n ${TG_BIN:-} ]]; then
	cp "$TG_BIN" "$work/timegate" # another build, to compare two commits in one set-up
else
	go build -o "$work/timegate" ./cmd/timegate
fi
go build -o "$work/load" ./tests/load
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
	-days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:198.18.0.1" 2>/dev/null
chmod 600 "$work/key.pem"
{
	echo "timegate $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' (dirty tree)'), $(go version | cut -d' ' -f3)"
	echo "$(nproc) CPUs, kernel $(uname -r), $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	if [[ ${#pin_server[@]} -gt 0 ]]; then echo "servers pinned to CPU $SERVER_CPU (GOMAXPROCS=1), load tool to CPU $LOAD_CPU"; else echo "not pinned (one CPU or no taskset)"; fi
	if [[ ${RUN_NICE:-0} != 0 ]]; then echo "servers and load tool at nice $RUN_NICE"; fi
	if [[ $NETNS == 1 ]]; then echo "servers at $srv_ip in netns tgload-srv-$$, load from 198.18.0.2 in netns tgload-cli-$$, through a veth pair"; else echo "everything on 127.0.0.1"; fi
} | tee "$out/summary.txt"

if [[ $(id -u) -ne 0 ]]; then
	if [[ $NETNS == 1 ]]; then
		echo "NETNS=1 needs root (ip netns)" >&2
		exit 1
	fi
	echo "not root: chronyd (refuses to start as another user) and the spoofed flood (raw socket) are skipped"
	SKIP_CHRONY=1 SKIP_SPOOF=1
fi
fi # REPORT_ONLY
if [[ $NETNS == 1 ]]; then
	SKIP_SPOOF=1 # its sources walk 127/8: loopback only
	setup_netns
fi

# (a) side by side: echo, timegate and chronyd, plain and NTS.
if [[ $SKIP_SIDE != 1 ]]; then
	start_echo
	nts_conf=""
	if [[ $SKIP_NTS != 1 ]]; then
		nts_conf="ntsservercert $work/cert.pem
	ntsserverkey $work/key.pem"
	fi
	start_timegate timegate "ratelimit off
	ntsratelimit off
	$nts_conf"
	say "timegate pid $tg_pid port $tg_port ke $tg_ke: $(rss "$tg_pid")"
	if [[ $SKIP_CHRONY != 1 ]]; then
		start_chronyd
		say "chronyd $("$(command -v chronyd || echo /usr/sbin/chronyd)" -v | awk '{print $4}') pid $ch_pid port $ch_port: $(rss "$ch_pid")"
	fi
	modes=(plain)
	[[ $SKIP_NTS == 1 ]] || modes+=(nts)
	for round in $(seq "$ROUNDS"); do
		[[ $SKIP_SAT != 1 ]] || break
		measure echo plain "$echo_port" "$echo_pid" 0 0 "$PLAIN_SECONDS" "sat-echo-plain-$round"
		for mode in "${modes[@]}"; do
			if ((round % 2 == 1)); then
				measure timegate "$mode" "$tg_port" "$tg_pid" "$tg_ke" 0 "$PLAIN_SECONDS" "sat-timegate-$mode-$round"
			fi
			if [[ $SKIP_CHRONY != 1 ]]; then
				measure chronyd "$mode" "$ch_port" "$ch_pid" "${ch_ke:-0}" 0 "$PLAIN_SECONDS" "sat-chronyd-$mode-$round"
			fi
			if ((round % 2 == 0)); then
				measure timegate "$mode" "$tg_port" "$tg_pid" "$tg_ke" 0 "$PLAIN_SECONDS" "sat-timegate-$mode-$round"
			fi
		done
	done
	[[ $SKIP_SAT == 1 ]] || lossfree echo plain "$echo_port" "$echo_pid" 0
	for mode in "${modes[@]}"; do
		[[ $SKIP_SAT != 1 ]] || break
		lossfree timegate "$mode" "$tg_port" "$tg_pid" "$tg_ke"
		[[ $SKIP_CHRONY == 1 ]] || lossfree chronyd "$mode" "$ch_port" "$ch_pid" "${ch_ke:-0}"
	done
	if [[ $SKIP_NTS != 1 ]]; then
		kerate timegate "$tg_pid" "$tg_ke"
		[[ $SKIP_CHRONY == 1 ]] || kerate chronyd "$ch_pid" "$ch_ke"
		besideke timegate "$tg_port" "$tg_pid" "$tg_ke"
		[[ $SKIP_CHRONY == 1 ]] || besideke chronyd "$ch_port" "$ch_pid" "$ch_ke"
	fi
	say "after the runs: timegate $(rss "$tg_pid")"
	stop_pid "$tg_pid"
	stop_pid "$echo_pid"
	# The same NTS-KE runs against timegate with `ntskenice`: handshakes on
	# threads at nice 10, the NTP worker on a thread of its own (GOMAXPROCS
	# raised to 2, still pinned to the one server CPU).
	if [[ $SKIP_NTS != 1 && $SKIP_NICE != 1 ]]; then
		start_timegate tgnice "ratelimit off
	ntsratelimit off
	ntskenice $NICE
	$nts_conf"
		say "timegate with ntskenice $NICE: pid $tg_pid port $tg_port ke $tg_ke"
		kerate tgnice "$tg_pid" "$tg_ke"
		besideke tgnice "$tg_port" "$tg_pid" "$tg_ke"
		stop_pid "$tg_pid"
	fi
	# And with NTS-KE in the NTP process itself (`ntsprocesses 0`), as
	# timegate served it before it had helper processes.
	if [[ $SKIP_NTS != 1 && ${SKIP_INPROC:-0} != 1 ]]; then
		start_timegate tginproc "ratelimit off
	ntsratelimit off
	ntsprocesses 0
	$nts_conf"
		say "timegate with ntsprocesses 0: pid $tg_pid port $tg_port ke $tg_ke"
		kerate tginproc "$tg_pid" "$tg_ke"
		besideke tginproc "$tg_port" "$tg_pid" "$tg_ke"
		stop_pid "$tg_pid"
	fi
	[[ $SKIP_CHRONY == 1 ]] || stop_pid "$ch_pid"

fi

# (s) scaling: 1 and 2 workers, nothing pinned.
if [[ $SKIP_SCALING != 1 ]]; then
	for workers in 1 2; do
		start_timegate "timegate-w$workers" "ratelimit off" "$workers" 0
		say "scaling: timegate with $workers worker(s), nothing pinned"
		tx0=$(srv_tx_packets)
		"${in_cli[@]+"${in_cli[@]}"}" "$work/load" -mode plain -target "$srv_ip:$tg_port" -rate 0 -duration "${PLAIN_SECONDS}s" -conns "$CONNS" \
			-pid "$tg_pid" -every 5s -quiet -json-out "$out/scale-w$workers.json" | tee -a "$out/summary.txt"
		if [[ -n $tx0 ]]; then
			echo $(($(srv_tx_packets) - tx0)) >"$out/scale-w$workers.srvtx"
			echo "server namespace transmitted $(cat "$out/scale-w$workers.srvtx") packets" | tee -a "$out/summary.txt"
		fi
		stop_pid "$tg_pid"
	done
	say "scaling: replies/s with 1 and 2 workers: $(jq -r '.replies_per_s|floor' "$out/scale-w1.json") $(jq -r '.replies_per_s|floor' "$out/scale-w2.json") (received by the tool)"
fi

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

if compgen -G "$out/spoof-*.json" >/dev/null; then
	say "spoof summary"
	for f in "$out"/spoof-*.json; do
		jq -r --arg f "$(basename "$f" .json)" '"\($f): \(.sent) requests from \(.sources) sources in \(.seconds*10|round/10) s (\(.sent_per_s|floor)/s), answered \(.answered_pct*100|round/100) %, target drops \(.target_socket_drops // "?"); VmRSS kB: \([.samples[].vmrss_kb]|map(tostring)|join(" ")); VmHWM end \(.samples[-1].vmhwm_kb) kB"' "$f"
	done | tee -a "$out/summary.txt"
fi

# report: one table from the JSON results in $out (REPORT_ONLY=1 with
# LOAD_OUT=DIR prints it again from an earlier run's results).
report() {
	local kv=$work/kv.txt name mode f
	: >"$kv"
	for name in timegate chronyd echo tgnice tginproc; do
		for mode in plain nts; do
			compgen -G "$out/sat-$name-$mode-*.json" >/dev/null || continue
			jq -s -r --arg k "$mode" --arg n "$name" 'max_by(.replies_per_s) |
				"\($k)_peak \($n) \(.replies_per_s|floor)", "\($k)_peak_p99 \($n) \(.latency_p99_us|floor)"' \
				"$out"/sat-"$name"-"$mode"-*.json >>"$kv"
			# What the server sent (veth counter) over the same span as the
			# tool's reply rate (first request to last reply); best run.
			for f in "$out"/sat-"$name"-"$mode"-*.json; do
				[[ -f ${f%.json}.srvtx ]] || continue
				jq -r --argjson tx "$(cat "${f%.json}.srvtx")" '"\($tx / .reply_seconds | floor)"' "$f"
			done | sort -n | tail -1 | sed "s/^/${mode}_srvtx $name /" >>"$kv"
			compgen -G "$out/loss-$name-$mode-*.json" >/dev/null || continue
			jq -s -r --arg k "$mode" --arg n "$name" '[.[] | select(.loss_pct < 1)] | if length == 0 then empty else max_by(.rate_target) |
				"\($k)_lossfree \($n) \(.rate_target|floor)", "\($k)_lossfree_p99 \($n) \(.latency_p99_us|floor)" end' \
				"$out"/loss-"$name"-"$mode"-*.json >>"$kv"
		done
		f=$out/ke-$name.json
		if [[ -f $f ]]; then
			jq -r --arg n "$name" --argjson cpu "$(cat "$out/ke-$name.cpu" 2>/dev/null || echo 0)" \
				'"ke_rate \($n) \(.replies_per_s|floor)", (if $cpu > 0 then "ke_cpu \($n) \(.replies / $cpu | floor)" else empty end), "ke_p99 \($n) \(.latency_p99_us|floor)"' "$f" >>"$kv"
		fi
		if [[ -f $out/beside-$name-alone.json && -f $out/beside-$name-with-ke.json ]]; then
			jq -r --arg n "$name" '"beside_alone_p99 \($n) \(.latency_p99_us|floor)"' "$out/beside-$name-alone.json" >>"$kv"
			jq -r --arg n "$name" '"beside_ke_p99 \($n) \(.latency_p99_us|floor)"' "$out/beside-$name-with-ke.json" >>"$kv"
			jq -r --arg n "$name" 'if .residence_p99_us then "beside_alone_res99 \($n) \(.residence_p99_us|floor)" else empty end' "$out/beside-$name-alone.json" >>"$kv"
			jq -r --arg n "$name" 'if .residence_p99_us then "beside_ke_res99 \($n) \(.residence_p99_us|floor)" else empty end' "$out/beside-$name-with-ke.json" >>"$kv"
		fi
	done
	for f in "$out"/scale-w1.json "$out"/scale-w2.json; do
		[[ -f $f ]] || continue
		jq -r --arg w "$(basename "$f" .json)" '"\($w) timegate \(.replies_per_s|floor)"' "$f" >>"$kv"
		[[ ! -f ${f%.json}.srvtx ]] || jq -r --arg w "$(basename "$f" .json)" --argjson tx "$(cat "${f%.json}.srvtx")" \
			'"\($w)-sent timegate \($tx / .reply_seconds | floor)"' "$f" >>"$kv"
	done
	awk -v beside="$BESIDE_RATE" '
	{ v[$1 " " $2] = $3 }
	function g(k, n) { return ((k " " n) in v) ? v[k " " n] : "-" }
	function r(a, b) { return (a != "-" && b != "-" && b + 0 > 0) ? sprintf("%.2f", a / b) : "-" }
	function row(label, k, target) {
		printf "%-44s %10s %10s %10s %8s %8s %10s %8s  %s\n", label, g(k, "timegate"), g(k, "chronyd"), g(k, "echo"),
			r(g(k, "timegate"), g(k, "chronyd")), r(g(k, "timegate"), g(k, "echo")), g(k, "tgnice"), r(g(k, "tgnice"), g(k, "chronyd")), target
	}
	END {
		printf "%-44s %10s %10s %10s %8s %8s %10s %8s  %s\n", "", "timegate", "chronyd", "echo", "tg/chr", "tg/echo", "tg-nice", "nice/chr", "issue 10 target"
		row("plain: peak replies/s sent (server veth)", "plain_srvtx", "tg/chr >= 1.0, tg/echo >= 0.85")
		row("plain: peak replies/s received by the tool", "plain_peak", "")
		row("plain: p99 at peak (us, queueing)", "plain_peak_p99", "")
		row("plain: highest offered/s with < 1 % loss", "plain_lossfree", "tg/chr >= 1.0")
		row("plain: p99 there (us)", "plain_lossfree_p99", "")
		row("NTS: peak replies/s sent (server veth)", "nts_srvtx", "tg/chr >= 1.2")
		row("NTS: peak replies/s received by the tool", "nts_peak", "")
		row("NTS: p99 at peak (us, queueing)", "nts_peak_p99", "")
		row("NTS: highest offered/s with < 1 % loss", "nts_lossfree", "")
		row("NTS: p99 there (us)", "nts_lossfree_p99", "")
		row("NTS-KE: handshakes/s (from the load core)", "ke_rate", "")
		row("NTS-KE: handshakes per server CPU second", "ke_cpu", "")
		row("NTS-KE: session p99 (us)", "ke_p99", "")
		row("NTP p99 (us) at " beside "/s alone", "beside_alone_p99", "")
		row("NTP p99 (us) beside NTS-KE at half its max", "beside_ke_p99", "close to alone")
		row("NTP server residence p99 (us), alone", "beside_alone_res99", "")
		row("NTP server residence p99 (us), beside NTS-KE", "beside_ke_res99", "close to alone")
		printf "\n"
		printf "timegate NTS/plain peak: sent %s, received %s (target >= 0.7)\n", r(g("nts_srvtx", "timegate"), g("plain_srvtx", "timegate")), r(g("nts_peak", "timegate"), g("plain_peak", "timegate"))
		printf "chronyd  NTS/plain peak: sent %s, received %s\n", r(g("nts_srvtx", "chronyd"), g("plain_srvtx", "chronyd")), r(g("nts_peak", "chronyd"), g("plain_peak", "chronyd"))
		printf "NTP p99 beside KE / alone: timegate %s, timegate with ntskenice %s, timegate with ntsprocesses 0 %s, chronyd %s\n", r(g("beside_ke_p99", "timegate"), g("beside_alone_p99", "timegate")), r(g("beside_ke_p99", "tgnice"), g("beside_alone_p99", "tgnice")), r(g("beside_ke_p99", "tginproc"), g("beside_alone_p99", "tginproc")), r(g("beside_ke_p99", "chronyd"), g("beside_alone_p99", "chronyd"))
		printf "NTP server residence p99 beside KE / alone: timegate %s, timegate with ntskenice %s, timegate with ntsprocesses 0 %s, chronyd %s\n", r(g("beside_ke_res99", "timegate"), g("beside_alone_res99", "timegate")), r(g("beside_ke_res99", "tgnice"), g("beside_alone_res99", "tgnice")), r(g("beside_ke_res99", "tginproc"), g("beside_alone_res99", "tginproc")), r(g("beside_ke_res99", "chronyd"), g("beside_alone_res99", "chronyd"))
		printf "NTS-KE handshakes per server CPU second: timegate %s, with ntsprocesses 0 %s, chronyd %s\n", g("ke_cpu", "timegate"), g("ke_cpu", "tginproc"), g("ke_cpu", "chronyd")
		printf "scaling, nothing pinned: sent 1 worker %s/s, 2 workers %s/s (2/1: %s); received 1 worker %s/s, 2 workers %s/s (2/1: %s)\n", g("scale-w1-sent", "timegate"), g("scale-w2-sent", "timegate"), r(g("scale-w2-sent", "timegate"), g("scale-w1-sent", "timegate")), g("scale-w1", "timegate"), g("scale-w2", "timegate"), r(g("scale-w2", "timegate"), g("scale-w1", "timegate"))
	}' "$kv"
}

if [[ $SKIP_SIDE != 1 || $REPORT_ONLY == 1 ]]; then
	say "table (peak: best of $ROUNDS saturation runs; < 1 % loss: highest rate of the bisection that lost under 1 %)"
	report | tee -a "$out/summary.txt"
	[[ ! -f $work/ke.txt ]] || cat "$work/ke.txt" | tee -a "$out/summary.txt"
fi
