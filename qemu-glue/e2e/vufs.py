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
import subprocess
import time
from array import array

from .vutrace import (names, parse_requests, requests, settled_requests,  # noqa: F401
                     socket_inodes)

TAG = "fdhfs"
BS = 4096
MAGIC = 0x46444846          # "FDHF", fsverify.c
# strace of what the backend reads and the connections it accepts.
STRACE = ["strace", "-f", "-ttt", "-T", "-e", "trace=recvmsg,accept,accept4",
          "-e", "signal=none", "-xx", "-s", "16"]
# A connection accepted; virtiofsd blocks in accept4, so strace may print the
# call as "accept4(5,  <unfinished ...>" and "<... accept4 resumed>...) = 9".
# -T: a whole line is stamped when the call was entered; add the time spent in it.
_ACCEPT = re.compile(r'^\d+\s+([\d.]+) (?:accept4?\((\d+),|<\.\.\. accept4? resumed>)'
                     r'.*\) = (\d+)(?: <([\d.]+)>)?$', re.M)


def _descendants(pid: int) -> list:
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in tree]
    return tree


class Virtiofsd:
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
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            vm.netns.exec_argv(STRACE + ["-o", self.trace, "--"] + cmd),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("virtiofsd did not come up: %s" % self.log_text()[-1000:])
            time.sleep(0.05)
        self.pid = self._find_pid()

    def _find_pid(self) -> int:
        """The virtiofsd process under strace: the descendant whose command
        line names our socket and that is not strace itself (it runs as
        the unpacked loader, so its exe is ld-linux, not virtiofsd)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for p in _descendants(self.proc.pid):
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

    def alive(self) -> bool:
        return os.path.exists("/proc/%d" % self.pid)

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def sockets(self) -> set:
        return socket_inodes(self.pid)

    def _trace_text(self) -> str:
        try:
            with open(self.trace, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def messages(self, t0: float = 0, t1: float = 1e18) -> list:
        """(time, connection fd, name) of each vhost-user request in [t0, t1]."""
        return parse_requests(self._trace_text(), t0, t1)

    def requests(self, t0: float = 0, t1: float = 1e18) -> list:
        return requests(self.trace, t0, t1)

    def accepts(self, t0: float = 0, t1: float = 1e18) -> list:
        try:
            with open(self.trace, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        out = [(float(m.group(1)) + (float(m.group(4) or 0) if m.group(2) else 0),
                int(m.group(2) or -1), int(m.group(3))) for m in _ACCEPT.finditer(text)]
        return [a for a in out if t0 <= a[0] <= t1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


def fs_args(vm, sock: str, stream: bool = False, chardev: str = "vu0") -> list:
    """QEMU arguments adding vhost-user-fs-pci (tag TAG) on a chardev to `sock`, and the
    VM's kernel command line plus fdh.fs=TAG; stream=False turns the UDP stream off."""
    base = vm.cmdline("x")
    append = base[base.index("-append") + 1] + " fdh.fs=" + TAG
    if not stream:
        append += " fdh.stream=0"
    return ["-append", append,
            "-chardev", "socket,id=%s,path=%s" % (chardev, sock),
            "-device", "vhost-user-fs-pci,chardev=%s,id=fs0,tag=%s" % (chardev, TAG)]


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
    """fsverify.c fill()."""
    x = ((block * 2654435761) ^ (gen * 40503)) & 0xffffffff
    a = array("I", [MAGIC, block, gen])
    for _ in range(3, BS // 4):
        x = (x * 1664525 + 1013904223) & 0xffffffff
        a.append(x)
    return a.tobytes()


def check_before(shared: str) -> bool:
    """The guest's DIR/before, as the host sees it in the shared directory: block 0,
    generation 1."""
    try:
        with open(os.path.join(shared, "before"), "rb") as f:
            return f.read() == _fill(0, 1)
    except OSError:
        return False
