#!/usr/bin/env python3
"""End-to-end tests: a virtio-fs share served by virtiofsd survives the fd-handover upgrade.

virtiofsd (FDH_VIRTIOFSD: Debian trixie's virtiofsd 1.13.2, fetched and unpacked by
qemu-glue/virtiofsd.sh) serves a directory over vhost-user; the guest mounts it
(vhost-user-fs-pci, tag fdhfs) and runs fsverify: it creates a file first and keeps
it open, then runs a write / fsync / read-verify loop on a second file through one
fd, and once a second reads the first file again by its first fd.  The running QEMU
is upgraded with `fd-handover upgrade`; the target pulls the vhost-user socket and
the kick/call/err eventfds by pidfd and takes the rings over running.

Checked, as test_vhost_user.py does for vhost-user-blk: 0 I/O errors and 0
verification failures in the guest, and its I/O goes on after the switch; the
file made before the upgrade is read correctly after it by the same fd, with the
same inode number (virtiofsd's lookup state survived: no SET_DEVICE_STATE_FD, no
state copy); virtiofsd's pid and its connection (socket inode) are unchanged, it
accepted no new connection, and it receives no vhost-user request at all from the
source's STOP - 1 s to the target's RESUME + 1 s (strace on virtiofsd); the
target's notifiers are the source's kick and call eventfds (the eventfd-ids the
manifest lists are held by virtiofsd and the target).

- virtiofs_keeps_its_backend_connection: one upgrade, as above.
- virtiofs_rollback_target_killed_source_goes_on: the target dies before the
  migration; the source goes on with the backend (no re-initialisation).
- virtiofs_completion_inside_the_window_reaches_the_guest: virtiofsd is frozen
  (SIGSTOP) with a request of the guest in flight, the upgrade runs until the
  target has loaded and waits for the commit (faultproxy.py holds its SHUT),
  then virtiofsd is let go: it completes the request and signals the call
  eventfd while both QEMUs are paused.  The call stays in that eventfd (its
  count is 1), the target reads it after RESUME and the guest gets the
  completion: its I/O, blocked on that request, goes on (nothing else would
  wake it: it has one request in flight and virtio-fs has no timeout).
- virtiofs_three_upgrades_zero_requests_each_then_a_guest_reboot: a chain of three
  upgrades, 0 requests each; then the guest reboots on the third target (a real
  stop and start of the rings at the target's addresses), mounts the share again
  and its I/O works, 0 errors.
- virtiofs_plain_cpr_transfer_sends_guest_memory_only: no fd handover, a plain
  cpr-transfer between two of our QEMUs, the target on a second virtiofsd on the
  same directory (as bench/upgrade's stock-vufs).  As stock QEMU's, it sends the
  guest memory's fds only: the target holds none of the source's eventfds (the
  kick, call and err eventfds we keep for a handover would come with them, and
  receiving them made them blocking in the source too: its stop then hung reading
  an empty call eventfd).  The switch completes, virtiofsd's state moves with
  SET_DEVICE_STATE_FD, and the guest's I/O goes on in the target, 0 errors.

SKIPs without virtiofsd (qemu-glue/virtiofsd.sh could not fetch it).  KTAP output.

  FDH_QEMU=.../qemu-system-x86_64 FDH_VIRTIOFSD=.../virtiofsd FDH_CLI=.../fd-handover \
      test_virtiofs.py [NAME-FILTER]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from . import HERE

from .vm import VM, QMPClient, cpr_transfer_migrate, wait_migration
from . import latecall
from . import ours
from . import vufs
from .vutrace import (INIT, check_quiet_upgrade, eventfd_ids, names, run_with_backend,
                      settled_requests, switch_requests)
from .ktap import Fail, Skip, check, diag, run, test  # noqa: F401

QEMU = os.environ.get("FDH_QEMU", "")
VIRTIOFSD = os.environ.get("FDH_VIRTIOFSD", "")
CLI = os.environ.get("FDH_CLI", "")


def keep() -> bool:
    return bool(os.environ.get("FDH_E2E_KEEP"))


def need_virtiofsd() -> None:
    if not VIRTIOFSD or not os.access(VIRTIOFSD, os.X_OK):
        raise Skip("FDH_VIRTIOFSD not set: qemu-glue/virtiofsd.sh could not fetch "
                   "trixie's virtiofsd (see its log)")


def with_virtiofsd(tag: str, body, **vm_opts) -> None:
    need_virtiofsd()
    with VM(queues=1, tag=tag, keep_workdir=keep(), **vm_opts) as vm:
        try:
            d = vufs.Virtiofsd(vm, VIRTIOFSD)
        except RuntimeError as e:
            raise Fail(str(e)) from e
        run_with_backend(vm, d, body)


def boot(vm: VM, d: vufs.Virtiofsd) -> dict:
    vm.src = vm.start_qemu(QEMU, "src", extra=vufs.fs_args(vm, d.sock))
    vm.src.wait_serial(r"FDH-FS: ops=\d+", timeout=300)
    return wait_ops(vm, 0)


def chain_serial(vm: VM) -> str:
    """The guest's console across upgrades: the first QEMU's file, then each
    target's ("PATH.new", "PATH.new.new", ...: the driver gives the target
    -serial file:PATH.new)."""
    text, path = "", vm.qemus[0].serial_path
    while os.path.exists(path):
        with open(path, errors="replace") as f:
            text += f.read()
        path += ".new"
    return text


def wait_ops(vm: VM, more_than: int, timeout: float = 30.0, text_from: int = 0) -> dict:
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = vufs.fs_status(chain_serial(vm)[text_from:])
        if st.get("ops", 0) > more_than:
            return st
        time.sleep(0.2)
    return st



def manifest(up: dict) -> dict:
    """`fd-handover manifest show` of the stream's manifest (its JSON form)."""
    p = subprocess.run([CLI, "--json", "manifest", "show", up["stream_manifest"]],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "fd-handover manifest show: exit %d %s"
          % (p.returncode, p.stderr[-300:]))
    return json.loads(p.stdout)


