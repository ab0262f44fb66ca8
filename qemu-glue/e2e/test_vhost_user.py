#!/usr/bin/env python3
"""End-to-end test: a vhost-user-blk backend survives the fd-handover upgrade.

qemu-storage-daemon serves a raw file over vhost-user-blk; the guest runs
blkverify (O_DIRECT write/read/verify loop on /dev/vda) while the running
QEMU is upgraded with qemu-glue/fdh_upgrade.py.  The target pulls the
vhost-user socket, the backend channel, the inflight memfd and the
kick/call/err eventfds by pidfd and re-attaches on the SAME connection.

Checked: 0 I/O errors and 0 verification failures in the guest, I/O goes
on after the switch, the daemon's pid and its connection (socket inode)
are unchanged, and the daemon receives no vhost-user request at all from
the source's STOP - 1 s to the target's RESUME + 1 s (recorded with strace
on the daemon): the rings never stop, and the target's notifiers are the
source's kick and call eventfds (the same eventfd-ids in the daemon, the
manifest and the target).  A chain of three upgrades sends 0 requests
each, and a guest reboot on the third target (a real stop and start of
the rings, at the target's addresses) keeps the disk working.  The same requests are
recorded for a plain stop/cont of one QEMU (the target, after the
upgrade) for comparison, and `fd-handover manifest show` of the stream
lists the socket, the backend channel, the notifiers and the ring state.
Rollback variant: the target dies before the migration; the source keeps
the backend.  The target outlives its adopted backend's death (the
disk is lost, not the VM).  Fence: after the commit the source, kept alive, cannot take
a request the backend sends to the target (see run_fence).  Inflight:
QEMU's contrib/vhost-user-blk (FDH_VUB_BIN; skipped without it) offers
INFLIGHT_SHMFD, and the target uses the source's inflight memfd instead of
asking for a new region (see run_inflight).

KTAP output.

  FDH_QEMU=.../qemu-system-x86_64 FDH_QSD_BIN=.../qemu-storage-daemon \
  FDH_VUB_BIN=.../contrib/vhost-user-blk/vhost-user-blk \
  FDH_CLI=.../fd-handover test_vhost_user.py [NAME-FILTER]
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from . import HERE

from .vm import VM, QMPClient
from . import latecall
from . import ours
from . import vublk
from .vublk import DAEMON_RACE, DISK_MB, blk_status, names
from .ktap import Fail, Skip, check, diag, note, run, test  # noqa: F401

QEMU = os.environ.get("FDH_QEMU", "")
QSD = os.environ.get("FDH_QSD_BIN", "")
# QEMU's contrib/vhost-user-blk: unlike qemu-storage-daemon 10.0 it offers
# VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD (the inflight memfd test).
VUB = os.environ.get("FDH_VUB_BIN", "")
CLI = os.environ.get("FDH_CLI", "")
# After the upgrade returns, the target is still starting its vhost-user
# device: requests, and a DAEMON_RACE they trigger, can come this much later
# and still belong to our switch.
SWITCH_SETTLE_S = 2.0
# consecutive_upgrades_under_io_no_panic_no_error: how many upgrades in a
# row (CI's default keeps the run short; the note's run: 50).
UPGRADES_N = int(os.environ.get("FDH_VU_UPGRADES_N", "5"))

from .vutrace import (INIT, check_quiet_upgrade, eventfd_ids, run_with_backend,
                      settled_requests, switch_requests)

# ---------------------------------------------------------------------------------------------
class Daemon(vublk.Daemon):
    """The vhost-user-blk backend under strace (vublk.py), one socket:
    backend "qsd": qemu-storage-daemon (FDH_QSD_BIN, with a QMP monitor at
    qmp_path); "vub": QEMU's contrib/vhost-user-blk (FDH_VUB_BIN), which
    also offers the inflight memfd (INFLIGHT_SHMFD)."""

    def __init__(self, vm: VM, backend: str = "qsd"):
        try:
            super().__init__(vm, QSD if backend == "qsd" else VUB, backend=backend)
        except RuntimeError as e:
            raise Fail(str(e)) from e
        # Our switch windows, [start, end] wall clock: from the start of
        # each upgrade to SWITCH_SETTLE_S after it returned (upgrade()).
        self.ours: list = []
        self.stop_walls: list = []   # each upgrade's source STOP (wall clock)


def upgrade(vm: VM, daemon: Daemon, **kw) -> dict:
    """ours.upgrade(), with its window recorded on the daemon: a DAEMON_RACE
    inside it is ours to answer for, never retried."""
    t0 = time.time()
    try:
        up = ours.upgrade(vm, QEMU, mark=False, **kw)
    finally:
        daemon.ours.append((t0, time.time() + SWITCH_SETTLE_S))
    if up.get("stop_wall"):
        daemon.stop_walls.append(up["stop_wall"])
    return up


def boot(vm: VM, daemon: Daemon) -> None:
    vm.src = vm.start_qemu(QEMU, "src",
                           extra=vublk.blk_args(vm, daemon.sock, stream=False))
    vm.src.wait_serial(r"FDH-BLK: ops=\d+", timeout=300)


def wait_ops(q, more_than: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    st = {}
    while time.monotonic() < deadline:
        st = blk_status(q.serial())
        if st.get("ops", 0) > more_than:
            return st
        time.sleep(0.2)
    return st


def stop_cont(q, daemon: Daemon) -> list:
    t0 = time.time()
    q.execute("stop")
    time.sleep(0.05)
    q.execute("cont")
    return settled_requests(daemon, t0)


def with_daemon(tag: str, body, backend: str = "qsd") -> None:
    """body(vm, daemon) on a fresh VM and daemon.  No retry: a daemon panic
    (DAEMON_RACE) anywhere fails the test (classify_panics says where it
    was).  Patch 0019 lets the backend drain before any real stop of the
    rings, and an upgrade stops none."""
    with VM(queues=1, tag=tag, keep_workdir=bool(os.environ.get("FDH_E2E_KEEP"))) as vm:
        daemon = Daemon(vm, backend)
        try:
            body(vm, daemon)
        except Exception as e:  # noqa: BLE001 (re-raised, with the panic if any)
            classify_panics(daemon, e)
            raise
        finally:
            for q in vm.qemus:
                q.kill()
            daemon.stop()
        classify_panics(daemon, None)


def classify_panics(daemon: Daemon, err) -> None:
    """Fail if the daemon panicked (DAEMON_RACE), saying when: inside one of
    our switch windows or not, relative to each upgrade's STOP (err: the
    body's exception, None when it passed)."""
    if DAEMON_RACE not in daemon.log_text():
        return
    times = daemon.panics()

    def where(t: float) -> str:
        return ", ".join("STOP%+.1f ms" % ((t - s) * 1e3) for s in daemon.stop_walls) \
            or "no upgrade ran"

    windows = ", ".join("[%.3f, %.3f]" % w for w in daemon.ours) or "none"
    why = ": %s: %s" % (type(err).__name__, err) if err else ""
    if not times:
        raise Fail("the daemon panicked (%s) but its trace shows no failed eventfd "
                   "write%s" % (DAEMON_RACE, why)) from err
    inside = [t for t in times if any(a <= t <= b for a, b in daemon.ours)]
    raise Fail("the daemon panicked (%s) at %s (%s), %s our switch windows %s%s" % (
        DAEMON_RACE, " ".join("%.3f" % t for t in times), where(times[0]),
        "inside" if inside else "outside", windows, why)) from err


