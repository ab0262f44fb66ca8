#!/usr/bin/env python3
"""End-to-end tests of the commit point: never two running copies of a guest.

These drive the raw QMP sequence of Documentation/upgrade.md ("The commit
point") by hand, without the driver, so that what they test is QEMU's own
side of the guarantee (qemu-glue/patches/0009):

- a source that committed refuses `cont` and says so, and
  x-query-fd-handover shows committed;
- whenever a manager aborts an upgrade with `migrate_cancel`, at any moment
  between `migrate` and the end, exactly one QEMU runs the guest
  afterwards: the source (cancelled before the commit; the target exits on
  its own) or the target (the commit won; the source stays committed).

KTAP output; SKIP with the reason when something is missing.

  FDH_QEMU=path/to/patched/qemu-system-x86_64 test_commit.py [NAME-FILTER]
"""
from __future__ import annotations

import base64
import os
import sys
import time

from . import HERE

from .vm import VM, wait_migration
from .ktap import check, diag, run, test
from .qmp import QMPError

QEMU = os.environ.get("FDH_QEMU", "")
CAPS = [{"capability": c, "state": True}
        for c in ("x-fd-handover", "return-path", "events")]
# migrate -> migrate_cancel delays (ms): from "at once" (always before the
# commit) to "long after" (always after it), and the window in between.
CANCEL_DELAYS_MS = (0, 1, 1.5, 2, 2.5, 3, 4, 6, 10, 40, 3000)


def boot(vm: VM) -> None:
    vm.src = vm.start_qemu(QEMU, "src")
    vm.src.wait_stream(timeout=300)
    vm.peer = vm.start_peer(max_s=400, window_ms=3000)
    time.sleep(1.0)


def write_manifest(vm: VM, name: str, info: dict) -> str:
    """The source's manifest (x-query-fd-handover's info) in a file of the VM's
    workdir, owned by the VM's uid: what the target's -object reads."""
    manifest = vm.path(name + ".fdhm")
    fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, base64.b64decode(info["manifest"]))
    os.close(fd)
    if vm.uid is not None:
        os.chown(manifest, vm.uid, vm.gid)
    return manifest


def start_target(vm: VM, name: str):
    """A target for vm.src, prepared up to migrate-incoming (step 1-4)."""
    src = vm.src.qmp()
    info = src.execute("x-query-fd-handover")
    manifest = write_manifest(vm, name, info)
    tgt = vm.start_qemu(QEMU, name, incoming=["defer"], extra=[
        "-object", "x-fd-handover,id=fdh0,manifest=" + manifest])
    q = tgt.qmp()
    check(q.execute("x-query-fd-handover")["role"] == "target",
          "%s pulled the source's fds" % name)
    for side in (src, q):
        side.execute("migrate-set-capabilities", {"capabilities": CAPS})
    src.execute("migrate-set-parameters", {"mode": "cpr-transfer"})
    q.execute("migrate-set-parameters", {"announce-rounds": 0})
    uri = "unix:" + vm.path(name + ".mig")
    q.execute("migrate-incoming", {"uri": uri})
    return tgt, uri


def start_target_argv(vm: VM, name: str, vhost: bool):
    """start_target()'s first steps, for a target whose -netdev says
    vhost=on or off regardless of the source's: returns (Qemu, QMP of the
    source)."""
    src = vm.src.qmp()
    info = src.execute("x-query-fd-handover")
    manifest = write_manifest(vm, name, info)
    was, vm.vhost = vm.vhost, vhost
    try:
        tgt = vm.start_qemu(QEMU, name, incoming=["defer"], extra=[
            "-object", "x-fd-handover,id=fdh0,manifest=" + manifest])
    finally:
        vm.vhost = was
    return tgt, src


def running(qemu) -> bool:
    if not qemu.alive():
        return False
    return qemu.qmp().execute("query-status")["status"] == "running"


def cont_refused(qemu) -> str:
    """The error of `cont` on qemu, or "" if it was accepted."""
    try:
        qemu.qmp().execute("cont")
    except QMPError as e:
        return str(e)
    return ""


