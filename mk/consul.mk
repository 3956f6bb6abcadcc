# bin/consul: the Consul agent the consul registry tests and bench run in
# -dev mode (see docs/registry-consul.md). Include from the main Makefile:
#
#   include mk/consul.mk
#
# A consul already on $PATH is copied in (fast); otherwise, or with
# CONSUL_FROM_PATH=0, it is built from test/tools/consul (a separate module
# pinning hashicorp/consul; takes several minutes on 2 cores). Make only
# redoes this when bin/consul is missing or older than that module.
#
# It is built static (CGO_ENABLED=0): the compose deployment copies it into
# a FROM-scratch image (deploy/compose), where no libc exists.
#
# A built agent is also kept in the user's cache directory under a key made
# from the tool module's files, so a fresh clone on the same machine (CI runs
# in one) copies it instead of spending minutes linking it again. Delete
# $(CONSUL_CACHE_DIR) to force a rebuild.

GO               ?= go
CONSUL_FROM_PATH ?= 1
CONSUL_TOOL_DIR  := test/tools/consul
CONSUL_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/warren
CONSUL_KEY       := $(shell cat $(CONSUL_TOOL_DIR)/go.mod $(CONSUL_TOOL_DIR)/go.sum $(CONSUL_TOOL_DIR)/main.go 2>/dev/null | sha256sum | cut -c1-16)
CONSUL_CACHED    := $(CONSUL_CACHE_DIR)/consul-$(CONSUL_KEY)-static

bin/consul: $(CONSUL_TOOL_DIR)/go.mod $(CONSUL_TOOL_DIR)/main.go
	@mkdir -p bin
	@path_consul=$$(command -v consul 2>/dev/null || true); \
	if [ "$(CONSUL_FROM_PATH)" = 1 ] && [ -n "$$path_consul" ] && \
	   [ "$$(readlink -f "$$path_consul")" != "$$(readlink -f bin/consul 2>/dev/null)" ]; then \
		echo "bin/consul: copying $$path_consul"; \
		cp -f "$$path_consul" bin/consul && touch bin/consul; \
	elif [ -x "$(CONSUL_CACHED)" ]; then \
		echo "bin/consul: copying the cached build $(CONSUL_CACHED)"; \
		cp -f "$(CONSUL_CACHED)" bin/consul.tmp && mv -f bin/consul.tmp bin/consul && touch bin/consul; \
	else \
		echo "building bin/consul from $(CONSUL_TOOL_DIR) (takes a few minutes)"; \
		(cd $(CONSUL_TOOL_DIR) && CGO_ENABLED=0 $(GO) build -o ../../../bin/consul.tmp .) && \
		mv -f bin/consul.tmp bin/consul && \
		mkdir -p "$(CONSUL_CACHE_DIR)" && cp -f bin/consul "$(CONSUL_CACHED).tmp" && \
		mv -f "$(CONSUL_CACHED).tmp" "$(CONSUL_CACHED)"; \
	fi
