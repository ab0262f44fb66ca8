#!/usr/bin/env python3
"""Where does the burst after a long pause die?  A control without any upgrade.

One QEMU (stock by default), the guest streaming 1000 datagrams/s each way.
For each pause length: a fresh peer, `stop`, the pause, `cont`, traffic
for a while, then the peer's report with the guest's and the host's drop
counters (vm.py drops_line).  While the VM is stopped the host's probes
wait in the TAP's queue; at `cont` the guest receives them all at once.
If the guest's UDP receive buffer cannot hold that burst, the tail of it
is dropped and the guest's RcvbufErrors (and its socket's drops) say so:
the same loss an upgrade with an equally long blackout shows, without
the upgrade.

  burst.py [--qemu PATH] [--pauses 100,150,170,200,300] [--repeat 3]

Prints one line per pause and repetition, then a summary.  Exit 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


from .vm import VM, log, qmp_event_time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qemu", default="/usr/bin/qemu-system-x86_64")
    ap.add_argument("--pauses", default="100,150,170,200,300",
                    help="comma list of stop->cont pauses, ms")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tail", type=float, default=1.5, help="s of traffic after cont")
    ap.add_argument("--ram", type=int, default=512)
    a = ap.parse_args()
    pauses = [float(x) for x in a.pauses.split(",") if x]
    rows = []
    with VM(ram_mb=a.ram, queues=1, tap_mode="fd", vnet_hdr=False, tag="burst") as vm:
        src = vm.start_qemu(a.qemu, "src")
        log("boot %.1f s" % src.wait_stream(timeout=300))
        q = src.qmp()
        for i in range(a.repeat):
            for pause in pauses:
                peer = vm.start_peer(max_s=60, window_ms=3000, tag="peer-%d-%d" % (i, pause))
                time.sleep(1.0)
                q.get_events()
                peer.mark()
                q.execute("stop")
                time.sleep(pause / 1e3)
                q.execute("cont")
                resume = q.wait_event("RESUME", timeout=10)
                stop = next(e for e in q.events + [resume] if e["event"] in ("STOP", "RESUME"))
                time.sleep(a.tail)
                rep = peer.stop()
                m = rep["markers"][0] if rep["markers"] else {}
                gd = (rep.get("guest_drops") or {}).get("delta") or {}
                row = {"pause_ms": pause,
                       "stop_resume_ms": (qmp_event_time(resume) - qmp_event_time(stop)) * 1e3,
                       "blackout_h2g_ms": m.get("host_to_guest", {}).get("max_gap_ms"),
                       "lost_h2g": rep["host_to_guest"]["lost"],
                       "lost_to_guest": rep["host_to_guest"].get("lost_to_guest"),
                       "lost_g2h": rep["guest_to_host"]["lost"],
                       "rcvbuf": gd.get("udp_rcvbuf_errors"), "sock": gd.get("sock_drops"),
                       "rx_dropped": gd.get("rx_dropped"),
                       "tap_tx_dropped": rep["host_drops"]["delta"].get("tap_tx_dropped")}
                rows.append(row)
                print("pause %4.0f ms (STOP->RESUME %5.1f ms, blackout h>g %6.1f ms): lost "
                      "h>g %d g>h %d | %s" % (pause, row["stop_resume_ms"],
                                               row["blackout_h2g_ms"] or 0, row["lost_h2g"],
                                               row["lost_g2h"], rep["drops"]), flush=True)
        src.quit()
    print("summary (%s):" % a.qemu)
    for pause in pauses:
        rs = [r for r in rows if r["pause_ms"] == pause]
        print("  pause %4.0f ms: %d runs, lost h>g %s, guest RcvbufErrors %s, socket drops %s, "
              "eth0 rx_dropped %s, TAP tx_dropped %s" % (
                  pause, len(rs), [r["lost_h2g"] for r in rs], [r["rcvbuf"] for r in rs],
                  [r["sock"] for r in rs], [r["rx_dropped"] for r in rs],
                  [r["tap_tx_dropped"] for r in rs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
