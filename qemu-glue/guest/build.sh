#!/usr/bin/env bash
# qemu-glue/guest/build.sh -- build (or reuse) the fd-handover test guest.
#
#   kernel + modules : Debian's linux-image-6.1.*-amd64 (the version linux-image-amd64 depends
#                      on), fetched with `apt-get download`, unpacked with `dpkg-deb -x` into the
#                      cache (never installed, /boot untouched)
#   initramfs        : cpio newc + gzip: busybox-static (also only downloaded + unpacked), /init,
#                      the virtio modules and virtiofs (dependency order), static gueststream,
#                      blkverify, fsverify
#   host side        : peer (static), the traffic endpoint that runs inside the test netns
#
# Everything lands in ${FDH_CACHE:-/var/cache/fd-handover}/guest-<KEY>/ where KEY hashes this
# script, init, src/*, the resolved package versions and the compiler version.  Idempotent:
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
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

log() { printf '[guest/build.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
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

# ---------------------------------------------------------------------------- tools
need_pkgs=()
command -v gcc >/dev/null || need_pkgs+=(gcc)
[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need_pkgs+=(libc6-dev)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v gzip >/dev/null || need_pkgs+=(gzip)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y "${need_pkgs[@]}" >&2
fi

# ---------------------------------------------------------------------------- versions
resolve_kernel() {
  # highest linux-image-amd64 version whose dependency is linux-image-<series>.*-amd64
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
KLINE="$(resolve_kernel)"
BB_VER="$(resolve_busybox)"
if [[ -z "$KLINE" || -z "$BB_VER" ]]; then
  log "apt-get update (package lists missing)"
  "${APT[@]}" update >&2
  KLINE="$(resolve_kernel)"
  BB_VER="$(resolve_busybox)"
fi
[[ -n "$KLINE" ]] || die "no linux-image-amd64 depending on linux-image-$KERNEL_SERIES.*-amd64"
[[ -n "$BB_VER" ]] || die "busybox-static not found"
K_VER="${KLINE%% *}"
K_PKG="${KLINE##* }"

GCC_VER="$(gcc --version | head -n1)"
KEY="$(
  {
    cat "$SCRIPT" "$GDIR/init"
    for f in $(cd "$GDIR/src" && find . -type f | LC_ALL=C sort); do
      printf '%s\n' "$f"; cat "$GDIR/src/$f"
    done
    printf 'kernel=%s=%s\nbusybox=%s\ngcc=%s\nmodules=%s\n' \
      "$K_PKG" "$K_VER" "$BB_VER" "$GCC_VER" "${MODULES_WANTED[*]}"
  } | sha256sum | cut -c1-16
)"
OUT="$FDH_CACHE/guest-$KEY"

if [[ $MODE == key ]]; then echo "$KEY"; exit 0; fi
if [[ $MODE == gc ]]; then
  for d in "$FDH_CACHE"/guest-*; do
    [[ -d $d && $d != "$OUT" ]] || continue
    log "removing $d"; rm -rf "$d"
  done
  exit 0
fi

emit() {
  printf 'GUEST_KEY=%s\nGUEST_DIR=%s\nGUEST_KERNEL=%s\nGUEST_INITRD=%s\nGUEST_PEER=%s\nGUEST_GUESTSTREAM=%s\n' \
    "$KEY" "$OUT" "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/peer" "$OUT/gueststream"
}

exec 9>"$FDH_CACHE/guest.lock"
flock 9
if [[ -e "$OUT/.complete" ]]; then
  log "reusing $OUT"
  emit
  exit 0
fi

T0=$(date +%s.%N)
log "building guest $KEY: $K_PKG=$K_VER, busybox-static=$BB_VER"

# ---------------------------------------------------------------------------- download
fetch_deb() { # pkg version -> path of the .deb (apt-get download into a per-version dir)
  local pkg="$1" ver="$2" dir="$DEB_CACHE/$1/$2" f
  mkdir -p "$dir"
  f="$(find "$dir" -maxdepth 1 -name '*.deb' | head -n1)"
  if [[ -z "$f" ]]; then
    log "apt-get download $pkg=$ver"
    # _apt cannot write into root-owned dirs; download unsandboxed quietly
    (cd "$dir" && "${APT[@]}" -o APT::Sandbox::User=root download "$pkg=$ver" >&2)
    f="$(find "$dir" -maxdepth 1 -name '*.deb' | head -n1)"
  fi
  [[ -n "$f" ]] || die "download of $pkg=$ver failed"
  printf '%s\n' "$f"
}
KDEB="$(fetch_deb "$K_PKG" "$K_VER")"
BDEB="$(fetch_deb busybox-static "$BB_VER")"

TMP="$FDH_CACHE/guest-$KEY.tmp.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------- kernel
log "dpkg-deb -x $(basename "$KDEB")"
dpkg-deb -x "$KDEB" "$TMP/kroot"
KREL="$(ls "$TMP/kroot/lib/modules")"
[[ -n "$KREL" && -f "$TMP/kroot/boot/vmlinuz-$KREL" ]] || die "unexpected kernel package layout"
cp "$TMP/kroot/boot/vmlinuz-$KREL" "$TMP/vmlinuz"
cp "$TMP/kroot/boot/config-$KREL" "$TMP/config"

MODROOT="$TMP/kroot/lib/modules/$KREL/kernel"
declare -A MOD_PATH=() MOD_SEEN=()
MOD_ORDER=()
mod_file() { # name -> path of name.ko (module names use _ ; files may use - )
  local n="$1" f
  f="$(find "$MODROOT" -name "$n.ko" -o -name "${n//_/-}.ko" | head -n1)"
  printf '%s\n' "$f"
}
mod_deps() { tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '; }
add_mod() { # post-order DFS: dependencies first
  local n="$1" f d
  [[ -n "${MOD_SEEN[$n]:-}" ]] && return 0
  MOD_SEEN[$n]=1
  f="$(mod_file "$n")"
  if [[ -z "$f" ]]; then
    # built in?
    local cfg; cfg="CONFIG_$(echo "$n" | tr 'a-z' 'A-Z')"
    log "module $n: no .ko (built in or absent: $(grep "^$cfg=" "$TMP/config" || echo "$cfg unset"))"
    return 0
  fi
  MOD_PATH[$n]="$f"
  for d in $(mod_deps "$f"); do add_mod "$d"; done
  MOD_ORDER+=("$n")
}
for m in "${MODULES_WANTED[@]}"; do add_mod "$m"; done
log "modules (load order): ${MOD_ORDER[*]}"

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
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules,usr/bin,usr/sbin}
dpkg-deb -x "$BDEB" "$TMP/bb"
cp "$TMP/bb/bin/busybox" "$R/bin/busybox"
cp "$TMP/gueststream" "$R/bin/gueststream"
cp "$TMP/blkverify" "$R/bin/blkverify"
cp "$TMP/fsverify" "$R/bin/fsverify"
cp "$GDIR/init" "$R/init"
chmod 755 "$R/init" "$R/bin/busybox" "$R/bin/gueststream" "$R/bin/blkverify" "$R/bin/fsverify"
: >"$R/etc/fdh-modules"
for m in "${MOD_ORDER[@]}"; do
  cp "${MOD_PATH[$m]}" "$R/lib/modules/$m.ko"
  echo "$m" >>"$R/etc/fdh-modules"
done
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3
find "$R" -exec touch -h -d @0 {} +
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) | gzip -9 -n >"$TMP/initrd.img"
rm -rf "$TMP/kroot" "$TMP/bb"

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
touch "$TMP/.complete"
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
log "done in $(printf '%.1f' "$(echo "$(date +%s.%N) - $T0" | bc 2>/dev/null || echo 0)") s: $OUT"
cat "$OUT/guest.env" >&2
emit
