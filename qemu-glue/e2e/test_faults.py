#!/usr/bin/env python3
"""The fault matrix of `fd-handover upgrade`: phase x fault, real QEMU, guest, traffic, disk.

Every cell boots (or reuses) a test guest that streams UDP both ways at 1000
packets/s with a peer in the test's netns and runs blkverify on a
vhost-user-blk disk served by QEMU's contrib/vhost-user-blk (FDH_VUB_BIN;
qemu-storage-daemon 10.0 has a stop race of its own, see vublk.DAEMON_RACE).
It runs `fd-handover upgrade --timeout 5` ($FDH_CLI, the C driver) on the
QEMU that owns the guest, injects one fault at one phase, and then asserts:

- exactly one QEMU runs the guest (query-status "running" on the source or
  on the target, never both), or none where the cell's expectation says so:
  the source killed before the commit, the target killed after it;
- the owner afterwards is the one Documentation/upgrade.md's commit-point
  table promises for that phase and fault;
- the guest did not reboot (its boot id, reported to the peer, is the one it
  had at the first cell on this guest);
- packets lost 0 each way, except where the guest stood still for the
  driver's timeout (SIGSTOP of the target): there at most 1000/s x (timeout
  + 3 s) per direction, and the peer's '# drops:' line says where they died;
- no fd leaked or lost: the QEMU that owns the guest afterwards holds each fd
  of the source's manifest (taken before the cell, by ino) exactly once, and a
  source that kept the guest holds as many fds as before;
- the backend's connection is alive: the daemon's pid and socket inodes are
  unchanged, and guest I/O goes on with 0 errors (where the fault is not the
  backend's death; then the cell says what became of the guest).

How each phase is hit deterministically (faultproxy.py):

  manifest     the driver talks to the source through a QMP proxy; its first
               x-query-fd-handover (before any manifest is written) is held,
               the fault injected, then the command let through.
  target       the target is SIGSTOPped as soon as it exists (the driver
               made WORKDIR/target.log; the pid is the process whose argv
               names WORKDIR/source.fdhm) and the cell checks its monitor is
               not up yet; fault; SIGCONT.
  prepared     `migrate` is held at the QMP proxy: capabilities and
               parameters are set on both QEMUs and the target listens.
  migrating    `migrate` is held long enough to put a stream proxy on
               WORKDIR/migrate.sock; the source's device state (after its
               STOP, which comes once the target answered the PING of the
               stream header: patch 0030) is held in the proxy, so it is
               sent and not loaded.
  shut (5a)     the target loaded, clearing PR_SET_PDEATHSIG just before
               its SHUT (patch 0009 does them in that order, since this
               matrix found the other order unsafe): strace (attached
               before `migrate` goes on) holds the target at the entry of
               its next prctl() for timeout + 2 s (-e
               inject=prctl:delay_enter); once it is there (/proc/PID/
               syscall: 157 0x1 0x0) and no SHUT has been sent, the driver
               goes (SIGKILL: the still-set PR_SET_PDEATHSIG takes the
               target along; or its own timeout, "stop-target": rollback).
               Documentation/upgrade.md promises the target survives the
               driver once it has sent SHUT.
  loaded       the stream proxy holds the return path: the target has
               loaded everything and sent SHUT ("loaded"), and waits for the
               commit (patch 0009, <= 10 s) which the source cannot send
               before it has the SHUT; the cell waits until the target's main
               thread is in that wait (poll() of one fd, <= 10 s: QEMU's main
               loop uses ppoll).  For a killed target, the source is
               SIGSTOPped, the SHUT delivered to it, then the target killed:
               the source reads SHUT and then finds the target gone.
  committed    the SHUT is let through, the stream towards the target held:
               the source writes its commit (FDHCOMIT) and says "completed";
               the target has not read it, so it has not resumed.  (A source
               that closes the stream after that still gets its commit
               delivered, when the cell lets go.)
  source-exit  the target runs and the source is leaving: the driver's `quit`
               to it is held, or, when the committed source quits by
               itself first (x-fd-handover-quit), the close of its monitor
               is held from the driver.
  after        the driver has returned.

A cell whose phase was missed (the target's monitor already up in
"target", ...) fails: it says so rather than testing another cell.

One guest serves cells as long as exactly one QEMU runs it with its disk;
a cell that loses the guest or kills the backend ends it, and the next cell
gets a fresh guest (booted ahead, in the background, unless
FDH_FAULTS_PREBOOT=0).  The last test writes the outcome table as Markdown
to $FDH_FAULT_MATRIX (default: $TMPDIR/fdh-fault-matrix.md) and prints it
as diagnostics; Documentation/upgrade.md carries one from a real run.

  FDH_QEMU=... FDH_VUB_BIN=... FDH_CLI=... test_faults.py [NAME-FILTER]
"""
from __future__ import annotations

import base64
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import HERE

from .vm import VM, fd_count, pid_alive, wait_dead
from .qmp import QMPClient
from . import ours
from . import vublk
from .faultproxy import COMMIT, QmpProxy, StreamProxy
from . import ktap
from . import latecall
from .ktap import Fail, check, diag, note, run, test

QEMU = os.environ.get("FDH_QEMU", "")
VUB = os.environ.get("FDH_VUB_BIN", "")
CLI = os.environ.get("FDH_CLI", "")
TABLE = os.environ.get("FDH_FAULT_MATRIX",
                       os.path.join(tempfile.gettempdir(), "fdh-fault-matrix.md"))
PREBOOT = os.environ.get("FDH_FAULTS_PREBOOT", "1") != "0"
TIMEOUT_S = 5           # the driver's --timeout
PPS = 1000
WARMUP_S = 1.0          # traffic before the upgrade starts
TAIL_S = 1.5            # traffic after the outcome settled
# A cell in which the guest stands still for the driver's timeout may lose
# what the TAP and the guest's socket cannot queue: per direction at most
LONG_PAUSE_LOSS = PPS * (TIMEOUT_S + 3)
HOLD_PRCTL_S = TIMEOUT_S + 2   # row 5a: the target held past the driver's timeout
SOURCE_QUIT_S = 15             # a committed source's fence and teardown, loaded host