@test
def vhost_user_blk_keeps_its_backend_connection():
    with_daemon("vublk", run_keeps_its_backend_connection)


@test
def rollback_target_killed_source_keeps_the_backend():
    with_daemon("vurb", run_rollback)


@test
def fenced_source_cannot_take_the_targets_backend_request():
    with_daemon("vufence", run_fence)


@test
def target_outlives_the_death_of_its_adopted_backend():
    with VM(queues=1, tag="vudead", keep_workdir=bool(os.environ.get("FDH_E2E_KEEP"))) as vm:
        run_with_backend(vm, Daemon(vm), run_backend_dies)


@test
def three_upgrades_zero_requests_each_then_a_guest_reboot():
    with_daemon("vuchain", run_chain_and_reboot)


@test
def consecutive_upgrades_under_io_no_panic_no_error():
    with_daemon("vun", run_consecutive)


@test
def completion_inside_the_window_reaches_the_guest():
    with_daemon("vulate", run_late_completion)


@test
def inflight_region_is_handed_over():
    if not VUB:
        raise Skip("FDH_VUB_BIN (QEMU's contrib/vhost-user-blk) not set")
    with_daemon("vuinfl", run_inflight, backend="vub")


def boot_and_upgrade(vm: VM, daemon: "Daemon") -> tuple:
    """Boot with I/O going, upgrade, check the source exited 0.  Returns
    (the requests at boot, the guest's status before, the daemon's sockets
    before, the upgrade's start (wall clock), the driver's report)."""
    boot(vm, daemon)
    st0 = wait_ops(vm.src, 0)
    init = daemon.requests()
    diag("boot: the backend saw %d requests: %s" % (len(init), " ".join(names(init))))
    socks0 = daemon.sockets()
    st1 = wait_ops(vm.src, st0.get("ops", 0))
    t0 = time.time()
    up = upgrade(vm, daemon)
    check(up.get("ok"), "upgrade succeeded: %s" % up.get("error"))
    diag("driver: " + ", ".join("%s %.1f ms" % (p["phase"], p["ms"])
                                for p in up["phases"]))
    rc = vm.src.wait(timeout=15)
    check(rc == 0, "source exited 0, got %s" % rc)
    time.sleep(2)
    return init, st1, socks0, t0, up


