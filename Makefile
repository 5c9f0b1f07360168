# dfs build and test entry points. `make run` starts a node, `make test`
# runs everything CI runs. Both install what a fresh Debian machine with Go
# lacks (see scripts/deps.sh).

GO        ?= go
BIN       := bin/dfs
STATICCHECK_VERSION := v0.8.2
GOBIN     := $(shell $(GO) env GOPATH)/bin

.PHONY: all build run test lint unit fuzz-smoke bench bench-report deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/dfs

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
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# Replays every fuzz corpus (seeds and saved inputs) as ordinary tests; the
# unit target already does this, fuzz-smoke also runs each fuzzer briefly.
fuzz-smoke:
	bash scripts/fuzz-smoke.sh 10s

test: deps lint unit

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./...

# The figures of docs/benchmarks.md: dfs beside golang.org/x/net/webdav on a
# plain directory (1 GiB PUT and GET with peak RSS, 4 KiB PUT rates, PROPFIND
# of 10 000 entries) and the store microbenchmarks, with the machine's details.
bench-report:
	bash scripts/bench-report.sh

clean:
	rm -rf bin dfs-data dfs-dev