PHASES = [
    ("manifest", "1 before the manifest"),
    ("target", "2 target starts and pulls"),
    ("prepared", "3 prepared"),
    ("migrating", "4 migrating (device state in flight)"),
    ("shut", "5a target loaded, clearing PR_SET_PDEATHSIG, SHUT not sent"),
    ("loaded", "5 target loaded, SHUT sent, waiting for the commit"),
    ("committed", "commit: source completed, target not yet resumed"),
    ("source-exit", "6 source quits"),
    ("after", "7 after the upgrade"),
]
FAULTS = ["kill-source", "kill-target", "kill-driver", "term-driver", "kill-backend",
          "stop-target"]
FAULT_TEXT = {"kill-source": "SIGKILL source", "kill-target": "SIGKILL target",
              "kill-driver": "SIGKILL driver", "term-driver": "SIGTERM driver",
              "kill-backend": "SIGKILL backend",
              "stop-target": "SIGSTOP target %d s+" % TIMEOUT_S}

# Who owns the guest afterwards (Documentation/upgrade.md, the commit point).
# None: not a cell (nothing to hit: no target yet, or no driver/source left).
_BEFORE = {"kill-source": "none", "kill-target": "source", "kill-driver": "source",
           "term-driver": "source",
           "kill-backend": "source", "stop-target": "source"}
_AFTER = {"kill-source": "target", "kill-target": "none", "kill-driver": "target",
          "term-driver": "target",
          "kill-backend": "target", "stop-target": "target"}
EXPECT = {}
for _p, _ in PHASES:
    for _f in FAULTS:
        if _p in ("manifest", "target", "prepared", "migrating"):
            EXPECT[(_p, _f)] = _BEFORE[_f]
        elif _p == "loaded":
            # The SHUT is sent: the target lives on without the driver, and
            # a stopped target is committed to once the SHUT reaches the source.
            EXPECT[(_p, _f)] = {"kill-driver": "target", "stop-target": "target"}.get(
                _f, _BEFORE[_f])
        elif _p == "shut":
            # No SHUT yet: the source cannot have committed.
            EXPECT[(_p, _f)] = _BEFORE[_f]
        else:
            EXPECT[(_p, _f)] = _AFTER[_f]
for _f in ("kill-target", "stop-target"):
    EXPECT.pop(("manifest", _f))          # no target yet
for _f in ("kill-source", "kill-driver"):
    EXPECT.pop(("after", _f))             # the source has exited, the driver returned
# 5a: the instant between the target's SHUT and its clearing PR_SET_PDEATHSIG
# (patch 0009 does them in that order).  Only the faults that act through
# the driver's exit differ from row 5; Documentation/upgrade.md promises the
# target survives the driver once it has sent SHUT.
for _f in ("kill-source", "kill-target", "kill-backend"):
    EXPECT.pop(("shut", _f))
# SIGTERM to the driver: one phase before the commit (it rolls back), two
# after it (it ends, and nothing else: the source quits by itself).
for _k in [k for k in EXPECT if k[1] == "term-driver"]:
    if _k[0] not in ("prepared", "committed", "source-exit"):
        EXPECT.pop(_k)
# The backend killed before the target adopted anything: which QEMU keeps
# the (diskless) guest is what the run shows; exactly one must.
for _p in ("manifest", "target", "prepared", "migrating", "loaded"):
    EXPECT[(_p, "kill-backend")] = "one"

# The order: cells that leave a running guest with its disk first, then one
# that does not (it ends that guest), and so on; the cells that need a fresh
# guest each come last.
SCHEDULE = [
    ("manifest", "kill-driver"), ("target", "kill-target"), ("target", "kill-driver"),
    ("target", "stop-target"), ("manifest", "kill-source"),
    ("prepared", "kill-target"), ("prepared", "kill-driver"), ("prepared", "stop-target"),
    ("manifest", "kill-backend"),
    ("migrating", "kill-target"), ("migrating", "kill-driver"),
    ("migrating", "stop-target"), ("target", "kill-source"),
    ("loaded", "kill-target"), ("loaded", "kill-driver"), ("target", "kill-backend"),
    ("loaded", "stop-target"), ("committed", "kill-source"), ("prepared", "kill-source"),
    ("committed", "kill-driver"), ("committed", "stop-target"), ("prepared", "kill-backend"),
    ("source-exit", "kill-source"), ("source-exit", "kill-driver"),
    ("migrating", "kill-source"),
    ("source-exit", "stop-target"), ("after", "stop-target"), ("migrating", "kill-backend"),
    ("loaded", "kill-source"), ("loaded", "kill-backend"),
    ("committed", "kill-target"), ("committed", "kill-backend"),
    ("source-exit", "kill-target"), ("source-exit", "kill-backend"),
    ("after", "kill-target"), ("after", "kill-backend"),
    ("shut", "kill-driver"), ("shut", "stop-target"),
    ("prepared", "term-driver"), ("committed", "term-driver"), ("source-exit", "term-driver"),
]
assert sorted(SCHEDULE) == sorted(EXPECT), set(EXPECT) ^ set(SCHEDULE)

ROWS: dict = {}                 # (phase, fault) -> the cell's outcome
# The guest's socket holds ~330-450 probes (README: the tail of the
# post-resume burst): a guest that stood still longer than this may lose
# the burst's tail in its own receive buffer, whoever made it stand still.
BURST_MS = 300


class EnvLoss(Fail):
    """Packets lost in the guest's own UDP receive buffer after a long
    stand-still (CPU starvation of this 2-core host, or our holds): the cell
    is run once more, and says so."""
T0 = time.monotonic()


def ends_guest(phase: str, fault: str) -> bool:
    """The cell leaves no guest with its disk to reuse."""
    return fault == "kill-backend" or EXPECT[(phase, fault)] == "none"


# ---------------------------------------------------------------------------- processes
def targets_of(workdir: str) -> list:
    """Live pids whose argv names this upgrade's manifest: its target."""
    mark = os.path.join(workdir, "source.fdhm").encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if mark in f.read() and pid_alive(int(d)):
                    out.append(int(d))
        except OSError:
            pass
    return out


