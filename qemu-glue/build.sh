#!/usr/bin/env bash
# qemu-glue/build.sh -- cached build of Debian's QEMU 10.0 (trixie source 1:10.0.13+ds-0+deb13u1)
# with the fd-handover patches in qemu-glue/patches/*.patch applied in numbered order.
#
# Runs as root on Debian 12 (bookworm). Idempotent. See qemu-glue/README.md.
#
# Usage:
#   build.sh              build (or reuse) the tree for the current KEY, print binary paths
#                         on stdout as KEY=VALUE lines (all progress output goes to stderr)
#   build.sh --print-dir  print the build dir for the current KEY and exit (no build, no apt)
#   build.sh --print-key  print the current KEY and exit
#   build.sh --gc         remove qemu-build-* dirs of other KEYs from the cache, then exit
#
# Environment:
#   FDH_CACHE            cache root (default /var/cache/fd-handover)
#   FDH_JOBS             ninja -j (default 2)
#   PKG_CONFIG_PATH      passed through to configure/ninja (hook for linking libfdhandover via
#                        pkg-config); when non-empty it is part of the KEY
#   FDH_EXTRA_CONFIGURE  extra configure arguments (word-split), appended; part of the KEY
#   FDH_PATCH_DIR        patch dir (default qemu-glue/patches); FDH_PATCH_DIR=/nonexistent gives an
#                        unpatched baseline build. Patch *contents* (not the dir) are in the KEY
#   FDH_KEY_EXTRA        arbitrary string mixed into the KEY (e.g. a hash of the libfdhandover
#                        build that the patched QEMU links against)
set -euo pipefail

QEMU_SRC_VERSION="1:10.0.13+ds-0+deb13u1"
QEMU_DSC="qemu_10.0.13+ds-0+deb13u1.dsc"
QEMU_SRC_DIRNAME="qemu-10.0.13+ds"

SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
GLUE_DIR="$(dirname "$SCRIPT")"
PATCH_DIR="${FDH_PATCH_DIR:-$GLUE_DIR/patches}"
FDH_CACHE="${FDH_CACHE:-/var/cache/fd-handover}"
FDH_JOBS="${FDH_JOBS:-2}"
SRC_CACHE="$FDH_CACHE/qemu-src"
PRISTINE="$SRC_CACHE/$QEMU_SRC_DIRNAME"
CC_WRAPPER="$FDH_CACHE/bin/fdh-cc"
export CCACHE_DIR="$FDH_CACHE/ccache"

log() { printf '[build.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Configure line (part of the KEY). Firmware path as in Debian's debian/rules.
CONFIGURE_ARGS=(
  --python=/usr/bin/python3
  --cc="$CC_WRAPPER"
  --disable-download
  --disable-docs
  --disable-install-blobs
  --disable-relocatable
  --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
  --target-list=x86_64-softmmu
  --without-default-features
  --enable-kvm
  --enable-tcg
  --enable-vhost-user
  --enable-vhost-net
  --enable-vhost-kernel
  --enable-tools
  --enable-vhost-user-blk-server
  --enable-trace-backends=dtrace
  --enable-seccomp
)
if [[ -n "${FDH_EXTRA_CONFIGURE:-}" ]]; then
  # shellcheck disable=SC2206
  CONFIGURE_ARGS+=( ${FDH_EXTRA_CONFIGURE} )
fi
CONFIGURE_LINE="./configure $(printf '%q ' "${CONFIGURE_ARGS[@]}")"
CONFIGURE_LINE="${CONFIGURE_LINE% }"

# Ninja targets: output paths of the executables we want (resolved after configure).
# migration-test: QEMU's own migration suite, run against our build as a peer suite.
WANTED_BINARIES=(qemu-system-x86_64 qemu-storage-daemon qemu-img vhost-user-bridge vhost-user-blk
  migration-test)

# ---------------------------------------------------------------------------------------------
# KEY = sha256(build.sh + patches in sorted order + configure line [+ hooks]), 16 hex.
PATCHES=()
if [[ -d "$PATCH_DIR" ]]; then
  while IFS= read -r p; do PATCHES+=("$p"); done < <(
    find "$PATCH_DIR" -maxdepth 1 -type f -name '*.patch' -print | LC_ALL=C sort)
fi
compute_key() {
  {
    printf 'build.sh\n'; cat "$SCRIPT"
    local p
    for p in "${PATCHES[@]}"; do printf '\npatch %s\n' "$(basename "$p")"; cat "$p"; done
    printf '\nconfigure %s\n' "$CONFIGURE_LINE"
    [[ -n "${PKG_CONFIG_PATH:-}" ]] && printf 'PKG_CONFIG_PATH=%s\n' "$PKG_CONFIG_PATH"
    [[ -n "${FDH_KEY_EXTRA:-}" ]] && printf 'FDH_KEY_EXTRA=%s\n' "$FDH_KEY_EXTRA"
    true
  } | sha256sum | cut -c1-16
}
KEY="$(compute_key)"
BUILD_ROOT="$FDH_CACHE/qemu-build-$KEY"   # copy of the pristine tree + patches
BUILD_DIR="$BUILD_ROOT/build"             # QEMU's out-of-tree build dir (made by configure)
STAMP="$BUILD_ROOT/fdh-build.stamp"       # KEY=VALUE lines, written last
TIMES="$BUILD_ROOT/fdh-build-times.txt"

case "${1:-}" in
  --print-dir) echo "$BUILD_ROOT"; exit 0 ;;
  --print-key) echo "$KEY"; exit 0 ;;
  --gc)
    shopt -s nullglob
    for d in "$FDH_CACHE"/qemu-build-*; do
      [[ "$d" == "$BUILD_ROOT" ]] && continue
      log "removing $d"; rm -rf -- "$d"
    done
    exit 0 ;;
  -h|--help) sed -n '2,23p' "$SCRIPT"; exit 0 ;;
  "") ;;
  *) die "unknown argument: $1 (try --help)" ;;
