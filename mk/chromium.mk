# chromium: Debian's headless Chromium, which the mesh page test
# (test/meshpage) drives over the DevTools protocol (chromedp). Include
# from the main Makefile; `make test` depends on it.
#
# Installed with apt-get when missing (needs root; CI runs as root on a
# fresh machine). No browser is downloaded by any test tool.

.PHONY: chromium

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" != 0 ]; then echo "chromium: missing; install it (apt-get install chromium) or run as root" >&2; exit 1; fi; \
		echo "chromium: installing Debian's chromium"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium; \
	fi
