# lib-chronyd.sh — helpers shared by the scripts that run chronyds beside
# timegate on loopback (sourced, not run): processes to stop on exit, a
# free UDP port, and a chronyd that can never set the clock.

pids=()
# cleanup stops what the script started (only those: a bare wait would also
# wait for anything else the script runs in the background).
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pin CPU prints a taskset prefix for CPU when PIN=1, nothing otherwise.
pin() {
	if [[ ${PIN:-0} == 1 && -n ${1:-} ]]; then echo "taskset -c $1"; fi
}

# chronyd_run DIR CONF [CPU]: chronyd -x in the foreground of a background
# job, without CAP_SYS_TIME, its output in DIR/chronyd.out.
chronyd_run() {
	$(pin "${3:-}") setpriv --bounding-set -sys_time --inh-caps -sys_time chronyd -x -d -u root -f "$2" >"$1/chronyd.out" 2>&1 &
	pids+=($!)
}
