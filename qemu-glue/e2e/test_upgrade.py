#!/usr/bin/env python3
"""End-to-end tests of the fd-handover upgrade: real QEMU, real guest, real TAP.

Each test boots the test guest (TCG) in a network namespace of its own,
streams 1000 packets/s each way between guest and a peer inside that
namespace, upgrades the running QEMU with `fd-handover upgrade` ($FDH_CLI,
the C driver), and checks what the issue promises:
0 packets lost both ways, the guest never rebooted, the target runs, the
source exited 0, the target holds exactly the handed-over fds.

KTAP output; a test that cannot run here says SKIP with the reason.

  FDH_QEMU=path/to/patched/qemu-system-x86_64 FDH_CLI=path/to/fd-handover \
      test_upgrade.py [NAME-FILTER]
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from . import HERE

from .vm import VM, Qemu
from . import vm as vm_mod
from . import ours
from . import vublk
from .ktap import Fail, Skip, check, diag, run, test  # noqa: F401

QEMU = os.environ.get("FDH_QEMU", "")
CLI = os.environ.get("FDH_CLI", "")
DENY = os.environ.get("FDH_DENY_SYSCALL", "")   # tests/deny-syscall helper
NOBODY = 65534
TAIL_S = 1.5            # traffic after the switch, before the peer stops
WARMUP_S = 1.0


def cli_json(*args: str) -> dict:
    p = subprocess.run([CLI, "--json", *args], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise Fail("fd-handover %s: exit %d: %s %s" % (
            " ".join(args), p.returncode, p.stdout[-500:], p.stderr[-500:]))
    return json.loads(p.stdout)


def boot(vm: VM, name: str = "src") -> None:
    vm.src = vm.start_qemu(QEMU, name)
    vm.src.wait_stream(timeout=300)
    vm.peer = vm.start_peer(max_s=240, window_ms=3000)
    time.sleep(WARMUP_S)


def traffic_report(vm: VM) -> dict:
    time.sleep(TAIL_S)
    return vm.peer.stop()


def assert_no_loss(rep: dict) -> None:
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    diag("guest->host: sent %d lost %d max gap %.1f ms; host->guest: sent %d "
         "lost %d max gap %.1f ms" % (g["sent"], g["lost"], g["max_gap_ms"],
                                      h["sent"], h["lost"], h["max_gap_ms"]))
    check(g["received"] > 500 and h["received"] > 500,
          "traffic flowed both ways (%d, %d)" % (g["received"], h["received"]))
    check(g["lost"] == 0, "0 lost guest->host, got %d" % g["lost"])
    check(h["lost"] == 0, "0 lost host->guest, got %d" % h["lost"])
    check(rep["guest"]["continuous"] and len(rep["guest"]["boot_ids"]) == 1,
          "guest uptime continues (no reboot): %s" % rep["guest"])


def assert_upgraded(vm: VM, up: dict, exact=None) -> None:
    """The target runs with exactly the handed-over fds; the source exited 0.

    exact: the kinds held exactly once and no other (default: every kind
    the manifest lists); the manifest's entries of other kinds must be
    held too (by inode, whatever `ls` calls them), beside fds of the
    target's own of the same kind (its monitor sockets, its eventfds)."""
    check(up.get("ok"), "upgrade succeeded: %s" % up.get("error"))
    diag("driver: " + ", ".join("%s %.1f ms" % (p["phase"], p["ms"])
                                for p in up["phases"]))
    rc = vm.src.wait(timeout=15)
    check(rc == 0, "source exited 0, got %s" % rc)
    target = up["target_pid"]
    check(os.path.exists("/proc/%d" % target), "target pid %d alive" % target)
    manifest = cli_json("manifest", "show", up["stream_manifest"])
    held = cli_json("ls", str(target))
    # A multiset: every TAP queue is the same /dev/net/tun inode.
    moved = sorted((e["kind"], e["ino"]) for e in manifest["entries"])
    kinds = set(exact) if exact is not None else {k for k, _ in moved}
    have = sorted((f["kind"], f["ino"]) for f in held["fds"]
                  if f["kind"] in kinds)
    want = [m for m in moved if m[0] in kinds]
    check(have == want,
          "the target holds each handed-over fd exactly once and no other "
          "%s: held %s, manifest %s" % (sorted(kinds), have, want))
    inos = {f["ino"] for f in held["fds"]}
    missing = [m for m in moved if m[0] not in kinds and m[1] not in inos]
    check(not missing, "the target holds every other handed-over fd: "
          "missing %s" % missing)


