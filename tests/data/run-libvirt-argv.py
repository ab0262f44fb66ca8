#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Start a QEMU from libvirt's command line (libvirt.argv), as libvirt would.

    run-libvirt-argv.py start QEMU GUEST_DIR RUNDIR   # prints the QEMU pid
    run-libvirt-argv.py stop RUNDIR          # the backend and the TAP; an
                                             # upgraded target is the caller's

For the end-to-end "libvirt-argv source" upgrade (issue 12).  The argv is
used as libvirt wrote it, adjusted only where this machine lacks what
libvirt provides: the emulator, the kernel/initrd (GUEST_DIR, the e2e
guest), the master key file, the monitor and vhost-user paths (RUNDIR
instead of /var/lib/libvirt and /run/fdh-libvirt), the TAP that libvirt
opens and passes as fd 17 (opened here: fdhtap0, vnet_hdr), and the
vhost-user-blk backend (qemu-storage-daemon next to QEMU, else on PATH).
The guest starts paused (-S) and is resumed with `cont`, as libvirt does.
Needs root (the TAP).
"""
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TUNSETIFF = 0x400454ca
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def wait_for(path: str) -> None:
    for _ in range(100):
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise SystemExit(f"{path} did not appear")


def qmp(path: str, *commands: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rw")
    f.readline()
    for c in ("qmp_capabilities",) + commands:
        f.write('{"execute": "%s"}\n' % c)
        f.flush()
        while '"return"' not in (line := f.readline()):
            if not line or '"error"' in line:
                raise SystemExit(f"{c}: {line.strip()}")
    s.close()


def start(qemu: str, guest: str, run: str) -> None:
    os.makedirs(run, exist_ok=True)
    with open(os.path.join(run, "master-key.aes"), "wb") as f:
        f.write(os.urandom(32))
    disk = os.path.join(run, "disk.img")
    with open(disk, "ab") as f:
        f.truncate(64 << 20)
    vu = os.path.join(run, "vhost-user-blk.sock")
    mon = os.path.join(run, "monitor.sock")
    for p in (vu, mon):
        if os.path.exists(p):
            os.unlink(p)
    qsd = os.path.join(os.path.dirname(qemu), "storage-daemon",
                       "qemu-storage-daemon")
    if not os.path.exists(qsd):
        qsd = shutil.which("qemu-storage-daemon") or "qemu-storage-daemon"
    # Logs, not our stdout: a caller's $(...) would wait for them.
    with open(os.path.join(run, "qsd.log"), "w") as log:
        backend = subprocess.Popen([
            qsd, "--blockdev", f"file,node-name=file0,filename={disk}",
            "--export", "vhost-user-blk,id=exp0,node-name=file0,"
            f"addr.type=unix,addr.path={vu},writable=on"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    wait_for(vu)

    subprocess.run(["ip", "tuntap", "add", "fdhtap0", "mode", "tap",
                    "vnet_hdr"], stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["ip", "link", "set", "fdhtap0", "up"], check=True)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack(
        "16sH", b"fdhtap0", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
    os.dup2(tun, 17)    # the number libvirt.argv names
    os.close(tun)

    with open(os.path.join(HERE, "libvirt.argv")) as f:
        argv = f.read().splitlines()
    lv = "/var/lib/libvirt/qemu/domain--1-fdh-libvirt/"
    argv[0] = qemu
    argv = [a.replace("/var/cache/fd-handover/guest/", guest.rstrip("/") + "/")
             .replace(lv, run.rstrip("/") + "/")
             .replace("/run/fdh-libvirt/", run.rstrip("/") + "/")
            for a in argv]
    with open(os.path.join(run, "qemu.log"), "w") as log:
        vm = subprocess.Popen(argv, pass_fds=[17], stdin=subprocess.DEVNULL,
                              stdout=log, stderr=log, cwd=run)
    os.close(17)
    wait_for(mon)
    qmp(mon, "cont")
    with open(os.path.join(run, "pids"), "w") as f:
        f.write(f"{backend.pid} {vm.pid}\n")
    print(vm.pid)


def stop(run: str) -> None:
    with open(os.path.join(run, "pids")) as f:
        pids = [int(p) for p in f.read().split()]
    for pid in reversed(pids):
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
    subprocess.run(["ip", "link", "del", "fdhtap0"], check=False)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "start":
        start(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop(sys.argv[2])
    else:
        raise SystemExit(__doc__)
