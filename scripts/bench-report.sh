#!/usr/bin/env bash
# Prints the figures docs/benchmarks.md reports: the machine, then 4 KiB
# files from 16 clients on dfs (one node, three nodes) beside x/net/webdav
# and Apache mod_dav, as a table with the ratios the targets are stated in,
# then dfs beside golang.org/x/net/webdav on a plain directory (e2e, real
# processes on loopback), then the content and metadata store
# microbenchmarks.
#
# The small-file comparison (BenchmarkSmallFiles) runs DFS_BENCH_SMALL_ROUNDS
# interleaved rounds (default 5) of DFS_BENCH_SMALL_FILES files per server
# (default 2000) and reports medians; it needs apache2 (make bench-report
# installs it through scripts/deps.sh bench). The 1 GiB benchmarks run a
# fixed number of iterations (-benchtime 2x: one iteration moves 1 GiB); the
# other small-file and PROPFIND benchmarks run for a time. Needs
# redis-server on PATH and about 5 GiB free (three servers hold a 1 GiB file
# each, dfs briefly two during an overwrite) in ${TMPDIR:-/tmp}.
# BENCH_COUNT repeats every benchmark but BenchmarkSmallFiles (default 1;
# the summary lines give medians). Takes about 8 minutes on a 2-core
# machine, 11 with BENCH_COUNT=3. The e2e benchmarks run the same work
# against every server back to back, so a busy machine skews the ratios
# too: run it on a quiet one (see docs/benchmarks.md for the file-system
# caveat).
#
# BENCH_ONLY=smallfiles runs only BenchmarkSmallFiles (about 3 minutes).
# BENCH_WRITE_DOCS=1 also replaces the small-file section of
# docs/benchmarks.md (between its bench-report:smallfiles markers) with
# this run's table, machine, commit and command.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${BENCH_COUNT:-1}
only=${BENCH_ONLY:-}
tmp=${TMPDIR:-/tmp}
case "$only" in "" | smallfiles) ;; *)
	echo "BENCH_ONLY=$only: want smallfiles or nothing" >&2
	exit 2
	;;
esac

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if ! git diff --quiet HEAD 2>/dev/null; then
	commit="$commit plus uncommitted changes"
fi
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
apache_version="$( (apache2 -v 2>/dev/null || /usr/sbin/apache2 -v 2>/dev/null || httpd -v 2>/dev/null || true) | sed -n 's/^Server version: //p')"
redis_version="$(redis-server --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
cpu="$(nproc) x$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/  */ /g')"

echo "# machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:  $commit"
echo "go:      $(go version)"
echo "kernel:  $(uname -srm)"
echo "cpu:     $cpu"
echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
echo "tmpdir:  $tmp on $(df -h "$tmp" | awk 'NR == 2 {print $1 " (" $4 " free)"}')"
echo "apache:  ${apache_version:-not installed}"
echo "redis:   ${redis_version:-not installed}"
echo "load:    $(uptime)"
if awk '{exit !($1 > 1)}' /proc/loadavg; then
	echo "warning: the machine is busy (1-minute load above 1); the figures will be noisy" >&2
fi

# -v prints the per-benchmark summary lines (b.Logf of a parent benchmark
# shows only in verbose mode); the === lines are noise.
quiet() { grep -v -E '^=== (RUN|PAUSE|CONT|NAME)' || true; }

# smallfiles_tables reads BenchmarkSmallFiles's output and prints its
# figures as two Markdown tables: files/s per server, then each target of
# docs/benchmarks.md with the ratio it is stated in.
smallfiles_tables() {
	awk '
	/^BenchmarkSmallFiles\/(put|get)\/[^ \t]+[ \t]/ {
		split($1, p, "/")
		srv = p[3]
		sub(/-[0-9]+$/, "", srv) # the -GOMAXPROCS suffix
		for (i = 2; i < NF; i++) if ($(i + 1) == "files/s") r[p[2], srv] = $i
	}
	function rate(op, srv) {
		if (!((op, srv) in r)) { missing = 1; return "?" }
		return sprintf("%.0f", r[op, srv])
	}
	function row(what, op, srv, ref, refname, target) {
		if (!((op, srv) in r) || !((op, ref) in r)) { missing = 1; return }
		ratio = r[op, srv] / r[op, ref]
		printf "| %s | %.0f | %.0f | %.2f × %s | ≥ %.1f × %s | %s |\n", what, r[op, srv], r[op, ref], ratio, refname, target, refname, (ratio >= target ? "met" : "not met")
	}
	END {
		print "| 4 KiB files, 16 clients | x/net/webdav over a dir | Apache mod_dav | dfs 1 node, Redis | dfs 1 node, embedded | dfs 3 nodes, via leader | via follower |"
		print "|---|---|---|---|---|---|---|"
		n = split("put get", ops, " ")
		for (k = 1; k <= n; k++) {
			op = ops[k]
			printf "| %s files/s | %s | %s | %s | %s | %s | %s |\n", toupper(op), rate(op, "xnet"), rate(op, "apache"),
				rate(op, "dfs-1node-redis"), rate(op, "dfs-1node-embedded"), rate(op, "dfs-3nodes-leader"), rate(op, "dfs-3nodes-follower")
		}
		print ""
		print "| 4 KiB files, 16 clients | dfs files/s | reference files/s | dfs ÷ reference | target | |"
		print "|---|---|---|---|---|---|"
		row("PUT, 1 node (Redis)", "put", "dfs-1node-redis", "apache", "Apache mod_dav", 0.8)
		row("PUT, 1 node (embedded)", "put", "dfs-1node-embedded", "apache", "Apache mod_dav", 0.8)
		row("PUT, 3 nodes via leader", "put", "dfs-3nodes-leader", "apache", "Apache mod_dav", 0.4)
		row("PUT, 3 nodes via follower", "put", "dfs-3nodes-follower", "apache", "Apache mod_dav", 0.4)
		row("GET, 3 nodes via leader", "get", "dfs-3nodes-leader", "xnet", "x/net/webdav", 0.8)
		row("GET, 3 nodes via follower", "get", "dfs-3nodes-follower", "xnet", "x/net/webdav", 0.8)
		row("GET, 1 node (Redis)", "get", "dfs-1node-redis", "xnet", "x/net/webdav", 0.9)
		row("GET, 1 node (embedded)", "get", "dfs-1node-embedded", "xnet", "x/net/webdav", 0.9)
		if (missing) { print "bench-report: BenchmarkSmallFiles reported no figure for some server" > "/dev/stderr"; exit 1 }
	}'
}

