# nginx: Debian's nginx-light, which the edge tests (framework/edge/nginx,
# cmd/warren, test/edge), `make bench` and `make up EDGE=nginx` run in front
# of the services (docs/edge.md). Include from the main Makefile:
#
#   include mk/nginx.mk
#
# `make nginx` installs it with apt-get when no nginx is on PATH (or in
# /usr/sbin); an nginx already there is used as is. Installing needs root,
# as CI has. apt-get waits for another apt-get's lock instead of failing.

.PHONY: nginx
nginx:
	@if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then :; else \
		echo "nginx: installing Debian's nginx-light (apt-get)"; \
		apt-get update -qq -o DPkg::Lock::Timeout=600 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			-o DPkg::Lock::Timeout=600 nginx-light; \
	fi
