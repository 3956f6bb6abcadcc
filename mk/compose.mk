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
#   make compose-ports         print the published ports again (they move
#                              whenever a container is recreated)
#   make compose-restart SERVICE=user
#                              restart a service one replica at a time,
#                              each back in discovery before the next
#   make compose-page          serve the mesh page of the running stack
#                              on COMPOSE_PAGE (127.0.0.1:7071)
#   make compose-test          the end-to-end test (test/compose, tag compose)
#
# Nothing is pulled: stage.sh builds static binaries on the host into
# COMPOSE_CONTEXT and the images are FROM scratch (deploy/compose/README.md).

GO              ?= go
REGISTRY        ?= etcd
COMPOSE_PROJECT ?= warren
COMPOSE_CONTEXT ?= .warren/compose/image
COMPOSE_TAG     ?= dev
COMPOSE_PAGE    ?= 127.0.0.1:7071
# The compose test builds, starts and stops two stacks; its own deadline is
# a minute shorter than this, so it cleans up before go test gives up.
COMPOSE_TEST_TIMEOUT ?= 30m
COMPOSE_PACKAGES     := podman runc docker-compose

COMPOSE_ENV := COMPOSE_PROJECT_NAME=$(COMPOSE_PROJECT) WARREN_IMAGE_CONTEXT=$(abspath $(COMPOSE_CONTEXT)) WARREN_TAG=$(COMPOSE_TAG)
COMPOSE     := $(COMPOSE_ENV) deploy/compose/with-podman.sh
COMPOSE_CMD := docker-compose -f deploy/compose/compose.yaml

.PHONY: compose-deps compose-context compose-images compose-up compose-down compose-test \
	compose-profile-check compose-ports compose-restart compose-page

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

COMPOSE_LABEL := label=com.docker.compose.project=$(COMPOSE_PROJECT)

compose-up: compose-profile-check compose-images
	$(COMPOSE) --wait-healthy $(COMPOSE_CMD) --profile $(REGISTRY) up -d --no-build
	@echo "compose project $(COMPOSE_PROJECT) is up and healthy; published ports (127.0.0.1 only; 8080 HTTP, 9100 /metrics):"
	@$(MAKE) --no-print-directory compose-ports

# compose-up refuses to add the other REGISTRY's mesh to a running project:
# both profiles' services would run side by side on the same data volumes.
compose-profile-check:
	@case "$(REGISTRY)" in etcd) other=consul;; consul) other=etcd;; \
		*) echo "compose: REGISTRY=$(REGISTRY): the compose stack has the profiles etcd and consul" >&2; exit 2;; esac; \
	if command -v podman >/dev/null 2>&1 && \
		[ -n "$$(podman ps -aq --filter $(COMPOSE_LABEL) --filter label=com.docker.compose.service=$$other)" ]; then \
		echo "compose-up: project $(COMPOSE_PROJECT) runs the $$other profile; REGISTRY=$(REGISTRY) would start a second mesh beside it, sharing its data volumes. Run make compose-down COMPOSE_PROJECT=$(COMPOSE_PROJECT) first (or pick another COMPOSE_PROJECT)." >&2; \
		exit 1; \
	fi

compose-ports:
	@podman ps --filter $(COMPOSE_LABEL) --format '  {{.Names}}	{{.Ports}}'

# One replica at a time: podman restart (SIGTERM: withdraw, grace, drain),
# then wait until the replica answers its full readiness (registered
# again) and a little longer, so callers' discovery has it back before the
# next one leaves. `docker-compose restart SERVICE` stops every replica at
# once and callers find no instance for a few seconds.
COMPOSE_RESTART_WAIT ?= 120
compose-restart:
	@[ -n "$(SERVICE)" ] || { echo "compose-restart: name the service: make compose-restart SERVICE=user" >&2; exit 2; }
	@ids=$$(podman ps -q --filter $(COMPOSE_LABEL) --filter label=com.docker.compose.service=$(SERVICE) --sort names); \
	[ -n "$$ids" ] || { echo "compose-restart: no running container of $(SERVICE) in project $(COMPOSE_PROJECT)" >&2; exit 1; }; \
	bin=$$(podman inspect --format '{{index .Config.Cmd 0}}' $$(echo $$ids | cut -d' ' -f1)); \
	for id in $$ids; do \
		name=$$(podman inspect --format '{{.Name}}' $$id); \
		echo "compose-restart: $$name"; \
		out=$$(podman restart --time 35 $$id 2>&1) || { echo "$$out" >&2; exit 1; }; \
		i=0; until podman exec $$id $$bin healthcheck >/dev/null 2>&1; do \
			i=$$((i + 1)); \
			if [ $$i -ge $(COMPOSE_RESTART_WAIT) ]; then echo "compose-restart: $$name not ready (registered) $(COMPOSE_RESTART_WAIT) s after its restart; stopping here" >&2; podman exec $$id $$bin healthcheck >&2; exit 1; fi; \
			sleep 1; \
		done; \
		sleep 3; \
	done; \
	$(COMPOSE) --wait-healthy true

# The mesh page (docs/mesh-page.md) of the running stack, served on the
# host: it reads the registry (etcd by its container address, Consul by its
# published port) and each instance's /readyz and /metrics at its
# container address, which a rootful podman host reaches. Ctrl-C ends it.
compose-page:
	@etcd=$$(podman ps -q --filter $(COMPOSE_LABEL) --filter label=com.docker.compose.service=etcd); \
	consul=$$(podman ps -q --filter $(COMPOSE_LABEL) --filter label=com.docker.compose.service=consul); \
	if [ -n "$$etcd" ]; then \
		ip=$$(podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $$etcd); \
		set -- --registry etcd --etcd-endpoints "$$ip:2379"; \
	elif [ -n "$$consul" ]; then \
		set -- --registry consul --consul-addr "$$(podman port $$consul 8500 | head -n 1)"; \
	else echo "compose-page: no running registry in project $(COMPOSE_PROJECT) (make compose-up first)" >&2; exit 1; fi; \
	echo "compose-page: warren page $$* on http://$(COMPOSE_PAGE)/"; \
	exec $(GO) run ./cmd/warren page "$$@" --page-listen $(COMPOSE_PAGE)

# Both profiles, so it also stops a stack started with the other REGISTRY.
# A container the restart policy restarts while compose removes it (a
# crash loop) makes down fail and leaves it, the network and the volumes:
# then podman rm -f removes the project's containers and down runs again,
# at most 3 times.
compose-down: compose-deps
	@for i in 1 2 3; do \
		$(COMPOSE) $(COMPOSE_CMD) --profile etcd --profile consul down --volumes --remove-orphans --timeout 35 && exit 0; \
		echo "compose-down: down left part of project $(COMPOSE_PROJECT) (a container restarted while it was removed?); podman rm -f of its containers, then down again ($$i/3)" >&2; \
		ids=$$(podman ps -aq --filter label=com.docker.compose.project=$(COMPOSE_PROJECT)); \
		[ -z "$$ids" ] || podman rm -f -t 35 $$ids >/dev/null; \
	done; exit 1

compose-test: compose-deps bin/consul
	$(GO) test -race -count=1 -tags compose -timeout $(COMPOSE_TEST_TIMEOUT) ./test/compose
