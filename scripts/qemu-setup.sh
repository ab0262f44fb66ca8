#!/usr/bin/env bash
# Build, or reuse from the cache outside the clone, everything the VM
# upgrade needs, and print KEY=VALUE lines on stdout (progress on stderr):
#   FDH_QEMU_SYSTEM_X86_64_BIN ...  the patched QEMU (qemu-glue/build.sh)
#   GUEST_* ...        the test guest (qemu-glue/guest/build.sh)
#   FDH_CLI            the fd-handover command of this clone
#   FDH_VIRTIOFSD      virtiofsd for the virtio-fs test (qemu-glue/virtiofsd.sh), if it can be had
#
# libfdhandover is installed into $FDH_CACHE/fdh-prefix, which the patched
# QEMU links against (pkg-config, rpath).  The QEMU cache key includes the
# patches, the recipe and the library's public header, so a changed ABI
# rebuilds QEMU; the library itself is reinstalled on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${FDH_CACHE:-/var/cache/fd-handover}
prefix=$cache/fdh-prefix
mkdir -p "$cache"

if [ ! -f build-prefix/build.ninja ]; then
	meson setup build-prefix --prefix="$prefix" --libdir=lib \
		-Dbuildtype=release >&2
fi
ninja -C build-prefix >&2
meson install -C build-prefix --quiet >&2

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export FDH_EXTRA_CONFIGURE="--extra-ldflags=-Wl,-rpath,$prefix/lib"
export FDH_KEY_EXTRA="libfdhandover $(sha256sum lib/fdhandover.h | cut -c1-16)"
bash qemu-glue/build.sh
bash qemu-glue/guest/build.sh
bash qemu-glue/virtiofsd.sh
echo "FDH_CLI=$PWD/build-prefix/tools/fd-handover"