def children_of(pid: int) -> list:
    """pid's children (/proc/PID/task/*/children)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def syscall_of(pid: int) -> str:
    """What pid's main thread waits in (/proc/PID/syscall: number, args)."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().strip()
    except OSError as e:
        return "? (%s)" % e


def cli_json(*args: str) -> dict:
    p = subprocess.run([CLI, "--json", *args], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise Fail("fd-handover %s: exit %d: %s %s" % (
            " ".join(args), p.returncode, p.stdout[-300:], p.stderr[-300:]))
    return json.loads(p.stdout)


def qmp_status(path: str, timeout: float = 15.0) -> str:
    try:
        with QMPClient(path, connect_timeout=2, timeout=timeout) as q:
            return q.execute("query-status")["status"]
    except Exception as e:  # noqa: BLE001 (an unreachable monitor is an answer here)
        return "unreachable: %s" % e


# ---------------------------------------------------------------------------- one guest
class Owner:
    """The QEMU that runs the guest: the booted one, or a target of ours."""

    def __init__(self, pid: int, qmp: str, kind: str, qemu=None):
        self.pid, self.qmp, self.kind, self.qemu = pid, qmp, kind, qemu
        self.proxy = None   # a connection known to be this process's (QmpProxy)

    def status(self) -> str:
        """query-status of this very process; "dead" when it is gone."""
        if not self.alive():
            return "dead"
        if self.proxy is None:
            return qmp_status(self.qmp)
        r = self.proxy.execute("query-status")
        return r["return"]["status"] if "return" in r else \
            "dead" if not self.alive() else "unreachable: %s" % r["error"].get("desc")

    def alive(self) -> bool:
        if self.qemu is not None and self.qemu.proc is not None:
            self.qemu.proc.poll()       # reap our own child
        return pid_alive(self.pid)


class Guest:
    """A booted test guest with its vhost-user-blk backend."""

    count = 0

    def __init__(self):
        Guest.count += 1
        self.n = Guest.count
        self.t0 = time.monotonic()
        self.vm = VM(queues=1, tag="fm%d" % self.n, ram_mb=256, pps=PPS,
                     keep_workdir=bool(os.environ.get("FDH_E2E_KEEP")))
        self.vm.__enter__()
        self.daemon = None
        try:
            self.daemon = vublk.Daemon(self.vm, VUB, backend="vub")
            q = self.vm.start_qemu(QEMU, "src", extra=vublk.blk_args(self.vm, self.daemon.sock))
            q.wait_stream(timeout=400)
            q.wait_serial(r"FDH-BLK: ops=\d+", timeout=120)
        except BaseException:
            self.close()
            raise
        self.owner = Owner(q.pid, q.qmp_path, "booted", q)
        self.boot_s = time.monotonic() - self.t0
        self.daemon_pid = self.daemon.pid
        self.daemon_socks = self.daemon.sockets()
        self.boot_id = None
        self.usable = True
        self.cells = 0
        self.target_kinds = None    # fds per kind of a target of ours, once one owns it

    def serial(self) -> str:
        out = []
        for d, _, files in os.walk(self.vm.workdir):
            for f in files:
                if ".serial" in f:
                    with open(os.path.join(d, f), errors="replace") as fh:
                        out.append(fh.read())
        return "\n".join(out)

    def blk(self) -> dict:
        return vublk.blk_status(self.serial())

    def close(self) -> None:
        if self.daemon is not None:
            try:
                self.daemon.stop()
            except Exception:  # noqa: BLE001
                pass
        self.vm.__exit__(None, None, None)


class Fleet:
    """Guests in turn; the next one boots in the background while the
    current one serves its cells (FDH_FAULTS_PREBOOT)."""

    def __init__(self):
        self.cur = None
        self.spare = None           # (thread, box)
        self.boots: list = []
        self.needed = 0

    def _boot_bg(self):
        box: dict = {}

        def go():
            try:
                box["g"] = Guest()
            except BaseException as e:  # noqa: BLE001 (re-raised by guest())
                box["e"] = e
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return (t, box)

    def guest(self) -> Guest:
        if self.cur is not None and self.cur.usable:
            return self.cur
        if self.cur is not None:
            self.cur.close()
            self.cur = None
        if self.spare is not None:
            t, box = self.spare
            self.spare = None
            t.join(600)
            if "e" in box:
                raise box["e"]
            if "g" not in box:
                raise RuntimeError("a guest did not boot within 600 s")
            self.cur = box["g"]
        else:
            self.cur = Guest()
        self.boots.append(self.cur.boot_s)
        diag("guest %d booted in %.1f s (%s)" % (self.cur.n, self.cur.boot_s,
                                                 self.cur.vm.workdir))
        self.needed -= 1
        if PREBOOT and self.needed > 0:
            self.spare = self._boot_bg()
        return self.cur

    def close(self) -> None:
        if self.spare is not None:
            t, box = self.spare
            t.join(600)
            if "g" in box:
                box["g"].close()
        if self.cur is not None:
            self.cur.close()


FLEET = Fleet()


# ---------------------------------------------------------------------------- one cell
class Cell:
    def __init__(self, g: Guest, phase: str, fault: str):
        self.g, self.phase, self.fault = g, phase, fault
        self.p = None
        self.workdir = ""
        self.ready = threading.Event()
        self.stream = None
        self.stream_ready = threading.Event()
        self.target_pid = 0
        self.stopped = 0            # a target we SIGSTOPped (stop-target)
        self.frozen_source = False
        self.t_fault = 0.0
        self.hit = ""               # what showed the phase was reached
        self.missed = ""            # why it was not
        self.errors: list = []
        self.tracer = None
        self.once = threading.Lock()   # phase 6: the driver's quit or the source's close

    def target(self) -> int:
        if not self.target_pid and self.workdir:
            t = targets_of(self.workdir)
            self.target_pid = t[0] if t else 0
        return self.target_pid

    def inject(self, wait: bool = True) -> None:
        """The cell's fault, now; returns once it has taken effect (wait:
        a killed source has finished dying)."""
        self.t_fault = time.monotonic()
        f, g = self.fault, self.g
        if f == "kill-source":
            os.kill(g.owner.pid, signal.SIGKILL)
            g.owner.alive()
            if wait:
                wait_dead(g.owner.pid)
        elif f == "kill-target":
            pid = self.target()
            if not pid:
                raise Fail("no target to kill")
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid)
        elif f == "kill-driver":
            # (ours.upgrade() waits for it in another thread: no wait() here)
            os.kill(self.p.pid, signal.SIGKILL)
            wait_dead(self.p.pid)
        elif f == "term-driver":
            # It rolls back (before the commit) or just ends: it may need
            # the held command's answer for that, so it is not waited for.
            os.kill(self.p.pid, signal.SIGTERM)
        elif f == "kill-backend":
            os.kill(g.daemon_pid, signal.SIGKILL)
            wait_dead(g.daemon_pid)
            time.sleep(0.05)        # the QEMUs' main loops see the close
        elif f == "stop-target":
            pid = self.target()
            if not pid:
                raise Fail("no target to stop")
            os.kill(pid, signal.SIGSTOP)
            self.stopped = pid

    # -- phase points --------------------------------------------------------------------
    def hook_inject(self, proxy: QmpProxy, line: bytes) -> None:
        """A held command of the driver's: fault, then let it go on (unless
        the driver is gone)."""
        if not self.ready.wait(10):
            raise Fail("the driver did not start")
        with self.once:
            if self.hit:
                proxy.send_up(line)
                return
            self.hit = "driver's %s held" % json.loads(line)["execute"]
        self.inject()
        if self.fault != "kill-driver":
            proxy.send_up(line)

    def at_source_close(self, proxy: QmpProxy) -> None:
        """Phase 6 the other way: the committed source quits by itself
        (x-fd-handover-quit) before the driver's quit; its monitor closed,
        the driver not told yet: fault."""
        if not self.ready.wait(10):
            raise Fail("the driver did not start")
        with self.once:
            if self.hit:
                return
            self.hit = "the source quit by itself, its monitor's close held"
        self.inject()

    def hook_stream(self, proxy: QmpProxy, line: bytes) -> None:
        """migrate held: a stream proxy goes on migrate.sock first."""
        if not self.ready.wait(10):
            raise Fail("the driver did not start")
        if self.phase == "shut":
            self.hold_prctl()
        s = StreamProxy(self.workdir)
        if self.phase == "migrating":
            s.hold_down_after_pong = True   # the device state, after STOP
        else:
            s.hold_up_from_shut = True      # the return path, from SHUT on
        self.stream = s
        self.qmp = proxy
        self.stream_ready.set()
        proxy.send_up(line)

    def hold_prctl(self) -> None:
        """Hold the target at the entry of its next prctl() for HOLD_PRCTL_S
        (strace -e inject=prctl:delay_enter): patch 0009's
        prctl(PR_SET_PDEATHSIG, 0) after the SHUT is its next one."""
        pid = self.target()
        self.tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-p", str(pid), "-e", "trace=prctl", "-e",
             "inject=prctl:delay_enter=%d" % (HOLD_PRCTL_S * 1000000),
             "-o", os.path.join(self.workdir, "target.strace")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with open("/proc/%d/status" % pid) as f:
                if re.search(r"^TracerPid:\s*[1-9]", f.read(), re.M):
                    return
            time.sleep(0.01)
        raise Fail("strace did not attach to the target")

    def during(self, p: subprocess.Popen, workdir: str) -> None:
        self.p, self.workdir = p, workdir
        self.ready.set()
        try:
            if self.phase == "target":
                self.at_target_start()
            elif self.phase in ("migrating", "shut", "loaded", "committed"):
                self.at_stream()
        except Exception as e:  # noqa: BLE001 (the cell reports it)
            self.errors.append("%s: %s" % (type(e).__name__, e))

    def at_target_start(self) -> None:
        # The driver's child that has exec'd the new QEMU (its argv names
        # the manifest): found among the driver's children, not by a scan
        # of /proc, which may take longer than the target needs to bring
        # its monitor up on a loaded host.
        end = time.monotonic() + 3 * TIMEOUT_S
        mark = os.path.join(self.workdir, "source.fdhm").encode()
        while time.monotonic() < end and self.p.poll() is None and not self.target_pid:
            for kid in children_of(self.p.pid):
                try:
                    with open("/proc/%d/cmdline" % kid, "rb") as f:
                        if mark not in f.read():
                            continue
                except OSError:
                    continue
                os.kill(kid, signal.SIGSTOP)
                self.target_pid = kid
                break
            else:
                time.sleep(0.0005)
        if not self.target_pid:
            self.missed = "no target appeared"
            return
        if os.path.exists(os.path.join(self.workdir, "target-qmp.sock")):
            self.missed = "the target's monitor was already up"
        else:
            self.hit = "target pid %d stopped before its monitor was up (%d fds)" % (
                self.target_pid, fd_count(self.target_pid))
        if self.fault == "stop-target":
            self.stopped = self.target_pid
            self.t_fault = time.monotonic()
            return
        self.inject()
        if pid_alive(self.target_pid):
            os.kill(self.target_pid, signal.SIGCONT)

    def at_stream(self) -> None:
        if not self.stream_ready.wait(4 * TIMEOUT_S):
            self.missed = "the driver sent no migrate"
            return
        s, q = self.stream, self.qmp
        if self.phase == "migrating":
            if not q.wait_event(lambda m: m.get("event") == "STOP", 10) or \
                    not s.wait(lambda s: len(s.held["down"]) > 0 and
                               time.monotonic() - s.t_last["down"] > 0.03, 10):
                self.missed = "no device state from the source"
                return
            self.hit = "source STOPped, %d bytes of device state held" % len(s.held["down"])
            self.inject()
            s.set_hold("down", False)
            return
        if self.phase == "shut":
            self.at_pdeathsig()
            return
        if not s.wait(lambda s: s.shut_seen(), 15):
            self.missed = "no SHUT from the target"
            return
        end = time.monotonic() + 5
        while time.monotonic() < end and not in_commit_wait(self.target()):
            time.sleep(0.001)
        if not in_commit_wait(self.target()):
            self.missed = "the target sent SHUT but does not wait for the commit: %s" % \
                syscall_of(self.target())
            return
        self.hit = "target sent SHUT and waits for the commit (poll: %s)" % \
            syscall_of(self.target())[:40]
        if self.phase == "loaded":
            if self.fault == "kill-target":
                if not latecall.freeze(self.g.owner.pid):
                    raise Fail("the source (pid %d) did not stop within 5 s"
                               % self.g.owner.pid)
                self.frozen_source = True
                s.set_hold("up", False)
                self.inject()
                s.wait(lambda s: s.eof["up"], 5)
                os.kill(self.g.owner.pid, signal.SIGCONT)
                self.frozen_source = False
            else:
                self.inject()
                s.set_hold("up", False)
            return
        # committed: the commit the source writes stays with us
        self.hit += "; stream so far %d bytes%s" % (
            len(s.log["down"]), ", ending in the commit" if bytes(s.log["down"]).endswith(COMMIT)
            else "")
        s.set_hold("down", True)
        self.t_release = time.monotonic()
        s.set_hold("up", False)
        if not q.migration_status("completed", 10):
            self.missed = "the source did not complete"
            return
        s.wait(lambda s: bytes(s.held["down"]).endswith(COMMIT), 2)
        self.hit += "; source completed, commit %r held" % bytes(s.held["down"])[-8:]
        # The commit was written before the source died: the target reads
        # it while the source's exit (unmapping its RAM) goes on.
        self.inject(wait=False)
        s.set_hold("down", False)


    def at_pdeathsig(self) -> None:
        """The target has loaded and is held (hold_prctl) at the entry of
        prctl(PR_SET_PDEATHSIG, 0), its SHUT not sent: the fault now."""
        pid = self.target()
        end = time.monotonic() + 15
        while time.monotonic() < end and not syscall_of(pid).startswith("157 0x1 0x0 "):
            time.sleep(0.001)
        where = syscall_of(pid)
        if not where.startswith("157 0x1 0x0 "):
            self.missed = "the target never entered prctl(PR_SET_PDEATHSIG, 0) (%s)" % where[:40]
            return
        if self.stream.shut_seen():
            self.missed = "the target sent SHUT before clearing PR_SET_PDEATHSIG"
            return
        self.hit = "target held entering prctl(PR_SET_PDEATHSIG, 0), no SHUT sent"
        self.inject()
        self.stream.set_hold("up", False)

