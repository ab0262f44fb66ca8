#!/usr/bin/env bash
# The main job: install, build, and hand a TAP + memfd + eventfd set from one
# process to another inside a private network namespace; prints what moved,
# the checks on it and how long each phase took.  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build tools/fd-handover-demo >/dev/null

ns=fdh-demo-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns exec "$ns" build/tools/fd-handover-demo
