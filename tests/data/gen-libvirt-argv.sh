#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Regenerates tests/data/libvirt.argv: the QEMU command line libvirt writes
# for libvirt-domain.xml, one argument per line.  Starts its own libvirtd
# (Debian's libvirt-daemon + libvirt-daemon-driver-qemu + libvirt-clients),
# defines nothing, asks `virsh domxml-to-native qemu-argv`, stops the daemon.
# Needs root (libvirt's qemu:///system probes the emulator) and the
# emulator named in the XML (Debian's qemu-system-x86).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/libvirt.argv}
run=$(mktemp -d /tmp/fdh-libvirt.XXXXXX)
pid=

cleanup() {
	[[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$run"
}
trap cleanup EXIT

command -v libvirtd >/dev/null && command -v virsh >/dev/null ||
	{ echo "needs libvirt-daemon-driver-qemu and libvirt-clients" >&2; exit 1; }

# Our own daemon, unless the system's already runs (then use it as is).
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
	libvirtd --pid-file "$run/libvirtd.pid" >"$run/libvirtd.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		virsh -c qemu:///system version >/dev/null 2>&1 && break
		kill -0 "$pid" 2>/dev/null || { cat "$run/libvirtd.log" >&2; exit 1; }
		sleep 0.1
	done
fi

# One argument per line; libvirt prints them shell-quoted, one option per
# line with backslash continuations: let the shell unquote them.
native=$(virsh -c qemu:///system domxml-to-native qemu-argv \
	--xml "$here/libvirt-domain.xml")
eval "set -- $(printf '%s' "$native" | sed 's/\\$//')"
# The environment assignments that precede the binary are not argv.
while [[ $# -gt 0 && $1 == *=* && $1 != -* ]]; do shift; done
printf '%s\n' "$@" >"$out"
echo "wrote $out ($# arguments)"