@test
def cancel_at_any_moment_leaves_exactly_one_running_copy():
    outcomes = []
    with VM(queues=1, tag="commit") as vm:
        boot(vm)
        for i, delay in enumerate(CANCEL_DELAYS_MS):
            src = vm.src
            tgt, uri = start_target(vm, "t%d" % i)
            src.qmp().execute("migrate", {"uri": uri})
            time.sleep(delay / 1000)
            src.qmp().execute("migrate_cancel")
            final = wait_migration(src.qmp(), timeout=60)["status"]
            if final == "completed":
                # The commit came first: the target owns the guest now.
                deadline = time.monotonic() + 30
                while not running(tgt) and time.monotonic() < deadline:
                    time.sleep(0.01)
                check(running(tgt), "delay %d ms: committed, the target "
                      "runs" % delay)
                check(not running(src), "delay %d ms: the committed source "
                      "does not run" % delay)
                err = cont_refused(src)
                check("handed the guest over" in err,
                      "delay %d ms: the committed source refuses cont: %r"
                      % (delay, err))
                check(src.qmp().execute("x-query-fd-handover")
                      .get("committed") is True,
                      "delay %d ms: x-query-fd-handover says committed" % delay)
                check(not running(src), "still not running after cont")
                src.quit()
                vm.src = tgt
                outcomes.append((delay, "commit"))
            else:
                # Cancelled before the commit: the target must go by itself.
                rc = tgt.wait(timeout=20)
                check(rc not in (None, 0), "delay %d ms: %s; the target "
                      "exits by itself (rc %s)" % (delay, final, rc))
                check("without committing" in tgt.stderr() or
                      "load of migration failed" in tgt.stderr() or
                      rc != 0, "the target says why")
                deadline = time.monotonic() + 10
                while not running(src) and time.monotonic() < deadline:
                    time.sleep(0.01)
                check(running(src), "delay %d ms: %s; the source runs the "
                      "guest again" % (delay, final))
                check(src.qmp().execute("x-query-fd-handover")
                      .get("committed") is False,
                      "the source has not committed")
                outcomes.append((delay, final))
        rep = vm.peer.stop()
    diag("outcomes (delay ms, result): %s" % outcomes)
    results = {r for _, r in outcomes}
    check("commit" in results, "some cancel came after the commit")
    check(results - {"commit"}, "some cancel came before the commit")
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    diag("guest->host lost %d, host->guest lost %d; guest %s" % (
        g["lost"], h["lost"], rep["guest"]))
    check(rep["guest"]["continuous"] and len(rep["guest"]["boot_ids"]) == 1,
          "the guest never rebooted")
    check(g["lost"] == 0 and h["lost"] == 0,
          "0 packets lost across %d aborted and committed upgrades" %
          len(outcomes))


@test
def a_source_without_return_path_refuses_the_handover():
    with VM(queues=1, tag="norp") as vm:
        boot(vm)
        tgt, uri = start_target(vm, "t")
        src = vm.src.qmp()
        src.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "return-path", "state": False}]})
        try:
            src.execute("migrate", {"uri": uri})
            err = ""
        except QMPError as e:
            err = str(e)
        check("return-path" in err, "migrate is refused, naming "
              "return-path: %r" % err)
        check(running(vm.src), "the source runs on")
        tgt.kill()
        vm.peer.stop()




@test
def a_vhost_on_target_of_a_source_without_vhost_net_fails_cleanly():
    """Issue 14: a target started with vhost=on takes the source's vhost-net
    devices from the manifest and never opens /dev/vhost-net.  A source that
    hands none over (it runs vhost=off, as it must where /dev/vhost-net does
    not exist): the target refuses at start, naming the netdev and the
    reason, and the source never notices (it keeps running, 0 lost)."""
    with VM(queues=2, tag="vhoff") as vm:
        boot(vm)
        tgt, src = start_target_argv(vm, "tvh", vhost=True)
        rc = tgt.wait(timeout=60)
        err = tgt.stderr()
        diag("target rc %s: %s" % (rc, err.strip()[-300:]))
        check(rc not in (None, 0), "the vhost=on target exits (rc %s)" % rc)
        check("net0" in err and "vhost=on" in err and
              "no vhost-net device" in err,
              "it says which netdev and why")
        check(src.execute("query-status")["status"] == "running",
              "the source VM keeps running")
        check(src.execute("x-query-fd-handover").get("committed") is False,
              "the source has not committed")
        time.sleep(1.0)
        rep = vm.peer.stop()
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    diag("guest->host lost %d, host->guest lost %d" % (g["lost"], h["lost"]))
    check(g["lost"] == 0 and h["lost"] == 0, "0 packets lost")


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set")]))