small_cmd="go test ./e2e -run '^\$' -bench '^BenchmarkSmallFiles\$' -benchtime 1x -v -timeout 60m"
out=$(mktemp)
tables=$(mktemp)
trap 'rm -f "$out" "$tables"' EXIT

echo
echo "# 4 KiB files, 16 clients: dfs beside x/net/webdav and Apache mod_dav (e2e)"
eval "$small_cmd" | quiet | tee "$out"
smallfiles_tables <"$out" >"$tables"
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$tables"

if [ "${BENCH_WRITE_DOCS:-}" = 1 ]; then
	doc=docs/benchmarks.md
	section=$(mktemp)
	trap 'rm -f "$out" "$tables" "$section"' EXIT
	{
		echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit; $cpu,"
		echo "$(free -h | awk '/^Mem:/ {print $2}') RAM, $(uname -sr), $(go version | cut -d' ' -f3),"
		echo "${apache_version:-Apache}, redis-server ${redis_version:-?}; \`TMPDIR\` $tmp;"
		echo "load average (1, 5, 15 min) $load_start at the start, $load_end at the end."
		if awk -v n="$(nproc)" '{exit !($1 > n)}' <<<"$load_start $load_end" || awk -v n="$(nproc)" '{exit !($4 > n)}' <<<"$load_start $load_end"; then
			echo "The load was above the $(nproc) cores: other work shared them with the servers"
			echo "and the client, so the rates are lower and noisier than on a quiet machine. Medians of"
		else
			echo "Medians of"
		fi
		echo "${DFS_BENCH_SMALL_ROUNDS:-5} interleaved rounds of ${DFS_BENCH_SMALL_FILES:-2000} files per server:"
		echo
		echo '```'
		env_prefix=""
		[ -n "${DFS_BENCH_SMALL_ROUNDS:-}" ] && env_prefix+="DFS_BENCH_SMALL_ROUNDS=$DFS_BENCH_SMALL_ROUNDS "
		[ -n "${DFS_BENCH_SMALL_FILES:-}" ] && env_prefix+="DFS_BENCH_SMALL_FILES=$DFS_BENCH_SMALL_FILES "
		[ -n "${TMPDIR:-}" ] && env_prefix+="TMPDIR=$TMPDIR "
		echo "${env_prefix}BENCH_ONLY=smallfiles BENCH_WRITE_DOCS=1 make bench-report"
		echo "$small_cmd"
		echo '```'
		echo
		cat "$tables"
	} >"$section"
	begin='<!-- bench-report:smallfiles:begin -->'
	end='<!-- bench-report:smallfiles:end -->'
	if ! grep -qxF "$begin" "$doc" || ! grep -qxF "$end" "$doc"; then
		echo "bench-report: $doc has no $begin ... $end section to rewrite" >&2
		exit 1
	fi
	awk -v begin="$begin" -v end="$end" -v section="$section" '
		$0 == begin { print; while ((getline line < section) > 0) print line; skip = 1; next }
		$0 == end { skip = 0 }
		!skip { print }
	' "$doc" >"$doc.tmp"
	mv "$doc.tmp" "$doc"
	echo
	echo "wrote the table into $doc"
fi

if [ "$only" = smallfiles ]; then
	echo
	echo "load:    $(uptime)"
	exit 0
fi

echo
echo "# dfs beside golang.org/x/net/webdav (e2e)"
go test ./e2e -run '^$' -bench '^BenchmarkLarge' -benchtime 2x -count "$count" -v -timeout 60m | quiet
go test ./e2e -run '^$' -bench '^Benchmark(SmallPut|Propfind10000)$' -benchtime 3s -count "$count" -v -timeout 60m | quiet

echo
echo "# content and metadata store microbenchmarks"
go test -run '^$' -bench . -benchmem -count "$count" ./content ./metastore/...

echo
echo "load:    $(uptime)"
