"""virtio-fs pieces shared by test_virtiofs.py and bench/upgrade (stdlib only).

Virtiofsd   virtiofsd (FDH_VIRTIOFSD: qemu-glue/virtiofsd.sh's wrapper, trixie's virtiofsd
            1.13.2 through trixie's loader) serving one directory on one vhost-user socket,
            under strace: every recvmsg and accept is recorded; requests() decodes the
            vhost-user requests it received (vutrace.py: a 12-byte recvmsg is one request
            header, as rust-vmm's vhost crate reads them too).
fs_args     the QEMU arguments that add vhost-user-fs-pci on a chardev to the socket, and
            the kernel command line fdh.fs=TAG: the guest mounts it on /mnt and runs
            fsverify there (qemu-glue/guest/src/fsverify.c).
fs_lines    the guest's "FDH-FS: ops=..." lines, parsed; fs_status: the last one.
check_before  the file fsverify made first, read on the host from the shared directory.

The daemon runs inside the VM's network namespace (vm.netns), so VM teardown ends it too.
"""
from __future__ import annotations

import os
import re
import time

from .vm import verify_block
from .vutrace import (TracedBackend, descendants, names, parse_requests,  # noqa: F401
                     settled_requests, socket_inodes)

TAG = "fdhfs"
MAGIC = 0x46444846          # "FDHF", fsverify.c
# strace of what the backend reads and the connections it accepts.
STRACE = ["strace", "-f", "-ttt", "-T", "-e", "trace=recvmsg,accept,accept4",
          "-e", "signal=none", "-xx", "-s", "16"]


class Virtiofsd(TracedBackend):
    """virtiofsd serving `vm.path(name)` (made here) on vm.path(name + ".sock"),
    under strace (name.strace), its output in name.log.  One connection: it
    exits when that connection closes."""

    def __init__(self, vm, binary: str, name: str = "virtiofsd", shared: str = "",
                 extra: list = ()):
        self.vm = vm
        self.binary = binary
        self.shared = shared or vm.path(name + "-share")
        os.makedirs(self.shared, exist_ok=True)
        self.sock = vm.path(name + ".sock")
        self.trace = vm.path(name + ".strace")
        self.log_path = vm.path(name + ".log")
        # --sandbox none: one process (namespace mode forks), the test is root
        # in its own netns already; the shared dir is the test's own.
        cmd = [binary, "--socket-path", self.sock, "--shared-dir", self.shared,
               "--sandbox", "none", "--cache", "auto", "--log-level", "warn"] + list(extra)
        self._spawn(vm, STRACE + ["-o", self.trace, "--"] + cmd, [self.sock], "virtiofsd")
        self.pid = self._find_pid()

    def _find_pid(self) -> int:
        """The virtiofsd process under strace: the descendant whose command
        line names our socket and that is not strace itself (it runs as
        the unpacked loader, so its exe is ld-linux, not virtiofsd)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for p in sorted(descendants(self.proc.pid)):
                try:
                    with open("/proc/%d/cmdline" % p, "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if argv and b"strace" not in os.path.basename(argv[0]) and \
                        self.sock.encode() in argv and \
                        any(a.endswith(b"virtiofsd") for a in argv[1:]):
                    return p
            time.sleep(0.05)
        raise RuntimeError("no virtiofsd under strace (pid %d)" % self.proc.pid)


def fs_args(vm, sock: str, stream: bool = False, chardev: str = "vu0") -> list:
    """QEMU arguments adding vhost-user-fs-pci (tag TAG) on a chardev to `sock`, and the
    VM's kernel command line plus fdh.fs=TAG; stream=False turns the UDP stream off."""
    return vm.vhost_user_args(sock, "vhost-user-fs-pci", "id=fs0,tag=" + TAG, "fdh.fs=" + TAG,
                              stream, chardev)

# Whole lines only: QEMU may be writing the last one as we read the file, and a
# cut "ino=1096" would parse as another inode.
_LINE = re.compile(r"FDH-FS: ops=(\d+) ioerr=(\d+) bad=(\d+) maxgap_ms=([\d.]+) at=([\d.]+) "
                   r"wgap_ms=([\d.]+) wgap_end=([\d.]+) now=([\d.]+) before_ok=(\d+) "
                   r"before_bad=(\d+) ino=(\d+)\r?\n")


def fs_lines(serial: str) -> list:
    """Every 'FDH-FS: ops=...' line of fsverify, parsed."""
    out = []
    for m in _LINE.finditer(serial):
        g = m.groups()
        out.append({"ops": int(g[0]), "ioerr": int(g[1]), "bad": int(g[2]),
                    "maxgap_ms": float(g[3]), "at": float(g[4]), "wgap_ms": float(g[5]),
                    "wgap_end": float(g[6]), "now": float(g[7]), "before_ok": int(g[8]),
                    "before_bad": int(g[9]), "ino": int(g[10])})
    return out


def fs_status(serial: str) -> dict:
    """The last 'FDH-FS: ops=...' line, plus the first error lines (BAD, write error,
    mount or open failures)."""
    lines = fs_lines(serial)
    st = dict(lines[-1]) if lines else {}
    st["bad_lines"] = re.findall(r"FDH-FS: (?:BAD|write error|open|writing|mount).*",
                                 serial)[:5]
    return st


def fs_gaps(serial: str) -> list:
    """(gap ms, end) of every 'FDH-FS: gap_ms=G end=T' line (gaps of 25 ms or more)."""
    return [(float(m.group(1)), float(m.group(2)))
            for m in re.finditer(r"FDH-FS: gap_ms=([\d.]+) end=([\d.]+)", serial)]


def _fill(block: int, gen: int) -> bytes:
    """The 4 KiB block `block` holds at generation `gen` (fsverify's MAGIC)."""
    return verify_block(MAGIC, block, gen)


def check_before(shared: str) -> bool:
    """The guest's DIR/before, as the host sees it in the shared directory: block 0,
    generation 1."""
    try:
        with open(os.path.join(shared, "before"), "rb") as f:
            return f.read() == _fill(0, 1)
    except OSError:
        return False
