#!/usr/bin/env python3
"""Smoke test of the e2e stack: guest image, netns + TAP, QEMU, peer, QMP.

Boots the test guest in its own network namespace, runs the traffic peer for a few seconds,
does a QMP `stop` / 15 ms / `cont` in the middle and checks: stream started, both directions
flowed, nothing lost, guest uptime continuous (no reboot).  Exit 0 when all checks pass.

  smoke.py [--qemu PATH] [--queues N] [--tap-mode fd|ifname] [--uid UID] [--ram MiB]
           [--vnet-hdr on|off] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .vm import VM, log, qmp_event_time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", default="/usr/bin/qemu-system-x86_64")
    ap.add_argument("--queues", type=int, default=1)
    ap.add_argument("--tap-mode", choices=["fd", "ifname"], default="ifname")
    ap.add_argument("--uid", type=int)
    ap.add_argument("--ram", type=int, default=512)
    ap.add_argument("--vnet-hdr", choices=["on", "off"], default="on")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    checks: list[tuple[str, bool, str]] = []
    with VM(ram_mb=a.ram, queues=a.queues, tap_mode=a.tap_mode, uid=a.uid, gid=a.uid,
            tag="smoke", keep_workdir=a.keep, vnet_hdr=a.vnet_hdr == "on") as vm:
        src = vm.start_qemu(a.qemu, "src")
        boot = src.wait_stream(timeout=300)
        log("boot %.2f s (QEMU start -> stream started)" % boot)
        peer = vm.start_peer(max_s=120, window_ms=2000)
        time.sleep(a.seconds / 2)
        q = src.qmp()
        peer.mark()
        q.execute("stop")
        time.sleep(0.015)
        q.execute("cont")
        resume = q.wait_event("RESUME", timeout=10)
        stop = next(e for e in q.events + [resume] if e["event"] in ("STOP", "RESUME"))
        time.sleep(a.seconds / 2)
        rep = peer.stop()
        log(rep["drops"])
        st = q.execute("query-status")["status"]
        g, h = rep["guest_to_host"], rep["host_to_guest"]
        m = rep["markers"][0] if rep["markers"] else {}
        checks += [
            ("guest running", st == "running", st),
            ("stream flowed", g["received"] > 500, "received %d" % g["received"]),
            ("probes echoed", h["received"] > 500, "echoed %d" % h["received"]),
            ("0 lost guest->host", g["lost"] == 0, str(g["lost"])),
            ("0 lost host->guest", h["lost"] == 0, str(h["lost"])),
            ("guest continuous", rep["guest"]["continuous"], json.dumps(rep["guest"])),
        ]
        if a.uid is not None:
            with open("/proc/%d/status" % src.pid) as f:
                uid_line = [x for x in f.read().splitlines() if x.startswith("Uid:")][0]
            checks.append(("qemu runs as uid %d" % a.uid,
                           uid_line.split()[1] == str(a.uid), uid_line))
        log("stop/cont blackout g>h %.1f ms, h>g %.1f ms; STOP->RESUME %.1f ms" % (
            m.get("guest_to_host", {}).get("max_gap_ms", -1),
            m.get("host_to_guest", {}).get("max_gap_ms", -1),
            (qmp_event_time(resume) - qmp_event_time(stop)) * 1e3))
        src.quit()
    failed = 0
    for name, ok, detail in checks:
        print("%s: %s (%s)" % ("PASS" if ok else "FAIL", name, detail))
        failed += not ok
    print("%d passed, %d failed" % (len(checks) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
