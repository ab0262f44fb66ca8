"""What a vhost-user backend receives, from an strace of its recvmsg calls.

Shared by the vhost-user e2e tests (test_vhost_user.py: qemu-storage-daemon
over vhost-user-blk; vubr.py / test_vhost_user_net.py: QEMU's
vhost-user-bridge over vhost-user-net).  Both backends use libvhost-user,
which reads each message's 12-byte header (request, flags, size) with one
recvmsg (the fds come with it) and the payload with read(): an strace line
of a recvmsg that returned 12 is one request.

    argv = STRACE + ["-o", trace_path, "--", backend, ...]
    parse_requests(read_text(trace_path), t0)   # [(wall time, fd, "GET_VRING_BASE"), ...]
    TracedBackend: what every traced backend shares (requests(), messages(), ...)
"""
from __future__ import annotations

import os
import re
import struct
import subprocess
import time

from .ktap import check, diag
from .vm import read_text

# strace of recvmsg only; prepend to the backend's argv with "-o", PATH, "--".
# (--seccomp-bpf is not here: test_vhost_user.py's daemon runs without it;
# vubr.py adds it, its bridge makes other syscalls at packet rate.)
STRACE = ["strace", "-f", "-ttt", "-T", "-e", "trace=recvmsg", "-e", "signal=none",
          "-xx", "-s", "16"]