def handover_fds(pid: int) -> list:
    """(fd, kind, inode) of what a handover moves: RAM, TAP, eventfds."""
    return [(f["fd"], f["kind"], f["ino"])
            for f in cli_json("ls", str(pid))["fds"]
            if f["kind"] in ("memfd", "tap", "eventfd")]


def target_qmp(up: dict, cmd: str, args=None):
    from .qmp import QMPClient
    with QMPClient(os.path.join(up["workdir"], "target-qmp.sock")) as q:
        return q.execute(cmd, args)


def target_status(up: dict) -> str:
    return target_qmp(up, "query-status")["status"]


def check_monitor_is_the_target(path: str, up: dict) -> None:
    """A client of the monitor socket path talks to the upgrade's target.

    Once its incoming migration has completed the target describes itself
    as the next upgrade's source (role "source"): what tells it apart is
    the pid its manifest names, the process that answers."""
    import base64
    from .qmp import QMPClient
    with QMPClient(path) as q:
        st = q.execute("query-status")["status"]
        info = q.execute("x-query-fd-handover")
    mf = os.path.join(up["workdir"], "via-monitor.fdhm")
    with open(mf, "wb") as f:
        f.write(base64.b64decode(info["manifest"]))
    pid = cli_json("manifest", "show", mf)["source"]["pid"]
    diag("%s answers: status %s, role %s, pid %s (target %s)"
         % (path, st, info.get("role"), pid, up.get("target_pid")))
    check(st == "running" and pid == up.get("target_pid"),
          "a client of %s talks to the running target: status %s, pid %s, "
          "target %s" % (path, st, pid, up.get("target_pid")))


def migration_settings(q) -> dict:
    """What the driver's prepare changes on the source."""
    caps = {c["capability"]: c["state"]
            for c in q.execute("query-migrate-capabilities")
            if c["capability"] in ("x-fd-handover", "return-path", "events")}
    return {"caps": caps, "mode": q.execute("query-migrate-parameters").get("mode")}


def targets_of(workdir: str) -> list:
    """Pids whose command line names this upgrade's manifest: its target."""
    mark = os.path.join(workdir, "source.fdhm").encode()
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if mark in f.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def wait_no_target(workdir: str, timeout: float = 10.0) -> list:
    end = time.monotonic() + timeout
    while time.monotonic() < end and targets_of(workdir):
        time.sleep(0.05)
    return targets_of(workdir)


def upgrade_with_traffic(queues: int, uid=None, accel: str = "tcg") -> None:
    with VM(queues=queues, uid=uid, gid=uid, tag="up%d" % queues,
            accel=accel) as vm:
        boot(vm)
        up = ours.upgrade(vm, QEMU)
        rep = traffic_report(vm)
        assert_upgraded(vm, up)
        check(target_status(up) == "running", "target running")
        diag("QEMU downtime %s ms, STOP->RESUME %s ms, migrate->running %s ms"
             % (up.get("qemu_downtime_ms"), up.get("stop_to_resume_ms"),
                up.get("migrate_to_running_ms")))
        assert_no_loss(rep)


@test
def single_queue_upgrade_loses_no_packet():
    upgrade_with_traffic(queues=1)


