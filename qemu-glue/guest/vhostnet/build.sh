#!/usr/bin/env bash
# qemu-glue/guest/vhostnet/build.sh -- build (or reuse) the vhost-net handover test guest.
#
#   kernel + modules : the same Debian linux-image-6.1.*-amd64 .deb as ../build.sh (its
#                      download cache, $FDH_CACHE/debs, is reused; fetched if missing), unpacked
#                      with dpkg-deb -x (never installed)
#   initramfs        : busybox-static, /init (this dir's init), tun + vhost_net and their
#                      dependencies (from each .ko's modinfo), and vhost-handover: static, with
#                      libfdhandover's sources (../../../lib) compiled in
#
# The test guest of ../build.sh is not touched: this is a separate image in
# ${FDH_CACHE:-/var/cache/fd-handover}/vhostnet-<KEY>/, KEY hashing this dir, the lib sources,
# the package versions and the compiler.  Idempotent.  Progress on stderr; stdout gets:
#   VHN_KEY VHN_DIR VHN_KERNEL VHN_INITRD
#
# Usage: build.sh [--print-key] [--gc]
set -euo pipefail

SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
VDIR="$(dirname "$SCRIPT")"
ROOT="$(readlink -f "$VDIR/../../..")"
LIB="$ROOT/lib"
FDH_CACHE="${FDH_CACHE:-/var/cache/fd-handover}"
DEB_CACHE="$FDH_CACHE/debs"
KERNEL_SERIES="6.1"
MODULES_WANTED=(tun vhost_net)
# libfdhandover objects vhost-handover needs (fdh_pull and fdh_inspect_fd; no fence: no
# libseccomp in a static guest binary)
LIB_SOURCES=(error fdinfo identity inspect kind pull source serve sockdiag manifest)
LOG_TAG=vhostnet/build.sh
# shellcheck source=../lib.sh
. "$VDIR/../lib.sh"

guest_parse_mode "$@"
guest_need_tools libglib2.0-dev:/usr/lib/x86_64-linux-gnu/libglib-2.0.a pkg-config
# As ../build.sh, the linux-image-6.1.* that linux-image-amd64 depends on; if the package
# lists say nothing, the newest 6.1 .deb already in the download cache.
guest_resolve_versions --cached-fallback

GCC_VER="$(gcc --version | head -n1)"
KEY="$(
  {
    for f in "$VDIR"/* "$VDIR/../lib.sh"; do printf '%s\n' "$(basename "$f")"; cat "$f"; done
    for f in "${LIB_SOURCES[@]}"; do cat "$LIB/$f.c"; done
    cat "$LIB"/*.h
    printf 'kernel=%s=%s\nbusybox=%s\ngcc=%s\nmodules=%s\n' \
      "$K_PKG" "$K_VER" "$BB_VER" "$GCC_VER" "${MODULES_WANTED[*]}"
  } | sha256sum | cut -c1-16
)"

emit() {
  printf 'VHN_KEY=%s\nVHN_DIR=%s\nVHN_KERNEL=%s\nVHN_INITRD=%s\n' \
    "$KEY" "$OUT" "$OUT/vmlinuz" "$OUT/initrd.img"
}

guest_cache vhostnet

# ---------------------------------------------------------------------------- kernel
guest_unpack_kernel "$KDEB" "$TMP" "${MODULES_WANTED[@]}"

# ---------------------------------------------------------------------------- program
log "compiling vhost-handover (gcc -static, libfdhandover + glib static)"
mkdir -p "$TMP/obj"
GLIB_CFLAGS=($(pkg-config --cflags glib-2.0))
GLIB_LIBS=($(pkg-config --static --libs glib-2.0))
# The library is another component's code: its own warnings do not fail this build.
for f in "${LIB_SOURCES[@]}"; do
  gcc -O2 -D_GNU_SOURCE -DFDH_VERSION="\"vhostnet\"" -I"$LIB" "${GLIB_CFLAGS[@]}" \
    -c "$LIB/$f.c" -o "$TMP/obj/$f.o" 2>"$TMP/obj/$f.log" || { cat "$TMP/obj/$f.log" >&2; die "lib/$f.c"; }
done
ar rcs "$TMP/obj/libfdhandover.a" "$TMP"/obj/*.o
# glibc warns that getpwnam & co. in a static binary need the host's NSS: unused here.
gcc -O2 -Wall -Wextra -Werror -static -D_GNU_SOURCE -I"$LIB" -I"$VDIR" \
  -o "$TMP/vhost-handover" "$VDIR"/*.c \
  "$TMP/obj/libfdhandover.a" "${GLIB_LIBS[@]}" 2> >(grep -v -e "statically linked applications" -e "in function .g_get_user_database_entry" >&2)
strip "$TMP/vhost-handover"

# ---------------------------------------------------------------------------- initramfs
R="$TMP/root"
mkdir -p "$R/bin"
cp "$TMP/vhost-handover" "$R/bin/vhost-handover"
cp "$VDIR/init" "$R/init"
chmod 755 "$R/init" "$R/bin/vhost-handover"
guest_initramfs "$R" "$BDEB" vhn-modules "$TMP/initrd.img"
rm -rf "$TMP/kroot" "$TMP/obj" "$R" "$TMP/config"

cat >"$TMP/vhostnet.env" <<EOF
VHN_KEY=$KEY
KERNEL_PACKAGE=$K_PKG
KERNEL_VERSION=$K_VER
KERNEL_RELEASE=$KREL
BUSYBOX_VERSION=$BB_VER
GCC="$GCC_VER"
MODULES="${MOD_ORDER[*]}"
INITRD_BYTES=$(stat -c %s "$TMP/initrd.img")
PROGRAM_BYTES=$(stat -c %s "$TMP/vhost-handover")
EOF
guest_done vhostnet.env
