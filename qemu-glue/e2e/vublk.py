"""vhost-user-blk pieces shared by test_vhost_user.py and bench/upgrade (stdlib only).

Daemon       qemu-storage-daemon serving one raw file (one block node) over one or more
             vhost-user-blk exports (or contrib/vhost-user-blk, one socket), under strace: every recvmsg and accept of the daemon is
             recorded; messages()/requests() decode the vhost-user requests it received
             (vutrace.py: a 12-byte recvmsg is one request header), with the connection's
             fd, and accepts() lists the connections it accepted.
blk_args     the QEMU arguments that add the disk (vhost-user-blk-pci on a chardev to one
             export) and run the guest's blkverify (kernel command line fdh.blk=1).
blk_lines    the guest's "FDH-BLK: ops=..." lines, parsed; blk_status: the last one;
             blk_gaps: its "FDH-BLK: gap_ms=..." lines (every gap of 25 ms or more).
check_image  the disk image against blkverify's write sequence (after the writers stopped).

The daemon runs inside the VM's network namespace (vm.netns), so VM teardown ends it too.
"""
from __future__ import annotations

import re
import struct
import time
from typing import Optional

from .vm import verify_block
from .vutrace import (INIT, REQUESTS, TracedBackend, descendant_running,  # noqa: F401
                     names, parse_requests, settled_requests, socket_inodes)

DISK_MB = 64
BS = 4096
NBLOCKS = 2048              # blkverify's default -n: the blocks it cycles through
MAGIC = 0x46444842          # "FDHB", blkverify.c

# qemu-storage-daemon 10.0 (libvhost-user) may complete a request after it
# answered GET_VRING_BASE and then panic writing the call eventfd QEMU has
# just replaced: "vu_panic: Error writing eventfd: Bad file descriptor".
# It happens at any stop of a running QEMU (a plain stop/cont too, stock or
# ours, about 1 run in 8 here), not in the handover; see
# Documentation/vhost-user.md.  Daemon.panics() says when: the failed
# eventfd write behind each such panic, from the daemon's strace.
DAEMON_RACE = "Error writing eventfd"

# An 8-byte write that failed with EBADF: libvhost-user's eventfd_write() to
# a call fd that is gone (DAEMON_RACE).  strace may split it in two lines
# when another thread's syscall comes in between ("<... write resumed>").
# The eventfd may be one the daemon closed, or -1 once it forgot it.
_EBADF_WRITE = re.compile(r'^\d+\s+([\d.]+) (?:write\((-?\d+), .*, 8\)|<\.\.\. write '
                          r'resumed>.*\)) += -1 EBADF', re.M)


class Daemon(TracedBackend):
    """A vhost-user-blk backend serving a raw file, under strace.

    backend "qsd": qemu-storage-daemon (`binary`), one block node "disk0" with
    `exports` vhost-user-blk exports, all writable (a block export shares every
    permission, so two writers on one node are allowed), and a QMP monitor at
    qmp_path.  Each export serves one connection at a time
    (util/vhost-user-server.c), so a second front end needs a second export.
    "vub": QEMU's contrib/vhost-user-blk (`binary`), one connection, which also
    offers the inflight memfd (INFLIGHT_SHMFD).
    The sockets are socks[0], socks[1], ... (sock == socks[0]); files are named
    after the backend (qsd.log, qsd.strace / vub.log, vub.strace).
    """

    def __init__(self, vm, binary: str, exports: int = 1, backend: str = "qsd",
                 disk_mb: int = DISK_MB):
        self.vm = vm
        self.backend = backend
        self.socks = [vm.path("vhost-user-blk.sock" if i == 0 else "vhost-user-blk-%d.sock"
                              % (i + 1)) for i in range(exports)]
        self.sock = self.socks[0]
        self.img = vm.path("disk.raw")
        self.trace = vm.path(backend + ".strace")
        self.log_path = vm.path(backend + ".log")
        self.qmp_path = vm.path("qsd-qmp.sock")
        with open(self.img, "wb") as f:
            f.truncate(disk_mb << 20)
        if backend == "qsd":
            cmd = [binary, "--blockdev",
                   "driver=file,node-name=disk0,filename=%s,cache.direct=off" % self.img]
            for i, s in enumerate(self.socks):
                cmd += ["--export", "type=vhost-user-blk,id=exp%d,node-name=disk0,"
                        "writable=on,addr.type=unix,addr.path=%s" % (i, s)]
            cmd += ["--chardev", "socket,id=qmp0,path=%s,server=on,wait=off" % self.qmp_path,
                    "--monitor", "chardev=qmp0"]
        elif backend == "vub" and exports == 1:
            # Serves one connection: it accepts once, then opens the file
            # (O_DIRECT: the guest's write cache is off).
            cmd = [binary, "--socket-path", self.sock, "--blk-file", self.img]
        else:
            raise ValueError("vhost-user-blk backend %r with %d exports" % (backend, exports))
        # write: to time DAEMON_RACE (panics()); the daemon stops at every
        # syscall under strace anyway, the filter only decides what is printed.
        argv = ["strace", "-f", "-ttt", "-T", "-e", "trace=recvmsg,accept,accept4,write",
                "-e", "signal=none", "-xx", "-s", "16", "-o", self.trace, "--"] + cmd
        self._spawn(vm, argv, self.socks, binary)
        try:
            self.pid = descendant_running(self.proc.pid, binary, timeout=5)
        except TimeoutError as e:
            raise RuntimeError("no %s under strace: %s" % (backend, e)) from e

    def raced(self) -> bool:
        """The daemon hit its own stop race (see DAEMON_RACE)."""
        return DAEMON_RACE in self.log_text()

    def panics(self) -> list:
        """Wall-clock times (strace -ttt, the clock of time.time()) of the
        failed eventfd writes behind DAEMON_RACE, one per panic, in order."""
        return [float(m.group(1)) for m in _EBADF_WRITE.finditer(self._trace_text())]