@test
def two_queue_upgrade_loses_no_packet():
    upgrade_with_traffic(queues=2)


@test
def kvm_upgrade_loses_no_packet():
    """The same upgrade with -accel kvm on both sides, where a KVM guest runs."""
    why = vm_mod.kvm_unusable(QEMU)
    if why:
        raise Skip("KVM: " + why)
    upgrade_with_traffic(queues=1, accel="kvm")


# The target's own /dev/vhost-net is /dev/null (a mount namespace of its
# own): a target that opened it instead of taking the source's device
# would fail its first vhost ioctl (issue 14: it never opens it).
NO_VHOST_NET_WRAPPER = ("unshare -m --propagation private -- sh -c "
                        "'mount --bind /dev/null /dev/vhost-net && "
                        "exec \"$@\"' no-vhost-net")


def vhost_net_upgrade(queues: int) -> None:
    """-netdev tap,vhost=on (kernel vhost-net, one device per queue pair):
    the target takes the source's devices by fd (QEMU patch 0023)."""
    if not os.path.exists("/dev/vhost-net"):
        raise Skip("no /dev/vhost-net on this host (vhost_net module); the "
                   "nested run of qemu-glue/guest/vhostnet-qemu covers it")
    with VM(queues=queues, tag="vh%d" % queues, vhost=True) as vm:
        boot(vm)
        plan = cli_json("plan", str(vm.src.pid))
        vh = sorted((e["owner"], e["index"]) for e in plan["entries"]
                    if e["kind"] == "vhost-net")
        check(vh == [("net0.vhost", i) for i in range(queues)],
              "plan: one vhost-net device per queue pair: %s" % vh)
        up = ours.upgrade(vm, QEMU, target_wrapper=NO_VHOST_NET_WRAPPER)
        rep = traffic_report(vm)
        # (the kick/call eventfds move too, beside the target's own)
        assert_upgraded(vm, up, exact=("memfd", "tap", "vhost-net"))
        check(target_status(up) == "running", "target running")
        assert_no_loss(rep)


@test
def vhost_net_single_queue_upgrade_loses_no_packet():
    vhost_net_upgrade(queues=1)


@test
def vhost_net_two_queue_upgrade_loses_no_packet():
    vhost_net_upgrade(queues=2)


@test
def unprivileged_same_user_upgrade_needs_no_cap_sys_ptrace():
    # Both QEMUs and the driver run as nobody; the TAP was made for nobody.
    upgrade_with_traffic(queues=1, uid=NOBODY)


@test
def target_of_another_uid_is_refused_and_the_source_keeps_running():
    with VM(queues=1, uid=NOBODY, gid=NOBODY, tag="uid") as vm:
        boot(vm)
        # The driver may use the source's monitor; the target runs as
        # another uid and so has no ptrace permission over the source.
        other = NOBODY - 1
        # That uid must reach the upgrade's workdir (its own) inside the
        # VM's private one, to get as far as the pull.
        os.chmod(vm.workdir, 0o711)
        up = ours.upgrade(vm, QEMU, uid=0, workdir_uid=other, target_wrapper=(
            "setpriv --reuid=%d --regid=%d --clear-groups --" % (other, other)))
        rep = traffic_report(vm)
        check(not up.get("ok"), "the upgrade is refused")
        err = up.get("error", "")
        diag("refusal: " + err[-600:])
        check("ptrace permission" in err or "EPERM" in err or
              "not permitted" in err,
              "the error names the permission problem: %s" % err[-400:])
        check(vm.src.alive(), "the source keeps running")
        check(vm.src.qmp().execute("query-status")["status"] == "running",
              "the source VM runs")
        assert_no_loss(rep)


