#!/bin/sh
# Entrypoint of the images' dev stage (Tilt live update): builds a service in /src, runs it,
# and rebuilds and restarts it whenever /tmp/.restart is touched.
#
#   dev-run.sh reception|baker
#
# Tilt syncs changed sources into /src and runs `touch /tmp/.restart`. The old process keeps
# serving while `make` runs; a failed build leaves it running. SIGTERM/SIGINT go to the
# service, and the script exits with its status; so does a service that exits on its own.
# POSIX sh: needs make, find, sleep, touch.
set -u

svc=${1:-}
case $svc in
reception | baker) ;;
*)
	echo "usage: dev-run.sh reception|baker" >&2
	exit 2
	;;
esac

src=${DEV_SRC:-/src}
trigger=${DEV_RESTART_FILE:-/tmp/.restart}
stamp=$trigger.seen
child=
watcher=
term=
restart=

log() { echo "dev-run: $*" >&2; }

# build: make the service; the old binary is replaced only when the link succeeds.
build() {
	make -C "$src" -j2 "build/$svc"
}

start() {
	"$src/build/$svc" &
	child=$!
	log "started $svc (pid $child)"
}

# reap: wait until the service is gone (a trapped signal interrupts `wait`); sets status.
reap() {
	while kill -0 "$child" 2>/dev/null; do
		wait "$child"
		status=$?
	done
}

# stop: SIGTERM the service and reap it.
stop() {
	kill -TERM "$child" 2>/dev/null
	reap
}

# Signals only set flags (and forward SIGTERM at once); the loop below acts on them.
trap 'term=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM INT
trap 'restart=1' USR1
trap '[ -z "$watcher" ] || kill "$watcher" 2>/dev/null' EXIT

build || exit 1
: >"$stamp"
[ -n "$term" ] && exit 143
start

# The watcher signals this shell while the trigger is newer than the stamp (re-sent every
# 0.2 s, so none is lost); the loop refreshes the stamp before it rebuilds.
(
	while sleep 0.2; do
		if [ -n "$(find "$trigger" -newer "$stamp" 2>/dev/null)" ]; then
			kill -USR1 $$ 2>/dev/null || exit 0
		fi
	done
) &
watcher=$!

while :; do
	wait "$child"
	status=$?
	if [ -n "$term" ]; then
		reap
		log "$svc stopped with status $status"
		exit "$status"
	fi
	if [ -n "$restart" ]; then
		: >"$stamp"
		restart=
		log "change detected: rebuilding $svc"
		if build; then
			[ -n "$term" ] && continue
			stop
			[ -n "$term" ] && exit "$status"
			start
		else
			log "build failed: $svc keeps running the previous build"
		fi
		continue
	fi
	# Neither flag is set: the service exited on its own.
	log "$svc exited with status $status"
	exit "$status"
done
