#!/usr/bin/env python3
"""A vhost-user-net backend for the e2e tests: QEMU's tests/vhost-user-bridge.

vhost-user-bridge (QEMU's test program, libvhost-user) serves the guest's
virtio-net rings over a unix socket and forwards each Ethernet frame as one
UDP datagram (payload = the frame, no virtio-net header) between the rings
and a local/remote UDP address pair.  To keep the host side of the tests as
it is (the TAP fdhtap0 with 10.99.0.1 and the traffic peer), a relay copies
frames between that UDP socket and the VM's TAP.  Everything runs inside the
VM's network namespace, on its loopback:

    guest virtio-net <-vhost-user-> vhost-user-bridge  127.0.0.1:4444
                                          ^ UDP v
                                    relay 127.0.0.1:5555 <-> TAP fdhtap0
                                                             10.99.0.1, peer

    with VM(net="vhost-user") as vm:
        br = Bridge(vm, "/path/to/vhost-user-bridge")   # relay + bridge up
        vm.src = vm.start_qemu(qemu, "src")             # -netdev vhost-user
        ...
        br.pid, br.sock, br.connection(), br.requests(t0)
        br.stop()

A second bridge (bench/upgrade's stock variant: one bridge serves one
front end, so stock QEMU's target needs its own) shares the relay: the first
Bridge is made with relay_to=[its port, the second's port], the second with
relay=False, its own sock, name and bridge_port.  The relay then learns like
an Ethernet switch: frames for the guest go to the bridge that sent the
guest's last frame.

The relay is this file run as a script (`vubr.py relay ...`); it exits by
itself after --max-s seconds or when its parent dies.  The bridge runs
under `timeout` (bounded too) and, by default, under strace so that the
vhost-user requests it receives can be listed (vutrace.py).

Things to know about vhost-user-bridge (QEMU 10.0, tests/vhost-user-bridge.c):
- It reads a UDP datagram only when the RX ring is enabled, started and has
  a buffer (vubr_backend_recv_cb); otherwise it leaves it in the socket.
  So frames that arrive while the VM is stopped wait in its UDP receive
  buffer (net.core.rmem_default, 208 KiB here, some hundreds of frames),
  and it spins: select() says readable, the callback returns.  Bridge
  reports the netns's Udp RcvbufErrors (frames the kernel dropped because
  that buffer was full).
- It does not survive a stop/cont of QEMU 10.0 when frames wait for the
  guest: libvhost-user closes a ring's call eventfd at GET_VRING_BASE and
  starts the ring again at SET_VRING_KICK, which QEMU sends before
  SET_VRING_CALL; the waiting frame goes into the RX ring in between and
  the notify writes to fd -1: "PANIC: Error writing eventfd: Bad file
  descriptor", and the bridge exits.  Bridge.held(switch) works around it:
  the relay holds host->guest frames across the switch until the bridge
  holds its kick and call fds again (see Bridge.hold).
- It prints per packet (stdout; TX hexdumps on stderr): stdout goes to
  /dev/null, stderr to the file vubr.stderr, which Bridge.log_text() reads
  without the TX hexdumps.  A file, not a pipe: a pipe that the test
  process drains lets the bridge block in write(2) whenever that reader is
  off the CPU for longer than the pipe holds (64 KiB, 60-120 ms of
  hexdumps at 1000 packets/s each way), and a blocked bridge forwards
  nothing: its UDP receive buffer overflows (host->guest lost) and so
  does the relay's when it catches up (guest->host lost).
- Single queue pair only (RX is queue 0).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Optional

from . import HERE, vutrace
from .vm import read_text

BRIDGE_PORT = 4444      # vhost-user-bridge's UDP port (its defaults)
RELAY_PORT = 5555       # the relay's
VNET_HDR_LEN = 10       # struct virtio_net_hdr: the TAP's default vnet header size
# The nice value of the relay, the bridge and the strace that stops the bridge at every
# recvmsg -- that is every datagram it takes from the relay, not only the vhost-user
# requests.  They are this test's host network: on a loaded host, a bridge that waits
# hundreds of ms for its strace (or a relay off the CPU as long) holds every frame both
# ways, its UDP receive buffer overflows and the run loses packets that neither QEMU
# ever saw.  (Seen: 7 and 395 lost h>g in netns UDP RcvbufErrors, 131-500 ms gaps both
# ways at once away from any switch, loadavg 5-7.)
NET_NICE = -10

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_IFF_VNET_HDR = 0x4000
_IFF_MULTI_QUEUE = 0x0100
_PR_SET_PDEATHSIG = 1


# ------------------------------------------------------------------------------------ relay
def relay_main(argv: list) -> int:
    """TAP <-> UDP, one frame per datagram.  Runs inside the netns."""
    import argparse
    import collections
    ap = argparse.ArgumentParser(prog="vubr.py relay")
    ap.add_argument("--tap", required=True)
    ap.add_argument("--vnet-hdr", action="store_true",
                    help="the TAP was made with vnet_hdr: open it so, strip/add the header")
    ap.add_argument("--multi-queue", action="store_true")
    ap.add_argument("--listen", default="127.0.0.1:%d" % RELAY_PORT)
    ap.add_argument("--to", action="append", default=[],
                    help="a bridge's UDP address (repeat for more; default 127.0.0.1:%d)"
                    % BRIDGE_PORT)
    ap.add_argument("--max-s", type=float, default=900)
    ap.add_argument("--parent", type=int, default=0)
    ap.add_argument("--stats", default="")
    a = ap.parse_args(argv)

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NET_NICE)
    except OSError:
        pass
    if a.parent and os.getppid() != a.parent:
        return 1  # the parent is gone already

    flags = _IFF_TAP | _IFF_NO_PI
    if a.vnet_hdr:
        flags |= _IFF_VNET_HDR
    if a.multi_queue:
        flags |= _IFF_MULTI_QUEUE
    tap = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(tap, _TUNSETIFF, struct.pack("16sH22x", a.tap.encode(), flags))
    hdr = b"\0" * VNET_HDR_LEN if a.vnet_hdr else b""

    def addr(s: str) -> tuple:
        h, p = s.rsplit(":", 1)
        return h, int(p)

    bridges = [addr(x) for x in a.to or ["127.0.0.1:%d" % BRIDGE_PORT]]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(addr(a.listen))
    # Room for what the bridges send while this relay is off the CPU (a Python
    # process on a loaded host: hundreds of ms): the default 208 KiB holds ~250
    # frames.  (Root in the netns: SO_RCVBUFFORCE passes net.core.rmem_max.)
    try:
        udp.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
    except OSError:
        pass
    if len(bridges) == 1:
        udp.connect(bridges[0])     # only the bridge's datagrams come in
    udp.setblocking(False)
    # Several bridges: frames for the guest go to the one that sent the guest's
    # last frame (an Ethernet switch that learnt where the guest's MAC is).
    active = bridges[0]

    st = {"pid": os.getpid(), "tap_to_udp": 0, "udp_to_tap": 0,
          "udp_send_errors": 0, "tap_write_errors": 0, "started_mono": time.monotonic(),
          "holding": False, "draining": False, "holds": 0, "held": 0, "held_max": 0,
          "held_max_s": 0.0, "paced": 0, "active": active[1], "moves": 0, "t_moved_mono": 0.0,
          # at the last move: frames sent to the bridge left behind after the last
          # frame that came from it (the guest had moved away; they wait in that
          # bridge's UDP buffer for a guest that is not there)
          "sent_behind": 0}
    sent_since_rx = 0       # frames sent to the active bridge since its last frame came
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    # SIGUSR1: hold TAP->bridge frames here (in order) instead of sending them;
    # SIGUSR2: send what was held, and go on.  See Bridge.hold().
    ctl = []
    signal.signal(signal.SIGUSR1, lambda *_: ctl.append(True))
    signal.signal(signal.SIGUSR2, lambda *_: ctl.append(False))
    held: collections.deque = collections.deque()
    draining = False
    from_hold = False   # what is draining was held on SIGUSR1 (not a burst)
    # More frames than this from the TAP in one round: the relay was off the CPU and
    # they came in a burst; they go to the bridge paced like a drain (its UDP buffer,
    # which we cannot enlarge, holds ~250 frames).
    burst = 16
    t_hold = 0.0

    def bridge_backlog() -> int:
        """Bytes waiting in the bridge's UDP receive queue (this netns's /proc/net/udp)."""
        to_port = ":%04X" % active[1]
        try:
            with open("/proc/net/udp") as f:
                for ln in f:
                    p = ln.split()
                    if len(p) > 4 and p[1].endswith(to_port):
                        return int(p[4].split(":")[1], 16)
        except (OSError, ValueError):
            pass
        return 0
    wake_r, wake_w = os.pipe()      # signals wake select() up
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    def send(frame: bytes) -> None:
        nonlocal sent_since_rx
        try:
            udp.sendto(frame, active)
            st["tap_to_udp"] += 1
            sent_since_rx += 1
        except OSError:
            # ECONNREFUSED: the bridge is not up (yet); the frame is lost.
            st["udp_send_errors"] += 1

    def save() -> None:
        if not a.stats:
            return
        st["mono"] = time.monotonic()
        tmp = a.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.rename(tmp, a.stats)

    save()
    print("relay: ready %s <-> udp %s -> %s" % (a.tap, a.listen, bridges), file=sys.stderr,
          flush=True)
    deadline = time.monotonic() + a.max_s
    next_save = 0.0
    while not stop and time.monotonic() < deadline:
        if ctl:
            next_save = 0.0  # tell at once
        while ctl:
            hold = ctl.pop(0)
            if hold and not st["holding"]:
                st["holding"], st["holds"], t_hold = True, st["holds"] + 1, time.monotonic()
            elif not hold and st["holding"]:
                draining = st["draining"] = True
                st["holding"] = False
                from_hold = True
        if draining and not st["holding"]:
            # Send what was held, in order, no faster than the bridge takes it (its UDP
            # buffer holds a few hundred frames); new frames queue behind.
            for _ in range(32):
                if not held or bridge_backlog() > 32768:
                    break
                send(held.popleft())
            if not held:
                draining = st["draining"] = False
                if from_hold:
                    st["held_max_s"] = max(st["held_max_s"], time.monotonic() - t_hold)
                from_hold = False
                next_save = 0.0
        if next_save == 0.0:
            save()
        try:
            r, _, _ = select.select([tap, udp, wake_r], [], [],
                                    0.001 if draining else 0.2)
        except InterruptedError:
            continue
        if wake_r in r:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
        if tap in r:
            for n in range(64):
                try:
                    frame = os.read(tap, 65536)
                except BlockingIOError:
                    break
                if st["holding"] or (draining and from_hold):
                    if len(held) < 100000:
                        held.append(frame[len(hdr):])
                        st["held"] += 1
                        st["held_max"] = max(st["held_max"], len(held))
                elif draining or n >= burst:
                    if len(held) < 100000:
                        held.append(frame[len(hdr):])
                        st["paced"] += 1
                    draining = st["draining"] = True
                else:
                    send(frame[len(hdr):])
        if udp in r:
            for _ in range(64):
                try:
                    frame, src = udp.recvfrom(65536)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    continue  # an earlier send found no bridge
                if src not in bridges:
                    continue
                if src != active:
                    active = src
                    st["active"], st["moves"] = src[1], st["moves"] + 1
                    st["t_moved_mono"] = time.monotonic()
                    st["sent_behind"] = sent_since_rx
                    next_save = 0.0
                sent_since_rx = 0
                try:
                    os.write(tap, hdr + frame)
                    st["udp_to_tap"] += 1
                except OSError:
                    st["tap_write_errors"] += 1
        now = time.monotonic()
        if now >= next_save:
            save()
            next_save = now + 0.5
    save()
    return 0


# ------------------------------------------------------------------------------------ bridge
def _udp_snmp(pid: int) -> dict:
    """The Udp: counters of the network namespace process `pid` is in."""
    try:
        with open("/proc/%d/net/snmp" % pid) as f:
            lines = [ln.split() for ln in f if ln.startswith("Udp:")]
        return dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))
    except (OSError, IndexError, ValueError):
        return {}


def _ppid(pid: int) -> int:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_s(pid: int) -> float:
    """utime + stime of `pid`, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Bridge(vutrace.TracedBackend):
    """vhost-user-bridge serving vm.vhost_user_sock, plus the TAP relay.  What it
    holds and what it received (sockets, messages, requests, accepts) it reads as
    every traced backend does (vutrace.TracedBackend); it starts and stops its own way.

    pid: vhost-user-bridge's pid; sock: its unix socket (the path the VM's
    -chardev connects to); trace: its strace (when trace=True).
    name: its files in the VM's work dir (NAME.stderr, NAME.strace).
    relay: start the relay (False: a second bridge on the first one's relay);
    relay_to: the bridges' UDP ports the relay serves (default: this one's).
    """

    def __init__(self, vm, binary: str, *, sock: Optional[str] = None,
                 trace: bool = True, max_s: float = 900,
                 bridge_port: int = BRIDGE_PORT, relay_port: int = RELAY_PORT,
                 name: str = "vubr", relay: bool = True,
                 relay_to: Optional[list] = None):
        self.vm = vm
        self.binary = binary
        self.sock = sock or vm.vhost_user_sock
        self.trace = vm.path(name + ".strace") if trace else ""
        self.max_s = max_s
        self.bridge_port = bridge_port
        self.relay_port = relay_port
        self.with_relay = relay
        self.relay_to = relay_to or [bridge_port]
        self.log_path = vm.path(name + ".stderr")
        self.relay_log = vm.path("relay.log")
        self.relay_stats_path = vm.path("relay.json")
        self.proc: Optional[subprocess.Popen] = None
        self.relay: Optional[subprocess.Popen] = None
        self.pid = 0
        self.start()

    # -- start --------------------------------------------------------------------------------
    def start(self) -> "Bridge":
        ns = self.vm.netns
        if self.with_relay:
            # No IPv6 on the TAP: the host's router solicitations would wait in the
            # bridge's UDP buffer until the guest's RX ring runs, and the bridge spins
            # while anything waits.
            subprocess.run(ns.exec_argv(["sysctl", "-qw",
                                         "net.ipv6.conf.%s.disable_ipv6=1" % ns.tap]),
                           check=False, capture_output=True)
            self._start_relay()
        self._start_bridge()
        return self

    def _start_relay(self) -> None:
        ns = self.vm.netns
        # This module, run as one of the package (python3 -m e2e.vubr) from
        # qemu-glue/, whatever the caller's directory.
        argv = [sys.executable, "-B", "-m", __name__, "relay", "--tap", ns.tap,
                "--listen", "127.0.0.1:%d" % self.relay_port,
                "--max-s", str(self.max_s), "--parent", str(os.getpid()),
                "--stats", self.relay_stats_path]
        for port in self.relay_to:
            argv += ["--to", "127.0.0.1:%d" % port]
        if ns.vnet_hdr:
            argv.append("--vnet-hdr")
        if ns.multi_queue:
            argv.append("--multi-queue")
        self._relay_log = open(self.relay_log, "w")
        self.relay = subprocess.Popen(ns.exec_argv(argv), stdin=subprocess.DEVNULL,
                                      stdout=self._relay_log, stderr=subprocess.STDOUT,
                                      cwd=os.path.dirname(HERE))
        deadline = time.monotonic() + 10
        while not os.path.exists(self.relay_stats_path):
            if self.relay.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("relay did not come up: " + read_text(self.relay_log))
            time.sleep(0.02)

    def _start_bridge(self) -> None:
        ns = self.vm.netns
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        argv = [self.binary, "-u", self.sock,
                "-l", "127.0.0.1:%d" % self.bridge_port,
                "-r", "127.0.0.1:%d" % self.relay_port]
        if self.trace:
            # only recvmsg (and the rare accept) stops the bridge (it makes other
            # syscalls at packet rate)
            strace = [("trace=recvmsg,accept,accept4" if x == "trace=recvmsg" else x)
                      for x in vutrace.STRACE]
            argv = strace + ["--seccomp-bpf", "-o", self.trace, "--"] + argv
        # bounded: timeout(1) signals its whole process group (strace and the bridge);
        # setpriv: ... and timeout goes when the test process goes.
        argv = ["setpriv", "--pdeathsig", "TERM", "--",
                "timeout", "-k", "5", str(int(self.max_s))] + argv
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(ns.exec_argv(argv), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.pid = self.pid or vutrace.descendant_running(self.proc.pid, self.binary,
                                                                 timeout=0)
            except TimeoutError:
                pass
            # up when the unix socket is there and it also holds its UDP socket
            if self.pid and os.path.exists(self.sock) and len(self.sockets()) >= 2:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vhost-user-bridge did not come up (rc %s): %s" % (
                    self.proc.poll(), self.log_text()[-1500:]))
            time.sleep(0.02)
        # the bridge and its strace (the bridge's parent) are single-threaded
        for pid in (self.pid, _ppid(self.pid) if self.trace else 0):
            try:
                if pid:
                    os.setpriority(os.PRIO_PROCESS, pid, NET_NICE)
            except OSError:
                pass
        if self.vm.uid is not None:  # the VM's unprivileged QEMU connects
            os.chown(self.sock, self.vm.uid,
                     self.vm.gid if self.vm.gid is not None else self.vm.uid)

    @property
    def tx_frames(self) -> int:
        """Frames the bridge sent: the TX hexdumps on its stderr (qemu_hexdump:
        "TX:: 0000: 52 54 00 ...", one line per 16 bytes)."""
        n = 0
        with open(self.log_path, "rb") as f:
            for line in f:
                if line.startswith(b"TX:") and line[3:].lstrip(b":").startswith(b" 0000:"):
                    n += 1
        return n

    # -- state ----------------------------------------------------------------------------------
    def alive(self) -> bool:
        return bool(self.pid) and os.path.exists("/proc/%d" % self.pid)

    def connection(self) -> set:
        """Inodes of the bridge's connected unix sockets: the vhost-user connection and the
        backend channel (SET_BACKEND_REQ_FD)."""
        mine = self.sockets()
        out = set()
        with open("/proc/%d/net/unix" % self.pid) as f:
            next(f)
            for ln in f:
                p = ln.split()
                # Num RefCount Protocol Flags Type St Inode [Path]; St 03 = connected
                if len(p) >= 7 and p[5] == "03" and int(p[6]) in mine:
                    out.add(int(p[6]))
        return out

    def udp_counters(self) -> dict:
        """The netns's Udp counters (RcvbufErrors: datagrams dropped on a full buffer)."""
        return _udp_snmp(self.pid or (self.relay.pid if self.relay else os.getpid()))

    def udp_queue(self) -> int:
        """Bytes waiting in the bridge's UDP receive queue (/proc/net/udp rx_queue)."""
        with open("/proc/%d/net/udp" % self.pid) as f:
            next(f)
            for ln in f:
                p = ln.split()
                if p[1].endswith(":%04X" % self.bridge_port):
                    return int(p[4].split(":")[1], 16)
        return 0

    def cpu_s(self) -> float:
        """CPU seconds the bridge has used."""
        return _cpu_s(self.pid)

    def eventfds(self) -> int:
        """How many eventfds the bridge holds: its rings' kick, call (and err) fds.
        GET_VRING_BASE closes a ring's kick and call fds; SET_VRING_KICK / _CALL bring
        them back."""
        n = 0
        fddir = "/proc/%d/fd" % self.pid
        for fd in os.listdir(fddir):
            try:
                n += os.readlink(os.path.join(fddir, fd)) == "anon_inode:[eventfd]"
            except OSError:
                pass
        return n

    def _relay_wait(self, key: str, value: bool, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.relay_stats()
            if st.get(key) == value:
                return st
            time.sleep(0.002)
        raise TimeoutError("relay: %s is not %s" % (key, value))

    def hold(self) -> None:
        """The relay keeps host->guest frames from now on, and the bridge's UDP queue has
        drained.  Why: libvhost-user (QEMU 10.0) closes a ring's call eventfd at
        GET_VRING_BASE and marks the ring started again at SET_VRING_KICK, which QEMU
        sends before SET_VRING_CALL; a frame the bridge puts in the RX ring in between is
        notified on fd -1: vu_panic("Error writing eventfd: Bad file descriptor") and the
        bridge quits.  Frames that wait in its UDP buffer while the VM is stopped go in
        exactly then.  So across a stop, they wait in the relay instead (in order)."""
        assert self.relay
        self.relay.send_signal(signal.SIGUSR1)
        self._relay_wait("holding", True)
        deadline = time.monotonic() + 1.0
        while self.udp_queue() and time.monotonic() < deadline:
            time.sleep(0.002)

    def release(self, drain_s: float = 5.0) -> dict:
        """Send the held frames (paced: no faster than the bridge takes them; new frames
        queue behind) and go on.  Waits up to drain_s for them to be sent (not if the
        bridge takes nothing); returns the relay's stats ("draining": not all sent)."""
        assert self.relay
        self.relay.send_signal(signal.SIGUSR2)
        self._relay_wait("holding", False)
        try:
            return self._relay_wait("draining", False, timeout=drain_s)
        except TimeoutError:
            return self.relay_stats()

    def wait_rings(self, eventfds: int, timeout: float = 10.0) -> bool:
        """Wait until the bridge holds `eventfds` eventfds again (its rings restarted:
        kick and call fds set); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if self.eventfds() >= eventfds:
                return True
            time.sleep(0.001)
        return False

    def held(self, switch):
        """switch() with host->guest frames held in the relay until the bridge's rings
        run again (hold(), then wait_rings() and release()).  Returns (switch's result,
        the relay's stats after the release: held frames, held_max_s...; rings_back:
        whether the bridge's kick/call fds came back within wait_rings' timeout)."""
        n = self.eventfds()
        self.hold()
        try:
            res = switch()
        except BaseException:
            try:
                self.release(drain_s=0)
            except Exception:  # noqa: BLE001 (the switch's error is the one to see)
                pass
            raise
        rings = self.wait_rings(n)
        st = self.release()
        st["rings_back"] = rings
        return res, st

    def relay_stats(self) -> dict:
        try:
            with open(self.relay_stats_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def log_text(self) -> str:
        """The bridge's stderr without the TX hexdumps."""
        return "".join(ln for ln in read_text(self.log_path).splitlines(True)
                       if not ln.startswith("TX:"))

    # -- stop -----------------------------------------------------------------------------------
    def stop(self) -> None:
        for p in (self.proc, self.relay):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)  # timeout(1) passes it to its group
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in (self.proc, self.relay):
            if p:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for f in (getattr(self, "_log", None), getattr(self, "_relay_log", None)):
            if f and not f.closed:
                f.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "relay":
        sys.exit(relay_main(sys.argv[2:]))
    print("usage: python3 -m e2e.vubr relay --tap NAME [--vnet-hdr] [--listen H:P] [--to H:P] "
          "[--max-s S] [--parent PID] [--stats PATH]", file=sys.stderr)
    sys.exit(2)