def in_commit_wait(pid: int) -> bool:
    """pid's main thread is in patch 0009's wait for the commit: poll() of
    one fd with at most 10 s left (QEMU's main loop uses ppoll)."""
    f = syscall_of(pid).split()
    try:
        return len(f) > 3 and f[0] == "7" and f[2] == "0x1" and int(f[3], 16) <= 10000
    except ValueError:
        return False


def reference_manifest(g: Guest, tag: str) -> list:
    """The entries of the manifest the owner would hand over now."""
    with QMPClient(g.owner.qmp, connect_timeout=5, timeout=30) as q:
        info = q.execute("x-query-fd-handover")
    path = g.vm.path("ref-%s.fdhm" % tag)
    with open(path, "wb") as f:
        f.write(base64.b64decode(info["manifest"]))
    return cli_json("manifest", "show", path)["entries"]


def fd_table(pid: int) -> list:
    return cli_json("ls", str(pid))["fds"]


def holds_once(fds: list, entries: list, skip_vu: bool) -> str:
    """'' when fds hold each non-eventfd entry of the manifest exactly once
    (by ino: memfd, TAP, vhost-user sockets); else what differs.  Eventfds
    share one anon inode: counted by the total elsewhere."""
    want = collections.Counter(e["ino"] for e in entries if e["kind"] != "eventfd" and
                               not (skip_vu and e["owner"].startswith("vu0")))
    have = collections.Counter(f["ino"] for f in fds if f["ino"] in want)
    if have == want:
        return ""
    return "manifest inos %s, held %s" % (dict(want), dict(have))


