#!/usr/bin/env bash
# Unit and integration tests with the race detector. A failed integration
# test prints the logs of the real peers it ran (up to 64 KiB each), which
# can push its own failure message out of a CI log that keeps only the
# tail; on failure the test's own lines are printed again last, without
# those dumps.
set -uo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
GO=${GO:-go}
log=$(mktemp "${TMPDIR:-/tmp}/timegate-unit.XXXXXX")
trap 'rm -f "$log"' EXIT

"$GO" test -race -count=1 -timeout 20m ./... 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
	echo
	echo "=== what failed (test output without the peers' log dumps) ==="
	# A dump opens with "--- NAME log (PATH) ---" and closes with
	# "--- end of NAME log ---"; everything between is the peer's own log.
	awk '
		/--- end of .* log ---/ { dump = 0; next }
		/--- .* log \(.*\) ---$/ { dump = 1; print "    [log dump of a peer omitted]"; next }
		!dump && !/^(ok|\?) /
	' "$log" | tail -n 200
fi
exit "$status"
