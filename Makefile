# Warren — the two commands a new user needs:
#   make up     run the demo mesh (embedded etcd, two instances of every service)
#   make test   vet and race-test everything, against real etcd and Consul
SHELL := /bin/bash
GO    ?= go

# Tests that start real registries and processes need more than go test's
# 10-minute default on a 2-core machine.
TEST_TIMEOUT ?= 25m

# bin/consul: a real Consul agent for the tests, built once (about 5 minutes
# on 2 cores) from test/tools/consul and reused; a consul on PATH is copied.
include mk/consul.mk

.PHONY: all build test vet fmt-check unit bench up clean help

all: build

help:
	@echo "make up        run the demo mesh (REGISTRY=consul for Consul)"
	@echo "make test      gofmt check, go vet, go test -race on everything"
	@echo "make bench     measure the speed and memory targets (bench/results.json)"
	@echo "make build     build every package and command"

build:
	$(GO) build ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: fmt-check vet bin/consul
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

bench: bin/consul
	$(GO) run ./bench

clean:
	rm -rf bin