# hw/virtio/vhost-user.c: VhostUserRequest
REQUESTS = {
    1: "GET_FEATURES", 2: "SET_FEATURES", 3: "SET_OWNER", 4: "RESET_OWNER",
    5: "SET_MEM_TABLE", 6: "SET_LOG_BASE", 7: "SET_LOG_FD", 8: "SET_VRING_NUM",
    9: "SET_VRING_ADDR", 10: "SET_VRING_BASE", 11: "GET_VRING_BASE",
    12: "SET_VRING_KICK", 13: "SET_VRING_CALL", 14: "SET_VRING_ERR",
    15: "GET_PROTOCOL_FEATURES", 16: "SET_PROTOCOL_FEATURES",
    17: "GET_QUEUE_NUM", 18: "SET_VRING_ENABLE", 19: "SEND_RARP",
    20: "NET_SET_MTU", 21: "SET_BACKEND_REQ_FD", 22: "IOTLB_MSG",
    23: "SET_VRING_ENDIAN", 24: "GET_CONFIG", 25: "SET_CONFIG",
    26: "CREATE_CRYPTO_SESSION", 27: "CLOSE_CRYPTO_SESSION",
    28: "POSTCOPY_ADVISE", 29: "POSTCOPY_LISTEN", 30: "POSTCOPY_END",
    31: "GET_INFLIGHT_FD", 32: "SET_INFLIGHT_FD", 33: "GPU_SET_SOCKET",
    34: "RESET_DEVICE", 36: "GET_MAX_MEM_SLOTS", 37: "ADD_MEM_REG",
    38: "REM_MEM_REG", 39: "SET_STATUS", 40: "GET_STATUS", 41: "GET_SHARED_OBJECT",
    42: "SET_DEVICE_STATE_FD", 43: "CHECK_DEVICE_STATE",
}
# What a new connection (or a re-initialised one) sends.
INIT = {"SET_OWNER", "GET_FEATURES", "SET_FEATURES", "RESET_OWNER",
        "RESET_DEVICE", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES"}

# One recvmsg that returned 12, whole or as strace prints a call that another
# traced thread interrupted ("recvmsg(10,  <unfinished ...>" and later, same
# tid, "<... recvmsg resumed>{msg_name=...} = 12": the resumed line carries
# the time the call returned and the header).  -ttt stamps a whole line with
# the time the call was entered: a backend that blocks in recvmsg (virtiofsd)
# entered it when it began to wait, maybe long before the request came.  -T
# adds the time spent in it, so a request's time is when recvmsg returned.
_RX = re.compile(r'^(\d+)\s+([\d.]+) (?:recvmsg\((\d+), |<\.\.\. recvmsg resumed>)'
                 r'\{msg_name=.*?msg_iov=\[\{iov_base="((?:\\x[0-9a-f]{2})+)".*?\) = 12'
                 r'(?: <([\d.]+)>)?$', re.M)
_UNFINISHED = re.compile(r'^(\d+)\s+[\d.]+ recvmsg\((\d+), +<unfinished \.\.\.>$', re.M)


def parse_requests(text: str, t0: float = 0, t1: float = 1e18) -> list:
    """(time, fd, name) of each vhost-user request header in an strace -f -ttt -xx
    of recvmsg (see STRACE) received in [t0, t1] (wall clock); fd: the connection
    it came on (one per front end)."""
    pending = {}    # tid -> fd of its unfinished recvmsg
    events = sorted([(m.start(), "u", m) for m in _UNFINISHED.finditer(text)] +
                    [(m.start(), "r", m) for m in _RX.finditer(text)],
                    key=lambda e: e[0])
    out = []
    for _, kind, m in events:
        if kind == "u":
            pending[m.group(1)] = int(m.group(2))
            continue
        fd = int(m.group(3)) if m.group(3) else pending.pop(m.group(1), -1)
        t = float(m.group(2))
        if m.group(3) and m.group(5):       # entered at t, returned T later
            t += float(m.group(5))
        if not t0 <= t <= t1:
            continue
        raw = bytes(int(h, 16) for h in m.group(4).split("\\x")[1:])
        if len(raw) < 4:
            continue
        req = struct.unpack("<I", raw[:4])[0]
        out.append((t, fd, REQUESTS.get(req, "REQ_%d" % req)))
    return out


def names(reqs: list) -> list:
    """The request names of (time, name) or (time, connection, name) items."""
    return [r[-1] for r in reqs]


def settled_requests(backend, t0: float, quiet: float = 0.5,
                     timeout: float = 10.0) -> list:
    """backend.requests(t0) once none came for `quiet` s (strace and a
    loaded host can lag behind the QMP answer)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        reqs = backend.requests(t0)
        if reqs != last:
            last, since = reqs, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.1)
    return last or []


def socket_inodes(pid: int) -> set:
    """Inodes of the sockets process `pid` holds."""
    out = set()
    fddir = "/proc/%d/fd" % pid
    for fd in os.listdir(fddir):
        try:
            t = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            out.add(int(m.group(1)))
    return out


def eventfd_ids(pid: int) -> set:
    """The eventfd-ids of the eventfds process `pid` holds."""
    out = set()
    fddir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                m = re.search(r"^eventfd-id:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            out.add(int(m.group(1)))
    return out


def switch_requests(backend, up: dict) -> list:
    """The backend's requests from the source's STOP - 1 s to the target's
    RESUME + 1 s (wall clock, from the driver's report `up`), once strace
    has caught up."""
    t_stop, t_resume = up.get("stop_wall"), up.get("resume_wall")
    check(t_stop and t_resume, "the driver reports STOP and RESUME: %s %s"
          % (t_stop, t_resume))
    while time.time() < t_resume + 1.0:
        time.sleep(0.1)
    settled_requests(backend, t_stop - 1.0)
    return backend.requests(t_stop - 1.0, t_resume + 1.0)


def check_quiet_upgrade(backend, up: dict, src, k: int) -> None:
    """Upgrade k of a chain (the driver's report `up`, the old source `src`):
    it succeeded, the source exited, and the backend received no vhost-user
    request from STOP - 1 s to RESUME + 1 s."""
    check(up.get("ok"), "upgrade %d succeeded: %s" % (k, up.get("error")))
    rc = src.wait(timeout=15)
    check(rc in (0, None), "upgrade %d: the source exited (rc %s)" % (k, rc))
    win = switch_requests(backend, up)
    diag("upgrade %d: STOP->RESUME %s ms, %d requests from STOP-1s to RESUME+1s"
         % (k, up.get("stop_to_resume_ms"), len(win)))
    check(not win, "upgrade %d: 0 requests: %s" % (k, names(win)))


def descendants(pid: int) -> set:
    """`pid` and every process below it, from /proc/*/stat."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [c for c, pp in parent.items() if pp == p and c not in tree]
    return tree


def descendant_running(pid: int, exe: str, timeout: float = 5.0) -> int:
    """The pid of a descendant of `pid` (or pid itself) whose executable is
    `exe` (e.g. the backend under timeout/strace); waits up to timeout."""
    want = os.path.realpath(exe)
    deadline = time.monotonic() + timeout
    while True:
        for p in sorted(descendants(pid)):
            try:
                if os.readlink("/proc/%d/exe" % p) == want:
                    return p
            except OSError:
                continue
        if time.monotonic() > deadline:
            raise TimeoutError("no %s under pid %d" % (exe, pid))
        time.sleep(0.05)


# A connection accepted.  A backend blocked in accept4 may show as
# "accept4(5,  <unfinished ...>" and "<... accept4 resumed>...) = 9" (listening
# fd unknown: -1).  -T: a whole line is stamped when the call was entered, so
# the time spent in it is added; a resumed line is stamped when it returned.
_ACCEPT = re.compile(r'^\d+\s+([\d.]+) (?:accept4?\((\d+),|<\.\.\. accept4? resumed>)'
                     r'.*\) = (\d+)(?: <([\d.]+)>)?$', re.M)


def parse_accepts(text: str, t0: float = 0, t1: float = 1e18) -> list:
    """(time, listening fd, new fd) of each connection accepted in [t0, t1]
    (wall clock), from an strace -f -ttt -T that traces accept/accept4."""
    out = [(float(m.group(1)) + (float(m.group(4) or 0) if m.group(2) else 0),
            int(m.group(2) or -1), int(m.group(3))) for m in _ACCEPT.finditer(text)]
    return [a for a in out if t0 <= a[0] <= t1]


def run_with_backend(vm, backend, body) -> None:
    """body(vm, backend); then, whatever happened, every QEMU of vm is killed
    and the backend stopped."""
    try:
        body(vm, backend)
    finally:
        for q in vm.qemus:
            q.kill()
        backend.stop()


class TracedBackend:
    """What vublk.Daemon and vufs.Virtiofsd share: a vhost-user backend started
    under strace (self.trace) in vm.netns, its output in self.log_path; self.pid
    is the backend itself (not strace).  Subclasses set trace and log_path,
    call _spawn(), then set pid."""

    trace = log_path = ""

    def _spawn(self, vm, argv: list, socks: list, what: str) -> None:
        """Start argv (strace ... -- backend ...) in vm.netns and wait up to 30 s
        for every socket in socks to appear."""
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(vm.netns.exec_argv(argv), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not all(os.path.exists(s) for s in socks):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not come up: %s" % (what, self.log_text()[-1000:]))
            time.sleep(0.05)

    def alive(self) -> bool:
        return os.path.exists("/proc/%d" % self.pid)

    def log_text(self) -> str:
        return read_text(self.log_path)

    def _trace_text(self) -> str:
        return read_text(self.trace)

    def sockets(self) -> set:
        """Socket inodes the backend holds (listening sockets included)."""
        return socket_inodes(self.pid)

    def messages(self, t0: float = 0, t1: float = 1e18) -> list:
        """(time, fd, name) of each vhost-user request received in [t0, t1] (wall
        clock, strace -ttt); fd is the backend's connection fd (one per front end)."""
        return parse_requests(self._trace_text(), t0, t1)

    def requests(self, t0: float = 0, t1: float = 1e18) -> list:
        """(time, name) of each vhost-user request received in [t0, t1] (wall clock)."""
        return [(t, n) for t, _, n in self.messages(t0, t1)]

    def accepts(self, t0: float = 0, t1: float = 1e18) -> list:
        """(time, listening fd, new fd) of each connection the backend accepted in [t0, t1]."""
        return parse_accepts(self._trace_text(), t0, t1)

    def settled_requests(self, t0: float, quiet: float = 0.5, timeout: float = 10.0) -> list:
        """The requests since t0, once none came for `quiet` s."""
        return settled_requests(self, t0, quiet, timeout)

    def stop(self) -> None:
        """SIGTERM the backend (strace then exits with it); SIGKILL strace after 10 s."""
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
