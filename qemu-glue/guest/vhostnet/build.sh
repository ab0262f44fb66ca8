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
LIB_SOURCES=(error fdinfo identity inspect pull source serve sockdiag manifest)
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

log() { printf '[vhostnet/build.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

MODE=build
case "${1:-}" in
  --print-key) MODE=key ;;
  --gc) MODE=gc ;;
  "") ;;
  *) die "usage: build.sh [--print-key] [--gc]" ;;
esac

[[ $EUID -eq 0 ]] || die "must run as root (apt-get, $FDH_CACHE)"
mkdir -p "$FDH_CACHE" "$DEB_CACHE"

need_pkgs=()
command -v gcc >/dev/null || need_pkgs+=(gcc)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need_pkgs+=(libc6-dev)
[[ -e /usr/lib/x86_64-linux-gnu/libglib-2.0.a ]] || need_pkgs+=(libglib2.0-dev)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
command -v cpio >/dev/null || need_pkgs+=(cpio)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y "${need_pkgs[@]}" >&2
fi

# ---------------------------------------------------------------------------- versions
# As ../build.sh: the linux-image-6.1.* that linux-image-amd64 depends on; if the package
# lists say nothing, the newest 6.1 .deb already in the download cache.
resolve_kernel() {
  apt-cache show linux-image-amd64 2>/dev/null | awk -v s="$KERNEL_SERIES" '
    /^Depends:/ {
      if (match($0, "linux-image-" s "\\.[^ ,]*-amd64 \\(= [^)]*\\)")) {
        d = substr($0, RSTART, RLENGTH); gsub(/[()=]/, "", d); split(d, a, " +");
        print a[2], a[1]
      }
    }' | sort -V | tail -n1
}
resolve_busybox() {
  apt-cache show --no-all-versions busybox-static 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}
