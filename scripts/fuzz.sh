#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10s).
# CI runs this briefly; `make fuzz FUZZTIME=10m` is the long soak.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
FUZZTIME=${FUZZTIME:-10s}
status=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
	pkg="./$(dirname "$file")"
	echo "== $pkg $name ($FUZZTIME)"
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"; then
		status=1
	fi
done < <(git ls-files '*_test.go' | xargs grep -n '^func Fuzz' | sort)
exit $status
