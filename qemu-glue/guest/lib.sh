# qemu-glue/guest/lib.sh -- sourced (never run) by build.sh and vhostnet/build.sh: the steps
# both guests take the same way.  Debian's linux-image-<series>.*-amd64 and busybox-static are
# resolved with apt-cache, downloaded once into $DEB_CACHE/<pkg>/<version>/ with
# `apt-get download`, unpacked with `dpkg-deb -x` (never installed); the wanted modules are
# ordered dependencies first from each .ko's modinfo; the initramfs is a reproducible cpio.
# Each build script hashes this file into its cache KEY, so a change here rebuilds both.
#
# The caller sets before sourcing: LOG_TAG, FDH_CACHE, DEB_CACHE, KERNEL_SERIES; it calls
# guest_need_tools with its extra packages, then guest_resolve_versions, ...

APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# guest_parse_mode ARG: MODE=build|key|gc from build.sh's one optional argument.
guest_parse_mode() {
  MODE=build
  case "${1:-}" in
    --print-key) MODE=key ;;
    --gc) MODE=gc ;;
    "") ;;
    *) die "usage: build.sh [--print-key] [--gc]" ;;
  esac
  [[ $EUID -eq 0 ]] || die "must run as root (apt-get, $FDH_CACHE)"
  mkdir -p "$FDH_CACHE" "$DEB_CACHE"
}

