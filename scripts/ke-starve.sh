#!/usr/bin/env bash
# NTS-KE throughput while a normal-priority busy loop holds the server's CPU:
# the price of the helpers' scheduling policy (BENCHMARKS.md, "The price of
# SCHED_IDLE"). timegate pinned to CPU 0 with a busy loop beside it, the load
# tool's KE clients on CPU 1, loopback only, 10 s per policy.
# Usage: scripts/ke-starve.sh ["ntskenice idle" "ntskenice 0" ...]
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/timegate" ./cmd/timegate
go build -o "$work/load" ./tests/load
port=$((20000 + RANDOM % 10000)) ke=$((30000 + RANDOM % 10000))
[[ $# -gt 0 ]] || set -- "ntskenice idle" "ntskenice 0"
for line in "$@"; do
	state=$work/state-${line// /-}
	mkdir -p "$state"
	printf 'port %s\nntsport %s\nbindaddress 127.0.0.1\nlocal stratum 2\nntpworkers 1\nratelimit off\nntsratelimit off\n%s\n' \
		"$port" "$ke" "$line" >"$work/tg.conf"
	GOMAXPROCS=1 taskset -c 0 "$work/timegate" -config "$work/tg.conf" -state "$state" >"$work/tg.log" 2>&1 &
	tg=$!
	pids+=("$tg")
	for _ in $(seq 50); do [[ -e $state/selfsigned-cert.pem ]] && ss -ltn | grep -q ":$ke " && break; sleep 0.1; done
	taskset -c 0 sh -c 'while :; do :; done' &
	busy=$!
	pids+=("$busy")
	sleep 0.5
	taskset -c 1 "$work/load" -mode ke -ke "127.0.0.1:$ke" -ca "$state/selfsigned-cert.pem" -duration 10s -conns 4 -quiet \
		-json-out "$work/ke.json" >/dev/null
	kill "$busy" "$tg"
	wait "$tg" 2>/dev/null || true
	jq -r --arg l "$line" '"\($l), busy loop on the server CPU: \(.replies_per_s|floor) handshakes/s, failed \(.send_errors), p50 \(.latency_p50_us|floor) µs, p99 \(.latency_p99_us|floor) µs"' "$work/ke.json"
done
