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

# Debian's zookeeper package for the ZooKeeper backend's tests (apt-get,
# skipped when installed).
include mk/zookeeper.mk

# The compose deployment under podman: compose-up, compose-down and the
# compose test (make test runs it after the other packages).
include mk/compose.mk

# nginx-light for the edge tests and `make up EDGE=nginx` (apt-get when missing).
include mk/nginx.mk

# Debian's chromium for the mesh page's browser test.
include mk/chromium.mk

# bin/kube-apiserver, bin/kube-controller-manager, bin/helm: a real Kubernetes
# control plane and Helm for the kubernetes registry and deploy/k8s tests.
include mk/kube.mk

# protoc and protoc-gen-go(-grpc) in bin/ for `svcgen gen` of gRPC services
# and the test that compiles a generated .proto (apt-get when missing).
include mk/protoc.mk

.PHONY: all build test vet fmt-check unit bench up clean help fuzz

REGISTRY ?= etcd

all: build

help:
	@echo "make up        run the demo mesh (REGISTRY=consul or zookeeper; EDGE=nginx puts nginx in front)"
	@echo "make test      gofmt check, go vet, go test -race on everything"
	@echo "make bench     measure the speed and memory targets (bench/results.json)"
	@echo "make build     build every package and command"
	@echo "make compose-up / compose-down   the demo mesh in containers (podman; REGISTRY=consul)"

build:
	$(GO) build ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags compose ./test/compose

# The compose test (tag compose) runs on its own after the other packages:
# it builds images and runs two container stacks, and is given its own
# timeout instead of competing with the race-enabled suite for 2 cores.
# -count=1: every run tests the code as it is. CI runs on machines that
# also do development, where Go's test cache would otherwise replay an
# earlier pass of an unchanged package (its files, env and binary alike)
# instead of running it against real servers again.
test: fmt-check vet bin/consul zookeeper compose-deps nginx chromium kube-deps protoc
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory compose-test
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME)

# Fuzz targets: package and name. `make fuzz FUZZTIME=30s` for a long run;
# make test runs each briefly. Crashers land in testdata/fuzz and become
# regression seeds.
FUZZ_TARGETS := \
	./framework/registry:FuzzDecodeRecord \
	./framework/registry:FuzzParseInstance \
	./framework/registry:FuzzScanRecord \
	./framework/registry:FuzzRecordString \
	./framework/registry:FuzzValidInstance_ReadsBackFromString \
	./framework/registry:FuzzIsEndpointURL \
	./framework/registry:FuzzString_SameAsURLValues \
	./framework/registry:FuzzParseInstance_QueryAsURLValues \
	./framework/registry:FuzzCanonicalHostPort \
	./framework/httptransport:FuzzDecodeJSONBody \
	./framework/httptransport:FuzzDecodeQueryAndPath
# make test's budget is a count, not a duration: Go 1.26's fuzz coordinator
# can report its own -fuzztime deadline as a failure ("context deadline
# exceeded", no crasher) when workers are starved at that moment
# (golang/go#75804, fixed in Go 1.27). A count has no deadline to race, and
# on a loaded machine it only takes longer. 20000 execs is 1-6 s here, quiet.
FUZZTIME      ?= 30s
TEST_FUZZTIME ?= 20000x

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

bench: bin/consul
	$(GO) run ./bench

# The demo mesh: embedded etcd (no install), or REGISTRY=consul / zookeeper.
up:
	@if [ "$(REGISTRY)" = consul ]; then $(MAKE) --no-print-directory bin/consul; fi
	@if [ "$(REGISTRY)" = zookeeper ]; then $(MAKE) --no-print-directory zookeeper; fi
	@if [ "$(EDGE)" = nginx ]; then $(MAKE) --no-print-directory nginx; fi
	@# Built, then run as make's own child: a Ctrl-C then reaches it once
	@# and a clean stop exits 0 (under go run, make reported "Error 1").
	$(GO) build -o bin/meshup ./cmd/meshup
	@exec bin/meshup -registry $(REGISTRY) -edge "$(EDGE)"

clean:
	rm -rf bin .warren
