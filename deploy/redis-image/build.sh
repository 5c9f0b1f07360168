#!/usr/bin/env bash
# Builds dfs-redis:dev, a scratch image holding this machine's own
# redis-server (and redis-cli, for health checks) with exactly the shared
# libraries `ldd` says they load and the dynamic loader. It exists for hosts
# that cannot pull images (CI here); anywhere with a registry, an official
# Redis image (redis:7) does the same job in the compose file.
#
#   deploy/redis-image/build.sh [TAG]       (default dfs-redis:dev)
#
# The image runs as 65532:65532, keeps its data in /data (owned by that user,
# so a fresh named volume is writable) and starts
#   redis-server --dir /data --appendonly yes ...
# with any extra arguments given to the container appended.
set -euo pipefail

tag=${1:-dfs-redis:dev}
here=$(cd "$(dirname "$0")" && pwd)
ctx="$here/context"

server=$(command -v redis-server || true)
cli=$(command -v redis-cli || true)
if [ -z "$server" ] || [ -z "$cli" ]; then
	echo "build.sh: redis-server and redis-cli are needed on this machine (Debian: apt-get install redis-server)" >&2
	exit 1
fi
# Debian's redis-server is a symlink to redis-check-rdb, which picks its mode
# from the name it runs under: copy the file, keep the name.
version=$("$server" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
server=$(readlink -f "$server")
cli=$(readlink -f "$cli")

rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc" "$ctx/data"
cp "$server" "$ctx/rootfs/usr/local/bin/redis-server"
cp "$cli" "$ctx/rootfs/usr/local/bin/redis-cli"

# Every library either binary loads, and the loader itself, at the path ldd
# reports (resolved through symlinks, copied under the name the binary asks
# for). ldd lines: "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"
# and "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
libs=$( { ldd "$server"; ldd "$cli"; } | awk '
	$2 == "=>" && $3 ~ /^\// { print $3 }
	$1 ~ /^\// { print $1 }' | sort -u)
if [ -z "$libs" ]; then
	echo "build.sh: ldd found no libraries for $server (a static binary needs none; this script expects a dynamic one)" >&2
	exit 1
fi
for lib in $libs; do
	mkdir -p "$ctx/rootfs$(dirname "$lib")"
	cp "$(readlink -f "$lib")" "$ctx/rootfs$lib"
done
# glibc looks users and groups up in these when a process starts as a
# numeric user without a name; give the runtime user one.
printf 'root:x:0:0:root:/:/nonexistent\nredis:x:65532:65532:redis:/data:/nonexistent\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nredis:x:65532:\n' >"$ctx/rootfs/etc/group"

cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 data /data
LABEL org.opencontainers.image.title="dfs-redis" \
      org.opencontainers.image.description="redis-server for a dfs node's metadata, copied from the build host with its libraries" \
      org.opencontainers.image.source="https://github.com/dfs-project/dfs"
VOLUME ["/data"]
WORKDIR /data
USER 65532:65532
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/redis-server", "--dir", "/data", "--appendonly", "yes", "--appendfsync", "everysec"]
DOCKERFILE

# A rebuild leaves the previous image untagged: remove it (if no container
# uses it) so repeated builds do not pile up.
old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
docker build -q --label "org.opencontainers.image.version=$version" -t "$tag" "$ctx" >/dev/null
rm -rf "$ctx"
new=$(docker image inspect --format '{{.Id}}' "$tag")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
	docker rmi "$old" >/dev/null 2>&1 || true
fi
echo "built $tag (redis-server $version from this machine)"
