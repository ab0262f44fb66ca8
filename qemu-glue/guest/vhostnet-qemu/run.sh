#!/usr/bin/env bash
# qemu-glue/guest/vhostnet-qemu/run.sh -- the nested QEMU-level vhost-net test, by hand: build
# (or reuse) the outer guest, boot it under TCG, show its console (KTAP), say how long it took.
# The CI form of the same run, with assertions, is qemu-glue/e2e/test_vhost_net_qemu.py.
#
#   [FDH_QEMU_BUILD_DIR=DIR] [FDH_CLI=PATH] [FDH_VNQ_EXPECT=upgraded|refused] \
#   [FDH_OUTER_QEMU=PATH] [FDH_VNQ_APPEND="vnq.pps=100 ..."] run.sh [FILTER]
#
#   FDH_QEMU_BUILD_DIR  the QEMU that runs INSIDE (source and target), required (scripts/qemu-setup.sh prints it)
#   FDH_CLI             the fd-handover that runs inside, required (scripts/qemu-setup.sh prints it)
#   FDH_VNQ_EXPECT      upgraded (default: patch 0023) or refused (a build without it)
#   FDH_OUTER_QEMU      the QEMU that runs the outer guest: default $FDH_QEMU, else the
#                       build dir's, else qemu-system-x86_64 from PATH
#   FDH_VNQ_APPEND      more kernel command line knobs (see init: vnq.pps=, vnq.warmup=, ...)
#   FILTER              only scenarios whose name contains it (vhost_net_qemu_1q, _2q,
#                       _nodev_1q)
# The console goes to stdout and to $FDH_VNQ_LOG (default /tmp/vnq-console.<pid>.log).
set -euo pipefail
VDIR="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
FILTER="${1:-}"
EXPECT="${FDH_VNQ_EXPECT:-upgraded}"
LOG="${FDH_VNQ_LOG:-/tmp/vnq-console.$$.log}"

t0=$(date +%s)
ENV="$(nice "$VDIR/build.sh")"
get() { printf '%s\n' "$ENV" | sed -n "s/^$1=//p"; }
OUTER="${FDH_OUTER_QEMU:-${FDH_QEMU:-}}"
[[ -n "$OUTER" ]] || OUTER="$(get VNQ_QEMU_BUILD_DIR)/qemu-system-x86_64"
[[ -x "$OUTER" ]] || OUTER="$(command -v qemu-system-x86_64)"
APPEND="console=ttyS0 quiet no_timer_check loglevel=3 panic=-1 vnq.expect=$EXPECT ${FDH_VNQ_APPEND:-}"
[[ -n "$FILTER" ]] && APPEND="$APPEND vnq.filter=$FILTER"
echo "# outer QEMU $OUTER; guest $(get VNQ_KEY) ($(get VNQ_DIR)); build $(($(date +%s) - t0)) s" >&2
: >"$LOG"
t1=$(date +%s)
nice "$OUTER" -accel tcg -machine pc -smp 2 -m 3072 -display none -monitor none \
  -serial "file:$LOG" -no-reboot -nic none \
  -kernel "$(get VNQ_KERNEL)" -initrd "$(get VNQ_INITRD)" \
  -drive "file=$(get VNQ_DISK),format=raw,if=virtio,readonly=on" \
  -append "$APPEND" </dev/null &
qpid=$!
tail -n +1 -f --pid=$qpid "$LOG" &
wait $qpid || echo "# outer QEMU exit $?" >&2
sleep 0.5
echo "# outer guest ran $(($(date +%s) - t1)) s (boot to poweroff); console: $LOG" >&2
grep -q '^not ok' "$LOG" && exit 1
grep -q '^ok' "$LOG" || exit 1
