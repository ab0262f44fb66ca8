#!/usr/bin/env bash
# Install what building and testing fd-handover needs on Debian 12.
# Idempotent: a second run only checks.  Usage: scripts/deps.sh [extra-package...]
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build
	libglib2.0-dev libjson-glib-dev libseccomp-dev systemtap-sdt-dev
	clang llvm libclang-rt-14-dev
	libbpf-dev bpftool linux-libc-dev libelf-dev
	iproute2 util-linux python3 procps strace
	"$@"
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