def blk_args(vm, sock: str, stream: bool = True, chardev: str = "vu0") -> list:
    """QEMU arguments (for start_qemu(extra=...)) adding a vhost-user-blk-pci disk on a
    chardev to `sock`, and the VM's kernel command line plus fdh.blk=1 (the guest runs
    blkverify on /dev/vda); stream=False also turns the guest's UDP stream off.  The
    later -append replaces the one vm.cmdline() puts first."""
    return vm.vhost_user_args(sock, "vhost-user-blk-pci", "id=blk0,num-queues=1", "fdh.blk=1",
                              stream, chardev)

_LINE = re.compile(r"FDH-BLK: ops=(\d+) ioerr=(\d+) bad=(\d+) maxgap_ms=([\d.]+)"
                   r"(?: at=([\d.]+))?(?: wgap_ms=([\d.]+) wgap_end=([\d.]+) now=([\d.]+))?")


def blk_lines(serial: str) -> list:
    """Every 'FDH-BLK: ops=...' line of blkverify, parsed (times: guest CLOCK_MONOTONIC s;
    wgap_ms: the largest gap since the previous line, ending at wgap_end)."""
    out = []
    for m in _LINE.finditer(serial):
        d = {"ops": int(m.group(1)), "ioerr": int(m.group(2)), "bad": int(m.group(3)),
             "maxgap_ms": float(m.group(4))}
        if m.group(5):
            d["at"] = float(m.group(5))
        if m.group(6):
            d.update(wgap_ms=float(m.group(6)), wgap_end=float(m.group(7)),
                     now=float(m.group(8)))
        out.append(d)
    return out


def blk_gaps(serial: str) -> list:
    """(gap ms, end) of every 'FDH-BLK: gap_ms=G end=T' line: blkverify reports each gap
    of 25 ms (GAP_MS) or more between two completed iterations, ending at guest time T."""
    return [(float(m.group(1)), float(m.group(2)))
            for m in re.finditer(r"FDH-BLK: gap_ms=([\d.]+) end=([\d.]+)", serial)]


def blk_status(serial: str) -> dict:
    """The last 'FDH-BLK: ops=...' line of the guest, parsed, plus the first BAD/write
    error lines."""
    lines = blk_lines(serial)
    if not lines:
        return {}
    st = dict(lines[-1])
    st["bad_lines"] = re.findall(r"FDH-BLK: (?:BAD|write error).*", serial)[:5]
    return st


def _fill(block: int, gen: int) -> bytes:
    """The 4 KiB block `block` holds at generation `gen` (blkverify's MAGIC)."""
    return verify_block(MAGIC, block, gen)


def check_image(path: str, nblocks: int = NBLOCKS) -> dict:
    """Check the disk image against blkverify's write sequence, once nothing writes.

    blkverify writes blocks 0, 1, ..., nblocks-1, 0, ... with one generation more
    each time, so a complete history leaves blocks [0, k) at generation G and [k, n)
    at G-1 (G-1 = 0: never written, zeros).  Returns {"corrupt": blocks whose
    contents are not fill(block, gen) for any gen, "out_of_sequence": the fewest
    blocks that break that shape (a write the guest saw complete but the image does
    not hold, or a stale one), "gen_max", "boundary"}."""
    with open(path, "rb") as f:
        data = f.read(nblocks * BS)
    zero = bytes(BS)
    gens: list = []
    corrupt = 0
    for b in range(nblocks):
        blk = data[b * BS:(b + 1) * BS]
        if blk == zero:
            gens.append(0)
            continue
        magic, bno, gen = struct.unpack_from("<III", blk)
        if magic != MAGIC or bno != b or blk != _fill(b, gen):
            corrupt += 1
            gens.append(None)
            continue
        gens.append(gen)
    good = [g for g in gens if g is not None]
    gmax = max(good) if good else 0
    # fewest mismatches over every boundary k: [0,k) == gmax, [k,n) == gmax-1
    hi = [1 if g != gmax else 0 for g in gens]
    lo = [1 if g != gmax - 1 else 0 for g in gens]
    best, best_k = None, 0
    left, right = 0, sum(lo)
    for k in range(nblocks + 1):
        miss = left + right
        if best is None or miss < best:
            best, best_k = miss, k
        if k < nblocks:
            left += hi[k]
            right -= lo[k]
    # corrupt blocks count once, in "corrupt"
    oos = (best or 0) - corrupt
    return {"corrupt": corrupt, "out_of_sequence": max(oos, 0), "gen_max": gmax,
            "boundary": best_k}


def guest_offset(arrivals: list, t0: float, t1: float) -> Optional[float]:
    """host mono - guest mono (s) from the guest stream's packets that arrived in [t0, t1]:
    arrivals are (host arrival mono s, guest send mono s) pairs; the smallest difference
    (the least delayed packet)."""
    d = [ta - tg for ta, tg in arrivals if t0 <= ta <= t1]
    return min(d) if d else None