def fd_desc(f: dict) -> str:
    """One fd, for a diff: kind and what it is (a socket's peer or path)."""
    u = f.get("unix") or {}
    peer = u.get("peer") or {}
    what = u.get("path") or (peer.get("comm") and "peer %s" % peer["comm"]) or ""
    return "%s %s%s" % (f["kind"], f.get("target", ""), " (%s)" % what if what else "")


def kind_of(f: dict) -> str:
    """An fd's kind; listening unix sockets, and unix sockets whose peer no
    process holds (a monitor client that went: QEMU closes its end only
    when it next reads it), apart."""
    u = f.get("unix") or {}
    if f["kind"] != "unix":
        return f["kind"]
    if u.get("state") == "listening":
        return "unix listening"
    if not (u.get("peer") or {}).get("pid"):
        return "unix without a peer"
    return "unix"


def kinds_of(fds: list) -> collections.Counter:
    """fds per kind (kind_of)."""
    return collections.Counter(kind_of(f) for f in fds)


def fd_diff(before: list, after: list) -> tuple:
    """(gained, lost): Counters of (kind, target) between two fd tables."""
    b = collections.Counter((f["kind"], f.get("target", "")) for f in before)
    a = collections.Counter((f["kind"], f.get("target", "")) for f in after)
    return a - b, b - a


