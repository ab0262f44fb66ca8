#!/usr/bin/env bash
# qemu-glue/guest/vhostnet-qemu/build.sh -- build (or reuse) the outer guest of the nested
# QEMU-level vhost-net test (issue 14): Debian's 6.1 kernel, which has vhost_net, running a
# patched QEMU that runs the normal e2e test guest on `-netdev tap,vhost=on`.
#
#   outer kernel     : the same Debian linux-image-6.1.*-amd64 .deb as ../build.sh (lib.sh)
#   outer initramfs  : busybox-static, /init (this dir's init), vnq-scenario, nodev-wrapper, rollback-wrapper,
#                      mktap (static), and the modules virtio_pci, virtio_blk, ext4, tun,
#                      vhost_net with their dependencies.  Small (a few MB): TCG unpacks it.
#   payload disk     : an ext4 image (mke2fs -d, no root mount needed), read-only in the
#                      guest at /opt, holding
#                        sysroot/<host path>  qemu-system-x86_64 (debug info stripped) and
#                                             the fd-handover CLI, each at its host path,
#                                             with every library ldd finds for it (also at
#                                             its host path: both RUNPATHs work unchanged)
#                                             and the ELF interpreter; /init links them
#                                             into place
#                        share/qemu/          the firmware a -nodefaults -kernel pc guest
#                                             needs (bios-256k.bin, linuxboot_dma.bin,
#                                             kvmvapic.bin, ...); QEMU gets -L
#                        inner/               the e2e test guest of ../build.sh: vmlinuz,
#                                             initrd.img, peer
#
# Inputs (environment): FDH_QEMU_BUILD_DIR (a QEMU build dir with qemu-system-x86_64 and
# pc-bios/) and FDH_CLI (the fd-handover to run inside), both required: scripts/qemu-setup.sh
# prints the first; scripts/test.sh sets both.
#
# Everything lands in ${FDH_CACHE:-/var/cache/fd-handover}/vhostnet-qemu-<KEY>/, KEY hashing
# this dir, lib.sh, the QEMU and CLI binaries with their libraries, the inner guest's KEY,
# the package versions and the compiler.  Idempotent.  Progress on stderr; stdout gets:
#   VNQ_KEY VNQ_DIR VNQ_KERNEL VNQ_INITRD VNQ_DISK VNQ_QEMU_BUILD_DIR VNQ_CLI
#
# Usage: build.sh [--print-key] [--gc]
set -euo pipefail

SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
VDIR="$(dirname "$SCRIPT")"
GDIR="$(readlink -f "$VDIR/..")"
FDH_CACHE="${FDH_CACHE:-/var/cache/fd-handover}"
DEB_CACHE="$FDH_CACHE/debs"
KERNEL_SERIES="6.1"
# crc32c_generic: 6.1's ext4 loads the crc32c transform at every mount (no modprobe here)
MODULES_WANTED=(virtio_pci virtio_blk crc32c_generic ext4 tun vhost_net)
# What a `-machine pc -nodefaults -kernel` guest with virtio-net-pci,romfile= loads.
# pvh.bin: the inner kernel is booted as an uncompressed vmlinux through its PVH entry.
FIRMWARE=(bios-256k.bin linuxboot_dma.bin linuxboot.bin kvmvapic.bin multiboot_dma.bin pvh.bin)
LOG_TAG=vhostnet-qemu/build.sh
# shellcheck source=../lib.sh
. "$GDIR/lib.sh"

QEMU_BIN="${FDH_QEMU_BUILD_DIR:-}/qemu-system-x86_64"
[[ -x "$QEMU_BIN" ]] || { echo "$LOG_TAG: no qemu-system-x86_64 in FDH_QEMU_BUILD_DIR=${FDH_QEMU_BUILD_DIR:-} (set it, and FDH_CLI, from scripts/qemu-setup.sh's output)" >&2; exit 1; }
[[ -x "${FDH_CLI:-}" ]] || { echo "$LOG_TAG: FDH_CLI=${FDH_CLI:-} is not executable" >&2; exit 1; }
QEMU_BIN="$(readlink -f "$QEMU_BIN")"
CLI_BIN="$(readlink -f "$FDH_CLI")"

