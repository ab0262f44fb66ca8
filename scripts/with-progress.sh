#!/usr/bin/env bash
# Run a long, quiet build step with its stderr going to LOG, and say every
# 30 s how far it got: the first run builds QEMU for ~9 minutes, which
# should not look like a hang.
#
# Usage: scripts/with-progress.sh LOG WHAT CMD [ARG...]   (stdout is CMD's)
set -uo pipefail
log=$1 what=$2
shift 2

"$@" 2>"$log" &
pid=$!
start=$SECONDS
while kill -0 "$pid" 2>/dev/null; do
	for _ in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break 2
		sleep 1
	done
	# ninja's "[123/2024] Compiling ..." or the recipe's own "[build.sh ...]" lines
	step=$(grep -aoE '^\[[0-9]+/[0-9]+\]|^\[(build|guest/build)\.sh [0-9:]+\] .{0,60}' "$log" | tail -n 1)
	echo "  ... $what: $((SECONDS - start)) s${step:+, $step}" >&2
done
wait "$pid"