@test
def chain_of_three_upgrades_a_b_c():
    with VM(queues=1, tag="chain") as vm:
        boot(vm)
        first = vm.src
        up1 = ours.upgrade(vm, QEMU)
        check(up1.get("ok"), "A->B: %s" % up1.get("error"))
        check(first.wait(timeout=15) == 0, "A exited 0")
        # B becomes the source: reach it through its own monitor.
        b = Target(vm, up1)
        vm.src = b
        up2 = ours.upgrade(vm, QEMU)
        if not up2.get("ok"):
            diag(open(os.path.join(up2["workdir"], "target.log")).read()[-1500:])
            diag(" ".join(up2.get("target_argv", [])))
        rep = traffic_report(vm)
        check(up2.get("ok"), "B->C: %s" % up2.get("error"))
        vm.src = b
        assert_upgraded(vm, up2)
        assert_no_loss(rep)


class Target:
    """A target started by the driver, used as the next upgrade's source."""

    def __init__(self, vm: VM, up: dict):
        self.vm = vm
        self.pid = up["target_pid"]
        # ours.upgrade() looks for vm.path(name + ".qmp")
        self.name = os.path.relpath(os.path.join(up["workdir"], "target"),
                                    vm.workdir)
        os.symlink(os.path.join(up["workdir"], "target-qmp.sock"),
                   vm.path(self.name + ".qmp"))

    def close_qmp(self) -> None:
        pass

    def alive(self) -> bool:
        return os.path.exists("/proc/%d" % self.pid)

    def wait(self, timeout: float = 10.0):
        # Not our child: wait for it to disappear; exit status unknown (0).
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.alive():
            time.sleep(0.01)
        return None if self.alive() else 0


@test
def rollback_when_the_target_may_not_pidfd_getfd():
    if not DENY or not os.access(DENY, os.X_OK):
        raise Skip("tests/deny-syscall helper not built (FDH_DENY_SYSCALL)")
    with VM(queues=1, tag="rbseccomp") as vm:
        boot(vm)
        src_fds = handover_fds(vm.src.pid)
        up = ours.upgrade(vm, QEMU, target_wrapper=DENY + " pidfd_getfd EPERM --")
        rep = traffic_report(vm)
        check(not up.get("ok"), "the upgrade fails")
        diag("error: " + up.get("error", "").splitlines()[0])
        check("pidfd_getfd" in up.get("error", ""),
              "the error names pidfd_getfd: %s" % up.get("error", "")[-300:])
        check(vm.src.alive() and vm.src.qmp().execute("query-status")["status"]
              == "running", "the source VM runs on")
        check(handover_fds(vm.src.pid) == src_fds,
              "the source's RAM, TAP and eventfd fds are intact")
        assert_no_loss(rep)


@test
def rollback_when_the_target_is_killed_mid_handover():
    with VM(queues=1, tag="rbkill") as vm:
        boot(vm)
        before = migration_settings(vm.src.qmp())
        vm.src.close_qmp()
        # The target dies as soon as the migration stream starts to load.
        wrapper = "%s %s --" % (sys.executable,
                                os.path.join(HERE, "die_on_incoming.py"))
        up = ours.upgrade(vm, QEMU, target_wrapper=wrapper)
        rep = traffic_report(vm)
        check(not up.get("ok"), "the upgrade fails")
        diag("error: " + up.get("error", "").splitlines()[0])
        check(not up.get("committed") and up.get("rolled_back"),
              "rolled back before the commit: %s" % up.get("rolled_back"))
        # (A wrapper that closed the inherited fds once made the target
        # fail at its start, and this test pass for the wrong reason.)
        check(up.get("error", "").startswith(("upgrade: migrate:",
                                              "upgrade: switch:")),
              "the target died mid-handover, not at its start: %s"
              % up.get("error"))
        check(vm.src.alive(), "the source is alive")
        st = vm.src.qmp().execute("query-status")["status"]
        check(st == "running", "the source VM runs again: %s" % st)
        check(up.get("source_status") == "running",
              "the report says so: %s" % up.get("source_status"))
        after = migration_settings(vm.src.qmp())
        check(after == before, "the source's migration settings are restored: "
              "%s, were %s" % (after, before))
        assert_no_loss(rep)