esac

# Cache hit: stamp present and all binaries still there -> print and exit.
stamp_valid() {
  [[ -f "$STAMP" ]] || return 1
  local line
  while IFS= read -r line; do
    case "$line" in FDH_*_BIN=*) [[ -x "${line#*=}" ]] || return 1 ;; esac
  done < "$STAMP"
  return 0
}
if stamp_valid; then
  log "cache hit: KEY=$KEY ($BUILD_ROOT)"
  cat "$STAMP"
  exit 0
fi

[[ $EUID -eq 0 ]] || die "must run as root (apt-get, /var/cache)"
mkdir -p "$FDH_CACHE" "$SRC_CACHE" "$CCACHE_DIR" "$FDH_CACHE/bin"

# One build at a time per cache (apt + tree creation + ninja).
exec 9>"$FDH_CACHE/.build.lock"
log "waiting for $FDH_CACHE/.build.lock" ; flock 9
if stamp_valid; then log "cache hit after lock: KEY=$KEY"; cat "$STAMP"; exit 0; fi
log "cache miss: KEY=$KEY -> $BUILD_ROOT"

# ---------------------------------------------------------------------------------------------
# 1. apt sources + pinning + packages
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
NEED_UPDATE=0
write_if_changed() { # path content
  if [[ ! -f "$1" ]] || [[ "$(cat "$1")" != "$2" ]]; then
    printf '%s\n' "$2" > "$1"; log "wrote $1"; NEED_UPDATE=1
  fi
}
write_if_changed /etc/apt/sources.list.d/fdh-trixie-src.list \
  'deb-src http://deb.debian.org/debian trixie main'
write_if_changed /etc/apt/sources.list.d/fdh-bookworm-backports.list \
  'deb http://deb.debian.org/debian bookworm-backports main'
# Trixie is only a *source* for us: never install a trixie binary package.
write_if_changed /etc/apt/preferences.d/fdh-no-trixie-binaries \
'# fd-handover qemu-glue/build.sh: trixie is used for deb-src only.
Package: *
Pin: release n=trixie
Pin-Priority: -1'
if [[ $NEED_UPDATE -eq 0 ]]; then
  apt-cache showsrc qemu 2>/dev/null | grep -qxF "Version: $QEMU_SRC_VERSION" || NEED_UPDATE=1
  apt-cache policy meson 2>/dev/null | grep -q 'bookworm-backports' || NEED_UPDATE=1
fi
if [[ $NEED_UPDATE -eq 1 ]]; then
  log "apt-get update"; "${APT[@]}" update >&2
fi

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
PKGS=(build-essential pkg-config ninja-build libglib2.0-dev zlib1g-dev python3-venv ccache
      systemtap-sdt-dev libseccomp-dev dpkg-dev xz-utils seabios ipxe-qemu qemu-system-data)