def blk_status_after_upgrade(vm: VM) -> dict:
    """blkverify's last status line, on the source's console and then the
    target's: the driver gives the target "-serial file:PATH.new" (opening
    the source's file again would truncate it)."""
    text = vm.src.serial()
    try:
        with open(vm.src.serial_path + ".new", errors="replace") as f:
            text += f.read()
    except OSError:
        pass
    return blk_status(text)



def check_same_notifiers(m: dict, daemon: "Daemon", target_pid: int) -> None:
    """The kick, call and err eventfds the stream lists are the daemon's
    and the target's: the target's notifiers are the source's files."""
    by = {(e["owner"], e["index"]): e for e in m["entries"]}
    ids = {w: by.get(("vu0." + w, 0), {}).get("kind_id")
           for w in ("kick", "call", "err")}
    held_t, held_d = eventfd_ids(target_pid), eventfd_ids(daemon.pid)
    for w, i in ids.items():
        check(i in held_t and i in held_d,
              "vu0.%s 0 (eventfd-id %s) is held by the target and the daemon"
              % (w, i))
    diag("kick/call/err eventfd-ids %s: the same files in the source, the "
         "daemon and the target" % ids)


def run_keeps_its_backend_connection(vm: VM, daemon: "Daemon") -> None:
    _, st1, socks0, t0, up = boot_and_upgrade(vm, daemon)
    win = switch_requests(daemon, up)
    settled_requests(daemon, t0)
    st2 = blk_status_after_upgrade(vm)
    sw = daemon.requests(t0)
    diag("upgrade: the daemon saw %d requests: %s" % (len(sw), " ".join(names(sw))))
    t_stop = up.get("stop_wall")
    if t_stop:
        diag("  relative to the source's STOP: " + " ".join(
            "%s@%+.1fms" % (n, (t - t_stop) * 1000) for t, n in sw))
    diag("guest: %s" % st2)
    check(daemon.alive(), "the daemon runs (pid %d)" % daemon.pid)
    check(daemon.sockets() == socks0,
          "the daemon's sockets are unchanged: %s -> %s" % (socks0, daemon.sockets()))
    check(not win, "0 requests from STOP-1s to RESUME+1s: %s" % names(win))
    check(not sw, "0 requests across the whole upgrade: %s" % names(sw))
    check(st2.get("ops", 0) > st1.get("ops", 0) + 50,
          "guest I/O goes on after the switch: %s -> %s" % (st1, st2))
    check(st2.get("ioerr") == 0, "0 I/O errors: %s" % st2)
    check(st2.get("bad") == 0, "0 verification failures: %s" % st2)
    check_same_notifiers(check_stream_manifest(up), daemon, up["target_pid"])
    # The guest's clock stands still while the VM is paused: its gap
    # is what the guest sees; the host-side pause is STOP -> RESUME.
    diag("largest guest I/O gap: %.1f ms (host STOP->RESUME %s ms)"
         % (st2["maxgap_ms"], up.get("stop_to_resume_ms")))
    # The bound: what a plain stop/cont of one QEMU (the target, on the
    # adopted connection) costs this daemon, measured now, in this run
    # (with QEMU 10.0 and qemu-storage-daemon 10.0: SET_VRING_ENABLE
    # GET_VRING_BASE SET_FEATURES SET_VRING_CALL SET_FEATURES
    # SET_VRING_NUM SET_VRING_BASE SET_VRING_ADDR SET_VRING_KICK
    # SET_VRING_ENABLE).  Done last: the checks above are about the
    # upgrade.  The daemon's own stop race (DAEMON_RACE) at this real stop
    # is what patch 0019's drain prevents: a panic fails the test.
    with QMPClient(os.path.join(up["workdir"], "target-qmp.sock")) as q:
        sc = stop_cont(q, daemon)
    diag("stop/cont of one QEMU: %d requests: %s" % (len(sc), " ".join(names(sc))))
    check(not daemon.raced(), "the daemon's stop race struck in the stop/cont comparison")
    check(sc and "GET_VRING_BASE" in names(sc),
          "the stop/cont comparison stopped the rings: %s" % names(sc))
    time.sleep(2)
    st3 = blk_status_after_upgrade(vm)
    check(st3.get("ops", 0) > st2.get("ops", 0) + 50 and st3.get("ioerr") == 0
          and st3.get("bad") == 0,
          "guest I/O goes on after the stop/cont of the adopted rings: %s" % st3)


