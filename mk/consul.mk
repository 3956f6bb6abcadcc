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

GO               ?= go
CONSUL_FROM_PATH ?= 1
CONSUL_TOOL_DIR  := test/tools/consul

bin/consul: $(CONSUL_TOOL_DIR)/go.mod $(CONSUL_TOOL_DIR)/main.go
	@mkdir -p bin
	@path_consul=$$(command -v consul 2>/dev/null || true); \
	if [ "$(CONSUL_FROM_PATH)" = 1 ] && [ -n "$$path_consul" ] && \
	   [ "$$(readlink -f "$$path_consul")" != "$$(readlink -f bin/consul 2>/dev/null)" ]; then \
		echo "bin/consul: copying $$path_consul"; \
		cp -f "$$path_consul" bin/consul && touch bin/consul; \
	else \
		echo "building bin/consul from $(CONSUL_TOOL_DIR) (takes a few minutes)"; \
		cd $(CONSUL_TOOL_DIR) && CGO_ENABLED=0 $(GO) build -o ../../../bin/consul . ; \
	fi
