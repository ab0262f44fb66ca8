#!/usr/bin/env bash
# qemu-glue/guest/build.sh -- build (or reuse) the fd-handover test guest.
#
#   kernel + modules : Debian's linux-image-6.1.*-amd64 (the version linux-image-amd64 depends
#                      on), fetched with `apt-get download`, unpacked with `dpkg-deb -x` into the
#                      cache (never installed, /boot untouched)
#   initramfs        : cpio newc + gzip: busybox-static (also only downloaded + unpacked), /init,
#                      the virtio modules and virtiofs (dependency order), static gueststream,
#                      blkverify, fsverify (both loops in src/verifyloop.h)
#   host side        : peer (static), the traffic endpoint that runs inside the test netns
#
# The steps it shares with vhostnet/build.sh are lib.sh's.
# Everything lands in ${FDH_CACHE:-/var/cache/fd-handover}/guest-<KEY>/ where KEY hashes this
# script, lib.sh, init, src/*, the resolved package versions and the compiler version.  Idempotent:
# a complete cache dir is reused as is.  Progress goes to stderr; stdout gets KEY=VALUE lines:
#   GUEST_KEY GUEST_DIR GUEST_KERNEL GUEST_INITRD GUEST_PEER GUEST_GUESTSTREAM
#
# Usage: build.sh [--print-key] [--gc]
set -euo pipefail

SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
GDIR="$(dirname "$SCRIPT")"
FDH_CACHE="${FDH_CACHE:-/var/cache/fd-handover}"
DEB_CACHE="$FDH_CACHE/debs"
KERNEL_SERIES="6.1"
# Wanted modules; their dependencies (fuse for virtiofs, failover, net_failover, virtio, virtio_ring,
# virtio_pci_modern_dev, virtio_pci_legacy_dev) are resolved from each .ko's modinfo.
MODULES_WANTED=(virtio_pci virtio_net virtio_blk virtiofs)
LOG_TAG=guest/build.sh
# shellcheck source=lib.sh
. "$GDIR/lib.sh"

guest_parse_mode "$@"
guest_need_tools
guest_resolve_versions

GCC_VER="$(gcc --version | head -n1)"
KEY="$(
  {
    cat "$SCRIPT" "$GDIR/lib.sh" "$GDIR/init"
    for f in $(cd "$GDIR/src" && find . -type f | LC_ALL=C sort); do
      printf '%s\n' "$f"; cat "$GDIR/src/$f"
    done
    printf 'kernel=%s=%s\nbusybox=%s\ngcc=%s\nmodules=%s\n' \
      "$K_PKG" "$K_VER" "$BB_VER" "$GCC_VER" "${MODULES_WANTED[*]}"
  } | sha256sum | cut -c1-16
)"

emit() {
  printf 'GUEST_KEY=%s\nGUEST_DIR=%s\nGUEST_KERNEL=%s\nGUEST_INITRD=%s\nGUEST_PEER=%s\nGUEST_GUESTSTREAM=%s\n' \
    "$KEY" "$OUT" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/peer" "$OUT/gueststream"
}

guest_cache guest

# ---------------------------------------------------------------------------- kernel
guest_unpack_kernel "$KDEB" "$TMP" "${MODULES_WANTED[@]}"

# ---------------------------------------------------------------------------- programs
log "compiling gueststream, peer (gcc -static)"
CFLAGS=(-O2 -Wall -Wextra -Werror -static -I"$GDIR/src")
gcc "${CFLAGS[@]}" -o "$TMP/gueststream" "$GDIR/src/gueststream.c"
gcc "${CFLAGS[@]}" -o "$TMP/peer" "$GDIR/src/peer.c"
gcc "${CFLAGS[@]}" -o "$TMP/blkverify" "$GDIR/src/blkverify.c"
gcc "${CFLAGS[@]}" -o "$TMP/fsverify" "$GDIR/src/fsverify.c"
strip "$TMP/gueststream" "$TMP/peer" "$TMP/blkverify" "$TMP/fsverify"

# ---------------------------------------------------------------------------- initramfs
R="$TMP/root"
mkdir -p "$R"/{bin,usr/bin,usr/sbin}
cp "$TMP/gueststream" "$R/bin/gueststream"
cp "$TMP/blkverify" "$R/bin/blkverify"
cp "$TMP/fsverify" "$R/bin/fsverify"
cp "$GDIR/init" "$R/init"
chmod 755 "$R/init" "$R/bin/gueststream" "$R/bin/blkverify" "$R/bin/fsverify"
guest_initramfs "$R" "$BDEB" fdh-modules "$TMP/initrd.img"
rm -rf "$TMP/kroot"

# ---------------------------------------------------------------------------- info
sz() { stat -c %s "$1"; }
cat >"$TMP/guest.env" <<EOF
GUEST_KEY=$KEY
KERNEL_PACKAGE=$K_PKG
KERNEL_VERSION=$K_VER
KERNEL_RELEASE=$KREL
BUSYBOX_VERSION=$BB_VER
GCC="$GCC_VER"
MODULES="${MOD_ORDER[*]}"
VMLINUZ_BYTES=$(sz "$TMP/vmlinuz")
INITRD_BYTES=$(sz "$TMP/initrd.img")
GUESTSTREAM_BYTES=$(sz "$TMP/gueststream")
PEER_BYTES=$(sz "$TMP/peer")
KERNEL_DEB_BYTES=$(sz "$KDEB")
BUSYBOX_DEB_BYTES=$(sz "$BDEB")
EOF
guest_done guest.env
