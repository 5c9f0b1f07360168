# dfs build and test entry points. `make run` starts a node, `make test`
# runs everything CI runs. Both install what a fresh Debian machine with Go
# lacks (see scripts/deps.sh).

GO        ?= go
BIN       := bin/dfs
STATICCHECK_VERSION := v0.8.2
GOBIN     := $(shell $(GO) env GOPATH)/bin

.PHONY: all build run test lint unit fuzz-smoke bench deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/dfs

deps:
	bash scripts/deps.sh

# A single-node cluster on http://127.0.0.1:8080/ with the embedded store:
# nothing else to install or start.
run: build
	$(BIN) server --id node1 --data-dir ./dfs-data --http-addr 127.0.0.1:8080 --raft-addr 127.0.0.1:7000 --bootstrap

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

clean:
	rm -rf bin dfs-data