# guest_need_tools [SPEC...]: install gcc, libc6-dev, cpio, gzip and the caller's extra
# packages if missing: SPEC "pkg:/path" when the file is missing, "cmd" when the command is.
guest_need_tools() {
  local need=() spec
  command -v gcc >/dev/null || need+=(gcc)
  [[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
  command -v cpio >/dev/null || need+=(cpio)
  command -v gzip >/dev/null || need+=(gzip)
  for spec in "$@"; do
    if [[ $spec == *:* ]]; then
      [[ -e ${spec#*:} ]] || need+=("${spec%%:*}")
    else
      command -v "$spec" >/dev/null || need+=("$spec")
    fi
  done
  if ((${#need[@]})); then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y "${need[@]}" >&2
  fi
}

# The highest linux-image-amd64 version whose dependency is linux-image-<series>.*-amd64:
# "VERSION PACKAGE".
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
# The newest of each already in the download cache, for package lists that say nothing.
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

# guest_resolve_versions [--cached-fallback]: K_VER, K_PKG, BB_VER (apt-get update once if the
# package lists are missing; with --cached-fallback, the download cache is asked first).
guest_resolve_versions() {
  local kline bb
  kline="$(resolve_kernel)"
  bb="$(resolve_busybox)"
  if [[ ${1:-} == --cached-fallback ]]; then
    [[ -n $kline ]] || kline="$(cached_kernel)"
    [[ -n $bb ]] || bb="$(cached_busybox)"
  fi
  if [[ -z "$kline" || -z "$bb" ]]; then
    log "apt-get update (package lists missing)"
    "${APT[@]}" update >&2
    kline="$(resolve_kernel)"
    bb="$(resolve_busybox)"
  fi
  [[ -n "$kline" ]] || die "no linux-image-amd64 depending on linux-image-$KERNEL_SERIES.*-amd64"
  [[ -n "$bb" ]] || die "busybox-static not found"
  K_VER="${kline%% *}"
  K_PKG="${kline##* }"
  BB_VER="$bb"
}

# fetch_deb PKG VERSION: the path of the .deb, downloaded into a per-version dir if missing.
fetch_deb() {
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

# guest_cache NAME: the cache entry of KEY is OUT=$FDH_CACHE/NAME-KEY.  --print-key and --gc
# (MODE) are answered here; otherwise, under NAME.lock, a complete entry is reused (the
# caller's emit, exit 0), or the build begins: KDEB and BDEB downloaded, TMP made (removed on
# exit unless guest_done moves it to OUT).
guest_cache() {
  local name="$1" d
  OUT="$FDH_CACHE/$name-$KEY"
  if [[ $MODE == key ]]; then echo "$KEY"; exit 0; fi
  if [[ $MODE == gc ]]; then
    for d in "$FDH_CACHE/$name"-*; do
      [[ -d $d && $d != "$OUT" && $d != *.lock ]] || continue
      log "removing $d"; rm -rf "$d"
    done
    exit 0
  fi
  exec 9>"$FDH_CACHE/$name.lock"
  flock 9
  if [[ -e "$OUT/.complete" ]]; then
    log "reusing $OUT"
    emit
    exit 0
  fi
  T0=$(date +%s)
  log "building $name $KEY: $K_PKG=$K_VER, busybox-static=$BB_VER"
  KDEB="$(fetch_deb "$K_PKG" "$K_VER")"
  BDEB="$(fetch_deb busybox-static "$BB_VER")"
  TMP="$FDH_CACHE/$name-$KEY.tmp.$$"
  rm -rf "$TMP"
  mkdir -p "$TMP"
  trap 'rm -rf "$TMP"' EXIT
}

# guest_done ENV-FILE: TMP, complete, becomes OUT; its ENV-FILE goes to the log; emit.
guest_done() {
  touch "$TMP/.complete"
  rm -rf "$OUT"
  mv "$TMP" "$OUT"
  trap - EXIT
  log "done in $(($(date +%s) - T0)) s: $OUT"
  cat "$OUT/$1" >&2
  emit
}

# guest_unpack_kernel DEB TMP MODULE...: unpack into TMP/kroot; TMP/vmlinuz and TMP/config;
# KREL; MOD_ORDER (the modules and their dependencies, dependencies first) and MOD_PATH.
guest_unpack_kernel() {
  local deb="$1" tmp="$2" m
  shift 2
  log "dpkg-deb -x $(basename "$deb")"
  dpkg-deb -x "$deb" "$tmp/kroot"
  KREL="$(ls "$tmp/kroot/lib/modules")"
  [[ -n "$KREL" && -f "$tmp/kroot/boot/vmlinuz-$KREL" ]] || die "unexpected kernel package layout"
  cp "$tmp/kroot/boot/vmlinuz-$KREL" "$tmp/vmlinuz"
  cp "$tmp/kroot/boot/config-$KREL" "$tmp/config"
  MODROOT="$tmp/kroot/lib/modules/$KREL/kernel"
  KCONFIG="$tmp/config"
  declare -gA MOD_PATH=() MOD_SEEN=()
  MOD_ORDER=()
  for m in "$@"; do add_mod "$m"; done
  log "modules (load order): ${MOD_ORDER[*]}"
}
mod_file() { # name -> path of name.ko (module names use _ ; files may use - )
  find "$MODROOT" -name "$1.ko" -o -name "${1//_/-}.ko" | head -n1
}
mod_deps() { tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '; }
add_mod() { # post-order DFS: dependencies first
  local n="$1" f d cfg
  [[ -n "${MOD_SEEN[$n]:-}" ]] && return 0
  MOD_SEEN[$n]=1
  f="$(mod_file "$n")"
  if [[ -z "$f" ]]; then
    cfg="CONFIG_$(echo "$n" | tr 'a-z' 'A-Z')"
    log "module $n: no .ko (built in or absent: $(grep "^$cfg=" "$KCONFIG" || echo "$cfg unset"))"
    return 0
  fi
  MOD_PATH[$n]="$f"
  for d in $(mod_deps "$f"); do add_mod "$d"; done
  MOD_ORDER+=("$n")
}

# guest_initramfs ROOT BUSYBOX-DEB LIST OUT: busybox, the ordered modules (their names in
# ROOT/etc/LIST), /dev/console and /dev/null into ROOT (which the caller filled with /init and
# its programs), then ROOT as a reproducible cpio newc + gzip at OUT.
guest_initramfs() {
  local r="$1" bdeb="$2" list="$3" out="$4" m
  mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules}
  dpkg-deb -x "$bdeb" "$r.bb"
  cp "$r.bb/bin/busybox" "$r/bin/busybox"
  chmod 755 "$r/bin/busybox"
  rm -rf "$r.bb"
  : >"$r/etc/$list"
  for m in "${MOD_ORDER[@]}"; do
    cp "${MOD_PATH[$m]}" "$r/lib/modules/$m.ko"
    echo "$m" >>"$r/etc/$list"
  done
  mknod -m 600 "$r/dev/console" c 5 1
  mknod -m 666 "$r/dev/null" c 1 3
  find "$r" -exec touch -h -d @0 {} +
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) | gzip -9 -n >"$out"
}
