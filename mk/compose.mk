# The compose deployment (deploy/compose) on this machine: rootful podman +
# runc, driven by Debian's docker-compose through podman's Docker-compatible
# API (deploy/compose/with-podman.sh). Include from the main Makefile:
#
#   include mk/compose.mk
#
#   make compose-up            build the FROM-scratch images, start the demo
#                              mesh (REGISTRY=consul for Consul), wait until
#                              every container is healthy, print the ports
#   make compose-down          stop it; removes containers, network, volumes
#   make compose-test          the end-to-end test (test/compose, tag compose)
#
# Nothing is pulled: stage.sh builds static binaries on the host into
# COMPOSE_CONTEXT and the images are FROM scratch (deploy/compose/README.md).

GO              ?= go
REGISTRY        ?= etcd
COMPOSE_PROJECT ?= warren
COMPOSE_CONTEXT ?= .warren/compose/image
COMPOSE_TAG     ?= dev
# The compose test builds, starts and stops two stacks; its own deadline is
# a minute shorter than this, so it cleans up before go test gives up.
COMPOSE_TEST_TIMEOUT ?= 30m
COMPOSE_PACKAGES     := podman runc docker-compose

COMPOSE_ENV := COMPOSE_PROJECT_NAME=$(COMPOSE_PROJECT) WARREN_IMAGE_CONTEXT=$(abspath $(COMPOSE_CONTEXT)) WARREN_TAG=$(COMPOSE_TAG)
COMPOSE     := $(COMPOSE_ENV) deploy/compose/with-podman.sh
COMPOSE_CMD := docker-compose -f deploy/compose/compose.yaml

.PHONY: compose-deps compose-context compose-images compose-up compose-down compose-test

# podman, runc and docker-compose from Debian (and the CA bundle the images
# copy), installed when one is missing (needs root; CI runs as root on a
# fresh machine).
compose-deps:
	@missing=; for p in $(COMPOSE_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -f /etc/ssl/certs/ca-certificates.crt ] || missing="$$missing ca-certificates"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "compose: missing$$missing; install them (apt-get install$$missing) or run as root" >&2; exit 1; fi; \
		echo "compose: installing$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(COMPOSE_PACKAGES) ca-certificates; \
	fi

compose-context: bin/consul
	deploy/compose/stage.sh $(COMPOSE_CONTEXT)

compose-images: compose-deps compose-context
	$(COMPOSE) $(COMPOSE_CMD) --profile etcd --profile consul build

compose-up: compose-images
	$(COMPOSE) --wait-healthy $(COMPOSE_CMD) --profile $(REGISTRY) up -d --no-build
	@echo "compose project $(COMPOSE_PROJECT) is up and healthy; published ports (127.0.0.1 only):"
	@podman ps --filter label=com.docker.compose.project=$(COMPOSE_PROJECT) --format '  {{.Names}}	{{.Ports}}'

# Both profiles, so it also stops a stack started with the other REGISTRY.
compose-down: compose-deps
	$(COMPOSE) $(COMPOSE_CMD) --profile etcd --profile consul down --volumes --remove-orphans --timeout 35

compose-test: compose-deps bin/consul
	$(GO) test -race -count=1 -tags compose -timeout $(COMPOSE_TEST_TIMEOUT) ./test/compose
