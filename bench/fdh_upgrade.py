#!/usr/bin/env python3
"""The Python upgrade driver that `fd-handover upgrade` (tools/cmd-upgrade.c)
replaced, kept only as bench/upgrade's baseline for the driver overhead
(issue 12, Benchmark).  Not on the product path; not maintained beyond that.

fd-handover upgrade: replace a running QEMU by a new QEMU binary, locally.

The new (target) QEMU pulls guest RAM and TAP queues straight out of the
running (source) QEMU with pidfd_getfd(), guided by the manifest of the
source's x-query-fd-handover; the main migration stream then carries only
device state and, last, the manifest with the virtqueue state.

    fdh_upgrade.py --qmp SOCKET --new-qemu PATH [--json]
    fdh_upgrade.py --pid PID   --new-qemu PATH [--json]

Phases (one progress line each, with its duration):
  source     connect to the source's QMP, read its command line
  manifest   x-query-fd-handover on the source
  target     start the target with the same arguments plus
             -object x-fd-handover,manifest=FILE and -incoming defer;
             it pulls and verifies every fd before creating the machine
  prepare    capabilities and parameters on both (no announce: the TAP
             itself is kept)
  migrate    migrate-incoming on the target, migrate on the source
  switch     wait for the target to run
  source-exit quit the source, its threads at nice 19 so that its
             teardown does not compete with the target's first milliseconds
  manifest-in save the manifest the target received in the stream

Rollback: any failure before the source reports 'completed' kills the
target; QEMU resumes the source VM by itself when a migration fails, and
the driver checks it runs.  See Documentation/upgrade.md.

Standard library only.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

# Its QMP client is the e2e harness's (qemu-glue/e2e/qmp.py); a copy in
# the same directory (an unprivileged run copies both) comes first.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(_here), "qemu-glue", "e2e"))
sys.path.insert(0, _here)
from qmp import QMPClient, QMPConnectionError, QMPError  # noqa: E402


class UpgradeError(Exception):
    """A phase failed; the message says which and what to do."""


def now() -> float:
    return time.monotonic()


def qmp_socket_of(pid: int) -> str:
    """The unix socket path of the source's QMP monitor, from its cmdline."""
    argv = read_cmdline(pid)
    for i, arg in enumerate(argv[:-1]):
        if arg == "-qmp":
            spec = argv[i + 1]
            if spec.startswith("unix:"):
                return spec[5:].split(",")[0]
    raise UpgradeError(f"pid {pid} has no '-qmp unix:PATH' on its command "
                       "line: pass --qmp SOCKET")


def read_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise UpgradeError(f"no process {pid}") from None
    except PermissionError:
        raise UpgradeError(f"cannot read /proc/{pid}/cmdline: run as the "
                           "VM's user") from None
    return [a.decode() for a in raw.split(b"\0") if a]


def renice_threads(pid: int, nice: int) -> int:
    """Set every thread of pid to nice (Linux nice values are per thread);
    the number of threads changed."""
    n = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
            n += 1
        except OSError:
            pass    # exited meanwhile, or not ours to lower
    return n


def target_argv(source_argv: list[str], new_qemu: str, manifest: str,
                qmp_path: str) -> list[str]:
    """The source's arguments, adjusted for an incoming handover target.

    Dropped: -qmp (replaced), -incoming, -daemonize, -pidfile, and the
    x-fd-handover object of a source that was itself a target.
    Changed: -serial file:PATH becomes file:PATH.new (opening the source's
    file again would truncate it).
    Added: the x-fd-handover object and -incoming defer.
    """
    out = [new_qemu]
    skip_next = False
    args = source_argv[1:]
    for i, arg in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if arg in ("-qmp", "-incoming", "-pidfile"):
            skip_next = True
            continue
        if arg == "-daemonize":
            continue
        if arg == "-object" and i + 1 < len(args) and \
                args[i + 1].startswith("x-fd-handover,"):
            skip_next = True    # a former target's own handover object
            continue
        if i > 0 and args[i - 1] == "-serial" and arg.startswith("file:"):
            arg += ".new"
        out.append(arg)
    out += ["-object", f"x-fd-handover,id=fdh0,manifest={manifest}",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
            "-incoming", "defer"]
    return out


