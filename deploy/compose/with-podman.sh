#!/bin/sh
# with-podman.sh [--wait-healthy] COMMAND [ARG...]
#
# Runs COMMAND — docker-compose, usually — against a Docker-compatible API
# that rootful podman serves for just that command, then stops it. For
# machines with podman but no Docker engine:
#
#   COMPOSE_PROJECT_NAME=warren deploy/compose/with-podman.sh --wait-healthy \
#       docker-compose -f deploy/compose/compose.yaml --profile etcd up -d
#
# What it does around COMMAND:
#   - starts `podman system service` on a socket in a fresh temp directory,
#     exports DOCKER_HOST to it, and kills that service (by its PID) when
#     COMMAND ends, fails or is interrupted;
#   - unless CONTAINERS_CONF is set, writes a containers.conf there that
#     selects runc and lowers the default ulimits (crun and the default
#     ulimits fail on some hosts);
#   - runs the containers' health checks. Podman schedules health checks
#     with systemd timers; without systemd they never run, containers stay
#     "starting" and `depends_on: condition: service_healthy` never
#     resolves. So every second it runs `podman healthcheck run` on each
#     container of the project (COMPOSE_PROJECT_NAME; without it, of every
#     compose project) whose health is still "starting". Podman applies the
#     check's retries and start period; the interval in compose.yaml is
#     what a Docker engine (or podman with systemd) uses instead;
#   - with --wait-healthy, after COMMAND succeeds, keeps checking until
#     every container of the project is running and healthy (exit 0), one
#     is unhealthy (exit 1), or WAIT_HEALTHY_TIMEOUT seconds (default 300)
#     pass (exit 1). Like `docker compose up --wait` of Compose v2.
#
# Exit status: COMMAND's, or 1 when the wait fails.
set -u

wait_healthy=0
if [ "${1:-}" = --wait-healthy ]; then
	wait_healthy=1
	shift
fi
if [ $# -eq 0 ]; then
	echo "usage: $0 [--wait-healthy] COMMAND [ARG...]" >&2
	exit 2
fi
command -v podman >/dev/null || { echo "with-podman.sh: podman is not installed" >&2; exit 1; }

state=$(mktemp -d "${TMPDIR:-/tmp}/warren-podman.XXXXXX") || exit 1
svc=
checker=
cmd=
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ $rc -ne 0 ] && [ -s "$state/service.log" ]; then
		echo "with-podman.sh: podman system service log (last lines):" >&2
		grep -v 'systemd' "$state/service.log" | tail -n 20 >&2
	fi
	for pid in $cmd $checker $svc; do kill "$pid" 2>/dev/null; done
	for pid in $cmd $checker $svc; do wait "$pid" 2>/dev/null; done
	rm -rf "$state"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${CONTAINERS_CONF:-}" ]; then
	printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n' >"$state/containers.conf"
	CONTAINERS_CONF=$state/containers.conf
	export CONTAINERS_CONF
fi

# --time=0: no idle timeout; the trap above ends the service. Its log is
# shown only when something fails: without systemd it complains about
# every health check timer it cannot create.
podman system service --time=0 "unix://$state/podman.sock" 2>"$state/service.log" &
svc=$!
i=0
until [ -S "$state/podman.sock" ]; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 "$svc" 2>/dev/null; then
		echo "with-podman.sh: podman system service did not start" >&2
		exit 1
	fi
	sleep 0.1
done
DOCKER_HOST=unix://$state/podman.sock
export DOCKER_HOST

if [ -n "${COMPOSE_PROJECT_NAME:-}" ]; then
	project=label=com.docker.compose.project=$COMPOSE_PROJECT_NAME
else
	project=label=com.docker.compose.project
fi

check_starting() {
	for c in $(podman ps -q --filter "$project" --filter health=starting 2>/dev/null); do
		podman healthcheck run "$c" >/dev/null 2>&1
	done
}

(while :; do check_starting; sleep 1; done) &
checker=$!

"$@" &
cmd=$!
wait "$cmd"
rc=$?
cmd=
if [ $rc -ne 0 ] || [ $wait_healthy -eq 0 ]; then
	exit $rc
fi

deadline=$(($(date +%s) + ${WAIT_HEALTHY_TIMEOUT:-300}))
while :; do
	all=$(podman ps -aq --filter "$project")
	unhealthy=$(podman ps -q --filter "$project" --filter health=unhealthy)
	starting=$(podman ps -q --filter "$project" --filter health=starting)
	down=$(podman ps -aq --filter "$project" --filter status=created --filter status=exited \
		--filter status=paused --filter status=stopped --filter status=unknown)
	if [ -n "$unhealthy" ]; then
		echo "with-podman.sh: unhealthy: $(podman ps --filter "$project" --filter health=unhealthy --format '{{.Names}}' | tr '\n' ' ')" >&2
		exit 1
	fi
	if [ -n "$all" ] && [ -z "$starting" ] && [ -z "$down" ]; then
		exit 0
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "with-podman.sh: not healthy after ${WAIT_HEALTHY_TIMEOUT:-300}s:" >&2
		podman ps -a --filter "$project" --format '{{.Names}} {{.Status}}' >&2
		exit 1
	fi
	sleep 1
done