def check_manifest_and_notifiers(up: dict, d: vufs.Virtiofsd) -> None:
    """The stream's manifest lists the connection and, per queue (hiprio
    and one request queue), its kick, call and err eventfds; the target
    and virtiofsd hold those very eventfds."""
    m = manifest(up)
    by = {(e["owner"], e["index"]): e for e in m["entries"]}
    vu = by.get(("vu0.vu", 0), {})
    check(vu.get("kind") == "vhost-user", "vu0.vu 0 is the vhost-user socket: %s" % vu)
    held_t, held_d = eventfd_ids(up["target_pid"]), eventfd_ids(d.pid)
    ids = {}
    for q in (0, 1):
        for w in ("kick", "call", "err"):
            e = by.get(("vu0." + w, q), {})
            check(e.get("kind") == "eventfd", "vu0.%s %d is an eventfd: %s" % (w, q, e))
            ids["%s%d" % (w, q)] = e.get("kind_id")
            check(e.get("kind_id") in held_t and e.get("kind_id") in held_d,
                  "vu0.%s %d (eventfd-id %s) is held by the target and virtiofsd"
                  % (w, q, e.get("kind_id")))
    diag("eventfd-ids %s: the same files in the source, virtiofsd and the target" % ids)


@test
def virtiofs_keeps_its_backend_connection():
    with_virtiofsd("vufs", run_keeps_its_backend_connection)


@test
def virtiofs_rollback_target_killed_source_goes_on():
    with_virtiofsd("vufsrb", run_rollback)


@test
def virtiofs_completion_inside_the_window_reaches_the_guest():
    with_virtiofsd("vufslate", run_late_completion)


@test
def virtiofs_three_upgrades_zero_requests_each_then_a_guest_reboot():
    with_virtiofsd("vufschain", run_chain_and_reboot)


@test
def virtiofs_plain_cpr_transfer_sends_guest_memory_only():
    # Two QEMUs on one TAP: one fd both get, no vnet header (see VM.vnet_hdr).
    with_virtiofsd("vufs-cpr", run_plain_cpr_transfer, tap_mode="fd", vnet_hdr=False)


def run_keeps_its_backend_connection(vm: VM, d: vufs.Virtiofsd) -> None:
    st0 = boot(vm, d)
    init = d.requests()
    diag("boot: virtiofsd saw %d requests: %s" % (len(init), " ".join(names(init))))
    socks0 = d.sockets()
    st1 = wait_ops(vm, st0["ops"])
    check(vufs.check_before(d.shared), "the host reads the guest's first file "
          "(before) in the shared directory")
    t0 = time.time()
    up = ours.upgrade(vm, QEMU, mark=False)
    check(up.get("ok"), "upgrade succeeded: %s" % up.get("error"))
    diag("driver: " + ", ".join("%s %.1f ms" % (p["phase"], p["ms"]) for p in up["phases"]))
    rc = vm.src.wait(timeout=15)
    check(rc == 0, "source exited 0, got %s" % rc)
    win = switch_requests(d, up)
    sw = settled_requests(d, t0)
    diag("upgrade: virtiofsd saw %d requests: %s" % (len(sw), " ".join(names(sw))))
    time.sleep(2)
    st2 = wait_ops(vm, st1["ops"] + 50)
    diag("guest before: %s" % st1)
    diag("guest after:  %s" % st2)
    check(d.alive(), "virtiofsd runs (pid %d)" % d.pid)
    check(d.sockets() == socks0, "virtiofsd's sockets are unchanged: %s -> %s"
          % (socks0, d.sockets()))
    check(not d.accepts(t0), "virtiofsd accepted no new connection: %s" % d.accepts(t0))
    check(not win, "0 requests from STOP-1s to RESUME+1s: %s" % names(win))
    check(not sw, "0 requests across the whole upgrade: %s" % names(sw))
    check(st2.get("ops", 0) > st1["ops"] + 50,
          "guest I/O goes on after the switch: %s -> %s" % (st1["ops"], st2.get("ops")))
    check(st2.get("ioerr") == 0 and st2.get("bad") == 0,
          "0 I/O errors, 0 verification failures: %s" % st2)
    check(st2.get("before_ok", 0) > st1["before_ok"] and st2.get("before_bad") == 0,
          "the file made before the upgrade is read correctly after it by the same fd: "
          "before_ok %s -> %s, before_bad %s" % (st1["before_ok"], st2.get("before_ok"),
                                                 st2.get("before_bad")))
    check(st2.get("ino") == st1["ino"] and st1["ino"],
          "its inode is the same: %s -> %s" % (st1["ino"], st2.get("ino")))
    check_manifest_and_notifiers(up, d)
    diag("largest guest I/O gap: %.1f ms (host STOP->RESUME %s ms)"
         % (st2.get("maxgap_ms", 0), up.get("stop_to_resume_ms")))


