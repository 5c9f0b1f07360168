#!/usr/bin/env bash
# Prints the figures docs/benchmarks.md reports: the machine, then dfs
# beside golang.org/x/net/webdav on a plain directory (e2e, real processes
# on loopback), then the content and metadata store microbenchmarks.
#
# The 1 GiB benchmarks run a fixed number of iterations (-benchtime 2x: one
# iteration moves 1 GiB); the small-file and PROPFIND benchmarks run for a
# time. Needs redis-server on PATH and about 5 GiB free (three servers hold a 1 GiB file each, dfs briefly two during an overwrite) in ${TMPDIR:-/tmp}.
# BENCH_COUNT repeats every benchmark (default 1; the summary lines give
# medians). Takes about 3 minutes on a 2-core machine, 5 with BENCH_COUNT=3. The e2e benchmarks run the same work against
# both servers back to back, so a busy machine skews the ratios too: run it
# on a quiet one (see docs/benchmarks.md for the file-system caveat).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-1}
tmp=${TMPDIR:-/tmp}

echo "# machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "go:      $(go version)"
echo "kernel:  $(uname -srm)"
echo "cpu:     $(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
echo "tmpdir:  $tmp on $(df -h "$tmp" | awk 'NR == 2 {print $1 " (" $4 " free)"}')"
echo "load:    $(uptime)"
if awk '{exit !($1 > 1)}' /proc/loadavg; then
	echo "warning: the machine is busy (1-minute load above 1); the figures will be noisy" >&2
fi

# -v prints the per-benchmark summary lines (b.Logf of a parent benchmark
# shows only in verbose mode); the === lines are noise.
quiet() { grep -v -E '^=== (RUN|PAUSE|CONT|NAME)' || true; }

echo
echo "# dfs beside golang.org/x/net/webdav (e2e)"
go test ./e2e -run '^$' -bench '^BenchmarkLarge' -benchtime 2x -count "$count" -v -timeout 60m | quiet
go test ./e2e -run '^$' -bench '^Benchmark(SmallPut|Propfind10000)$' -benchtime 3s -count "$count" -v -timeout 60m | quiet

echo
echo "# content and metadata store microbenchmarks"
go test -run '^$' -bench . -benchmem -count "$count" ./content ./metastore/...

echo
echo "load:    $(uptime)"
