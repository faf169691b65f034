#!/usr/bin/env bash
# client-delay.sh — issue 14: the samples timegate takes of an upstream,
# beside the samples a chronyd 4.3 client takes of the same upstream.
#
# One chronyd (`local stratum 8`, -x) serves on 127.0.0.2; timegate and a
# chronyd client both poll it at 1/16 s (minpoll/maxpoll -4, plain NTP)
# and log every sample (`log measurements`: delay, and offset against the
# client's own served clock). After SECONDS_RUN the 10th, 50th and 90th
# percentile of each client's delays and the median of its offsets are
# printed, for RUNS runs. The upstream's processing, its clock and the
# path are the same for both clients, so a difference in delay is the
# clients' own doing: on loopback both legs are stamped inside the
# senders' system calls, the request leg in the client's, the return leg
# in the upstream's, and a client that keeps the upstream's CPU busy or
# pushes the upstream onto a halted CPU lengthens the upstream's T3-to-send
# time, which its samples read as the upstream being behind
# (BENCHMARKS.md, "The samples timegate takes").
#
# PIN=1 puts the upstream on CPU 1 and both clients on CPU 0 (taskset), so
# that neither client can move the upstream or run beside it.
#
# Usage: scripts/client-delay.sh
# Knobs: SECONDS_RUN=30 RUNS=1 OUT=DIR TG_ENV="GOMAXPROCS=1" PIN=1
#   TG_BIN=PATH (a timegate binary to use instead of building this tree)
set -euo pipefail
export GOTOOLCHAIN=go1.27.3

SECONDS_RUN=${SECONDS_RUN:-30}
RUNS=${RUNS:-1}
OUT=${OUT:-$(mktemp -d /tmp/timegate-cdelay.XXXXXX)}
mkdir -p "$OUT"
root=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=scripts/lib-chronyd.sh
. "$root/scripts/lib-chronyd.sh" # pids, cleanup, free_port, pin, chronyd_run
trap cleanup EXIT

if [[ -n ${TG_BIN:-} ]]; then
	cp "$TG_BIN" "$OUT/timegate"
else
	(cd "$root" && go build -o "$OUT/timegate" ./cmd/timegate)
fi

summary() { # LOG -> "n p10 p50 p90 offset-median" (µs), the first 20 samples (iburst) left out
	awk '/^20[0-9][0-9]-/ { n++; if (n > 20) print $13 * 1e6, $12 * 1e6 }' "$1" | python3 -c '
import sys, statistics as st
rows = [tuple(map(float, l.split())) for l in sys.stdin]
d = sorted(r[0] for r in rows); n = len(d)
if n == 0:
    print("0 - - - -"); sys.exit()
print("%d %.1f %.1f %.1f %.2f" % (n, d[n // 10], d[n // 2], d[9 * n // 10], st.median(r[1] for r in rows)))'
}

printf "%-4s %-9s %8s %8s %8s %8s %12s\n" run client samples "p10 µs" "p50 µs" "p90 µs" "offset µs" | tee "$OUT/summary.txt"
for run in $(seq 1 "$RUNS"); do
	d="$OUT/run-$run"
	mkdir -p "$d/srv" "$d/cli/log" "$d/tg/log"
	port=$(free_port)
	tgport=$(free_port)
	cat >"$d/srv/chrony.conf" <<-EOC
		pidfile $d/srv/chronyd.pid
		bindcmdaddress $d/srv/chronyd.sock
		cmdport 0
		port $port
		bindaddress 127.0.0.2
		allow 127.0.0.0/8
		local stratum 8
	EOC
	cat >"$d/cli/chrony.conf" <<-EOC
		pidfile $d/cli/chronyd.pid
		bindcmdaddress $d/cli/chronyd.sock
		cmdport 0
		port 0
		logdir $d/cli/log
		log measurements
		server 127.0.0.2 port $port iburst minpoll -4 maxpoll -4
	EOC
	cat >"$d/tg/timegate.conf" <<-EOC
		port $tgport
		ntsport 0
		bindaddress 127.0.0.5
		bindcmdaddress $d/tg/timegate.sock
		logdir $d/tg/log
		log measurements
		server 127.0.0.2 port $port iburst minpoll -4 maxpoll -4
	EOC
	chronyd_run "$d/srv" "$d/srv/chrony.conf" 1
	sleep 0.5
	chronyd_run "$d/cli" "$d/cli/chrony.conf" 0
	$(pin 0) env ${TG_ENV:-} "$OUT/timegate" -config "$d/tg/timegate.conf" -state "$d/tg" >"$d/tg/timegate.out" 2>&1 &
	pids+=($!)
	sleep "$SECONDS_RUN"
	cleanup
	pids=()
	for c in "timegate $d/tg/log/measurements.log" "chronyd $d/cli/log/measurements.log"; do
		set -- $c
		read -r n p10 p50 p90 off < <(summary "$2")
		printf "%-4s %-9s %8s %8s %8s %8s %12s\n" "$run" "$1" "$n" "$p10" "$p50" "$p90" "$off" | tee -a "$OUT/summary.txt"
	done
done
echo "results in $OUT"
