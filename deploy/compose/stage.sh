#!/bin/sh
# stage.sh DIR — stage the build context of the FROM-scratch images
# (Containerfile) in DIR, replacing what was there:
#
#   DIR/services/  every main package under services/, static (CGO_ENABLED=0)
#   DIR/etcd/etcd  ./cmd/etcd: etcd at the module's own etcd version
#   DIR/consul/    bin/consul (make bin/consul), which must be static
#   DIR/etc/       passwd and group (user 65532) and the host's CA bundle
#   DIR/data/      /data, where the services and etcd keep state
#   DIR/tmp/       /tmp (mode 1777)
#
# Environment: GO (default go), VERSION (default dev; the services'
# -X main.version), CONSUL (default bin/consul of this repository),
# CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt).
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$1
GO=${GO:-go}
VERSION=${VERSION:-dev}
CONSUL=${CONSUL:-$root/bin/consul}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

for f in "$CONSUL" "$CA_BUNDLE"; do
	[ -f "$f" ] || { echo "stage.sh: $f is missing (make bin/consul; apt-get install ca-certificates)" >&2; exit 1; }
done
# A binary linked against libc cannot start in a FROM-scratch image, and
# the error would only show at `up` ("no such file or directory").
if ! "$GO" version -m "$CONSUL" | grep -q 'CGO_ENABLED=0'; then
	echo "stage.sh: $CONSUL is not a static (CGO_ENABLED=0) Go binary; rebuild it: rm bin/consul && make bin/consul" >&2
	exit 1
fi

rm -rf "$out"
mkdir -p "$out/services" "$out/etcd" "$out/consul" "$out/etc/ssl/certs" "$out/data/user" "$out/data/order" "$out/data/etcd" "$out/tmp"
chmod 1777 "$out/tmp"
(
	cd "$root"
	# -o DIR/ builds every main package it is given: services svcgen adds
	# later are picked up without editing this script.
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$out/services/" ./services/...
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$out/etcd/etcd" ./cmd/etcd
)
cp "$CONSUL" "$out/consul/consul"
cp "$here/image/passwd" "$here/image/group" "$out/etc/"
cp "$CA_BUNDLE" "$out/etc/ssl/certs/ca-certificates.crt"
cp "$here/Containerfile" "$out/Containerfile"
