#!/usr/bin/env bash
# Installs the Debian packages dfs's tests use when they are missing:
# redis-server (metadata store tests), litmus (WebDAV conformance), rclone
# and cadaver (real client sessions), htpasswd from apache2-utils (dfs user
# add checked against Apache's own tool), redis-cli (the Redis image's health
# check) and Docker Compose (make docker-test; the Docker engine itself must
# already run: the test fails without it). Go modules come through the module
# proxy on first build.
set -euo pipefail

need=()
if [ "${1:-}" = bench ]; then
	# make bench-report: only what the benchmarks need, redis-server and
	# Apache httpd with mod_dav (Debian's apache2 ships mod_dav_fs), the
	# second reference server of BenchmarkSmallFiles, which starts its own
	# apache2 from a generated configuration. CI runs no benchmarks, so
	# make test does not install apache2.
	command -v redis-server >/dev/null || need+=(redis-server)
	command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || need+=(apache2)
else
	command -v redis-server >/dev/null || need+=(redis-server)
	command -v litmus >/dev/null || need+=(litmus)
	command -v rclone >/dev/null || need+=(rclone)
	command -v cadaver >/dev/null || need+=(cadaver)
	command -v curl >/dev/null || need+=(curl)
	command -v redis-cli >/dev/null || need+=(redis-tools)
	command -v htpasswd >/dev/null || need+=(apache2-utils)
	command -v script >/dev/null || need+=(bsdutils)
	if ! docker compose version >/dev/null 2>&1 && ! docker-compose version >/dev/null 2>&1; then
		need+=(docker-compose)
	fi
fi

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "dfs tests need: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
	exit 1
fi
echo "installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