@test
def source_started_with_S_then_cont_upgrades_and_the_target_runs():
    # libvirt starts QEMU with -S and conts it; the target must not keep
    # the copied -S (the migration's run state decides).
    with VM(queues=1, tag="dashS") as vm:
        vm.src = vm.start_qemu(QEMU, "src", extra=["-S"])
        vm.src.qmp().execute("cont")
        vm.src.wait_stream(timeout=300)
        vm.peer = vm.start_peer(max_s=240, window_ms=3000)
        time.sleep(WARMUP_S)
        up = ours.upgrade(vm, QEMU)
        rep = traffic_report(vm)
        check(up.get("had_S") is True, "the report says -S was dropped")
        check("-S" not in up.get("target_argv", []), "no -S for the target")
        check(up.get("committed") is True, "committed")
        assert_upgraded(vm, up)
        check(target_status(up) == "running", "target running")
        assert_no_loss(rep)


@test
def monitor_listening_by_path_is_served_by_the_target_under_the_same_name():
    # The source's only QMP monitor is a -chardev socket,path=P + -mon, as
    # libvirt and others write it: the target serves it from the source's
    # listening socket (fd=N, inherited), and P, which QEMU unlinks when
    # the source quits, names that socket again afterwards.
    with VM(queues=1, tag="monpath") as vm:
        argv = [QEMU] + vm.cmdline("src")
        i = argv.index("-qmp")
        argv[i:i + 2] = ["-chardev", "socket,id=mon0,path=%s,server=on,wait=off"
                         % vm.path("src.qmp"),
                         "-mon", "chardev=mon0,mode=control"]
        src = Qemu(vm, QEMU, "src", argv, pass_fds=tuple(vm.tap_fds), uid=vm.uid)
        vm.qemus.append(src)
        vm.src = src.start()
        vm.src.wait_stream(timeout=300)
        vm.peer = vm.start_peer(max_s=240, window_ms=3000)
        time.sleep(WARMUP_S)
        up = ours.upgrade(vm, QEMU)
        rep = traffic_report(vm)
        argv = up.get("target_argv", [])
        diag("target's monitor: %s" % [a for a in argv if "mon0" in a])
        check(any(a.startswith("socket,id=mon0,") and ",fd=" in a
                  and "path=" not in a for a in argv),
              "the monitor becomes fd=N of the source's listener: %s" % argv)
        assert_upgraded(vm, up)
        check(not os.path.exists(vm.path("src.qmp.fdh-keep")),
              "the kept name was renamed back")
        check_monitor_is_the_target(vm.path("src.qmp"), up)
        assert_no_loss(rep)


from . import REPO
QSD = os.environ.get("FDH_QSD_BIN", "")
LIBVIRT_ARGV = os.path.join(REPO, "tests", "data", "libvirt.argv")
LIBVIRT_DOMAIN_DIR = "/var/lib/libvirt/qemu/domain--1-fdh-libvirt/"
LIBVIRT_RUN_DIR = "/run/fdh-libvirt/"
LIBVIRT_GUEST_DIR = "/var/cache/fd-handover/guest/"
LIBVIRT_TAP_FD = 17     # the -netdev {"type":"tap","fd":"17",...} libvirt wrote
LIBVIRT_WARMUP_S = 3.0