def check_fds(g: Guest, owner: str, fault: str, entries: list, before: list,
              row: dict) -> tuple:
    """(the table's fds cell, ok) for the QEMU that owns the guest now.

    Each fd of the manifest (but the eventfds, which share one anon inode)
    is held exactly once, by ino.  A source that kept the guest holds what it
    held before: nothing gained, nothing lost, except that when the backend
    died it lost that device's connection, backend channel and eventfds.  A
    target holds as many fds of each kind as the guest's previous target did
    (a QEMU closes a monitor connection a little after its client went,
    later on a loaded host; a committed source that quits by itself leaves
    no time in between: compared again for up to 10 s)."""
    vu = {e["ino"] for e in entries if e["owner"].startswith("vu0") and e["kind"] != "eventfd"}
    end = time.monotonic() + 10
    while True:
        fds = fd_table(g.owner.pid)
        diff = holds_once(fds, entries, skip_vu=(fault == "kill-backend"))
        if owner == "source":
            gained, lost = fd_diff(before, fds)
            if fault == "kill-backend":
                lost = collections.Counter({k: n for k, n in lost.items() if not (
                    k[0] == "eventfd" or any(k[1] == "socket:[%d]" % i for i in vu))})
            bad = diff or gained or lost
            ref = len(before)
        else:
            kinds = kinds_of(fds)
            prev = g.target_kinds
            gained = lost = collections.Counter()
            if prev is not None and fault != "kill-backend":
                gained, lost = kinds - prev, prev - kinds
            # A chained target also serves the monitor the previous driver
            # gave the previous target (inherited listener): reported, see
            # Documentation/upgrade.md's findings; anything else fails.
            monitors = gained.pop("unix listening", 0)
            # A closed monitor client's socket, not yet read by QEMU:
            # reported, not counted (seen in 1 of 3 CI runs, >10 s).
            dead = gained.pop("unix without a peer", 0) + lost.pop("unix without a peer", 0)
            bad = diff or gained or lost
            ref = sum(prev.values()) if prev else len(fds)
        if not bad or time.monotonic() > end:
            break
        time.sleep(0.25)
    if owner == "target" and fault != "kill-backend":
        g.target_kinds = kinds_of(fds)
    if not bad:
        text = "= (%d)" % len(fds)
        if owner == "target" and monitors:
            text += "; +%d listening monitor socket than the previous target" % monitors
        if owner == "target" and dead:
            text += "; %d closed monitor connection(s) QEMU had not read yet" % dead
        if fault == "kill-backend":
            text += "; the backend's connection, channel and eventfds closed" \
                if owner == "source" else "; vhost-user gone with the backend"
        return text, True
    byk = {(f["kind"], f.get("target", "")): f for f in fds + before}
    text = "≠ %d fds (%s %d)%s%s%s" % (
        len(fds), "were" if owner == "source" else "a target had", ref,
        "; manifest: " + diff if diff else "",
        "; gained " + ", ".join(fd_desc(byk[k]) if k in byk else str(k) for k in gained)
        if gained else "",
        "; lost " + ", ".join(fd_desc(byk[k]) if k in byk else str(k) for k in lost)
        if lost else "")
    return text, False


def restore_kept_names(g: Guest) -> None:
    """What the driver tells the operator when it did not quit the source
    itself: a listening socket the target inherited keeps its name as
    NAME.fdh-keep while the source lives (the source unlinks NAME when it
    quits); rename it back."""
    for f in os.listdir(g.vm.workdir):
        if f.endswith(".fdh-keep"):
            name = g.vm.path(f[:-len(".fdh-keep")])
            if not os.path.exists(name):
                os.rename(g.vm.path(f), name)


def settle(c: Cell, cands: dict, expect: str, timeout: float = 25.0) -> dict:
    """Wait until the candidates' states stop changing; {label: status}."""
    end = time.monotonic() + timeout
    last, same_since = None, time.monotonic()
    while True:
        st = {}
        for label, o in cands.items():
            st[label] = o.status()
        if st != last:
            last, same_since = st, time.monotonic()
        running = [k for k, v in st.items() if v == "running"]
        stable = time.monotonic() - same_since
        if len(running) == 1 and stable >= 0.5:
            return st
        if not running and expect == "none" and stable >= 2.0:
            return st
        if len(running) > 1 or time.monotonic() > end:
            return st
        time.sleep(0.1)


def run_cell(phase: str, fault: str) -> None:
    expect = EXPECT[(phase, fault)]
    g = FLEET.guest()
    g.cells += 1
    t_cell = time.monotonic()
    row = {"phase": phase, "fault": fault, "expect": expect, "guest": g.n,
           "owner": "?", "lost": "?", "reboot": "?", "fds": "?", "backend": "?",
           "driver": "?", "notes": []}
    ROWS[(phase, fault)] = row
    tag = "%d-%s-%s" % (g.cells, phase, fault)
    src = g.owner
    entries = reference_manifest(g, tag)
    src_fds0 = fd_table(src.pid)
    blk0 = g.blk()
    peer = g.vm.start_peer(max_s=180, window_ms=3000, tag="peer-" + tag)
    time.sleep(WARMUP_S)

    c = Cell(g, phase, fault)
    hooks = {}
    on_close = None
    if phase == "manifest":
        hooks["x-query-fd-handover"] = c.hook_inject
    elif phase == "prepared":
        hooks["migrate"] = c.hook_inject
    elif phase in ("migrating", "shut", "loaded", "committed"):
        hooks["migrate"] = c.hook_stream
    elif phase == "source-exit":
        hooks["quit"] = c.hook_inject
        on_close = c.at_source_close
    name = "fmproxy-%d" % g.cells
    if src.qemu is not None:
        src.qemu.close_qmp()
    proxy = QmpProxy(g.vm.path(name + ".qmp"), src.qmp, hooks, on_close)
    src.proxy = proxy
    g.vm.src = ours.Shim(name)
    try:
        cell_body(g, c, phase, fault, expect, row, src, proxy, entries, src_fds0, blk0, peer,
                  t_cell)
    finally:
        src.proxy = None
        proxy.close()


