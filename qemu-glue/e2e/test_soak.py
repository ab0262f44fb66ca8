#!/usr/bin/env python3
"""Soak: one guest upgraded N times in a row, TAP + vhost-user-blk, 1000 pps.

Each upgrade's target is the next one's source (`fd-handover upgrade`, the
operator's command).  The guest streams UDP both ways with the peer in the
test's netns and runs blkverify on a vhost-user-blk disk served by QEMU's
contrib/vhost-user-blk (FDH_VUB_BIN).  After every upgrade the test records
the new QEMU's fd count and anonymous RSS and the backend's fd count; at the
end it asserts:
- every upgrade succeeded, 0 packets lost both ways, the guest never
  rebooted, 0 I/O errors and 0 verification failures;
- the QEMU's fd count is the same after every upgrade, and so is the
  backend's (nothing leaks per upgrade);
- the QEMU's anonymous RSS is flat: the last upgrade's is within
  RSS_SLACK_KB of the median of the first ones.

  FDH_QEMU=... FDH_VUB_BIN=... FDH_CLI=... test_soak.py    (FDH_SOAK_N, default 100)

scripts/test.sh runs it with FDH_SOAK_N=10.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

from . import HERE

from .vm import VM, fd_count, rss_anon_kb
from . import ours
from . import vublk
from .ktap import check, diag, run, test

QEMU = os.environ.get("FDH_QEMU", "")
VUB = os.environ.get("FDH_VUB_BIN", "")
CLI = os.environ.get("FDH_CLI", "")
N = int(os.environ.get("FDH_SOAK_N", "100"))
# TCG's translation cache and glib's allocator make RSS move a little from
# one QEMU to the next; a leak per upgrade grows it by every upgrade.
RSS_SLACK_KB = 32 * 1024
SETTLE_S = 0.5


def all_serial(vm: VM) -> str:
    """Every serial log of the chain, oldest first (each QEMU may write its
    own file, depending on how the driver rewrites -serial)."""
    paths = []
    for d, _, files in os.walk(vm.workdir):
        paths += [os.path.join(d, f) for f in files if ".serial" in f]
    out = []
    for p in sorted(paths, key=os.path.getmtime):
        with open(p, errors="replace") as f:
            out.append(f.read())
    return "\n".join(out)


class Chained:
    """A target started by the driver, the next upgrade's source."""

    def __init__(self, vm: VM, up: dict, i: int):
        self.pid = up["target_pid"]
        self.name = "chain-%d" % i
        os.symlink(up["target_qmp"] if "target_qmp" in up else
                   os.path.join(up["workdir"], "target-qmp.sock"),
                   vm.path(self.name + ".qmp"))

    def close_qmp(self) -> None:
        pass

    def alive(self) -> bool:
        return os.path.exists("/proc/%d" % self.pid)


@test
def upgrades_in_a_row_lose_nothing_and_leak_nothing():
    with VM(queues=1, tag="soak") as vm:
        daemon = vublk.Daemon(vm, VUB, backend="vub")
        vm.src = vm.start_qemu(QEMU, "src",
                               extra=vublk.blk_args(vm, daemon.sock))
        vm.src.wait_stream(timeout=300)
        vm.peer = vm.start_peer(max_s=60 + 20 * N, window_ms=3000)
        time.sleep(1.0)
        rows = []
        for i in range(1, N + 1):
            up = ours.upgrade(vm, QEMU, mark=False)
            check(up.get("ok"), "upgrade %d: %s" % (i, up.get("error")))
            vm.src = Chained(vm, up, i)
            # The driver's monitor connection and the source's exit are
            # still being torn down when upgrade() returns.
            time.sleep(SETTLE_S)
            rows.append((i, fd_count(vm.src.pid), rss_anon_kb(vm.src.pid),
                         fd_count(daemon.pid),
                         up.get("stop_to_resume_ms")))
        time.sleep(1.5)
        rep = vm.peer.stop()
        blk = vublk.blk_status(all_serial(vm))
        daemon.stop()
    diag("upgrade  qemu_fds  rss_anon_kB  backend_fds  stop->resume_ms")
    for r in rows:
        diag("%7d  %8d  %11d  %11d  %s" % r)
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    diag("guest->host sent %d lost %d; host->guest sent %d lost %d; blk %s" %
         (g["sent"], g["lost"], h["sent"], h["lost"], blk))
    check(g["lost"] == 0 and h["lost"] == 0, "0 packets lost in %d upgrades" % N)
    check(rep["guest"]["continuous"] and len(rep["guest"]["boot_ids"]) == 1,
          "guest uptime continuous across %d upgrades" % N)
    check(blk.get("ops", 0) > 0 and blk.get("ioerr") == 0 and blk.get("bad") == 0,
          "disk I/O went on with 0 errors: %s" % blk)
    qfds = {r[1] for r in rows}
    bfds = {r[3] for r in rows}
    check(len(qfds) == 1, "QEMU fd count flat: %s" % sorted(qfds))
    check(len(bfds) == 1, "backend fd count flat: %s" % sorted(bfds))
    first = statistics.median(r[2] for r in rows[:max(1, min(5, N // 2))])
    check(rows[-1][2] <= first + RSS_SLACK_KB,
          "QEMU RssAnon flat: last %d kB vs %d kB at the start" % (
              rows[-1][2], first))


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set"),
                                  (VUB, "FDH_VUB_BIN (contrib/vhost-user-blk) not set"),
                                  (CLI, "FDH_CLI (fd-handover) not set")]))