def check_stream_manifest(up: dict) -> dict:
    """`fd-handover manifest show` of the stream's manifest lists the
    connection, its notifiers and the disk's virtqueue state.  Returns
    the manifest (its JSON form)."""
    p = subprocess.run([CLI, "--json", "manifest", "show", up["stream_manifest"]],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "fd-handover manifest show: exit %d %s" % (
        p.returncode, p.stderr[-300:]))
    m = json.loads(p.stdout)
    by = {(e["owner"], e["index"]): e for e in m["entries"]}
    vu = by.get(("vu0.vu", 0), {})
    check(vu.get("kind") == "vhost-user" and vu.get("vhost_user"),
          "vu0.vu 0 is the vhost-user socket with its details: %s" % vu)
    check(by.get(("vu0.vu", 1), {}).get("kind") == "unix",
          "vu0.vu 1 is the backend channel: %s" % by.get(("vu0.vu", 1)))
    for what in ("kick", "call", "err"):
        e = by.get(("vu0." + what, 0), {})
        check(e.get("kind") == "eventfd", "vu0.%s 0 is an eventfd: %s" % (what, e))
    inflight = vu["vhost_user"].get("inflight_size", 0)
    check(bool(inflight) == (("vu0.inflight", 0) in by),
          "an inflight memfd is listed iff the backend has a region (%d bytes)" % inflight)
    rings = [r for d in m["devices"] for r in d["vrings"]]
    check(any(r["size"] and r["desc"] and r["last_avail_idx"] for r in rings),
          "per-queue state with progress: %s" % rings)
    text = subprocess.run([CLI, "manifest", "show", up["stream_manifest"]],
                          capture_output=True, text=True).stdout
    diag("manifest show:\n" + "\n".join("  " + line for line in text.splitlines()))
    return m


def chain_serial(vm: VM) -> str:
    """The guest's console across a chain of upgrades: the first QEMU's file,
    then each target's ("PATH.new", "PATH.new.new", ...)."""
    text, path = "", vm.serial_path if hasattr(vm, "serial_path") else None
    path = path or vm.qemus[0].serial_path
    while os.path.exists(path):
        with open(path, errors="replace") as f:
            text += f.read()
        path += ".new"
    return text