class Upgrade:
    def __init__(self, args):
        self.args = args
        self.phases: list[dict] = []
        self.report: dict = {"phases": self.phases}
        self.workdir = args.workdir or tempfile.mkdtemp(prefix="fdh-upgrade-")
        self.target: subprocess.Popen | None = None
        self.src: QMPClient | None = None
        self.dst: QMPClient | None = None
        self.source_was_running = False

    def say(self, text: str) -> None:
        if not self.args.json:
            print(text, flush=True)

    def phase(self, name: str, fn):
        t0 = now()
        try:
            detail = fn()
        except (QMPError, QMPConnectionError, OSError) as e:
            raise UpgradeError(f"{name}: {e}") from None
        ms = (now() - t0) * 1000
        self.phases.append({"phase": name, "ms": round(ms, 3),
                            "detail": detail or ""})
        self.say(f"{name:<12} {ms:9.1f} ms  {detail or ''}")
        return detail

    # -- phases ------------------------------------------------------
    def connect_source(self):
        a = self.args
        path = a.qmp or qmp_socket_of(a.pid)
        self.src = QMPClient(path, connect_timeout=5)
        pid = a.pid
        if pid is None:
            # The source's pid, from the kernel: the peer of our socket.
            cred = socket.socket(fileno=os.dup(self.src.fileno()))
            raw = cred.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                  struct.calcsize("3i"))
            cred.close()
            pid = struct.unpack("3i", raw)[0]
        self.source_pid = pid
        self.source_argv = read_cmdline(pid)
        status = self.src.execute("query-status")["status"]
        if status not in ("running", "paused"):
            raise UpgradeError(f"source pid {pid} is '{status}', not "
                               "running or paused")
        self.source_was_running = status == "running"
        self.report["source_pid"] = pid
        return f"pid {pid}, {status}, {os.path.basename(self.source_argv[0])}"

    def query_manifest(self):
        info = self.src.execute("x-query-fd-handover")
        self.manifest_path = os.path.join(self.workdir, "source.fdhm")
        with open(self.manifest_path, "wb") as f:
            f.write(base64.b64decode(info["manifest"]))
        self.report["manifest"] = self.manifest_path
        self.report["entries"] = info["entries"]
        return f"{info['entries']} fds -> {self.manifest_path}"

    def start_target(self):
        qmp_path = os.path.join(self.workdir, "target-qmp.sock")
        argv = shlex.split(self.args.target_wrapper) + target_argv(
            self.source_argv, self.args.new_qemu, self.manifest_path, qmp_path)
        self.report["target_argv"] = argv
        log = open(os.path.join(self.workdir, "target.log"), "wb")
        self.target = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=log,
                                       start_new_session=True)
        t_end = now() + self.args.timeout
        while now() < t_end:
            if self.target.poll() is not None:
                log.close()
                tail = open(log.name, errors="replace").read()[-2000:]
                raise UpgradeError(
                    f"target exited with {self.target.returncode} before "
                    f"its monitor came up (the source is untouched):\n{tail}")
            if os.path.exists(qmp_path):
                try:
                    self.dst = QMPClient(qmp_path, connect_timeout=0.2)
                    break
                except OSError:
                    pass
            time.sleep(0.01)
        if not self.dst:
            raise UpgradeError("target monitor did not come up in "
                               f"{self.args.timeout} s")
        info = self.dst.execute("x-query-fd-handover")
        if info["role"] != "target":
            raise UpgradeError("the target did not pull from the source")
        self.report["target_pid"] = self.target.pid
        return (f"pid {self.target.pid}, pulled {info['entries']} fds, "
                "monitor up")

    def prepare(self):
        # return-path: the source completes only once the target has
        # loaded everything and said so; a target that dies before that
        # fails the migration and the source VM runs on.
        caps = [{"capability": "x-fd-handover", "state": True},
                {"capability": "return-path", "state": True},
                {"capability": "events", "state": True}]
        self.src.execute("migrate-set-capabilities", {"capabilities": caps})
        self.src.execute("migrate-set-parameters", {"mode": "cpr-transfer"})
        self.dst.execute("migrate-set-capabilities", {"capabilities": caps})
        # The TAP itself is kept: nothing to announce.
        self.dst.execute("migrate-set-parameters", {"announce-rounds": 0})
        return "x-fd-handover, return-path, cpr-transfer, announce-rounds 0"

    def migrate(self):
        uri = "unix:" + os.path.join(self.workdir, "migrate.sock")
        self.dst.execute("migrate-incoming", {"uri": uri})
        self.t_migrate = now()
        self.report["migrate_wall"] = time.time()
        self.src.execute("migrate", {"uri": uri})
        return uri

    def switch(self):
        t_end = now() + self.args.timeout
        stop_ts = resume_ts = None
        while now() < t_end:
            for ev in self.src.get_events(wait=0.005):
                if ev["event"] == "STOP":
                    stop_ts = ev["timestamp"]
                if ev["event"] == "MIGRATION" and \
                        ev["data"]["status"] in ("failed", "cancelled"):
                    raise UpgradeError(f"migration {ev['data']['status']}")
            for ev in self.dst.get_events(wait=0.0):
                if ev["event"] == "RESUME":
                    resume_ts = ev["timestamp"]
            if resume_ts:
                break
            if self.target.poll() is not None:
                raise UpgradeError(f"target exited with "
                                   f"{self.target.returncode} during migration")
        if not resume_ts:
            raise UpgradeError("target did not resume in time")
        running_ms = (now() - self.t_migrate) * 1000
        # The target runs once it has loaded; the source says completed
        # when the target's last return-path message arrives, just after.
        while True:
            info = self.src.execute("query-migrate")
            if info.get("status") == "completed":
                break
            if info.get("status") in ("failed", "cancelled") or now() > t_end:
                raise UpgradeError(f"source migration is {info.get('status')}")
            time.sleep(0.001)

        def ts(t):
            return t["seconds"] + t["microseconds"] / 1e6

        self.report["resume_wall"] = ts(resume_ts)
        if stop_ts:
            self.report["stop_wall"] = ts(stop_ts)
        self.report["qemu_downtime_ms"] = info.get("downtime")
        self.report["migrate_to_running_ms"] = round(running_ms, 3)
        if stop_ts:
            self.report["stop_to_resume_ms"] = round(
                (ts(resume_ts) - ts(stop_ts)) * 1000, 3)
        return (f"target running; QEMU downtime {info.get('downtime')} ms, "
                f"STOP->RESUME {self.report.get('stop_to_resume_ms')} ms")

    def save_stream_manifest(self):
        # After the switch, off the guest's critical path.
        got = self.dst.execute("x-query-fd-handover")
        if "received" not in got:
            raise UpgradeError("the target has no manifest from the stream")
        path = os.path.join(self.workdir, "stream.fdhm")
        with open(path, "wb") as f:
            f.write(base64.b64decode(got["received"]))
        self.report["stream_manifest"] = path
        return path

    def quit_source(self):
        # The source's teardown (unmapping guest RAM, closing) must not
        # compete for the CPU with the target's first milliseconds, which
        # under TCG are spent refilling an empty translation cache.
        lowered = renice_threads(self.source_pid, 19)
        try:
            self.src.execute("quit")
        except Exception:
            pass  # the source may close the socket before answering
        self.src.close()
        t_end = now() + self.args.timeout
        while now() < t_end and os.path.exists(f"/proc/{self.source_pid}"):
            try:
                with open(f"/proc/{self.source_pid}/stat") as f:
                    if f.read().split(")")[-1].split()[0] == "Z":
                        break
            except OSError:
                break
            time.sleep(0.005)
        return f"pid {self.source_pid} quit ({lowered} threads at nice 19)"

    # -- driver --------------------------------------------------------
    def rollback(self, why: str) -> None:
        self.report["rolled_back"] = why
        if self.target and self.target.poll() is None:
            self.target.kill()
            self.target.wait()
        if self.src:
            try:
                st = self.src.execute("query-status")["status"]
                if st != "running" and self.source_was_running:
                    self.src.execute("cont")
                    st = self.src.execute("query-status")["status"]
                self.report["source_status"] = st
            except Exception as e:  # noqa: BLE001
                self.report["source_status"] = f"unknown ({e})"

    def run(self) -> int:
        t0 = now()
        try:
            self.phase("source", self.connect_source)
            self.phase("manifest", self.query_manifest)
            self.phase("target", self.start_target)
            self.phase("prepare", self.prepare)
            self.phase("migrate", self.migrate)
            self.phase("switch", self.switch)
        except UpgradeError as e:
            self.rollback(str(e))
            self.report["ok"] = False
            self.report["error"] = str(e)
            self.emit()
            return 1
        self.phase("source-exit", self.quit_source)
        try:
            self.phase("manifest-in", self.save_stream_manifest)
        except UpgradeError as e:
            self.report["warning"] = str(e)
        self.report["ok"] = True
        self.report["total_ms"] = round((now() - t0) * 1000, 3)
        self.emit()
        return 0

    def emit(self) -> None:
        r = self.report
        if self.args.json:
            print(json.dumps(r, indent=2 if self.args.pretty else None))
            return
        if not r.get("ok"):
            print(f"upgrade failed: {r.get('error')}", file=sys.stderr)
            if self.target:
                print(f"rolled back: target killed, source "
                      f"{r.get('source_status', '?')}", file=sys.stderr)
            else:
                print("nothing was changed: no target was started",
                      file=sys.stderr)
            return
        print(f"\nupgrade complete in {r['total_ms']:.1f} ms: target pid "
              f"{r['target_pid']} runs the VM")
        print(f"  QEMU downtime        {r.get('qemu_downtime_ms')} ms")
        print(f"  source STOP->RESUME  {r.get('stop_to_resume_ms')} ms")
        print(f"  migrate->running     {r.get('migrate_to_running_ms')} ms")
        if r.get("stream_manifest"):
            print(f"  manifest (stream)    {r['stream_manifest']}")


def on_sigterm(signum, frame):
    raise UpgradeError("driver terminated")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fd-handover upgrade",
                                description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--qmp", help="the source's QMP unix socket")
    src.add_argument("--pid", type=int, help="the source QEMU's pid")
    p.add_argument("--new-qemu", required=True, help="the new QEMU binary")
    p.add_argument("--json", action="store_true", help="JSON report")
    p.add_argument("--pretty", action="store_true", help="indented JSON")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds each waiting phase may take (default 30)")
    p.add_argument("--workdir", help="where manifests, sockets and the "
                   "target's log go (default: a new temporary directory)")
    p.add_argument("--target-wrapper", default="",
                   help="a command (split on blanks) the target's argv is "
                   "appended to, e.g. a sandbox; tests use it to deny "
                   "pidfd_getfd with seccomp")
    args = p.parse_args(argv)
    if not os.access(args.new_qemu, os.X_OK):
        print(f"fd-handover upgrade: --new-qemu {args.new_qemu}: not an "
              "executable", file=sys.stderr)
        return 2
    up = Upgrade(args)
    signal.signal(signal.SIGTERM, on_sigterm)
    return up.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