def run_rollback(vm: VM, d: vufs.Virtiofsd) -> None:
    """The target dies before the migration; the source goes on: nothing was
    stopped, virtiofsd keeps its connection."""
    st0 = boot(vm, d)
    socks0 = d.sockets()
    wrapper = "%s %s --" % (sys.executable, os.path.join(HERE, "die_on_incoming.py"))
    t0 = time.time()
    up = ours.upgrade(vm, QEMU, mark=False, target_wrapper=wrapper)
    check(not up.get("ok"), "the upgrade fails")
    diag("error: " + (up.get("error") or "").splitlines()[0])
    check(vm.src.alive(), "the source is alive")
    stq = vm.src.qmp().execute("query-status")["status"]
    check(stq == "running", "the source VM runs: %s" % stq)
    st1 = wait_ops(vm, st0["ops"] + 100)
    sw = settled_requests(d, t0)
    diag("rollback: virtiofsd saw %d requests: %s" % (len(sw), " ".join(names(sw))))
    check(d.sockets() == socks0 and not d.accepts(t0),
          "virtiofsd's connection is unchanged, no new one")
    check(not (INIT - {"SET_FEATURES"}) & set(names(sw)),
          "no re-initialisation: %s" % names(sw))
    check(not sw, "0 requests: the rings never stopped: %s" % names(sw))
    check(st1.get("ops", 0) > st0["ops"] + 100, "guest I/O goes on: %s -> %s"
          % (st0["ops"], st1.get("ops")))
    check(st1.get("ioerr") == 0 and st1.get("bad") == 0 and st1.get("before_bad") == 0,
          "0 I/O errors, 0 verification failures: %s" % st1)


def run_late_completion(vm: VM, d: vufs.Virtiofsd) -> None:
    st0 = boot(vm, d)
    st0 = wait_ops(vm, st0["ops"] + 100)
    socks0 = d.sockets()
    # A request of the guest's in flight, and nobody to complete it.
    check(latecall.freeze(d.pid), "virtiofsd is frozen")
    time.sleep(0.5)
    stuck = wait_ops(vm, 0)
    up, ev, src = latecall.upgrade(vm, QEMU, d.pid)
    t_stop, _ = latecall.check_window(up, ev, src, "virtiofsd")
    latecall.check_call(manifest(up), ev, up, "fs0", 1, "request queue")
    st2 = wait_ops(vm, stuck["ops"] + 100)
    diag("guest: blocked at ops=%d, after RESUME %s" % (stuck["ops"], st2))
    check(st2.get("ops", 0) > stuck["ops"] + 100,
          "the guest got the completion: its I/O, blocked on that request, goes on: "
          "%s -> %s" % (stuck["ops"], st2.get("ops")))
    check(st2.get("ioerr") == 0 and st2.get("bad") == 0 and st2.get("before_bad") == 0,
          "0 I/O errors, 0 verification failures: %s" % st2)
    sw = settled_requests(d, t_stop - 1.0)
    check(not sw, "0 requests to virtiofsd: %s" % names(sw))
    check(d.sockets() == socks0, "virtiofsd's connection is unchanged")


def run_plain_cpr_transfer(vm: VM, d: vufs.Virtiofsd) -> None:
    d2 = vufs.Virtiofsd(vm, VIRTIOFSD, name="virtiofsd2", shared=d.shared)
    try:
        plain_cpr_transfer(vm, d, d2)
    finally:
        d2.stop()