def cell_body(g, c, phase, fault, expect, row, src, proxy, entries, src_fds0, blk0, peer,
              t_cell) -> None:
    during = c.during if phase != "after" else None
    up = ours.upgrade(g.vm, QEMU, mark=False, timeout=TIMEOUT_S, during=during)
    if c.stream is not None:
        # The migration may go on without the driver (killed, or gone
        # after its timeout): the proxy stays until one side has closed.
        c.stream.wait(lambda s: s.eof["down"] or s.eof["up"], 20)
        c.stream.close()
        diag("stream: " + " ".join("%+.1fms %s %d%s %r" % (
            (t - getattr(c, "t_release", t)) * 1e3, d, n, "H" if h else "", tail)
            for t, d, n, h, tail in c.stream.timeline[-6:]))
    if c.tracer is not None:
        try:
            c.tracer.wait(HOLD_PRCTL_S + 5)
        except subprocess.TimeoutExpired:
            c.tracer.kill()
            c.tracer.wait()
    c.workdir = up["workdir"]
    if up.get("target_pid"):
        c.target_pid = up["target_pid"]
    if phase == "after":
        check(up.get("ok"), "the upgrade itself succeeded: %s" % up.get("error"))
        c.hit = "the driver returned"
        c.inject()
    err = [ln.strip() for ln in (up.get("error") or "?").splitlines() if ln.strip()]
    row["driver"] = "ok" if up.get("ok") else (
        "killed" if up.get("driver_rc") == -signal.SIGKILL else
        "error: " + " ".join(err[:2])[:220])
    errors = c.errors + proxy.errors + (c.stream.errors if c.stream else [])
    if c.frozen_source:
        os.kill(src.pid, signal.SIGCONT)
    if c.stopped and pid_alive(c.stopped):
        # Stopped past the driver's timeout; then it may go on.
        if fault == "stop-target":
            time.sleep(max(0.0, c.t_fault + TIMEOUT_S + 0.5 - time.monotonic()))
        os.kill(c.stopped, signal.SIGCONT)

    cands = {"source": src}
    if c.target():
        cands["target"] = Owner(c.target_pid, os.path.join(c.workdir, "target-qmp.sock"),
                                "target")
    st = settle(c, cands, expect)
    running = [k for k, v in st.items() if v == "running"]
    owner = running[0] if len(running) == 1 else ("none" if not running else "two")
    row["owner"] = owner
    row["states"] = st
    if owner == "target":
        new = cands["target"]
        # The driver set x-fd-handover-quit (patch 0016): committed, the
        # source exits by itself, whether the driver lives or not.
        row["source_quit"] = wait_dead(src.pid, SOURCE_QUIT_S)
        if not row["source_quit"]:
            row["notes"].append("the committed source did not quit by itself")
        if src.alive():
            # Committed and fenced: it must refuse cont.
            r = proxy.execute("cont")
            if "return" in r:
                row["notes"].append("the committed source ACCEPTED cont")
            else:
                e = r["error"].get("desc", "")
                row["notes"].append("source left committed, refused cont, quit by the test"
                                    if "handed the guest over" in e else "source cont: %s" % e)
            row["source_after_cont"] = src.status()
            proxy.execute("quit")
            wait_dead(src.pid, 10)
            src.alive()
            restore_kept_names(g)
        g.owner = new
    elif owner == "source":
        orphans = [t for t in targets_of(c.workdir)]
        if orphans:
            end = time.monotonic() + 10
            while orphans and time.monotonic() < end:
                time.sleep(0.1)
                orphans = targets_of(c.workdir)
        row["orphans"] = orphans
    else:
        g.usable = False
    if fault == "kill-backend":
        g.usable = False

    # Our connection to the source is one of its fds: gone before we count.
    src.proxy = None
    proxy.close()

    # fds of whoever owns the guest now
    fdnote = "—"
    if owner in ("source", "target"):
        fdnote, row["fds_ok"] = check_fds(g, owner, fault, entries, src_fds0, row)
    row["fds"] = fdnote

    # the backend
    if fault == "kill-backend":
        row["backend"] = "killed"
    else:
        alive = pid_alive(g.daemon_pid)
        socks = g.daemon.sockets() if alive else set()
        row["backend"] = "alive, same connection" if alive and socks == g.daemon_socks \
            else "exited with its only client (the guest is gone)" \
            if not alive and owner == "none" else "DEAD" if not alive \
            else "sockets %s, were %s" % (socks, g.daemon_socks)
    blk1 = {}
    if owner in ("source", "target"):
        end = time.monotonic() + (10 if fault != "kill-backend" else 3)
        while time.monotonic() < end:
            blk1 = g.blk()
            if blk1.get("ops", 0) > blk0.get("ops", 0) + 20:
                break
            time.sleep(0.2)
    row["blk"] = (blk0.get("ops"), blk1.get("ops"), blk1.get("ioerr"), blk1.get("bad"))

    time.sleep(TAIL_S)
    rep = peer.stop()
    gl, hl = rep["guest_to_host"]["lost"], rep["host_to_guest"]["lost"]
    ids = rep["guest"]["boot_ids"]
    if g.boot_id is None and ids:
        g.boot_id = ids[0]
    rebooted = bool(ids) and (len(ids) != 1 or ids[0] != g.boot_id)
    row["reboot"] = "yes %s" % ids if rebooted else "no" if owner != "none" else \
        "— (no reboot before it went)"
    bound = LONG_PAUSE_LOSS if fault == "stop-target" and phase != "target" else 0
    if phase == "shut":
        bound = LONG_PAUSE_LOSS     # the target stood still, held at its prctl()
    row["lost_raw"] = (gl, hl)
    row["gap_ms"] = rep["guest_to_host"].get("max_gap_ms", 0)
    gd = (rep.get("guest_drops") or {}).get("delta") or {}
    rcvbuf = gd.get("udp_rcvbuf_errors", 0)
    row["bound"] = bound
    row["lost"] = "— (guest gone)" if owner == "none" else "%d / %d%s" % (
        gl, hl, " (≤ %d: stood still %d s)" % (bound, TIMEOUT_S) if bound else "")
    row["drops"] = rep.get("drops", "")
    row["hit"] = c.hit
    row["seconds"] = time.monotonic() - t_cell
    if fault == "kill-backend" and owner in ("source", "target"):
        row["notes"].append("the guest runs without its disk (blkverify ops %s -> %s)"
                            % (blk0.get("ops"), blk1.get("ops")))
    if "no such window" in c.hit:
        row["expect"] = expect = "one"
    diag("%s / %s: owner %s (expected %s), states %s, driver %s; %s" % (
        phase, fault, owner, expect, st, row["driver"], c.hit or c.missed))

    # -- the checks ---------------------------------------------------------------------
    check(not c.missed, "the phase was hit: %s" % c.missed)
    check(not errors, "the fault was injected cleanly: %s" % errors)
    check(owner != "two", "never two running copies: %s" % st)
    if expect == "one":
        check(owner in ("source", "target"), "exactly one QEMU runs the guest: %s" % st)
    else:
        check(owner == expect, "owner afterwards %s, expected %s: %s" % (owner, expect, st))
    check(not rebooted, "the guest did not reboot: boot ids %s, was %s" % (ids, g.boot_id))
    if owner == "none":
        check(phase == "after" or not up.get("ok"),
              "the driver does not report success when the guest is gone: %s" % row["driver"])
        return
    if owner == "source":
        check(not row.get("orphans"), "no target left behind: %s" % row.get("orphans"))
    if (gl > bound or hl > bound) and rcvbuf and row["gap_ms"] > BURST_MS:
        raise EnvLoss("lost g>h %d, h>g %d after the guest stood still %.0f ms: its UDP "
                      "receive buffer overflowed on the burst (RcvbufErrors %d): %s" % (
                          gl, hl, row["gap_ms"], rcvbuf, row["drops"]))
    check(gl <= bound and hl <= bound, "lost g>h %d, h>g %d (bound %d)" % (gl, hl, bound))
    check(row.get("fds_ok"), "no fd leaked or lost: %s %s" % (fdnote, row["notes"]))
    if row.get("source_after_cont") not in (None, "postmigrate"):
        raise Fail("the committed source is %s after cont" % row["source_after_cont"])
    check(not any("ACCEPTED" in n for n in row["notes"]), "the committed source refused cont")
    if owner == "target" and fault != "kill-source":
        check(row["source_quit"], "the committed source quit by itself within %d s"
              % SOURCE_QUIT_S)
    if fault != "kill-backend":
        check(row["backend"] == "alive, same connection", "backend: %s" % row["backend"])
        check(blk1.get("ops", 0) > blk0.get("ops", 0) and blk1.get("ioerr") == 0 and
              blk1.get("bad") == 0, "guest I/O goes on, 0 errors: %s -> %s" % (blk0, blk1))