guest_parse_mode "$@"
guest_need_tools mke2fs xz
guest_resolve_versions --cached-fallback

# The inner guest: the normal e2e test guest (built or reused by its own script).
INNER_ENV="$("$GDIR/build.sh")"
inner() { printf '%s\n' "$INNER_ENV" | sed -n "s/^$1=//p"; }
INNER_KEY="$(inner GUEST_KEY)"

# ldd's libraries of a binary (resolved paths, as the host's loader finds them) + the loader.
libs_of() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u
}
mapfile -t QEMU_LIBS < <(libs_of "$QEMU_BIN")
mapfile -t CLI_LIBS < <(libs_of "$CLI_BIN")
# Each firmware file from the first of: the build's own pc-bios/ and qemu-bundle, then the
# configured --firmwarepath (Debian's: /usr/share/qemu, /usr/share/seabios), as QEMU looks.
FW_PATH=("$FDH_QEMU_BUILD_DIR/pc-bios" "$FDH_QEMU_BUILD_DIR"/qemu-bundle/usr/share/qemu
  "$FDH_QEMU_BUILD_DIR"/qemu-bundle/usr/local/share/qemu /usr/share/qemu /usr/share/seabios)
declare -A FW_FILE=()
for f in "${FIRMWARE[@]}"; do
  for d in "${FW_PATH[@]}"; do
    [[ -e "$d/$f" ]] && { FW_FILE[$f]="$(readlink -f "$d/$f")"; break; }
  done
  [[ -n "${FW_FILE[$f]:-}" ]] || die "firmware $f not found in ${FW_PATH[*]}"
done

GCC_VER="$(gcc --version | head -n1)"
KEY="$(
  {
    for f in "$SCRIPT" "$VDIR"/{init,vnq-scenario,nodev-wrapper,rollback-wrapper,mktap.c} "$GDIR/lib.sh"; do printf '%s\n' "$(basename "$f")"; cat "$f"; done
    for f in "$QEMU_BIN" "$CLI_BIN" "${QEMU_LIBS[@]}" "${CLI_LIBS[@]}"; do
      printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"
    done
    for f in "${FIRMWARE[@]}"; do sha256sum <"${FW_FILE[$f]}"; done
    printf 'inner=%s\nkernel=%s=%s\nbusybox=%s\ngcc=%s\nmodules=%s\n' \
      "$INNER_KEY" "$K_PKG" "$K_VER" "$BB_VER" "$GCC_VER" "${MODULES_WANTED[*]}"
  } | sha256sum | cut -c1-16
)"

emit() {
  printf 'VNQ_KEY=%s\nVNQ_DIR=%s\nVNQ_KERNEL=%s\nVNQ_INITRD=%s\nVNQ_DISK=%s\nVNQ_QEMU_BUILD_DIR=%s\nVNQ_CLI=%s\n' \
    "$KEY" "$OUT" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/payload.ext4" "$FDH_QEMU_BUILD_DIR" "$CLI_BIN"
}

guest_cache vhostnet-qemu

# ---------------------------------------------------------------------------- kernel
guest_unpack_kernel "$KDEB" "$TMP" "${MODULES_WANTED[@]}"

# ---------------------------------------------------------------------------- payload disk
P="$TMP/payload"
mkdir -p "$P/sysroot" "$P/share/qemu" "$P/inner"
put() { # host file -> sysroot at the same path (dereferenced)
  mkdir -p "$P/sysroot$(dirname "$1")"
  cp -L "$1" "$P/sysroot$1"
}
log "payload: $QEMU_BIN (strip --strip-debug), $CLI_BIN, ${#QEMU_LIBS[@]}+${#CLI_LIBS[@]} libraries"
put "$QEMU_BIN"
strip --strip-debug "$P/sysroot$QEMU_BIN"
put "$CLI_BIN"
for f in "${QEMU_LIBS[@]}" "${CLI_LIBS[@]}"; do
  [[ -e "$P/sysroot$f" ]] || put "$f"
