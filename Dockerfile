# dfs container image: one static binary on an empty (scratch) root, run as a
# non-root user. Two ways to build it, with identical results:
#
#   docker build -t dfs:1.2.3 --build-arg VERSION=1.2.3 .
#       the default (last) target: compiles dfs in golang:1.26, then copies the
#       binary into scratch. Needs to pull golang:1.26.
#
#   make image        (= make build, then docker build --target local -t dfs:dev .)
#       the `local` target: packages a bin/dfs built on the host
#       (CGO_ENABLED=0, so it is static). Pulls nothing: for machines that
#       cannot reach a registry, and what CI builds and runs.
#
# The `local` stage comes first on purpose: the legacy (non-BuildKit) builder
# builds every stage before the target, so `--target local` must not depend
# on the golang stage. BuildKit skips stages the target does not need, so the
# default target builds without bin/dfs.
#
# Runtime contract: ENTRYPOINT /dfs, default command `server`; every flag also
# reads a DFS_* environment variable (DFS_ID, DFS_CLUSTER_SECRET, ...). Data
# lives in /data (DFS_DATA_DIR), owned by the runtime user 65532, so a fresh
# named volume mounted there is writable. WebDAV and the node API listen on
# 8080; Raft uses 7000 (DFS_RAFT_ADDR is not set here: a cluster node must
# bind it to an address its peers reach, see docs/docker.md). No shell, no
# CA certificates, no /etc/passwd: dfs needs none of them, and nothing writes
# outside /data (snapshots are staged in the data directory).

ARG VERSION=dev
ARG REVISION=unknown

# ---- local: the image from a host-built bin/dfs ------------------------------
FROM scratch AS local
ARG VERSION
ARG REVISION
# bin/image-root/data is an empty directory `make image` creates: COPY --chown
# gives it to the runtime user (an empty directory cannot live in git).
COPY --chown=65532:65532 bin/image-root/data /data
COPY bin/dfs /dfs
LABEL org.opencontainers.image.title="dfs" \
      org.opencontainers.image.description="dfs: a replicated WebDAV filesystem (Raft, one Redis per node)" \
      org.opencontainers.image.source="https://github.com/dfs-project/dfs" \
      org.opencontainers.image.url="https://github.com/dfs-project/dfs" \
      org.opencontainers.image.documentation="https://github.com/dfs-project/dfs/blob/main/docs/docker.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV DFS_DATA_DIR=/data \
    DFS_HTTP_ADDR=:8080 \
    DFS_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER 65532:65532
EXPOSE 8080 7000
ENTRYPOINT ["/dfs"]
CMD ["server"]

# ---- build: compile dfs ------------------------------------------------------
FROM golang:1.26 AS build
ARG VERSION
ARG REVISION
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/dfs ./cmd/dfs \
 && mkdir -p /out/data

# ---- release (default): the same image, from the binary compiled above ------
FROM scratch AS release
ARG VERSION
ARG REVISION
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/dfs /dfs
LABEL org.opencontainers.image.title="dfs" \
      org.opencontainers.image.description="dfs: a replicated WebDAV filesystem (Raft, one Redis per node)" \
      org.opencontainers.image.source="https://github.com/dfs-project/dfs" \
      org.opencontainers.image.url="https://github.com/dfs-project/dfs" \
      org.opencontainers.image.documentation="https://github.com/dfs-project/dfs/blob/main/docs/docker.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV DFS_DATA_DIR=/data \
    DFS_HTTP_ADDR=:8080 \
    DFS_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER 65532:65532
EXPOSE 8080 7000
ENTRYPOINT ["/dfs"]
CMD ["server"]
