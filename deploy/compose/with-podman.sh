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
#   - unless CONTAINERS_CONF is set, uses a containers.conf that selects
#     runc and lowers the default ulimits (crun and the default ulimits fail
#     on some hosts). It lives in WARREN_PODMAN_DIR (default .warren/podman
#     of this checkout) and is never deleted: podman's exit hook of every
#     container it creates (`podman container cleanup`, which applies the
#     restart policy) runs later with this environment, and a
#     CONTAINERS_CONF naming a removed file makes that hook fail, so a
#     crashed container would never be restarted;
#   - runs the containers' health checks. Podman schedules health checks
#     with systemd timers; without systemd they never run, containers stay
#     "starting" and `depends_on: condition: service_healthy` never
#     resolves. So every second it runs `podman healthcheck run` on each
#     container of the project (COMPOSE_PROJECT_NAME; without it, of every
#     compose project) whose health is still "starting". Podman applies the
#     check's retries and start period; the interval in compose.yaml is
#     what a Docker engine (or podman with systemd) uses instead;
#   - with --wait-healthy, after COMMAND succeeds, looks at the project's
#     containers once a second, all of them in one `podman ps` each time,
#     until every one is running and healthy (exit 0). It fails (exit 1) as
#     soon as one is unhealthy, not running (exited, stopped, created,
#     paused...) or was restarted since COMMAND started (a crash loop:
#     its restart count grew), naming it with its exit code and last log
#     line, or after WAIT_HEALTHY_TIMEOUT seconds (default 300). Like
#     `docker compose up --wait` of Compose v2. When COMMAND itself fails,
#     it names each container of the project that died or was restarted,
#     with its exit code and last log line, before exiting with COMMAND's
#     status: podman's own answer for a container that crashed during
#     `start` can be just "read /proc/PID/cgroup: no such process".
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
here=$(cd "$(dirname "$0")" && pwd) || exit 1

state=$(mktemp -d "${TMPDIR:-/tmp}/warren-podman.XXXXXX") || exit 1
svc=
checker=
cmd=
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ $rc -ne 0 ] && [ -s "$state/service.log" ]; then
		log=$(grep -v -e systemd -e syslog "$state/service.log" | tail -n 20)
		[ -z "$log" ] || printf 'with-podman.sh: podman system service log (last lines):\n%s\n' "$log" >&2
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
	confdir=${WARREN_PODMAN_DIR:-$here/../../.warren/podman}
	mkdir -p "$confdir" || exit 1
	confdir=$(cd "$confdir" && pwd) || exit 1
	conf='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"'
	# Replaced only when its text changes, and then by a rename: a
	# container's exit hook reading it at that moment sees the old file or
	# the new one, never a missing or half-written one.
	if [ "$(cat "$confdir/containers.conf" 2>/dev/null)" != "$conf" ]; then
		# Written beside it: a rename within one file system is atomic,
		# a move from $state (often another one, /tmp) is a copy.
		printf '%s\n' "$conf" >"$confdir/containers.conf.$$" && mv -f "$confdir/containers.conf.$$" "$confdir/containers.conf" || exit 1
	fi
	CONTAINERS_CONF=$confdir/containers.conf
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

# snapshot prints one line per container of the project, from one
# `podman inspect` of them all: ID NAME STATE RESTARTS EXITCODE HEALTH
# (healthy, unhealthy, starting; "-" without a health check). Podman keeps
# the last health of a container that is no longer running, so HEALTH
# counts only for a running one. A container removed between the listing
# and the inspect fails the snapshot; the caller looks again.
snapshot() {
	ids=$(podman ps -aq --filter "$project") || return 1
	[ -n "$ids" ] || return 0
	# shellcheck disable=SC2086 # one argument per ID
	podman inspect --format '{{.Id}} {{.Name}} {{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{if .State.Health.Status}}{{.State.Health.Status}}{{else}}-{{end}}' $ids
}

if [ $wait_healthy -eq 1 ]; then
	# Restart counts before COMMAND: a container restarted after this
	# point crashed during the bring-up.
	before=$(snapshot 2>/dev/null) || before=$(snapshot) || exit 1
fi

(while :; do check_starting; sleep 1; done) &
checker=$!

"$@" &
cmd=$!
wait "$cmd"
rc=$?
cmd=

# lastlog prints a container's last log line, indented, to say why it died.
lastlog() {
	podman logs --tail 1 "$1" 2>&1 | tail -n 1 | sed 's/^/    last log: /'
}

if [ $rc -ne 0 ] && [ $wait_healthy -eq 1 ]; then
	# Say which containers died or were restarted (ever, not only since
	# COMMAND started: a crash loop is worth naming either way). A
	# container COMMAND created but never started is not news.
	now=$(snapshot 2>/dev/null) || exit $rc
	printf '%s\n' "$now" | awk '
		$1 == "" { next }
		{
			name = $2; st = $3; restarts = $4 + 0; code = $5
			died = (st == "exited" || st == "stopped") && code != 0
			if (died || restarts > 0)
				print name " " name " " st (st == "running" ? "" : " (exit code " code ")") ", restarted " restarts " times"
		}
	' | while read -r name msg; do
		echo "with-podman.sh: $1 failed; $msg" >&2
		lastlog "$name" >&2
	done
	exit $rc
fi
if [ $rc -ne 0 ] || [ $wait_healthy -eq 0 ]; then
	exit $rc
fi

deadline=$(($(date +%s) + ${WAIT_HEALTHY_TIMEOUT:-300}))
while :; do
	if ! now=$(snapshot 2>&1); then
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "with-podman.sh: cannot inspect the containers of the project: $now" >&2
			exit 1
		fi
		sleep 1
		continue
	fi
	verdict=$(printf '%s\n' "$now" | BEFORE=$before awk '
		BEGIN {
			n = split(ENVIRON["BEFORE"], lines, "\n")
			for (i = 1; i <= n; i++) { split(lines[i], f, " "); if (f[1] != "") was[f[1]] = f[4] }
		}
		$1 == "" { next }
		{
			id = $1; name = $2; st = $3; restarts = $4 + 0; code = $5; health = $6
			all++
			grew = restarts - (id in was ? was[id] + 0 : 0)
			if (grew > 0) {
				print "fail " name " restarting: " name " (restarted " grew " times since the command started; now " st (st == "running" ? "" : ", exit code " code) ")"
			} else if (st != "running") {
				if (st == "exited" || st == "stopped") what = st " (exit code " code ")"; else what = st
				print "fail " name " not running: " name " " what
			} else if (health == "unhealthy") {
				print "fail " name " unhealthy: " name
			} else if (health == "starting") {
				waiting++
			}
		}
		END { if (all == 0) print "wait none"; else if (waiting > 0) print "wait " waiting }
	')
	failed=$(printf '%s\n' "$verdict" | grep '^fail ')
	if [ -n "$failed" ]; then
		printf '%s\n' "$failed" | while read -r _ name msg; do
			echo "with-podman.sh: $msg" >&2
			lastlog "$name" >&2
		done
		exit 1
	fi
	if [ -z "$verdict" ]; then
		exit 0
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "with-podman.sh: not healthy after ${WAIT_HEALTHY_TIMEOUT:-300}s (NAME STATE RESTARTS EXITCODE HEALTH):" >&2
		printf '%s\n' "$now" | cut -d' ' -f2- >&2
		exit 1
	fi
	sleep 1
done
