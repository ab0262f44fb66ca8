#!/usr/bin/env bash
# qemu-glue/virtiofsd.sh -- fetch (or reuse) virtiofsd for the virtio-fs e2e test.
#
# virtiofsd is not in bookworm.  Debian trixie's virtiofsd 1.13.2 runs here with trixie's own
# libc6 unpacked beside it, started through that libc's loader:
#   ld-linux-x86-64.so.2 --library-path <libc dirs> virtiofsd ...
# Both .debs come from `apt-get download` with a separate apt configuration (own sources list,
# lists, cache and an empty dpkg status, under the cache dir), so the system's apt state is
# never read for trixie binaries and nothing is installed or upgraded.  They are unpacked with
# `dpkg-deb -x` into ${FDH_CACHE:-/var/cache/fd-handover}/virtiofsd-<KEY>/, KEY hashing this
# script and the pinned versions.  Idempotent: a complete dir is reused as is.
#
# stdout gets KEY=VALUE lines (progress on stderr):
#   FDH_VIRTIOFSD          a wrapper script that runs virtiofsd through the unpacked loader
#   FDH_VIRTIOFSD_VERSION  what `virtiofsd --version` printed
# Exit 0 with no FDH_VIRTIOFSD line (and a reason on stderr) when it cannot be had, e.g. no
# network: the e2e test then SKIPs with that reason.
set -euo pipefail

SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"
FDH_CACHE="${FDH_CACHE:-/var/cache/fd-handover}"
SUITE=trixie
MIRROR="${FDH_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
WANT_VER=1.13.2   # the version the test was written against; others are refused
PKGS=(virtiofsd libc6)

log() { printf '[virtiofsd.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
give_up() { log "no virtiofsd: $*"; exit 0; }

KEY="$(printf '%s\n' "$(cat "$SCRIPT")" "$SUITE" "$MIRROR" | sha256sum | cut -c1-16)"
OUT="$FDH_CACHE/virtiofsd-$KEY"
APTDIR="$FDH_CACHE/apt-$SUITE"

emit() {
  printf 'FDH_VIRTIOFSD=%s\nFDH_VIRTIOFSD_VERSION=%s\n' "$OUT/virtiofsd" "$(cat "$OUT/version")"
}

mkdir -p "$FDH_CACHE"
exec 9>"$FDH_CACHE/virtiofsd.lock"
flock 9
if [[ -e "$OUT/.complete" ]]; then
  log "reusing $OUT"
  emit
  exit 0
fi

# A private apt world: nothing of /etc/apt (sources, preferences, apt.conf.d) or of the
# system's lists and dpkg status takes part.
mkdir -p "$APTDIR"/{etc/sources.list.d,etc/preferences.d,etc/apt.conf.d,lists/partial,cache/archives/partial}
: >"$APTDIR/status"
printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" >"$APTDIR/etc/sources.list"
APT=(apt-get -q
  -o Dir::Etc::SourceList="$APTDIR/etc/sources.list"
  -o Dir::Etc::SourceParts="$APTDIR/etc/sources.list.d"
  -o Dir::Etc::Preferences="$APTDIR/etc/preferences"
  -o Dir::Etc::PreferencesParts="$APTDIR/etc/preferences.d"
  -o Dir::Etc::Parts="$APTDIR/etc/apt.conf.d"
  -o Dir::State::Lists="$APTDIR/lists"
  -o Dir::State::status="$APTDIR/status"
  -o Dir::Cache="$APTDIR/cache"
  -o APT::Architecture=amd64
  -o APT::Architectures::=amd64
  -o Acquire::Languages=none
  -o Acquire::Retries=3)

log "apt-get update ($SUITE, private lists in $APTDIR)"
"${APT[@]}" update >&2 || give_up "apt-get update of $SUITE failed (network?)"

work="$(mktemp -d "$FDH_CACHE/virtiofsd-tmp.XXXXXX")"
chmod 755 "$work"   # apt-get download drops privileges to _apt
trap 'rm -rf "$work"' EXIT
(cd "$work" && "${APT[@]}" download "${PKGS[@]}" >&2) || give_up "apt-get download ${PKGS[*]} failed"
mkdir -p "$work/root"
for deb in "$work"/*.deb; do
  log "unpacking $(basename "$deb")"
  dpkg-deb -x "$deb" "$work/root"
done

root="$OUT/root"
loader=$root/usr/lib64/ld-linux-x86-64.so.2
[[ -e "$work/root/usr/lib64/ld-linux-x86-64.so.2" ]] ||
  loader=$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
bin="$root/usr/libexec/virtiofsd"
[[ -e "$work/root/usr/libexec/virtiofsd" ]] || bin="$root/usr/bin/virtiofsd"

rm -rf "$OUT"
mkdir -p "$OUT"
mv "$work/root" "$root"
cat >"$OUT/virtiofsd" <<EOF
#!/bin/sh
# trixie's virtiofsd through trixie's loader and libc (written by qemu-glue/virtiofsd.sh)
exec "$loader" --library-path "$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu" "$bin" "\$@"
EOF
chmod 755 "$OUT/virtiofsd"
ver="$("$OUT/virtiofsd" --version 2>&1 | head -n1)" || give_up "virtiofsd --version failed: $ver"
log "$ver"
[[ "$ver" == "virtiofsd $WANT_VER" ]] || give_up "got '$ver', want virtiofsd $WANT_VER"
printf '%s\n' "$ver" >"$OUT/version"
touch "$OUT/.complete"
emit
