#!/usr/bin/env python3
"""Kernel-level test of issue 14: a live /dev/vhost-net device changes owner.

The host has no vhost_net module, so the test boots Debian's 6.1 kernel (the
test guest's, which ships tun, vhost and vhost_net) with an initramfs of its
own (qemu-glue/guest/vhostnet/build.sh) and runs vhost-handover in it: a
split-ring driver, a source owner A, a target B that pulls A's vhost, TAP,
memfd and eventfd fds with pidfd_getfd (libfdhandover), and a UDP peer on
the TAP, all inside the guest (the VM has no network device).  The guest
prints one "VHN-RESULT {json}" per scenario; this script boots it once and
asserts from that output:

- vhost_net_guest_loads_vhost_net: the modules load, the program ends 0;
- vhost_net_handover_{1q,2q}: A releases (SET_BACKEND -1, GET_VRING_BASE,
  RESET_OWNER), B takes (SET_OWNER ... SET_BACKEND) at its own addresses;
  0 lost each way at 1000 packets/s; frames sent while the device had no
  owner (a 50 ms hold) delivered; the vhost worker is B's ("vhost-<B pid>",
  one per queue pair, none of A's); before A's release, B's SET_OWNER gets
  EBUSY and its SET_MEM_TABLE EPERM; B runs in a mount namespace where
  /dev/vhost-net and /dev/net/tun do not exist; A exits 0;
- vhost_net_rollback_{1q,2q}: A releases, B gives up, A takes back: 0 lost,
  the worker is A's again, both exit 0;
- vhost_net_handover_reset_only_{1q,2q}: the release is RESET_OWNER alone,
  the ring bases read from used->idx (Documentation/vhost-net.md): 0 lost;
- vhost_net_target_killed_after_take_1q: what the kernel leaves a source
  whose target died owning the device: SET_OWNER EBUSY, RESET_OWNER EPERM,
  the dead target's worker still running.  Rollback is only possible before
  the target's SET_OWNER.

QEMU: FDH_QEMU if set, else Debian's qemu-system-x86_64.  Accelerator:
FDH_ACCEL=kvm|tcg (default: vm.ACCEL, the harness's one choice, TCG; kvm
for a host where KVM guests run).

KTAP output.  Needs root (the guest build caches in /var/cache/fd-handover).

  [FDH_QEMU=...] [FDH_ACCEL=tcg] test_vhost_net_kernel.py [NAME-FILTER]
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from . import HERE

from . import vm
from .ktap import check, diag, note, run, test

BUILD = os.path.join(HERE, "..", "guest", "vhostnet", "build.sh")
QEMU = os.environ.get("FDH_QEMU") or shutil.which("qemu-system-x86_64") or ""
ACCEL = os.environ.get("FDH_ACCEL", "auto")
if ACCEL == "auto":
    ACCEL = vm.ACCEL
BOOT_TIMEOUT_S = 300          # the whole guest run under TCG takes ~45 s
EPERM, EBUSY = 1, 16

_RUN: dict = {}


def build() -> dict:
    p = subprocess.run([BUILD], check=True, text=True, stdout=subprocess.PIPE)
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def boot(env: dict, accel: str, timeout_s: float) -> tuple[str, str]:
    """Run the guest to its poweroff; returns (console text, why it ended)."""
    argv = [QEMU, "-accel", accel, "-machine", "pc", "-smp", "2", "-m", "512",
            "-display", "none", "-monitor", "none",
            "-no-reboot", "-nic", "none",
            "-kernel", env["VHN_KERNEL"], "-initrd", env["VHN_INITRD"],
            "-append", "console=ttyS0 quiet no_timer_check loglevel=3 panic=-1 "
                       "vhn.pps=1000 vhn.secs=1 vhn.hold=50"]
    text, why, seconds = vm.run_to_poweroff(argv, timeout_s)
    _RUN.setdefault("boots", []).append("%s %.1f s (%s)" % (accel, seconds, why))
    return text, why


def guest_run() -> dict:
    """Build and boot once; every test reads the same run."""
    if "results" in _RUN:
        return _RUN
    env = build()
    accel = ACCEL
    text, why = boot(env, accel, BOOT_TIMEOUT_S)
    results = {}
    for m in re.finditer(r"^VHN-RESULT (\{.*\})\s*$", text, re.M):
        r = json.loads(m.group(1))
        results[r["name"]] = r
    _RUN.update(results=results, text=text, why=why, accel=accel, key=env["VHN_KEY"])
    diag("guest %s, accel %s, %s; boots: %s" % (env["VHN_KEY"], accel, why,
                                               "; ".join(_RUN["boots"])))
    return _RUN


def result(name: str) -> dict:
    g = guest_run()
    r = g["results"].get(name)
    if r is None:
        tail = "\n".join(g["text"].splitlines()[-25:])
        raise AssertionError("no VHN-RESULT for %s (guest ended: %s); console tail:\n%s"
                             % (name, g["why"], tail))
    diag("VHN-RESULT " + json.dumps(r, sort_keys=True))
    note("%s; window %.1f ms (release %.2f, hold %d, take %.2f)"
         % (g["accel"], r["window_ms"], r["release_ms"], r["hold_ms"], r["take_ms"]))
    return r


def check_traffic(r: dict) -> None:
    check(r["lost_driver_to_peer"] == 0 and r["lost_peer_to_driver"] == 0,
          "lost %d driver->peer, %d peer->driver" % (r["lost_driver_to_peer"],
                                                     r["lost_peer_to_driver"]))
    check(r["driver_sent"] > 0 and r["peer_sent"] > 0, "no traffic")
    check(all(n > 0 for n in r["delivered_sent_in_window"]),
          "frames sent while the device had no owner were not delivered: %s"
          % r["delivered_sent_in_window"])
    if r["queues"] > 1:
        check(all(n > 0 for n in r["driver_rx_q"]),
              "a queue pair carried nothing to the driver: %s" % r["driver_rx_q"])
    check(r["bases"] == r["used_idx"],
          "GET_VRING_BASE %s != used->idx %s after the release" % (r["bases"], r["used_idx"]))


def check_handover(name: str, queues: int) -> None:
    r = result(name)
    check(r["queues"] == queues, "queues %d" % r["queues"])
    check_traffic(r)
    check("pidfd_getfd" in r["pulled"], "the target's fds came by: %s" % r["pulled"])
    check("open /dev/vhost-net and /dev/net/tun: ENOENT" in r["pulled"],
          "the target could reach /dev/vhost-net or /dev/net/tun: %s" % r["pulled"])
    # Nothing of the take can be done before the source's RESET_OWNER.
    check("SET_OWNER=-%d SET_MEM_TABLE=-%d" % (EBUSY, EPERM) in r["pulled"],
          "while the source owned the device the target's SET_OWNER / SET_MEM_TABLE gave: %s"
          % r["pulled"])
    check(r["workers_target"] == queues and r["workers_source"] == 0,
          "vhost workers after the switch: vhost-%d x%d (target), vhost-%d x%d (source)"
          % (r["target_pid"], r["workers_target"], r["source_pid"], r["workers_source"]))
    check(r["target_map"] != r["source_map"],
          "the target's memory table used the source's address %s" % r["source_map"])
    check(r["source_exit"] == 0, "source exit %d" % r["source_exit"])
    check(r["target_exit"] == 0, "target exit %d" % r["target_exit"])
    check(r["ok"], "the guest judged: %s" % r["why"])


def check_rollback(name: str, queues: int) -> None:
    r = result(name)
    check(r["queues"] == queues, "queues %d" % r["queues"])
    check_traffic(r)
    check(r["workers_source"] == queues and r["workers_target"] == 0,
          "vhost workers after the rollback: vhost-%d x%d (source), vhost-%d x%d (target)"
          % (r["source_pid"], r["workers_source"], r["target_pid"], r["workers_target"]))
    check(r["source_exit"] == 0 and r["target_exit"] == 0,
          "exit: source %d, target %d" % (r["source_exit"], r["target_exit"]))
    check(r["ok"], "the guest judged: %s" % r["why"])


@test
def vhost_net_guest_loads_vhost_net():
    g = guest_run()
    m = re.search(r"^VHN-GUEST: modules (.*)$", g["text"], re.M)
    check(m is not None and "vhost_net" in m.group(1).split() and "tun" in m.group(1).split(),
          "vhost_net and tun not loaded: %s" % (m.group(1) if m else "no modules line"))
    check(re.search(r"^VHN-EXIT status=0\b", g["text"], re.M) is not None,
          "vhost-handover did not end 0 (guest ended: %s)" % g["why"])
    check(g["why"] == "poweroff", "the guest did not power off by itself: %s" % g["why"])
    note("accel %s; boots: %s" % (g["accel"], "; ".join(g["boots"])))


@test
def vhost_net_handover_1q():
    check_handover("vhost_net_handover_1q", 1)


@test
def vhost_net_handover_2q():
    check_handover("vhost_net_handover_2q", 2)


@test
def vhost_net_rollback_1q():
    check_rollback("vhost_net_rollback_1q", 1)


@test
def vhost_net_rollback_2q():
    check_rollback("vhost_net_rollback_2q", 2)


@test
def vhost_net_handover_reset_only_1q():
    check_handover("vhost_net_handover_reset_only_1q", 1)


@test
def vhost_net_handover_reset_only_2q():
    check_handover("vhost_net_handover_reset_only_2q", 2)


@test
def vhost_net_target_killed_after_take_1q():
    r = result("vhost_net_target_killed_after_take_1q")
    check(r["resume_after_death"] == -EBUSY,
          "the source's SET_OWNER after the target died: %d, expected -EBUSY"
          % r["resume_after_death"])
    check(r["reset_after_death"] == -EPERM,
          "the source's RESET_OWNER after the target died: %d, expected -EPERM"
          % r["reset_after_death"])
    check(r["workers_target_after_its_death"] == 1,
          "the dead target's worker vhost-%d: %d running"
          % (r["target_pid"], r["workers_target_after_its_death"]))
    note("after the target's death: lost %d/%d (the rings run on its address space)"
         % (r["lost_driver_to_peer"], r["lost_peer_to_driver"]))


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "no QEMU (FDH_QEMU unset, no qemu-system-x86_64)"),
                                  (BUILD, "qemu-glue/guest/vhostnet/build.sh missing")]))