def _cell_test(phase: str, fault: str):
    def t():
        for attempt in (1, 2):
            try:
                run_cell(phase, fault)
                if attempt == 2:
                    ROWS[(phase, fault)]["notes"].append("run twice: " + first)
                return
            except EnvLoss as e:
                if attempt == 2:
                    raise
                first = str(e).split(":")[0]
                note("retried: %s" % e)
            except Exception:
                # A guest in an unknown state serves no further cell.
                if FLEET.cur is not None:
                    FLEET.cur.usable = False
                raise
    t.__name__ = "%s__%s" % (phase.replace("-", "_"), fault.replace("-", "_"))
    return t


for _p, _f in SCHEDULE:
    test(_cell_test(_p, _f))


# ---------------------------------------------------------------------------- the table
def table() -> str:
    label = dict(PHASES)
    out = ["Generated by `qemu-glue/e2e/test_faults.py` (%s; driver `--timeout %d`; "
           "TAP + vhost-user-blk, 1000 packets/s each way)." % (
               time.strftime("%Y-%m-%d"), TIMEOUT_S), "",
           "Owner afterwards, per phase and fault (expected in brackets where it differs; "
           "`one`: either QEMU, exactly one):", "",
           "| phase | " + " | ".join(FAULT_TEXT[f] for f in FAULTS) + " |",
           "|---|" + "---|" * len(FAULTS)]
    for p, _ in PHASES:
        cells = []
        for f in FAULTS:
            r = ROWS.get((p, f))
            if (p, f) not in EXPECT:
                cells.append("n/a")
            elif r is None:
                cells.append("not run")
            else:
                o = r["owner"]
                if f == "kill-backend" and o in ("source", "target"):
                    o += ", no disk"
                if r["expect"] not in (r["owner"], "one"):
                    o = "**%s** (%s)" % (o, r["expect"])
                cells.append(o)
        out.append("| %s | %s |" % (label[p], " | ".join(cells)))
    out += ["", "Every cell:", "",
            "| phase | fault | owner after | lost g>h / h>g | longest g>h gap | reboot | "
            "fds (owner's) | backend | driver | notes |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for p, _ in PHASES:
        for f in FAULTS:
            r = ROWS.get((p, f))
            if r is None:
                continue
            notes = "; ".join(r["notes"])
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label[p], FAULT_TEXT[f], r["owner"], r["lost"],
                "%.0f ms" % r["gap_ms"] if r.get("gap_ms") and r["owner"] != "none" else "—",
                r["reboot"], r["fds"],
                r["backend"], r["driver"].replace("|", "/"), notes.replace("|", "/")))
    out += ["", "%d cells in %.0f s, %d guests booted (%.0f s each on average)." % (
        len(ROWS), time.monotonic() - T0, len(FLEET.boots),
        sum(FLEET.boots) / max(1, len(FLEET.boots)))]
    return "\n".join(out) + "\n"


@test
def fault_matrix_table():
    text = table()
    with open(TABLE, "w") as f:
        f.write(text)
    diag("the fault matrix (%s):" % TABLE)
    diag(text)
    for (p, f), r in sorted(ROWS.items()):
        diag("%s / %s: %.1f s; %s; %s" % (p, f, r.get("seconds", 0), r.get("hit", ""),
                                          r.get("drops", "")))
    missing = [k for k in SCHEDULE if k not in ROWS]
    if missing and len(sys.argv) <= 1 or (len(sys.argv) > 1 and not sys.argv[1]):
        raise Fail("cells not run: %s" % missing)
    note("%d cells, %.0f s in all" % (len(ROWS), time.monotonic() - T0))


if __name__ == "__main__":
    # NAME-FILTER: a substring of the test names, or several, comma-separated
    flts = (sys.argv[1] if len(sys.argv) > 1 else "").split(",")
    sel = [k for k in SCHEDULE if any(f in _cell_test(*k).__name__ for f in flts)]
    ktap.TESTS[:] = [t for t in ktap.TESTS if any(f in t.__name__ for f in flts)]
    # guests needed: one per cell that ends its guest, plus one for the rest
    FLEET.needed = sum(ends_guest(*k) for k in sel) + (0 if sel and ends_guest(*sel[-1]) else 1)
    try:
        rc = run(sys.argv[:1], needs=[(QEMU, "FDH_QEMU (patched QEMU) not set"),
                                  (VUB, "FDH_VUB_BIN (contrib/vhost-user-blk) not set"),
                                  (CLI, "FDH_CLI (fd-handover) not set")])
    finally:
        FLEET.close()
        if ROWS:
            with open(TABLE, "w") as f:
                f.write(table())
    sys.exit(rc)
