#!/usr/bin/env bash
# qemu-glue/guest/vhostnet/minimal-sequence.sh -- which ioctls of the vhost-net handover can be
# left out?  Boots the vhost-net guest (build.sh) once per experiment with one step (or set)
# left out of the target's take (-X) or the source's release (-Y), runs vhost_net_handover_1q
# and _2q, and prints one line per experiment: the guest's verdicts and why.
# The results are in Documentation/vhost-net.md ("Which ioctls are needed").
#
# Usage: minimal-sequence.sh [EXPERIMENT...]   (default: all; an experiment is take:STEPS or
#                                               release:STEPS, STEPS as vhost-handover -X)
# Env: FDH_QEMU (default qemu-system-x86_64), FDH_ACCEL (default tcg)
set -euo pipefail
VDIR="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
QEMU="${FDH_QEMU:-qemu-system-x86_64}"
ACCEL="${FDH_ACCEL:-tcg}"
eval "$("$VDIR/build.sh")"
EXPERIMENTS=("$@")
if ((${#EXPERIMENTS[@]} == 0)); then
  EXPERIMENTS=(none take:SET_FEATURES take:SET_MEM_TABLE take:SET_VRING_NUM take:SET_VRING_BASE
    take:SET_VRING_ADDR take:SET_VRING_KICK take:SET_VRING_CALL
    "release:NET_SET_BACKEND(-1)" "release:GET_VRING_BASE" "release:RESET_OWNER")
fi
work="$(mktemp -d /tmp/fdh-vhn-min-XXXXXX)"
trap 'rm -rf "$work"' EXIT
for x in "${EXPERIMENTS[@]}"; do
  knob=""
  case "$x" in
    take:*) knob="vhn.skiptake=${x#take:}" ;;
    release:*) knob="vhn.skiprelease=${x#release:}" ;;
  esac
  : >"$work/serial"
  t0=$(date +%s)
  timeout 240 "$QEMU" -accel "$ACCEL" -machine pc -smp 2 -m 512 -display none -monitor none \
    -serial "file:$work/serial" -no-reboot -nic none -kernel "$VHN_KERNEL" -initrd "$VHN_INITRD" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 vhn.secs=0.6 vhn.filter=vhost_net_handover_ $knob" \
    >/dev/null 2>&1 || true
  printf '== skip %s (%d s)\n' "$x" $(($(date +%s) - t0))
  grep -aE '^(ok|not ok) ' "$work/serial" | grep -v reset_only | sed 's/^/   /' || echo "   (no result: guest output below)"
  grep -aq '^VHN-DONE' "$work/serial" || tail -n 5 "$work/serial" | sed 's/^/   | /'
done
