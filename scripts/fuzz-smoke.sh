#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time (default 10s each).
# New failing inputs are saved under the package's testdata/fuzz and then
# replay as ordinary test cases in `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzzing $pkg $f for $t"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
	done
done