MISSING=()
for p in "${PKGS[@]}"; do is_installed "$p" || MISSING+=("$p"); done
if [[ ${#MISSING[@]} -gt 0 ]]; then
  log "installing: ${MISSING[*]}"; "${APT[@]}" install -y --no-install-recommends "${MISSING[@]}" >&2
fi
MESON_VER="$(dpkg-query -W -f='${Version}' meson 2>/dev/null || true)"
if [[ -z "$MESON_VER" ]] || ! dpkg --compare-versions "$MESON_VER" ge 1.5; then
  log "installing meson from bookworm-backports (have: ${MESON_VER:-none})"
  "${APT[@]}" install -y --no-install-recommends -t bookworm-backports meson >&2
fi
command -v dtrace >/dev/null || die "dtrace missing (systemtap-sdt-dev)"

# ccache-through-a-wrapper: settings are baked in so a plain `ninja -C build` later still hits.
# base_dir + no hash_dir let different qemu-build-<KEY> trees share objects.
CC_WRAPPER_TEXT="#!/bin/sh
# generated by qemu-glue/build.sh
export CCACHE_DIR='$CCACHE_DIR'
export CCACHE_BASEDIR='$FDH_CACHE'
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=\${CCACHE_MAXSIZE:-8G}
exec ccache gcc \"\$@\""
if [[ ! -x "$CC_WRAPPER" ]] || [[ "$(cat "$CC_WRAPPER")" != "$CC_WRAPPER_TEXT" ]]; then
  printf '%s\n' "$CC_WRAPPER_TEXT" > "$CC_WRAPPER.tmp"; chmod 755 "$CC_WRAPPER.tmp"
  mv -f "$CC_WRAPPER.tmp" "$CC_WRAPPER"
fi

# ---------------------------------------------------------------------------------------------
# 2. source: download once, unpack once (pristine tree kept read-only by convention)
if [[ ! -f "$PRISTINE/.fdh-pristine-ok" ]]; then
  if [[ ! -f "$SRC_CACHE/$QEMU_DSC" ]]; then
    log "apt-get source --download-only qemu=$QEMU_SRC_VERSION"
    # _apt cannot write into root-owned dirs: warnings about unsandboxed download are expected.
    (cd "$SRC_CACHE" && "${APT[@]}" source --download-only "qemu=$QEMU_SRC_VERSION" >&2)
  fi
  log "dpkg-source -x $QEMU_DSC"
  rm -rf "$PRISTINE" "$PRISTINE.tmp"
  (cd "$SRC_CACHE" && dpkg-source -x "$QEMU_DSC" "$PRISTINE.tmp" >&2)
  touch "$PRISTINE.tmp/.fdh-pristine-ok"
  mv "$PRISTINE.tmp" "$PRISTINE"
fi

# ---------------------------------------------------------------------------------------------
# 3. build tree = copy of pristine + patches
if [[ ! -f "$BUILD_ROOT/.fdh-tree-ok" ]]; then
  log "creating tree $BUILD_ROOT (${#PATCHES[@]} patches)"
  rm -rf "$BUILD_ROOT" "$BUILD_ROOT.tmp"
  cp -a --reflink=auto "$PRISTINE" "$BUILD_ROOT.tmp"
  rm -f "$BUILD_ROOT.tmp/.fdh-pristine-ok"
  for p in "${PATCHES[@]}"; do
    log "applying $(basename "$p")"
    patch -d "$BUILD_ROOT.tmp" -p1 --batch --forward --fuzz=0 --no-backup-if-mismatch < "$p" >&2 \
      || die "patch $(basename "$p") does not apply (fuzz 0)"
  done
  { echo "key=$KEY"; echo "source=qemu $QEMU_SRC_VERSION"
    for p in "${PATCHES[@]}"; do echo "patch=$(basename "$p") $(sha256sum < "$p" | cut -c1-16)"; done
  } > "$BUILD_ROOT.tmp/fdh-key.txt"
  touch "$BUILD_ROOT.tmp/.fdh-tree-ok"
  mv "$BUILD_ROOT.tmp" "$BUILD_ROOT"
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }
ccache_stat() { ccache --print-stats 2>/dev/null | awk -v k="$1" '$1==k{print $2; f=1} END{if(!f)print 0}'; }
export PKG_CONFIG_PATH="${PKG_CONFIG_PATH:-}"   # hook: libfdhandover.pc location

# 4. configure
if [[ ! -f "$BUILD_ROOT/.fdh-configured" ]]; then
  rm -rf "$BUILD_DIR"
  log "configure: $CONFIGURE_LINE"
  t0=$(now)
  (cd "$BUILD_ROOT" && nice -n 19 ./configure "${CONFIGURE_ARGS[@]}" >&2)
  t1=$(now)
  printf '%s key=%s step=configure seconds=%s pkg_config_path=%q\n' \
    "$(date -Is)" "$KEY" "$(elapsed "$t0" "$t1")" "$PKG_CONFIG_PATH" >> "$TIMES"
  printf '%s\n' "$CONFIGURE_LINE" > "$BUILD_ROOT/fdh-configure-line.txt"
  touch "$BUILD_ROOT/.fdh-configured"
fi

# 5. resolve ninja targets (executables, c_LINKER rule) and build only those
TARGETS_ALL="$(ninja -C "$BUILD_DIR" -t targets all 2>/dev/null | awk -F': ' '$2 ~ /LINKER/ {print $1}')"
declare -A TARGET_OF=()
TARGETS=()
for b in "${WANTED_BINARIES[@]}"; do
  t="$(grep -E "(^|/)${b}\$" <<<"$TARGETS_ALL" | head -n1 || true)"
  if [[ -z "$t" ]]; then
    [[ "$b" == qemu-system-x86_64 ]] && die "no ninja target for $b"
    log "warning: no ninja target for $b, skipping"; continue
  fi
  TARGET_OF[$b]="$t"; TARGETS+=("$t")
done
log "ninja targets: ${TARGETS[*]}"
h0=$(( $(ccache_stat direct_cache_hit) + $(ccache_stat preprocessed_cache_hit) ))
m0=$(ccache_stat cache_miss)
t0=$(now)
nice -n 19 ninja -C "$BUILD_DIR" -j"$FDH_JOBS" "${TARGETS[@]}" >&2
t1=$(now)
h1=$(( $(ccache_stat direct_cache_hit) + $(ccache_stat preprocessed_cache_hit) ))
m1=$(ccache_stat cache_miss)
printf '%s key=%s step=build seconds=%s jobs=%s nice=19 ccache_hits=%s ccache_misses=%s targets=%s\n' \
  "$(date -Is)" "$KEY" "$(elapsed "$t0" "$t1")" "$FDH_JOBS" "$((h1 - h0))" "$((m1 - m0))" \
  "$(IFS=,; echo "${TARGETS[*]}")" >> "$TIMES"

# 6. firmware when run from the build dir: QEMU sees build/qemu-bundle next to the binary and
#    then looks up every firmware dir *inside* the bundle (util/cutils.c:get_relocated_path,
#    regardless of --disable-relocatable), e.g. build/qemu-bundle/usr/share/seabios. Point those
#    at the Debian firmware dirs so `-machine pc` finds bios-256k.bin without -L.
FW_PATH=""
for a in "${CONFIGURE_ARGS[@]}"; do [[ "$a" == --firmwarepath=* ]] && FW_PATH="${a#--firmwarepath=}"; done
IFS=: read -r -a FW_DIRS <<<"$FW_PATH"
for d in "${FW_DIRS[@]}"; do
  [[ -n "$d" ]] || continue
  link="$BUILD_DIR/qemu-bundle$d"
  if [[ ! -e "$link" && ! -L "$link" ]]; then
    mkdir -p "$(dirname "$link")"; ln -s "$d" "$link"
  fi
done

# 7. stamp (written atomically, last)
var_of() { tr 'a-z-' 'A-Z_' <<<"$1"; }
{
  echo "FDH_QEMU_KEY=$KEY"
  echo "FDH_QEMU_BUILD_ROOT=$BUILD_ROOT"
  echo "FDH_QEMU_BUILD_DIR=$BUILD_DIR"
  for b in "${WANTED_BINARIES[@]}"; do
    [[ -n "${TARGET_OF[$b]:-}" ]] || continue
    [[ -x "$BUILD_DIR/${TARGET_OF[$b]}" ]] || die "missing $BUILD_DIR/${TARGET_OF[$b]}"
    echo "FDH_$(var_of "$b")_BIN=$BUILD_DIR/${TARGET_OF[$b]}"
  done
} > "$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
log "done: KEY=$KEY"
cat "$STAMP"
