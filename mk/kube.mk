# bin/kube-apiserver, bin/kube-controller-manager and bin/helm: the real
# Kubernetes control plane the kubernetes registry tests run against, and
# the Helm the deploy/k8s chart test renders with (docs/kubernetes.md).
# Include from the main Makefile:
#
#   include mk/kube.mk
#
# The two Kubernetes servers are built from test/tools/kube, a separate
# module pinning k8s.io/kubernetes with its staging modules replaced by
# their published versions. That build takes 12+ minutes and ~3 GB on 2
# cores, so, as for bin/consul (mk/consul.mk), a built pair is kept in the
# user's cache directory under a key made from the tool module's files and a
# fresh clone on the same machine copies it. Helm is installed with
# `go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)` and cached by
# version. Delete $(KUBE_CACHE_DIR) to force rebuilds.
#
# No kubelet, scheduler or kube-proxy: tests create Nodes and set Pod status
# themselves (see framework/registry/kubernetes/kubetest).

GO             ?= go
KUBE_TOOL_DIR  := test/tools/kube
KUBE_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/warren
KUBE_KEY       := $(shell cat $(KUBE_TOOL_DIR)/go.mod $(KUBE_TOOL_DIR)/go.sum $(KUBE_TOOL_DIR)/*/main.go 2>/dev/null | sha256sum | cut -c1-16)
KUBE_CACHED    := $(KUBE_CACHE_DIR)/kube-$(KUBE_KEY)
HELM_VERSION   := v3.22.0
HELM_CACHED    := $(KUBE_CACHE_DIR)/helm-$(HELM_VERSION)

.PHONY: kube-tools
kube-tools: bin/kube-apiserver bin/kube-controller-manager bin/helm

# One rule makes both servers: one `go build` shares the compiled packages.
bin/kube-controller-manager: bin/kube-apiserver
bin/kube-apiserver: $(KUBE_TOOL_DIR)/go.mod $(KUBE_TOOL_DIR)/go.sum $(wildcard $(KUBE_TOOL_DIR)/*/main.go)
	@mkdir -p bin
	@set -e; if [ -x "$(KUBE_CACHED)/kube-apiserver" ] && [ -x "$(KUBE_CACHED)/kube-controller-manager" ]; then \
		echo "bin/kube-apiserver, bin/kube-controller-manager: copying the cached build $(KUBE_CACHED)"; \
		for b in kube-controller-manager kube-apiserver; do \
			cp -f "$(KUBE_CACHED)/$$b" bin/$$b.tmp && mv -f bin/$$b.tmp bin/$$b && touch bin/$$b; \
		done; \
	else \
		echo "building bin/kube-apiserver and bin/kube-controller-manager from $(KUBE_TOOL_DIR) (12+ minutes on 2 cores)"; \
		rm -rf bin/.kube.tmp && mkdir -p bin/.kube.tmp; \
		(cd $(KUBE_TOOL_DIR) && CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' \
			-o ../../../bin/.kube.tmp/ ./kube-apiserver ./kube-controller-manager); \
		mkdir -p "$(KUBE_CACHED).tmp"; \
		cp -f bin/.kube.tmp/* "$(KUBE_CACHED).tmp/" && rm -rf "$(KUBE_CACHED)" && mv -f "$(KUBE_CACHED).tmp" "$(KUBE_CACHED)"; \
		mv -f bin/.kube.tmp/kube-controller-manager bin/kube-controller-manager; \
		mv -f bin/.kube.tmp/kube-apiserver bin/kube-apiserver; \
		rm -rf bin/.kube.tmp; \
	fi

bin/helm: mk/kube.mk
	@mkdir -p bin
	@set -e; if [ -x "$(HELM_CACHED)" ]; then \
		echo "bin/helm: copying the cached $(HELM_CACHED)"; \
	else \
		echo "building helm $(HELM_VERSION) (a few minutes)"; \
		rm -rf "$(HELM_CACHED).gobin" && mkdir -p "$(HELM_CACHED).gobin"; \
		CGO_ENABLED=0 GOBIN="$(HELM_CACHED).gobin" $(GO) install -trimpath -ldflags='-s -w' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION); \
		mv -f "$(HELM_CACHED).gobin/helm" "$(HELM_CACHED)" && rm -rf "$(HELM_CACHED).gobin"; \
	fi; \
	cp -f "$(HELM_CACHED)" bin/helm.tmp && mv -f bin/helm.tmp bin/helm && touch bin/helm

# dnsmasq (Debian's dnsmasq-base): the real DNS server the dnssrv instancer
# is tested against. Installed with apt-get when missing (root, as in CI).
.PHONY: dns-deps
dns-deps:
	@if command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; then :; else \
		echo "installing dnsmasq-base (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 dnsmasq-base; \
	fi

# Everything the Kubernetes and DNS tests need; `make test` depends on it.
# kube-tools is cached (see above): a second fresh clone copies the build.
.PHONY: kube-deps
kube-deps: dns-deps kube-tools

# The bench's kubernetes-propagation suite runs on the same servers.
bench: kube-tools