def run_chain_and_reboot(vm: VM, daemon: "Daemon") -> None:
    """Three upgrades in a row, each with 0 requests to the daemon and the
    guest's I/O going on; then the guest reboots on the third target: its
    rings stop for real (GET_VRING_BASE) and start again with a complete
    set at the target's addresses, and the disk works."""
    boot(vm, daemon)
    first = vm.src
    st = wait_ops(first, 0)
    socks0 = daemon.sockets()
    for k in (1, 2, 3):
        src = vm.src
        up = upgrade(vm, daemon)
        check_quiet_upgrade(daemon, up, src, k)
        vm.src = ours.Target(vm, up)
        vm.qemus.append(vm.src)
        time.sleep(1)
        st2 = blk_status(chain_serial(vm))
        check(st2.get("ops", 0) > st.get("ops", 0) + 20 and st2.get("ioerr") == 0
              and st2.get("bad") == 0,
              "upgrade %d: guest I/O goes on, 0 errors: %s -> %s" % (k, st, st2))
        st = st2
    check(daemon.alive() and daemon.sockets() == socks0,
          "the daemon (pid %d) and its connection are the same after 3 upgrades"
          % daemon.pid)
    t0 = time.time()
    with QMPClient(vm.src.qmp_path) as q:
        q.execute("system_reset")
    deadline = time.monotonic() + 120
    after = []
    while time.monotonic() < deadline:
        text = chain_serial(vm)
        boots = text.split("FDH-GUEST: init")
        after = vublk.blk_lines(boots[-1]) if len(boots) > 2 else []
        if after and after[-1]["ops"] > 200:
            break
        time.sleep(0.5)
    rb = settled_requests(daemon, t0)
    diag("guest reboot: the daemon saw %d requests: %s" % (len(rb), " ".join(names(rb))))
    check(after, "the guest booted again and runs blkverify")
    last = after[-1] if after else {}
    check(last.get("ops", 0) > 200 and last.get("ioerr") == 0 and last.get("bad") == 0,
          "after the reboot the disk works, 0 errors: %s" % last)
    check("GET_VRING_BASE" in names(rb) and "SET_VRING_ADDR" in names(rb),
          "the reboot stopped and restarted the rings: %s" % names(rb))


