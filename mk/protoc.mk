# protoc and its Go plugins, which `svcgen gen` runs when a gRPC service's
# .proto changes (docs/svcgen.md, gRPC). Plain builds and tests need none
# of them: the generated .pb.go files are committed. Include from the main
# Makefile:
#
#   include mk/protoc.mk
#
# `make protoc` installs Debian's protobuf-compiler with apt-get when no
# protoc is on PATH (root, as CI has), and builds the plugins at pinned
# versions into bin/ (svcgen looks there first). The svcgen test that
# compiles a generated .proto needs them.

PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.2

.PHONY: protoc
protoc: bin/protoc-gen-go bin/protoc-gen-go-grpc
	@if command -v protoc >/dev/null 2>&1; then :; else \
		echo "protoc: installing Debian's protobuf-compiler (apt-get)"; \
		apt-get update -qq -o DPkg::Lock::Timeout=600 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-o DPkg::Lock::Timeout=600 protobuf-compiler; \
	fi

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