def plain_cpr_transfer(vm: VM, d: vufs.Virtiofsd, d2: vufs.Virtiofsd) -> None:
    """cpr-transfer as CPR.rst's example 2 (bench/upgrade's stock-vufs): the target
    on d2, the main channel deferred until its monitor is up."""
    st0 = boot(vm, d)
    src_eventfds = eventfd_ids(vm.src.pid)
    tgt, tq, _, t0 = cpr_transfer_migrate(vm, QEMU, vufs.fs_args(vm, d2.sock))
    # Its monitor comes up once it has read the CPR state: whatever fds came, it has.
    shared = eventfd_ids(tgt.pid) & src_eventfds
    check(not shared, "the target holds none of the source's eventfds (the CPR state "
          "carries guest memory only): eventfd-ids %s" % sorted(shared))
    tq.execute("migrate-incoming", {"uri": "unix:" + vm.path("main.sock")})
    try:
        tq.wait_event("RESUME", timeout=60)
    except Exception as e:
        raise Fail("the target did not resume within 60 s (%s); the source's "
                   "virtiofsd saw: %s" % (e, names(d.requests(t0)))) from e
    info = wait_migration(vm.src.qmp(), timeout=30)
    check(info.get("status") == "completed", "the source completed: %s" % info)
    check(vm.src.quit() == 0, "the source quit")
    moved = settled_requests(d2, t0)
    diag("the target's virtiofsd saw %d requests since migrate: %s"
         % (len(moved), " ".join(names(moved))))
    check("SET_DEVICE_STATE_FD" in names(moved),
          "virtiofsd's state moved with SET_DEVICE_STATE_FD")
    # fsverify's first line in the target, then one 100 operations later.
    deadline = time.monotonic() + 60
    lines: list = []
    while time.monotonic() < deadline and \
            (not lines or lines[-1]["ops"] <= lines[0]["ops"] + 100):
        lines = vufs.fs_lines(tgt.serial())
        time.sleep(0.2)
    st1 = vufs.fs_status(tgt.serial())
    diag("guest before: %s" % st0)
    diag("guest in the target: %s" % st1)
    check(lines and lines[-1]["ops"] > lines[0]["ops"] + 100,
          "the guest's I/O goes on in the target: %s" % [x["ops"] for x in lines])
    check(st1.get("ioerr") == 0 and st1.get("bad") == 0 and st1.get("before_bad") == 0,
          "0 I/O errors, 0 verification failures: %s" % st1)
    check(st1.get("ino") == st0["ino"], "the file made before the switch, by its "
          "inode: %s -> %s" % (st0["ino"], st1.get("ino")))


def run_chain_and_reboot(vm: VM, d: vufs.Virtiofsd) -> None:
    st = boot(vm, d)
    socks0 = d.sockets()
    for k in (1, 2, 3):
        src = vm.src
        up = ours.upgrade(vm, QEMU, mark=False)
        check_quiet_upgrade(d, up, src, k)
        vm.src = ours.Target(vm, up)
        vm.qemus.append(vm.src)
        st2 = wait_ops(vm, st["ops"] + 20)
        check(st2.get("ops", 0) > st["ops"] + 20 and st2.get("ioerr") == 0
              and st2.get("bad") == 0 and st2.get("before_bad") == 0
              and st2.get("ino") == st["ino"],
              "upgrade %d: guest I/O goes on, 0 errors, the first file by the same fd: "
              "%s -> %s" % (k, st, st2))
        st = st2
    check(d.alive() and d.sockets() == socks0,
          "virtiofsd (pid %d) and its connection are the same after 3 upgrades" % d.pid)
    t0 = time.time()
    n0 = len(chain_serial(vm))
    with QMPClient(vm.src.qmp_path) as q:
        q.execute("system_reset")
    deadline = time.monotonic() + 120
    after = {}
    while time.monotonic() < deadline:
        text = chain_serial(vm)[n0:]
        if "FDH-GUEST: init" in text:
            after = vufs.fs_status(text.split("FDH-GUEST: init", 1)[1])
            if after.get("ops", 0) > 200:
                break
        time.sleep(0.5)
    rb = settled_requests(d, t0)
    diag("guest reboot: virtiofsd saw %d requests: %s" % (len(rb), " ".join(names(rb))))
    check(after.get("ops", 0) > 200 and after.get("ioerr") == 0 and after.get("bad") == 0,
          "after the reboot the share is mounted again and works, 0 errors: %s" % after)
    check("GET_VRING_BASE" in names(rb) and "SET_VRING_ADDR" in names(rb),
          "the reboot stopped and restarted the rings: %s" % names(rb))
    check(d.alive() and d.sockets() == socks0, "virtiofsd and its connection survived "
          "the reboot")


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set"),
                          (CLI, "FDH_CLI (the fd-handover command) not set")]))