def run_consecutive(vm: VM, daemon: "Daemon") -> None:
    """UPGRADES_N upgrades in a row of one guest whose disk is under I/O
    (blkverify): every upgrade succeeds with 0 requests to the daemon from
    its STOP - 1 s to its RESUME + 1 s, the guest's I/O goes on with 0
    errors after each, the daemon never panics (with_daemon fails on any
    DAEMON_RACE) and keeps its pid and connection."""
    boot(vm, daemon)
    st = wait_ops(vm.src, 0)
    socks0 = daemon.sockets()
    s2r = []
    for k in range(1, UPGRADES_N + 1):
        src = vm.src
        up = upgrade(vm, daemon)
        check(up.get("ok"), "upgrade %d succeeded: %s" % (k, up.get("error")))
        check(src.wait(timeout=15) in (0, None), "upgrade %d: the source exited" % k)
        win = switch_requests(daemon, up)
        check(not win, "upgrade %d: 0 requests: %s" % (k, names(win)))
        check(not daemon.raced(), "upgrade %d: the daemon did not panic" % k)
        s2r.append(up.get("stop_to_resume_ms") or 0)
        vm.src = ours.Target(vm, up)
        vm.qemus.append(vm.src)
        deadline = time.monotonic() + 30
        st2 = {}
        while time.monotonic() < deadline:
            st2 = blk_status(chain_serial(vm))
            if st2.get("ops", 0) > st.get("ops", 0) + 20:
                break
            time.sleep(0.2)
        check(st2.get("ops", 0) > st.get("ops", 0) + 20 and st2.get("ioerr") == 0
              and st2.get("bad") == 0,
              "upgrade %d: guest I/O goes on, 0 errors: %s -> %s" % (k, st.get("ops"), st2))
        st = st2
    s2r.sort()
    diag("%d upgrades, 0 requests each; STOP->RESUME min/median/max %.1f/%.1f/%.1f ms; "
         "guest: %s" % (UPGRADES_N, s2r[0], s2r[len(s2r) // 2], s2r[-1], st))
    check(daemon.alive() and daemon.sockets() == socks0,
          "the daemon (pid %d) and its connection are the same after %d upgrades"
          % (daemon.pid, UPGRADES_N))
    check(DAEMON_RACE not in daemon.log_text(), "0 daemon panics")


def run_late_completion(vm: VM, daemon: "Daemon") -> None:
    """qemu-storage-daemon completes a request of the guest after the
    source's STOP and before the target's RESUME, deterministically
    (latecall.py: the daemon is frozen with blkverify's request in flight
    and let go while the target waits for the commit); the call it
    signals stays in the call eventfd, the target reads it after RESUME
    and the guest, blocked on that one request, goes on."""
    boot(vm, daemon)
    st0 = wait_ops(vm.src, 0)
    st0 = wait_ops(vm.src, st0.get("ops", 0) + 100)
    socks0 = daemon.sockets()
    check(latecall.freeze(daemon.pid), "the daemon is frozen")
    time.sleep(0.5)
    stuck = blk_status(vm.src.serial())
    t0 = time.time()
    try:
        up, ev, src = latecall.upgrade(vm, QEMU, daemon.pid)
    finally:
        daemon.ours.append((t0, time.time() + SWITCH_SETTLE_S))
    if up.get("ok") and up.get("stop_wall"):
        daemon.stop_walls.append(up["stop_wall"])
    latecall.check_window(up, ev, src, "the daemon")
    latecall.check_call(check_stream_manifest(up), ev, up, "blk0", 0, "queue")
    st2 = wait_ops(src, stuck.get("ops", 0) + 100)   # the target appends to its file
    diag("guest: blocked at ops=%s, after RESUME %s" % (stuck.get("ops"), st2))
    check(st2.get("ops", 0) > stuck.get("ops", 0) + 100,
          "the guest got the completion: its I/O, blocked on that request, goes on: "
          "%s -> %s" % (stuck.get("ops"), st2.get("ops")))
    check(st2.get("ioerr") == 0 and st2.get("bad") == 0,
          "0 I/O errors, 0 verification failures: %s" % st2)
    win = switch_requests(daemon, up)
    check(not win, "0 requests from STOP-1s to RESUME+1s: %s" % names(win))
    check(daemon.sockets() == socks0, "the daemon's connection is unchanged")


def run_rollback(vm: VM, daemon: "Daemon") -> None:
    """The target dies before the migration; the source keeps the backend."""
    boot(vm, daemon)
    st0 = wait_ops(vm.src, 0)
    socks0 = daemon.sockets()
    wrapper = "%s %s --" % (sys.executable,
                            os.path.join(HERE, "die_on_incoming.py"))
    t0 = time.time()
    up = upgrade(vm, daemon, target_wrapper=wrapper)
    check(not up.get("ok"), "the upgrade fails")
    diag("error: " + (up.get("error") or "").splitlines()[0])
    check(vm.src.alive(), "the source is alive")
    stq = vm.src.qmp().execute("query-status")["status"]
    check(stq == "running", "the source VM runs: %s" % stq)
    st1 = wait_ops(vm.src, st0.get("ops", 0) + 100)
    sw = daemon.requests(t0, time.time())
    diag("rollback: the daemon saw %d requests: %s" % (len(sw), " ".join(names(sw))))
    check(daemon.sockets() == socks0, "the daemon's connection is unchanged")
    # The source's own stop/cont (and dirty-log SET_FEATURES while the
    # migration ran) are expected; a new connection or owner is not.
    check(not (INIT - {"SET_FEATURES"}) & set(names(sw)),
          "no re-initialisation: %s" % names(sw))
    check(st1.get("ops", 0) > st0.get("ops", 0) + 100,
          "guest I/O goes on: %s -> %s" % (st0, st1))
    check(st1.get("ioerr") == 0 and st1.get("bad") == 0,
          "0 I/O errors, 0 verification failures: %s" % st1)


def run_fence(vm: VM, daemon: "Daemon") -> None:
    """After commit, the source tries to read a request the backend sends
    on the backend channel both QEMUs hold; the fence makes it fail.

    The source is kept alive after the switch.  The target is frozen
    (SIGSTOP) so that only the source can react when the daemon's disk
    is resized and the daemon sends VHOST_USER_BACKEND_CONFIG_CHANGE_MSG
    on the backend channel.  Unfenced, the source would read (and so
    take away) that message; fenced, its read fails with EBADF and it
    says so.  Thawed, the target reads the message and asks the daemon
    for the new config (GET_CONFIG): nothing was lost."""
    boot(vm, daemon)
    st0 = wait_ops(vm.src, 0)
    up = upgrade(vm, daemon, keep_source=True)
    check(up.get("ok"), "upgrade succeeded: %s" % up.get("error"))
    check(vm.src.alive(), "the source is alive after the switch (kept)")
    with open("/proc/%d/status" % vm.src.pid) as f:
        filters = re.search(r"^Seccomp_filters:\s*(\d+)", f.read(), re.M)
    check(filters and int(filters.group(1)) >= 1,
          "the source has a seccomp fence: Seccomp_filters %s"
          % (filters.group(1) if filters else "?"))
    target = up["target_pid"]
    err0 = len(vm.src.stderr())
    os.kill(target, signal.SIGSTOP)
    try:
        t0 = time.time()
        with QMPClient(daemon.qmp_path) as q:
            q.execute("block_resize", {"node-name": "disk0", "size": 2 * DISK_MB << 20})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                "Bad file descriptor" not in vm.src.stderr()[err0:]:
            time.sleep(0.05)
        said = vm.src.stderr()[err0:].strip()
        diag("the source said: %s" % said)
        check("Bad file descriptor" in said,
              "the source's read of the backend channel failed with EBADF and was "
              "reported")
        frozen = names(daemon.requests(t0))
        check(not frozen, "the daemon got no request while only the source ran: %s"
              % frozen)
    finally:
        os.kill(target, signal.SIGCONT)
    after = names(settled_requests(daemon, t0))
    diag("the daemon's requests since the resize: %s" % " ".join(after))
    check("GET_CONFIG" in after, "the target took the config change and asked for the "
          "new config: %s" % after)
    with QMPClient(os.path.join(up["workdir"], "target-qmp.sock")) as q:
        stq = q.execute("query-status")["status"]
    check(stq == "running", "the target runs: %s" % stq)
    time.sleep(2)
    st2 = blk_status_after_upgrade(vm)
    check(st2.get("ops", 0) > st0.get("ops", 0) + 50 and st2.get("ioerr") == 0
          and st2.get("bad") == 0, "guest I/O goes on on the target, 0 errors: %s" % st2)
    rc = vm.src.quit()
    check(rc == 0, "the fenced source quits cleanly: exit %s" % rc)


def run_backend_dies(vm: VM, daemon: "Daemon") -> None:
    """The backend dies after the upgrade: the target loses the disk, not
    the VM.  (Its adopted connection once lacked the yank registration a
    connection it made has, and the disconnect aborted QEMU: a backend
    that died in the switch window took the whole VM with it.)"""
    boot(vm, daemon)
    wait_ops(vm.src, 0)
    up = upgrade(vm, daemon)
    check(up.get("ok"), "upgrade succeeded: %s" % up.get("error"))
    target = up["target_pid"]
    os.kill(daemon.pid, signal.SIGKILL)
    time.sleep(2)
    check(os.path.exists("/proc/%d" % target), "the target is alive after its "
          "backend died; its log: %s" % open(os.path.join(
              up["workdir"], "target.log"), errors="replace").read()[-600:])
    with QMPClient(os.path.join(up["workdir"], "target-qmp.sock")) as q:
        stq = q.execute("query-status")["status"]
    check(stq == "running", "the target VM still runs: %s" % stq)


def fd_inodes(pid: int) -> dict:
    """{(st_dev, st_ino): [fd, ...]} of the files process `pid` holds."""
    out = {}
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            st = os.stat(os.path.join(fddir, fd))
        except OSError:
            continue
        out.setdefault((st.st_dev, st.st_ino), []).append(int(fd))
    return out


def run_inflight(vm: VM, daemon: "Daemon") -> None:
    """contrib/vhost-user-blk offers INFLIGHT_SHMFD: the source asked it for
    an inflight region (GET_INFLIGHT_FD) at its first start.  The target
    must use that very memfd (pulled as "vu0.inflight" 0), not ask for a
    new one: no GET_INFLIGHT_FD across the switch, and no SET_INFLIGHT_FD
    either: the rings run on, tracked in the region the backend has."""
    init, st1, socks0, t0, up = boot_and_upgrade(vm, daemon)
    check("GET_INFLIGHT_FD" in names(init) and "SET_INFLIGHT_FD" in names(init),
          "the source made an inflight region with the backend at boot")
    target = up["target_pid"]
    sw = settled_requests(daemon, t0)
    diag("upgrade: the backend saw %d requests: %s" % (len(sw), " ".join(names(sw))))
    t_stop = up.get("stop_wall")
    if t_stop:
        diag("  relative to the source's STOP: " + " ".join(
            "%s@%+.1fms" % (n, (t - t_stop) * 1000) for t, n in sw))
    check(daemon.alive(), "the backend runs (pid %d)" % daemon.pid)
    check(daemon.sockets() == socks0,
          "the backend's sockets are unchanged: %s -> %s" % (socks0, daemon.sockets()))
    check(not INIT & set(names(sw)),
          "no re-initialisation: %s" % sorted(INIT & set(names(sw))))
    check("GET_INFLIGHT_FD" not in names(sw),
          "no new inflight region (GET_INFLIGHT_FD) across the switch")
    check(not sw, "0 requests across the switch: the backend keeps tracking its "
          "running rings in the region it has: %s" % names(sw))

    m = check_stream_manifest(up)
    by = {(e["owner"], e["index"]): e for e in m["entries"]}
    infl = by.get(("vu0.inflight", 0), {})
    check(infl.get("kind") == "memfd", "vu0.inflight 0 is a memfd: %s" % infl)
    vu = by[("vu0.vu", 0)]["vhost_user"]
    check(vu.get("inflight_size", 0) > 0,
          "vu0.vu 0 carries the inflight geometry: %s" % vu)
    held = fd_inodes(target)
    key = (infl["dev"], infl["ino"])
    check(key in held, "the target holds the source's inflight memfd (dev %s ino %s) "
          "as fd %s" % (infl["dev"], infl["ino"], held.get(key)))
    diag("target pid %d holds vu0.inflight (memfd ino %d, source fd %d) as fd %s"
         % (target, infl["ino"], infl.get("remote_fd", -1), held.get(key)))
    # ... and no other inflight region of its own.
    name = (infl.get("memfd") or {}).get("name", "")
    fddir = "/proc/%d/fd" % target
    same_name = set()
    for fd in os.listdir(fddir):
        try:
            if os.readlink(os.path.join(fddir, fd)).startswith("/memfd:%s " % name):
                st = os.stat(os.path.join(fddir, fd))
                same_name.add((st.st_dev, st.st_ino))
        except OSError:
            continue
    check(same_name == {key}, "the target's only %r memfd is the source's: %s"
          % (name, same_name))

    st2 = blk_status_after_upgrade(vm)
    diag("guest: %s" % st2)
    check(st2.get("ops", 0) > st1.get("ops", 0) + 50,
          "guest I/O goes on after the switch: %s -> %s" % (st1, st2))
    check(st2.get("ioerr") == 0, "0 I/O errors: %s" % st2)
    check(st2.get("bad") == 0, "0 verification failures: %s" % st2)


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set"),
                          (QSD, "FDH_QSD_BIN (qemu-storage-daemon) not set"),
                          (CLI, "FDH_CLI (the fd-handover command) not set")]))
