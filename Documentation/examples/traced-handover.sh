#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The example in this directory, made again: a "guest" (tap-guest.py) writes
# one frame per ms to a TAP in a private netns; it is paused, `fd-handover
# take` pulls the TAP fd out of it and execs a successor, which ends the old
# process and resumes the stream.  `fd-handover trace` follows both
# processes and the wire.  As root, from the top of a built tree:
#
#   Documentation/examples/traced-handover.sh [BUILD_DIR] [OUT_PREFIX]
#
# writes OUT_PREFIX.txt (the table) and OUT_PREFIX.perfetto.json
# (default Documentation/examples/handover-trace).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=${2:-Documentation/examples/handover-trace}
fdh=$build/tools/fd-handover
guest=Documentation/examples/tap-guest.py
ns=fdh-example-$$
tap=tapex0
tmp=$(mktemp -d)
src=
# The system's interpreter: a pyenv shim would add its own 100 ms of shell.
python=/usr/bin/python3

cleanup() {
	if [ -n "$src" ]; then kill "$src" 2>/dev/null || true; fi
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns"
ip netns exec "$ns" "$python" "$guest" source "$tap" >"$tmp/source" &
for _ in $(seq 50); do
	[ -s "$tmp/source" ] && break
	sleep 0.1
done
read -r _ src _ fd <"$tmp/source"

# The CMD pauses the guest after 200 ms of traffic (the "VM stop"), then
# becomes `fd-handover take`, which becomes the successor (one pid).
"$fdh" trace --pid "$src" --tap "$tap" --netns "$ns" \
	--perfetto "$out.perfetto.json" -- \
	env SOURCE_PID="$src" sh -c "sleep 0.2; kill -USR1 $src; exec $fdh take $src $fd:net0 -- $python $guest successor 300" \
	>"$out.txt"
python3 -m json.tool "$out.perfetto.json" >/dev/null
cat "$out.txt"
