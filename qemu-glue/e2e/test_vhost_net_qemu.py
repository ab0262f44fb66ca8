#!/usr/bin/env python3
"""QEMU-level test of issue 14: `fd-handover upgrade` of a QEMU on -netdev tap,vhost=on.

The host has no vhost_net module, so the test runs one level down: an outer
guest (TCG) boots Debian's 6.1 kernel, which has vhost_net and tun, with a
payload disk holding a QEMU build, the fd-handover CLI and the e2e test
guest (qemu-glue/guest/vhostnet-qemu/build.sh).  Inside it, per scenario,
in a network namespace of its own: the source QEMU (TCG in TCG) runs the
test guest on -netdev tap,vhost=on + virtio-net-pci, gueststream and the
peer count lost datagrams each way (as e2e/vm.py), and `fd-handover -j
upgrade --qmp SRC --new-qemu QEMU ...` (as e2e/ours.py) upgrades it.  The
guest prints VNQ-RESULT / VNQ-PEER / VNQ-UPGRADE lines; this script boots
it once and asserts from them:

- vhost_net_qemu_guest_runs: modules, /dev/vhost-net, the payload, poweroff;
- vhost_net_qemu_1q, _2q: queues=1 and queues=2 (mq TAP), one inner guest
  each, both at once (each in a netns of its own; FDH_VNQ_APPEND=vnq.serial=1
  for one after the other);
- vhost_net_qemu_nodev_1q: a second upgrade of the 1q guest (of the first
  one's target once upgrades go through), the target in a mount namespace
  whose /dev has no vhost-net and no net/tun (--target-wrapper nodev-wrapper).

Each scenario first checks the vhost=on setup itself: the inner guest
streams, the source holds one /dev/vhost-net fd per queue pair, its kernel
workers ("vhost-<source pid>", one per queue pair in 6.1) exist and ran
during the warm-up (the kernel datapath carries the traffic).  Then, by
FDH_VNQ_EXPECT:
- "refused" (a QEMU build without patch 0023: its source hands over no
  vhost-net device, so the CLI refuses vhost=on, tools/qemu-cmdline.c):
  the upgrade fails cleanly (exit != 0, ok false, an error naming vhost,
  "nothing was changed"), the source still runs and still owns its
  devices and workers, no target runs, 0 lost each way;
- "upgraded" (the default; patch 0023): exit 0, the target runs, the source exited
  0, every vhost-net fd is the target's, the workers are vhost-<target>
  (one per queue pair) and none is the source's; 0 lost each way; for
  nodev, the wrapper saw no /dev/vhost-net.

Environment:
  FDH_QEMU_BUILD_DIR  QEMU build run INSIDE (source and target); required
                      (scripts/qemu-setup.sh prints it; scripts/test.sh sets it)
  FDH_CLI             the fd-handover run inside; required, as above
  FDH_VNQ_EXPECT      upgraded (default) | refused
  FDH_OUTER_QEMU      QEMU for the outer guest (default FDH_QEMU, else the
                      build dir's, else qemu-system-x86_64)
  FDH_VNQ_APPEND      more guest knobs (vnq.pps=, vnq.warmup=, ...: see
                      guest/vhostnet-qemu/init)
  FDH_VNQ_TIMEOUT     seconds the whole outer guest may run (default 3600)

Slow: the inner guests boot in ~100 s of nested TCG on an idle 2-core host
(the whole test ~3 min; ~16 min with the host at load 10: see
Documentation/vhost-net.md, "The QEMU-level test").  In scripts/test.sh.  KTAP output; root.

  [FDH_VNQ_EXPECT=refused] test_vhost_net_qemu.py [NAME-FILTER]
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
from .ktap import Skip, check, diag, note, run, test

GDIR = os.path.join(HERE, "..", "guest", "vhostnet-qemu")
BUILD = os.path.join(GDIR, "build.sh")
# What `fd-handover upgrade` of a vhost=on source must do (module docstring).
EXPECT = os.environ.get("FDH_VNQ_EXPECT", "upgraded")
TIMEOUT_S = float(os.environ.get("FDH_VNQ_TIMEOUT", "3600"))
SCENARIOS = ("vhost_net_qemu_rollback_1q", "vhost_net_qemu_rollback_2q", "vhost_net_qemu_1q",
             "vhost_net_qemu_2q", "vhost_net_qemu_nodev_1q")

_RUN: dict = {}


def outer_qemu(build_dir: str) -> str:
    for q in (os.environ.get("FDH_OUTER_QEMU"), os.environ.get("FDH_QEMU"),
              os.path.join(build_dir, "qemu-system-x86_64") if build_dir else None,
              shutil.which("qemu-system-x86_64")):
        if q and os.access(q, os.X_OK):
            return q
    return ""


def build() -> dict:
    p = subprocess.run(["nice", BUILD], text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise Skip("the outer guest cannot be built: %s" % p.stderr.strip()[-300:])
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def guest_run() -> dict:
    """Build and boot once; every test reads the same run."""
    if "text" in _RUN:
        return _RUN
    if "skip" in _RUN:
        raise Skip(_RUN["skip"])
    try:
        env = build()
    except Skip as e:
        _RUN["skip"] = str(e)
        raise
    qemu = outer_qemu(env.get("VNQ_QEMU_BUILD_DIR", ""))
    if not qemu:
        _RUN["skip"] = "no QEMU for the outer guest (FDH_OUTER_QEMU, FDH_QEMU)"
        raise Skip(_RUN["skip"])
    flt = _RUN.get("filter", "")
    append = ("console=ttyS0 quiet no_timer_check loglevel=3 panic=-1 vnq.expect=%s %s"
              % (EXPECT, os.environ.get("FDH_VNQ_APPEND", "")))
    if flt and any(flt in s for s in SCENARIOS):
        append += " vnq.filter=" + flt
    # TCG: the host cannot run KVM guests (vm.ACCEL); the inner QEMU is TCG anyway.
    argv = ["nice", qemu, "-accel", "tcg", "-machine", "pc", "-smp", "2", "-m", "3072",
            "-display", "none", "-monitor", "none",
            "-no-reboot", "-nic", "none",
            "-kernel", env["VNQ_KERNEL"], "-initrd", env["VNQ_INITRD"],
            "-drive", "file=%s,format=raw,if=virtio,readonly=on" % env["VNQ_DISK"],
            "-append", append]
    diag("outer guest %s: %s" % (env["VNQ_KEY"], " ".join(argv)))
    text, why, wall = vm.run_to_poweroff(argv, TIMEOUT_S, keep=os.environ.get("FDH_VNQ_KEEP"))
    res, peer, upg = {}, {}, {}
    for m in re.finditer(r"^VNQ-RESULT (\{.*\})\s*$", text, re.M):
        r = json.loads(m.group(1))
        res[r["name"]] = r
    for tag, into in (("VNQ-PEER", peer), ("VNQ-UPGRADE", upg)):
        for m in re.finditer(r"^%s (\S+) (.*?)\s*$" % tag, text, re.M):
            try:
                into[m.group(1)] = json.loads(m.group(2))
            except ValueError:
                into[m.group(1)] = {"unparsed": m.group(2)[-300:]}
    _RUN.update(text=text, why=why, wall_s=wall, key=env["VNQ_KEY"], results=res,
                peer=peer, upgrade=upg)
    diag("outer guest ran %.0f s (%s)" % (wall, why))
    for line in text.splitlines():      # the guest's own KTAP and diagnostics
        if line.startswith(("# inner_", "ok ", "not ok ", "VNQ-GUEST", "VNQ-EXIT")):
            diag("guest: " + line)
    return _RUN


@test
def vhost_net_qemu_guest_runs():
    g = guest_run()
    t = g["text"]
    m = re.search(r"^VNQ-GUEST: modules (.*)$", t, re.M)
    mods = m.group(1).split() if m else []
    check("vhost_net" in mods and "tun" in mods,
          "vhost_net and tun not loaded in the outer guest: %s" % (mods or "no modules line"))
    if re.search(r"^1\.\.0 # SKIP (.*)$", t, re.M):
        raise Skip(re.search(r"^1\.\.0 # SKIP (.*)$", t, re.M).group(1))
    check(re.search(r"^VNQ-GUEST: crw.* 10, *238 .*/dev/vhost-net$", t, re.M) is not None,
          "no /dev/vhost-net in the outer guest")
    check(g["why"] == "poweroff", "the outer guest did not power off by itself: %s" % g["why"])
    check("VNQ-EXIT" in t, "the outer guest's init did not finish")
    note("outer guest %.0f s for %d scenario(s), expect %s"
         % (g["wall_s"], len(g["results"]), EXPECT))


def holders(s: str) -> dict:
    return {int(a): int(b) for a, b in (x.split(":") for x in s.split())}


def workers(s: str) -> dict:
    """{owner pid: number of vhost-<pid> workers} (s: "vhost-PID:SWITCHES:TID ...")"""
    out: dict = {}
    for x in s.split():
        pid = int(x.split(":")[0][len("vhost-"):])
        out[pid] = out.get(pid, 0) + 1
    return out


def worker_tids(s: str) -> set:
    return {int(x.split(":")[2]) for x in s.split()}


def check_source_kept(r: dict, up: dict, src: int, queues: int, what: str) -> None:
    """The upgrade failed (`what`: the refusal, the rollback) and the source
    runs on, uncommitted, with its vhost-net devices and workers; no target."""
    check(r["upgrade_rc"] != 0 and up.get("ok") is False,
          "the upgrade did not fail: exit %d, ok %s" % (r["upgrade_rc"], up.get("ok")))
    check(up.get("committed") is False, "committed: %s" % up.get("committed"))
    check(r["source_alive_after"] == 1, "the source does not run after the %s" % what)
    check(r["target_alive_after"] == 0, "a target runs after the %s" % what)
    check(holders(r["holders_after"]) == {src: queues},
          "after: /dev/vhost-net fds held by %s, expected the source %d x%d"
          % (r["holders_after"], src, queues))
    check(workers(r["workers_after"]) == {src: queues},
          "after: vhost workers %s, expected vhost-%d x%d" % (r["workers_after"], src, queues))


def check_scenario(name: str, queues: int, nodev: bool, rollback: bool = False) -> None:
    g = guest_run()
    r = g["results"].get(name)
    if r is None:
        m = re.search(r"^ok \d+ %s # SKIP (.*)$" % name, g["text"], re.M)
        if m:
            raise Skip("%s: %s" % (m.group(1), "; ".join(re.findall(
                r"^# inner_\w+: (SKIP: .*)$", g["text"], re.M))))
        if name not in g["text"] and "1..0" not in g["text"] and g["why"] == "poweroff":
            raise Skip("not run (filter)")
        tail = "\n".join(l for l in g["text"].splitlines() if name in l)[-1500:]
        raise AssertionError("no VNQ-RESULT for %s (outer guest: %s); its lines:\n%s"
                             % (name, g["why"], tail))
    peer = g["peer"].get(name, {})
    up = g["upgrade"].get(name, {})
    diag("VNQ-RESULT " + json.dumps(r, sort_keys=True))
    diag("upgrade report: " + json.dumps(up, sort_keys=True)[:1500])
    src, tgt = r["source_pid"], r["target_pid"]
    g2h, h2g = peer.get("guest_to_host", {}), peer.get("host_to_guest", {})
    if "g2h_lost" not in r:
        raise AssertionError("the guest's VNQ-RESULT has no traffic counts: %s" % r)
    note("%s: step %d of %s; inner boot %.0f s, upgrade %.1f s, step %.0f s; lost %d/%d "
         "(received %d, echoed %d of %d, %d in flight at the stop; the peer's count %s/%s)"
         % (EXPECT, r["step"], r["group"], r["inner_boot_s"], r["upgrade_s"], r["step_s"],
            r["g2h_lost"], r["h2g_lost"], r["g2h_received"], r["h2g_echoed"], r["h2g_sent"],
            r["h2g_in_flight"], g2h.get("lost"), h2g.get("lost")))
    check(r["queues"] == queues, "queues %d" % r["queues"])
    # vhost=on really in use before the upgrade
    check(holders(r["holders_before"]) == {src: queues},
          "before: /dev/vhost-net fds held by %s, expected the source %d x%d"
          % (r["holders_before"], src, queues))
    check(workers(r["workers_before"]) == {src: queues},
          "before: vhost workers %s, expected vhost-%d x%d" % (r["workers_before"], src, queues))
    check(r["source_worker_switches_warmup"] > 0,
          "the source's vhost workers did not run during the warm-up: %s -> %s"
          % (r["workers_warmup_start"], r["workers_before"]))
    # the traffic.  Lost = missing below the highest sequence number that
    # arrived (from the peer's raw arrivals); the echoes still in flight when
    # the peer stopped (seconds of round trip, nested) are counted apart and
    # bounded.  The peer's own "lost" includes them: shown, not asserted.
    check(r["g2h_after_mark"] > 0 and r["h2g_after_mark"] > 0,
          "no traffic after the upgrade began: guest->peer %d, echoes %d"
          % (r["g2h_after_mark"], r["h2g_after_mark"]))
    check(r["g2h_lost"] == 0 and r["h2g_lost"] == 0,
          "lost guest->peer %d, peer->guest %d" % (r["g2h_lost"], r["h2g_lost"]))
    check(0 <= r["h2g_in_flight"] <= r["pps"] * 15,
          "%d echoes missing at the end (more than 15 s worth)" % r["h2g_in_flight"])
    check(peer.get("guest", {}).get("continuous") is True
          and len(peer.get("guest", {}).get("boot_ids", [])) == 1,
          "the inner guest rebooted or stalled: %s" % peer.get("guest"))
    if EXPECT == "refused":
        check_source_kept(r, up, src, queues, "refusal")
        check("vhost" in up.get("error", ""), "the refusal does not name vhost: %s"
              % up.get("error"))
    elif EXPECT == "upgraded" and rollback:
        # The target could not load (rollback-wrapper left the source's virtio-rng
        # out) after the source had stopped and released its devices: the source
        # took them back.  VHOST_RESET_OWNER stopped its workers and
        # VHOST_SET_OWNER started new ones, so the owner is the same and the
        # worker threads are not.
        check_source_kept(r, up, src, queues, "rollback")
        check(bool(up.get("rolled_back")), "the report says no rollback: %s" % up.get("error"))
        check(not worker_tids(r["workers_after"]) & worker_tids(r["workers_before"]),
              "the source's workers are the ones from before (%s -> %s): its devices "
              "were never released and taken back"
              % (r["workers_before"], r["workers_after"]))
    elif EXPECT == "upgraded":
        check(r["upgrade_rc"] == 0 and up.get("ok") is True,
              "upgrade: exit %d: %s" % (r["upgrade_rc"], up.get("error")))
        check(tgt > 0 and r["target_alive_after"] == 1, "no target runs (pid %d)" % tgt)
        check(r["source_alive_after"] == 0, "the source %d still runs" % src)
        # The first source is the guest's child (its exit status is known); a
        # previous target is the driver's: its report says whether it exited.
        if src == r["first_source_pid"]:
            check(r["source_exit"] == 0, "the source exited %s" % r["source_exit"])
        check(up.get("source_status") == "exited",
              "the report's source_status: %s" % up.get("source_status"))
        check(holders(r["holders_after"]) == {tgt: queues},
              "after: /dev/vhost-net fds held by %s, expected the target %d x%d"
              % (r["holders_after"], tgt, queues))
        check(workers(r["workers_after"]) == {tgt: queues},
              "after: vhost workers %s, expected vhost-%d x%d only"
              % (r["workers_after"], tgt, queues))
        if nodev:
            check(r["nodev"].startswith("VNQ-NODEV: ok"),
                  "the target's /dev was not checked empty: %r" % r["nodev"])
    else:
        raise AssertionError("FDH_VNQ_EXPECT=%s: refused or upgraded" % EXPECT)


@test
def vhost_net_qemu_rollback_1q():
    check_scenario("vhost_net_qemu_rollback_1q", 1, False, rollback=True)


@test
def vhost_net_qemu_rollback_2q():
    check_scenario("vhost_net_qemu_rollback_2q", 2, False, rollback=True)


@test
def vhost_net_qemu_1q():
    check_scenario("vhost_net_qemu_1q", 1, False)


@test
def vhost_net_qemu_2q():
    check_scenario("vhost_net_qemu_2q", 2, False)


@test
def vhost_net_qemu_nodev_1q():
    check_scenario("vhost_net_qemu_nodev_1q", 1, True)


if __name__ == "__main__":
    _RUN["filter"] = sys.argv[1] if len(sys.argv) > 1 else ""
    sys.exit(run(sys.argv, needs=[(BUILD, "qemu-glue/guest/vhostnet-qemu/build.sh missing")]))