def libvirt_argv(vm: VM) -> list:
    """tests/data/libvirt.argv with the adjustments the test below lists."""
    with open(LIBVIRT_ARGV) as f:
        argv = f.read().splitlines()
    argv[0] = QEMU
    out = []
    for a in argv:
        a = (a.replace(LIBVIRT_DOMAIN_DIR, vm.workdir + "/")
              .replace(LIBVIRT_RUN_DIR, vm.workdir + "/")
              .replace(LIBVIRT_GUEST_DIR + "vmlinuz", vm.guest["GUEST_KERNEL"])
              .replace(LIBVIRT_GUEST_DIR + "initrd.img", vm.guest["GUEST_INITRD"]))
        out.append(a)
    i = out.index("-append")
    check(out[i + 1] == "console=ttyS0 quiet", "libvirt's -append: %s" % out[i + 1])
    # The test guest's traffic stream, as vm.cmdline() starts it.
    out[i + 1] += " no_timer_check fdh.ip=%s/%d fdh.peer=%s fdh.pps=%d fdh.max=%d" % (
        vm_mod.GUEST_IP, vm_mod.PREFIX, vm_mod.HOST_IP, vm.pps, vm.guest_max_s)
    return out


@test
def libvirt_argv_source_upgrades_with_no_packet_lost():
    """A QEMU started from libvirt's own command line (issue 12, Tests:
    "libvirt-argv source"), upgraded with `fd-handover upgrade`, 0 lost.

    tests/data/libvirt.argv is libvirt 11.3's argv for
    tests/data/libvirt-domain.xml (TAP netdev by fd, vhost-user-blk disk,
    memfd RAM, serial log file, -S, -sandbox, -msg, debug-threads).  It is
    used as written except where this machine cannot provide what libvirt
    would; every adjustment:

    1. argv[0] /usr/bin/qemu-system-x86_64 -> $FDH_QEMU (the patched build).
    2. libvirt's domain directory (master-key.aes, monitor.sock) and
       /run/fdh-libvirt/ (vhost-user-blk.sock, serial.log) -> the VM's
       workdir; the master key is 32 random bytes written there.
    3. -kernel/-initrd /var/cache/fd-handover/guest/... -> the e2e guest's.
    4. -append "console=ttyS0 quiet" gets the guest's traffic stream
       appended: fdh.ip= fdh.peer= fdh.pps= fdh.max= (as vm.cmdline()).
    5. fd 17, the TAP queue libvirt opens and passes: a single-queue
       vnet_hdr TAP created in the test's network namespace (with the
       peer's address), opened there and placed at fd 17 by the bash
       `exec 17<&N` that starts QEMU; QEMU runs inside that namespace.
    6. The vhost-user-blk backend libvirt expects on vhost-user-blk.sock:
       qemu-storage-daemon ($FDH_QSD_BIN, vublk.Daemon) on a 64 MiB file.
    7. As libvirt does: the QEMU starts paused (-S, kept in its argv) and
       is resumed with `cont` on its monitor.

    The monitor stays libvirt's `-chardev socket,id=charmonitor,path=P,
    server=on,wait=off -mon chardev=charmonitor,mode=control` (the driver
    is pointed at it through a symlink); afterwards P reaches the target.
    Checked: the upgrade succeeds and commits, -S was dropped (had_S), the
    target holds exactly the handed-over fds and runs, the source exited 0,
    0 lost both ways and no reboot, a client of libvirt's monitor path
    talks to the running target, and the serial log written before the
    upgrade is still there (append=on)."""
    if not QSD or not os.access(QSD, os.X_OK):
        raise Skip("FDH_QSD_BIN (qemu-storage-daemon) not set: it serves the "
                   "vhost-user-blk disk of libvirt's argv")
    if not shutil.which("strace"):
        raise Skip("strace (vublk.Daemon runs the backend under it) not installed")
    with VM(queues=1, tap_mode="fd", tag="libvirt") as vm:
        with open(vm.path("master-key.aes"), "wb") as f:
            f.write(os.urandom(32))
        daemon = vublk.Daemon(vm, QSD)
        try:
            argv = libvirt_argv(vm)
            tap = vm.tap_fds[0]
            wrapped = ["bash", "-c", 'exec %d<&%d %d<&-; exec "$@"'
                       % (LIBVIRT_TAP_FD, tap, tap), "fdh-libvirt"] + argv
            src = Qemu(vm, QEMU, "src", wrapped, pass_fds=(tap,))
            src.qmp_path = vm.path("monitor.sock")
            src.serial_path = vm.path("serial.log")
            vm.qemus.append(src)
            vm.src = src.start()
            # ours.upgrade() finds the monitor at vm.path(name + ".qmp").
            os.symlink(src.qmp_path, vm.path("src.qmp"))
            check(vm.src.qmp().execute("query-status")["status"] == "prelaunch",
                  "started paused (-S), as libvirt starts it")
            vm.src.qmp().execute("cont")
            vm.src.wait_stream(timeout=300)
            vm.peer = vm.start_peer(max_s=240, window_ms=3000)
            # libvirt's -machine acpi=off leaves the guest a coarse timer:
            # it sends ~150-250 packets/s instead of 1000 (measured), so
            # wait longer for the "traffic flowed" threshold.
            time.sleep(LIBVIRT_WARMUP_S)
            serial_before = vm.src.serial()
            up = ours.upgrade(vm, QEMU)
            rep = traffic_report(vm)
            if not up.get("ok"):
                try:
                    with open(os.path.join(up["workdir"], "target.log")) as f:
                        diag("target.log: " + f.read()[-1500:])
                except OSError:
                    pass
                diag("target argv: " + " ".join(up.get("target_argv", [])))
            check(up.get("committed") is True, "committed: %s" % up.get("error"))
            check(up.get("had_S") is True, "the report says -S was dropped")
            check("-S" not in up.get("target_argv", []), "no -S for the target")
            # The target has eventfds and unix sockets of its own.
            assert_upgraded(vm, up, exact=("memfd", "tap"))
            check(target_status(up) == "running", "target running")
            kinds = [e["kind"] for e in
                     cli_json("manifest", "show", up["stream_manifest"])["entries"]]
            diag("handed over: %s" % ", ".join(
                "%d %s" % (kinds.count(k), k) for k in sorted(set(kinds))))
            check("tap" in kinds and "memfd" in kinds and "vhost-user" in kinds,
                  "the TAP at fd 17, the RAM memfd and the vhost-user disk are "
                  "handed over: %s" % kinds)
            check_monitor_is_the_target(vm.path("monitor.sock"), up)
            check(vm.src.serial().startswith(serial_before),
                  "the serial log from before the upgrade is kept")
            if daemon.panics():
                diag("qemu-storage-daemon hit its known stop race (%s): %s"
                     % (vublk.DAEMON_RACE, daemon.panics()))
            diag("QEMU downtime %s ms, STOP->RESUME %s ms, migrate->running %s ms"
                 % (up.get("qemu_downtime_ms"), up.get("stop_to_resume_ms"),
                    up.get("migrate_to_running_ms")))
            assert_no_loss(rep)
        finally:
            daemon.stop()


