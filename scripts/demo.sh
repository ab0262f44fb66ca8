#!/usr/bin/env bash
# The main job: build (or reuse) the patched QEMU and the test guest, boot
# the guest inside a network namespace of its own, live-upgrade its QEMU
# while 1000 packets/s flow each way, and print the downtime report.
# Run as root on Debian 12.  `scripts/demo.sh --fds` runs the plain fd
# handover demo instead (a TAP + memfd + eventfd between two processes).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

if [ "${1:-}" = --fds ]; then
	[ -f build/build.ninja ] || meson setup build >/dev/null
	ninja -C build tools/fd-handover-demo >/dev/null
	ns=fdh-demo-$$
	ip netns add "$ns"
	trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
	ip netns exec "$ns" build/tools/fd-handover-demo
	exit
fi

echo "building or reusing the patched QEMU and the guest (first run: ~10 min) ..."
env_file=$(mktemp)
# mktemp, not a fixed name in /tmp: as root, a predictable path there is
# one any local user can point somewhere else first.
setup_log=$(mktemp -t fd-handover-setup.XXXXXX.log)
trap 'rm -f "$env_file"' EXIT
if ! scripts/with-progress.sh "$setup_log" "QEMU and guest" \
	scripts/qemu-setup.sh >"$env_file"; then
	tail -n 30 "$setup_log"
	echo "demo.sh: setup failed; full log in $setup_log" >&2
	exit 1
fi
rm -f "$setup_log"
FDH_QEMU=$(sed -n 's/^FDH_QEMU_SYSTEM_X86_64_BIN=//p' "$env_file")
export FDH_QEMU
cd qemu-glue && exec python3 -B -m e2e.demo "$@"