cached_kernel() {
  local d
  d="$(find "$DEB_CACHE" -mindepth 2 -maxdepth 2 -type d -path "*/linux-image-$KERNEL_SERIES.*-amd64/*" \
    2>/dev/null | sort -V | tail -n1)"
  [[ -n $d ]] && printf '%s %s\n' "$(basename "$d")" "$(basename "$(dirname "$d")")"
  return 0
}
cached_busybox() {
  local d
  d="$(find "$DEB_CACHE/busybox-static" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n1)"
  [[ -n $d ]] && basename "$d"
  return 0
}
KLINE="$(resolve_kernel)"
BB_VER="$(resolve_busybox)"
[[ -n $KLINE ]] || KLINE="$(cached_kernel)"
[[ -n $BB_VER ]] || BB_VER="$(cached_busybox)"
if [[ -z "$KLINE" || -z "$BB_VER" ]]; then
  log "apt-get update (package lists missing)"
  "${APT[@]}" update >&2
  KLINE="$(resolve_kernel)"
  BB_VER="$(resolve_busybox)"
fi
[[ -n "$KLINE" ]] || die "no linux-image-$KERNEL_SERIES.*-amd64"
[[ -n "$BB_VER" ]] || die "busybox-static not found"
K_VER="${KLINE%% *}"
K_PKG="${KLINE##* }"

GCC_VER="$(gcc --version | head -n1)"
KEY="$(
  {
    for f in "$VDIR"/*; do printf '%s\n' "$(basename "$f")"; cat "$f"; done
    for f in "${LIB_SOURCES[@]}"; do cat "$LIB/$f.c"; done
    cat "$LIB"/*.h
    printf 'kernel=%s=%s\nbusybox=%s\ngcc=%s\nmodules=%s\n' \
      "$K_PKG" "$K_VER" "$BB_VER" "$GCC_VER" "${MODULES_WANTED[*]}"
  } | sha256sum | cut -c1-16
)"
OUT="$FDH_CACHE/vhostnet-$KEY"

if [[ $MODE == key ]]; then echo "$KEY"; exit 0; fi
if [[ $MODE == gc ]]; then
  for d in "$FDH_CACHE"/vhostnet-*; do
    [[ -d $d && $d != "$OUT" && $d != *.lock ]] || continue
    log "removing $d"; rm -rf "$d"
  done
  exit 0
fi

emit() {
  printf 'VHN_KEY=%s\nVHN_DIR=%s\nVHN_KERNEL=%s\nVHN_INITRD=%s\n' \
    "$KEY" "$OUT" "$OUT/vmlinuz" "$OUT/initrd.img"
}

exec 9>"$FDH_CACHE/vhostnet.lock"
flock 9
if [[ -e "$OUT/.complete" ]]; then
  log "reusing $OUT"
  emit
  exit 0
fi
T0=$(date +%s)
log "building $KEY: $K_PKG=$K_VER, busybox-static=$BB_VER"

fetch_deb() { # pkg version -> path of the .deb (same layout as ../build.sh)
  local pkg="$1" ver="$2" dir="$DEB_CACHE/$1/$2" f
  mkdir -p "$dir"
  f="$(find "$dir" -maxdepth 1 -name '*.deb' | head -n1)"
  if [[ -z "$f" ]]; then
    log "apt-get download $pkg=$ver"
    (cd "$dir" && "${APT[@]}" -o APT::Sandbox::User=root download "$pkg=$ver" >&2)
    f="$(find "$dir" -maxdepth 1 -name '*.deb' | head -n1)"
  fi
  [[ -n "$f" ]] || die "download of $pkg=$ver failed"
  printf '%s\n' "$f"
}
KDEB="$(fetch_deb "$K_PKG" "$K_VER")"
BDEB="$(fetch_deb busybox-static "$BB_VER")"

TMP="$FDH_CACHE/vhostnet-$KEY.tmp.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------- kernel
log "dpkg-deb -x $(basename "$KDEB")"
dpkg-deb -x "$KDEB" "$TMP/kroot"
KREL="$(ls "$TMP/kroot/lib/modules")"
[[ -n "$KREL" && -f "$TMP/kroot/boot/vmlinuz-$KREL" ]] || die "unexpected kernel package layout"
cp "$TMP/kroot/boot/vmlinuz-$KREL" "$TMP/vmlinuz"
MODROOT="$TMP/kroot/lib/modules/$KREL/kernel"
declare -A MOD_PATH=() MOD_SEEN=()
MOD_ORDER=()
mod_file() { find "$MODROOT" -name "$1.ko" -o -name "${1//_/-}.ko" | head -n1; }
mod_deps() { tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '; }
add_mod() { # post-order DFS: dependencies first
  local n="$1" f d
  [[ -n "${MOD_SEEN[$n]:-}" ]] && return 0
  MOD_SEEN[$n]=1
  f="$(mod_file "$n")"
  if [[ -z "$f" ]]; then
    log "module $n: no .ko (built in?)"
    return 0
  fi
  MOD_PATH[$n]="$f"
  for d in $(mod_deps "$f"); do add_mod "$d"; done
  MOD_ORDER+=("$n")
}
for m in "${MODULES_WANTED[@]}"; do add_mod "$m"; done
log "modules (load order): ${MOD_ORDER[*]}"

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
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules}
dpkg-deb -x "$BDEB" "$TMP/bb"
cp "$TMP/bb/bin/busybox" "$R/bin/busybox"
cp "$TMP/vhost-handover" "$R/bin/vhost-handover"
cp "$VDIR/init" "$R/init"
chmod 755 "$R/init" "$R/bin/busybox" "$R/bin/vhost-handover"
: >"$R/etc/vhn-modules"
for m in "${MOD_ORDER[@]}"; do
  cp "${MOD_PATH[$m]}" "$R/lib/modules/$m.ko"
  echo "$m" >>"$R/etc/vhn-modules"
done
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3
find "$R" -exec touch -h -d @0 {} +
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) | gzip -9 -n >"$TMP/initrd.img"
rm -rf "$TMP/kroot" "$TMP/bb" "$TMP/obj" "$R"

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
touch "$TMP/.complete"
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
log "done in $(($(date +%s) - T0)) s: $OUT"
cat "$OUT/vhostnet.env" >&2
emit