@test
def paused_source_stays_paused_on_the_target():
    with VM(queues=1, tag="paused") as vm:
        boot(vm)
        vm.src.qmp().execute("stop")
        up = ours.upgrade(vm, QEMU)
        check(up.get("ok"), "upgrade of a paused VM: %s" % up.get("error"))
        check(up.get("committed") is True, "committed")
        check(target_status(up) == "paused", "the target is paused as the "
              "source was")
        target_qmp(up, "cont")
        check(target_status(up) == "running", "and runs once cont'ed")
        traffic_report(vm)
        check(vm.src.wait(timeout=15) == 0, "the source exited 0")


@test
def sigterm_to_the_driver_before_the_commit_rolls_back():
    with VM(queues=1, tag="sigterm") as vm:
        boot(vm)
        before = migration_settings(vm.src.qmp())
        vm.src.close_qmp()
        # The target stops itself as the stream begins: the source's
        # migration waits for a 'loaded' that never comes (no commit).
        wrapper = "%s %s --stop --" % (sys.executable,
                                       os.path.join(HERE, "die_on_incoming.py"))
        up = ours.upgrade(vm, QEMU, target_wrapper=wrapper, timeout=30,
                          during=ours.signal_when("migrate.sock", signal.SIGTERM,
                                                  after_s=0.3))
        rep = traffic_report(vm)
        diag("error: " + up.get("error", "").splitlines()[0])
        if up.get("driver_stderr"):
            diag("driver stderr: " + up["driver_stderr"][-1500:])
        check(not up.get("ok") and not up.get("committed"),
              "not committed: ok %s committed %s" % (up.get("ok"), up.get("committed")))
        check("SIGTERM" in up.get("error", ""), "the error names the signal")
        check(up.get("rolled_back"), "the report says it rolled back")
        check(wait_no_target(up["workdir"]) == [], "the target is gone")
        check(vm.src.alive(), "the source is alive")
        st = vm.src.qmp().execute("query-status")["status"]
        check(st == "running", "the source VM runs: %s" % st)
        after = migration_settings(vm.src.qmp())
        check(after == before, "the source's migration settings are restored: "
              "%s, were %s" % (after, before))
        assert_no_loss(rep)