done
# /init links every sysroot file to its path (the list: absolute paths, one a line)
(cd "$P/sysroot" && find . -type f | sed 's|^\.||' | LC_ALL=C sort) >"$P/sysroot.list"
printf '%s\n' "$QEMU_BIN" >"$P/qemu.path"
printf '%s\n' "$CLI_BIN" >"$P/cli.path"
for f in "${FIRMWARE[@]}"; do cp -L "${FW_FILE[$f]}" "$P/share/qemu/$f"; done
# The inner kernel uncompressed (the vmlinux ELF inside the bzImage, booted with -kernel
# through its PVH note: CONFIG_PVH=y): under nested TCG the bzImage's own xz decompression
# alone took minutes.  Same kernel, same initrd as the e2e tests.
cp "$(inner GUEST_KERNEL)" "$P/inner/vmlinuz"
XZ_AT="$(LC_ALL=C grep -obUaP -m1 '\xfd7zXZ\x00' "$P/inner/vmlinuz" | LC_ALL=C cut -d: -f1 | sed -n 1p)"
[[ -n "$XZ_AT" ]] || die "the inner bzImage has no xz payload (CONFIG_KERNEL_XZ expected)"
tail -c +$((XZ_AT + 1)) "$P/inner/vmlinuz" >"$TMP/vmlinux.xz"   # (xz stops at the stream's end)
xz -dc --single-stream "$TMP/vmlinux.xz" >"$P/inner/vmlinux"
rm -f "$TMP/vmlinux.xz"
[[ "$(head -c 4 "$P/inner/vmlinux" | od -An -tx1 | tr -d ' ')" == 7f454c46 ]] || die "no ELF vmlinux in the bzImage"
cp "$(inner GUEST_INITRD)" "$P/inner/initrd.img"
cp "$(inner GUEST_PEER)" "$P/inner/peer"
printf 'inner guest %s\nqemu %s\ncli %s\n' "$INNER_KEY" "$QEMU_BIN" "$CLI_BIN" >"$P/payload.info"
MB=$(( $(du -sm "$P" | cut -f1) * 5 / 4 + 16 ))
# no journal, no metadata_csum: nothing to check or replay on a read-only disk
mke2fs -q -t ext4 -O ^has_journal,^metadata_csum -L fdhvnq -d "$P" "$TMP/payload.ext4" "${MB}M"
rm -rf "$P"

# ---------------------------------------------------------------------------- initramfs
log "compiling mktap (gcc -static)"
R="$TMP/root"
mkdir -p "$R/bin"
gcc -O2 -Wall -Wextra -Werror -static -o "$R/bin/mktap" "$VDIR/mktap.c"
strip "$R/bin/mktap"
cp "$VDIR/init" "$R/init"
cp "$VDIR/vnq-scenario" "$R/bin/vnq-scenario"
cp "$VDIR/nodev-wrapper" "$VDIR/rollback-wrapper" "$R/bin/"
chmod 755 "$R/init" "$R/bin/mktap" "$R/bin/vnq-scenario" "$R/bin/nodev-wrapper" "$R/bin/rollback-wrapper"
guest_initramfs "$R" "$BDEB" vnq-modules "$TMP/initrd.img"
rm -rf "$TMP/kroot" "$R" "$TMP/config"

cat >"$TMP/vhostnet-qemu.env" <<EOF
VNQ_KEY=$KEY
KERNEL_PACKAGE=$K_PKG
KERNEL_VERSION=$K_VER
KERNEL_RELEASE=$KREL
BUSYBOX_VERSION=$BB_VER
GCC="$GCC_VER"
MODULES="${MOD_ORDER[*]}"
QEMU=$QEMU_BIN
CLI=$CLI_BIN
INNER_GUEST_KEY=$INNER_KEY
INITRD_BYTES=$(stat -c %s "$TMP/initrd.img")
PAYLOAD_BYTES=$(stat -c %s "$TMP/payload.ext4")
PAYLOAD_USED_BYTES=$(du -B1 "$TMP/payload.ext4" | cut -f1)
EOF
guest_done vhostnet-qemu.env
