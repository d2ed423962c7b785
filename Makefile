# FluxionDB: one command set for people and CI. `.ci/run` calls `make test`.
#
#   make build                   docker image volandoo/fluxiondb:latest
#   SECRET_KEY=... make run      run it with ./tmp_data mounted at /app/data
#   make binary                  static server binary at bin/fluxiondb
#   make test                    everything CI checks (see .ci/test.sh; staticcheck included)
#   make lint                    gofmt, go vet and staticcheck on every Go module
#   make bench                   the load benchmark (scripts/bench.sh)
#   make bench-fsync             each --fsync policy's ingest rate against in-memory (scripts/fsync-ratio.sh;
#                                ROUNDS=8 RECORDS=4000000 by default)
#   make fuzz                    every fuzz target for FUZZTIME each

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

IMAGE    ?= volandoo/fluxiondb
TAG      ?= latest
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PORT     ?= 8080
FUZZTIME ?= 10s
# staticcheck runs from the module proxy at a pinned version; not a dependency
# of any module.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Every Go module in the repository; clients/go and deploy/check have their
# own go.mod so their dependencies stay out of the server's.
GO_MODULES := . clients/go deploy/check

.PHONY: help build run binary test lint fmt vet staticcheck bench bench-fsync fuzz clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

build:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(TAG) .

# The image's server runs as uid 65532 and, started as root, hands tmp_data/ to
# it. As anyone else the container runs as your uid:gid, so tmp_data/ stays yours.
# The key goes to the container through the environment, unexpanded ($(value)): a key with
# $ or " in it arrives as typed, and it is not on any command line.
run: export FLUXIONDB_SECRET_KEY = $(value SECRET_KEY)
run:
	@if [ -z "$$FLUXIONDB_SECRET_KEY" ]; then \
		echo "make run: SECRET_KEY is empty; run: SECRET_KEY=your-secret make run" >&2; exit 2; fi
	mkdir -p tmp_data
	docker run --init --rm -it -p $(PORT):8080 \
		$$( [ "$$(id -u)" = 0 ] || echo --user "$$(id -u):$$(id -g)" ) \
		-e FLUXIONDB_SECRET_KEY \
		-v "$(CURDIR)/tmp_data:/app/data" \
		$(IMAGE):$(TAG) --data=/app/data

# The same flags as the Dockerfile's build stage.
binary:
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=$(VERSION)" -o bin/fluxiondb ./cmd/fluxiondb

test:
	@./.ci/test.sh

lint: fmt vet staticcheck

fmt:
	@files=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi; \
	echo "gofmt: ok"

vet:
	@for m in $(GO_MODULES); do echo "go vet ($$m)"; (cd $$m && go vet ./...); done

staticcheck:
	@for m in $(GO_MODULES); do echo "staticcheck ($$m)"; (cd $$m && go run $(STATICCHECK) ./...); done

bench:
	@if [ ! -x scripts/bench.sh ]; then echo "make bench: scripts/bench.sh is missing" >&2; exit 1; fi
	./scripts/bench.sh

ROUNDS  ?= 8
RECORDS ?= 4000000
bench-fsync:
	./scripts/fsync-ratio.sh $(ROUNDS) $(RECORDS)

# Each fuzz target of the server and the Go SDK in turn (go test -fuzz takes
# one target of one package at a time).
FUZZ_MODULES := . clients/go
fuzz:
	@for m in $(FUZZ_MODULES); do (cd $$m && \
	go test -list '^Fuzz' ./... | awk '/^Fuzz/ {print $$1} /^ok/ {print "pkg", $$2}' | \
	{ targets=(); while read -r a b; do \
		if [ "$$a" = pkg ]; then for f in "$${targets[@]}"; do \
			echo "== $$b $$f ($(FUZZTIME))"; go test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZTIME) "$$b" || exit 1; done; targets=(); \
		else targets+=("$$a"); fi; done; }) || exit 1; done

clean:
	rm -rf bin