@test
def sigkill_of_the_driver_before_loaded_takes_the_target_with_it():
    with VM(queues=1, tag="sigkill") as vm:
        boot(vm)
        # Killed as soon as the target's monitor is up: the target has
        # pulled the fds but not loaded; PR_SET_PDEATHSIG kills it.
        up = ours.upgrade(vm, QEMU, timeout=30,
                          during=ours.signal_when("target-qmp.sock",
                                                  signal.SIGKILL))
        rep = traffic_report(vm)
        check(up.get("driver_rc") == -signal.SIGKILL, "the driver was killed: "
              "rc %s" % up.get("driver_rc"))
        check(wait_no_target(up["workdir"]) == [], "no orphaned target")
        check(vm.src.alive(), "the source is alive")
        st = vm.src.qmp().execute("query-status")["status"]
        check(st == "running", "the source VM runs: %s" % st)
        assert_no_loss(rep)


@test
def dry_run_prints_the_plan_and_starts_nothing():
    with VM(queues=1, tag="dryrun") as vm:
        boot(vm)
        up = ours.upgrade(vm, QEMU, extra=["--dry-run"], mark=False)
        traffic_report(vm)
        check(up.get("ok") and up.get("dry_run"), "dry run: %s" % up.get("error"))
        argv = up.get("target_argv", [])
        check(argv and argv[0] == QEMU and "-incoming" in argv,
              "the target's argv: %s" % argv)
        check("target_pid" not in up and targets_of(up["workdir"]) == [],
              "no target started")
        check(vm.src.qmp().execute("query-status")["status"] == "running",
              "the source runs on")


@test
def stream_manifest_lists_ram_tap_queues_and_vring_state():
    with VM(queues=2, tag="manifest") as vm:
        boot(vm)
        up = ours.upgrade(vm, QEMU)
        traffic_report(vm)
        check(up.get("ok"), "upgrade: %s" % up.get("error"))
        m = cli_json("manifest", "show", up["stream_manifest"])
        kinds = [e["kind"] for e in m["entries"]]
        check(kinds.count("tap") == 2, "two TAP queues: %s" % kinds)
        check(any(e["kind"] == "memfd" and e["owner"] == "ram0"
                  for e in m["entries"]), "guest RAM ram0")
        rings = [r for d in m["devices"] for r in d["vrings"]]
        check(len(rings) >= 4 and any(r["last_avail_idx"] for r in rings),
              "virtqueue state with progress: %s" % rings[:3])
        text = subprocess.run([CLI, "manifest", "show", up["stream_manifest"]],
                              capture_output=True, text=True).stdout
        diag(text)


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set"),
                                  (CLI, "FDH_CLI (the fd-handover command) not set")]))
