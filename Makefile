# dfs build and test entry points. `make run` starts a node, `make test`
# runs everything CI runs. Both install what a fresh Debian machine with Go
# lacks (see scripts/deps.sh).

GO        ?= go
BIN       := bin/dfs
STATICCHECK_VERSION := v0.8.2
HELM_VERSION := v3.22.0
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE     ?= dfs:dev
REDIS_IMAGE ?= dfs-redis:dev

.PHONY: all build run test lint unit fuzz-smoke bench bench-report deps clean image redis-image images e2e docker-test helm-check

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/dfs

# The dfs image from the binary built above (the Dockerfile's `local`
# target: pulls nothing). `docker build .` builds the same image from source
# in golang:1.26 where base images can be pulled. See docs/docker.md.
image: build
	@mkdir -p bin/image-root/data
	@old=$$(docker image inspect -f '{{.Id}}' $(IMAGE) 2>/dev/null || true); \
	docker build -q --target local --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) . >/dev/null && \
	new=$$(docker image inspect -f '{{.Id}}' $(IMAGE)) && echo "built $(IMAGE) ($$new)" && \
	if [ -n "$$old" ] && [ "$$old" != "$$new" ]; then docker rmi "$$old" >/dev/null 2>&1 || true; fi

# A Redis image made of this machine's redis-server (deploy/redis-image).
redis-image:
	bash deploy/redis-image/build.sh $(REDIS_IMAGE)

images: image redis-image

# The end-to-end suites in Docker, on images built here (nothing is pulled):
# TestDockerCompose (compose.yaml: three nodes with Redis sidecars, the
# leader killed and restarted) and TestFaults (docs/faults.md: a 3-node and
# a 5-node cluster under a WebDAV workload and a nemesis of kills, pauses,
# partitions, restarts, replacement and scaling, then a checker). It ends
# with TestFaults' summary line and fails when a promise is broken. Fails
# (never skips) when Docker is unusable. IMAGE and REDIS_IMAGE pick the tags;
# E2E_ARGS passes flags to the tests (e.g. -faults.cycles 200 -faults.duration 2h).
E2E_ARGS ?=
E2E_TIMEOUT ?= 30m
e2e:
	@docker info >/dev/null 2>&1 || { echo "e2e: the Docker daemon is not reachable (docker info fails); it is needed" >&2; exit 1; }
	$(MAKE) images IMAGE=$(IMAGE) REDIS_IMAGE=$(REDIS_IMAGE)
	@mkdir -p bin
	@{ DFS_E2E_IMAGE=$(IMAGE) DFS_E2E_REDIS_IMAGE=$(REDIS_IMAGE) \
		$(GO) test -tags docker -count=1 -timeout $(E2E_TIMEOUT) -run '^(TestDockerCompose|TestBigTree|TestFaults)$$' -v ./e2e -args $(E2E_ARGS) 2>&1; \
		echo $$? >bin/e2e.rc; } | tee bin/e2e.log
	@grep '^faults: ' bin/e2e.log || echo "faults: no summary line: TestFaults did not finish (see bin/e2e.log)"
	@exit $$(cat bin/e2e.rc)

# The former name of e2e.
docker-test: e2e

deps:
	bash scripts/deps.sh

# A local three-node cluster on http://127.0.0.1:8080/ (and :8081, :8082),
# with a redis-server per node when one is installed, the embedded store
# otherwise: nothing else to install or start.
run: build
	$(BIN) dev --nodes 3

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags docker ./e2e
	$(GO) vet -tags dfsfaults ./content ./server
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...
	$(GOBIN)/staticcheck -tags docker ./e2e

# The Helm chart: lint --strict and render with the defaults and every
# ci/*-values.yaml; helm/charttest (part of `unit`) decodes the renderings
# strictly and checks them against the code.
HELM_KUBE_VERSION := 1.33.0
helm-check:
	@test -x $(GOBIN)/helm || $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	$(GOBIN)/helm lint --strict helm/dfs
	$(GOBIN)/helm template dfs helm/dfs --kube-version $(HELM_KUBE_VERSION) >/dev/null
	@for f in helm/dfs/ci/*-values.yaml; do \
		echo "helm lint/template -f $$f"; \
		$(GOBIN)/helm lint --strict helm/dfs -f $$f >/dev/null || exit 1; \
		$(GOBIN)/helm template dfs helm/dfs --kube-version $(HELM_KUBE_VERSION) -f $$f >/dev/null || exit 1; \
	done

# The disk fault tests need the content store's fault hook, compiled only
# with the dfsfaults build tag (release builds cannot inject anything):
# only those tests run a second time with it.
unit:
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -race -count=1 -timeout 5m -tags dfsfaults -run '^TestContent(Write|Read)Faults$$' ./server

# Replays every fuzz corpus (seeds and saved inputs) as ordinary tests; the
# unit target already does this, fuzz-smoke also runs each fuzzer briefly.
fuzz-smoke:
	bash scripts/fuzz-smoke.sh 10s

test: deps lint helm-check unit e2e

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# The figures of docs/benchmarks.md: 4 KiB files from 16 clients on dfs (one
# node, three nodes) beside x/net/webdav and Apache mod_dav, dfs beside
# golang.org/x/net/webdav on a plain directory (1 GiB PUT and GET with peak
# RSS, 4 KiB PUT rates, PROPFIND of 10 000 entries) and the store
# microbenchmarks, with the machine's details. BENCH_ONLY=smallfiles runs
# only the first; BENCH_WRITE_DOCS=1 writes its table into the doc.
bench-report:
	bash scripts/deps.sh bench
	bash scripts/bench-report.sh

clean:
	rm -rf bin dfs-data dfs-dev
