# protoc and its Go plugins, which `svcgen gen` runs when a gRPC service's
# .proto changes (docs/svcgen.md, gRPC). Plain builds and tests need none
# of them: the generated .pb.go files are committed. Include from the main
# Makefile:
#
#   include mk/protoc.mk
#
# `make protoc` installs Debian's protobuf-compiler and libprotobuf-dev with
# apt-get (root, as CI has) unless a protoc on PATH already compiles a file
# importing a well-known type, and builds the plugins at pinned versions
# into bin/ (svcgen looks there first). The svcgen test that compiles a
# generated .proto needs them. The check is a compile, not `command -v`:
# Debian's protoc installed without its recommends has no
# google/protobuf/*.proto (they are in libprotobuf-dev), and a generated
# .proto imports google/protobuf/timestamp.proto for time.Time fields.

PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2

.PHONY: protoc
protoc: bin/protoc-gen-go bin/protoc-gen-go-grpc
	@if $(PROTOC_WKT_OK); then :; else \
		echo "protoc: installing Debian's protobuf-compiler and libprotobuf-dev (apt-get)"; \
		apt-get update -qq -o DPkg::Lock::Timeout=600 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-o DPkg::Lock::Timeout=600 protobuf-compiler libprotobuf-dev && \
		$(PROTOC_WKT_OK) || { echo "protoc: still cannot import google/protobuf/timestamp.proto" >&2; exit 1; }; \
	fi

# PROTOC_WKT_OK succeeds when protoc is on PATH and finds the well-known
# types: it compiles a one-line file that imports timestamp.proto.
PROTOC_WKT_OK = ( command -v protoc >/dev/null 2>&1 && d=$$(mktemp -d) && \
	printf 'syntax = "proto3";\nimport "google/protobuf/timestamp.proto";\nmessage M { google.protobuf.Timestamp t = 1; }\n' >$$d/wkt.proto && \
	protoc -I $$d --descriptor_set_out=/dev/null $$d/wkt.proto >/dev/null 2>&1; rc=$$?; rm -rf $$d; exit $$rc )

# The stamp in the name rebuilds a plugin when its pinned version changes.
bin/protoc-gen-go: bin/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
bin/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@

bin/protoc-gen-go-grpc: bin/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)
bin/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
