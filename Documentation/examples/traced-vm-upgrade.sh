#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A traced VM upgrade: one run of a bench/upgrade variant, by default
# fd-handover (ours: the patched QEMU, built with the dtrace trace backend
# so its phases are USDT probes, plus libfdhandover's own probes); with
# VARIANT=cpr-transfer, stock cpr-transfer on the unpatched build.  The
# tracer follows the driver, both QEMUs and the traffic peer, and the TAP
# fdhtap0 that vm.py makes in a namespace of its own (found by name: the
# namespace does not exist yet when tracing starts), counting IPv4 frames
# only: the guest's data, not the ARP it sends first after the resume.  As
# root, from the top of a built tree:
#
#   Documentation/examples/traced-vm-upgrade.sh [BUILD_DIR] [OUT_PREFIX]
#
# writes OUT_PREFIX.txt and OUT_PREFIX.perfetto.json (default
# Documentation/examples/vm-upgrade-trace).  FDH_QEMU overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=${2:-Documentation/examples/vm-upgrade-trace}
variant=${VARIANT:-fd-handover}
lib=${FDH_CACHE:-/var/cache/fd-handover}/fdh-prefix/lib/libfdhandover.so
if [ "$variant" = cpr-transfer ]; then
	qemu=${FDH_QEMU:-$(FDH_PATCH_DIR=/nonexistent bash qemu-glue/build.sh --print-dir 2>/dev/null)/build/qemu-system-x86_64}
	qemu_args=(--qemu-stock "$qemu")
	usdt=(--usdt "$qemu")
else
	qemu=${FDH_QEMU:?set FDH_QEMU to the patched QEMU (scripts/qemu-setup.sh prints it)}
	qemu_args=(--qemu-new "$qemu")
	usdt=(--usdt "$qemu" --usdt "$lib")
fi

if ! [ -x "$qemu" ]; then
	echo "no QEMU at $qemu: FDH_PATCH_DIR=/nonexistent bash qemu-glue/build.sh builds it" >&2
	exit 1
fi
bench=$(mktemp)
trap 'rm -f "$bench"' EXIT
# /usr/bin/python3: a pyenv shim would add its own shells to the trace.
# The benchmark's table goes to $bench, the trace's to $out.txt.
"$build/tools/fd-handover" trace --tap fdhtap0 --ethertype 0x0800 "${usdt[@]}" \
	--sched-min 1000 --perfetto "$out.perfetto.json" -- \
	sh -c 'out=$1; shift; exec "$@" >"$out"' sh "$bench" \
	/usr/bin/python3 bench/upgrade --runs 1 --ram 256 --warmup 0.5 --tail 0.5 \
	--variants "$variant" "${qemu_args[@]}" >"$out.txt"
{
	echo
	echo "bench/upgrade's own figures for the same run (its peer times its UDP stream):"
	cat "$bench"
} >>"$out.txt"
python3 -m json.tool "$out.perfetto.json" >/dev/null
cat "$out.txt"
