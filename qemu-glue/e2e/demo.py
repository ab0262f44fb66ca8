#!/usr/bin/env python3
"""The README's main job: live-upgrade a running VM while traffic flows.

Boots the test guest (TCG) on the patched QEMU inside a network namespace
of its own, streams 1000 UDP packets/s each way between the guest and a
peer in that namespace, upgrades the QEMU process with the fd-handover
driver (`fd-handover upgrade`), keeps the traffic going, and prints what
happened: each phase with its duration, QEMU's downtime, and what the
guest saw (the largest gap in each direction, packets lost).

    FDH_QEMU=... demo.py [--queues N] [--ram MiB] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import HERE

from .vm import VM, drops_verdict, window_stats
from . import ours


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qemu", default=os.environ.get("FDH_QEMU"))
    ap.add_argument("--queues", type=int, default=1)
    ap.add_argument("--ram", type=int, default=512)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not a.qemu:
        print("demo.py: set FDH_QEMU or --qemu to the patched QEMU", file=sys.stderr)
        return 2

    say = (lambda *x: None) if a.json else print
    with VM(ram_mb=a.ram, queues=a.queues, tag="demo") as vm:
        say("booting the guest (TCG, %d MiB, %d queue%s) in netns %s ..." % (
            a.ram, a.queues, "s" if a.queues > 1 else "", vm.netns.name))
        vm.src = vm.start_qemu(a.qemu, "src")
        boot = vm.src.wait_stream(timeout=300)
        say("guest up in %.1f s; streaming 1000 packets/s each way" % boot)
        vm.peer = vm.start_peer(max_s=120, window_ms=3000)
        time.sleep(1.0)

        say("\nupgrading QEMU pid %d -> a new process (fd handover):" % vm.src.pid)
        up = ours.upgrade(vm, a.qemu)
        if not up.get("ok"):
            print("upgrade failed: %s" % up.get("error"), file=sys.stderr)
            return 1
        for p in up["phases"]:
            say("  %-12s %8.1f ms  %s" % (p["phase"], p["ms"], p["detail"]))
        time.sleep(1.5)
        rep = vm.peer.stop()
        s, e = vm.peer.raw()
        g2h = window_stats(s, up["t_stop"], up["t_resume"])
        h2g = window_stats(e, up["t_stop"], up["t_resume"])
        source_rc = vm.src.wait(timeout=15)

        report = {
            "qemu_downtime_ms": up.get("qemu_downtime_ms"),
            "stop_to_resume_ms": up.get("stop_to_resume_ms"),
            "migrate_to_running_ms": up.get("migrate_to_running_ms"),
            "blackout_guest_to_host_ms": g2h["max_gap_ms"],
            "blackout_host_to_guest_ms": h2g["max_gap_ms"],
            "lost_guest_to_host": rep["guest_to_host"]["lost"],
            "lost_host_to_guest": rep["host_to_guest"]["lost"],
            "guest_rebooted": not rep["guest"]["continuous"],
            "guest_drops": (rep.get("guest_drops") or {}).get("delta"),
            "host_drops": rep["host_drops"]["delta"],
            "drops": drops_verdict(rep),
            "source_exit": source_rc,
            "target_pid": up.get("target_pid"),
            "manifest_entries": up.get("entries"),
            "stream_manifest": up.get("stream_manifest"),
        }
        if a.json:
            print(json.dumps({"upgrade": up, "report": report}, indent=2,
                             default=str))
        else:
            say("\ndowntime report")
            say("  fds handed over        %s (guest RAM memfds, TAP queue%s)" % (
                report["manifest_entries"], "s" if a.queues > 1 else ""))
            say("  QEMU downtime          %s ms" % report["qemu_downtime_ms"])
            say("  source STOP -> target RESUME %.1f ms" % report["stop_to_resume_ms"])
            say("  migrate -> running     %.1f ms" % report["migrate_to_running_ms"])
            say("  guest blackout         %.1f ms guest->host, %.1f ms host->guest"
                % (report["blackout_guest_to_host_ms"],
                   report["blackout_host_to_guest_ms"]))
            say("  packets lost           %d guest->host, %d host->guest" % (
                report["lost_guest_to_host"], report["lost_host_to_guest"]))
            say("  where lost             %s" % report["drops"])
            say("  guest rebooted         %s" % ("yes" if report["guest_rebooted"] else "no"))
            say("  source QEMU exit       %s" % report["source_exit"])
        ok = (report["lost_guest_to_host"] == 0 and report["lost_host_to_guest"] == 0
              and not report["guest_rebooted"] and report["source_exit"] == 0)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
