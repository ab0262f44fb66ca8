"""The fd-handover upgrade as the e2e tests and bench/upgrade run it.

upgrade(vm, new_qemu) runs `$FDH_CLI -j upgrade` (the C driver, tools/
cmd-upgrade.c) inside the VM's network namespace, as the VM's uid, against
the running source vm.src, and returns its JSON report plus the fields
bench/upgrade reads (t_mark, t_stop, t_resume, ...).  driver="python" runs
the Python driver the C one replaced (bench/fdh_upgrade.py), kept only so
that bench/upgrade can compare the two in the same run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

from .vm import VM, mono, read_text, realtime_to_mono

from . import HERE
PY_DRIVER = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench",
                         "fdh_upgrade.py")


def cli_path() -> str:
    cli = os.environ.get("FDH_CLI", "")
    if not cli or not os.access(cli, os.X_OK):
        raise RuntimeError("FDH_CLI (the fd-handover command) is not set or "
                           "not executable: %r" % cli)
    return cli


def _runnable_by(uid: Optional[int], workdir: str, driver: str) -> list[str]:
    """The driver's argv head.  For a uid other than root, a copy in the
    workdir, as an operator would run an installed one: the checkout may
    not be readable by that uid (a CI clone in a 0700 mktemp dir)."""
    if driver == "python":
        if not uid:
            return [sys.executable, PY_DRIVER, "--json"]
        for f in (PY_DRIVER, os.path.join(HERE, "qmp.py")):
            shutil.copy(f, workdir)
        return [sys.executable, os.path.join(workdir, "fdh_upgrade.py"),
                "--json"]
    cli = cli_path()
    if not uid:
        return [cli, "-j"]
    # The build tree's binary finds libfdhandover by its rpath into the
    # checkout: copy both.
    libs = subprocess.run(["ldd", cli], capture_output=True, text=True).stdout
    for line in libs.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libfdhandover.so") and len(parts) > 2:
            shutil.copy(parts[2], os.path.join(workdir, parts[0]))
    shutil.copy(cli, workdir)
    for f in os.listdir(workdir):
        os.chown(os.path.join(workdir, f), uid, uid)
    return ["env", "LD_LIBRARY_PATH=" + workdir,
            os.path.join(workdir, os.path.basename(cli)), "-j"]


def upgrade(vm: VM, new_qemu: str, *, uid: Optional[int] = None,
            target_wrapper: str = "", timeout: float = 60.0,
            mark: bool = True, keep_source: bool = False,
            driver: str = "c", extra: Optional[list[str]] = None,
            workdir_uid: Optional[int] = None,
            during: Optional[Callable[[subprocess.Popen, str], None]] = None
            ) -> dict:
    """Upgrade vm.src to new_qemu.  uid: run the driver (and so the target)
    as this uid; default the VM's.  keep_source: leave the source alive
    after the switch (fence tests).  driver: "c" (`fd-handover upgrade`)
    or "python" (the old driver, bench only).  extra: more arguments.
    workdir_uid: owner of the workdir when not the driver's uid (a target
    that a wrapper runs as another uid creates its monitor socket there).
    during(proc, workdir): called once the driver runs (to signal it).
    Returns the report; report["ok"] says whether it succeeded ("error"
    says why when not)."""
    n = 1
    while os.path.exists(vm.path("upgrade-%d" % n)):
        n += 1
    workdir = vm.path("upgrade-%d" % n)
    run_uid = vm.uid if uid is None else uid
    # Private to whoever runs the driver (issue 13: never world-writable).
    os.makedirs(workdir, mode=0o700)
    owner = workdir_uid if workdir_uid is not None else run_uid
    if owner is not None:
        os.chown(workdir, owner, owner)
    argv = _runnable_by(run_uid, workdir, driver) + [
        "upgrade" if driver == "c" else "",
        "--qmp", vm.path(vm.src.name + ".qmp"), "--new-qemu", new_qemu,
        "--workdir", workdir, "--timeout", str(timeout)]
    argv = [a for a in argv if a]
    if target_wrapper:
        argv += ["--target-wrapper", target_wrapper]
    if keep_source:
        argv.append("--keep-source")
    argv += extra or []
    full = vm.netns.exec_argv(argv, uid=run_uid, gid=run_uid)
    vm.src.close_qmp()  # the driver talks to the source's monitor now
    t_mark = vm.peer.mark() if mark and getattr(vm, "peer", None) else mono()
    p = subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    if during:
        during(p, workdir)
    try:
        out, err = p.communicate(timeout=timeout * 4)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    try:
        rep = json.loads(out)
    except ValueError:
        rep = {"ok": False,
               "error": "driver exit %d, no JSON: %s %s" % (
                   p.returncode, out[-800:], err[-800:])}
    rep["driver_rc"] = p.returncode
    rep["driver_stderr"] = err
    rep["workdir"] = workdir
    rep["t_mark"] = t_mark
    rep["t_running"] = mono()
    if "stop_wall" in rep:
        rep["t_stop"] = realtime_to_mono(rep["stop_wall"])
    if "resume_wall" in rep:
        rep["t_resume"] = realtime_to_mono(rep["resume_wall"])
    rep["downtime_ms"] = rep.get("qemu_downtime_ms")
    rep["migrate_running_ms"] = rep.get("migrate_to_running_ms")
    return rep


def signal_when(path_in_workdir: str, sig: int, *, after_s: float = 0.0,
                timeout: float = 60.0) -> Callable[[subprocess.Popen, str], None]:
    """A `during` for upgrade(): once WORKDIR/path_in_workdir exists, wait
    after_s, then send sig to the driver (the process that `ip netns exec`
    and setpriv became: the pid Popen returned)."""
    def during(p: subprocess.Popen, workdir: str) -> None:
        end = time.monotonic() + timeout
        path = os.path.join(workdir, path_in_workdir)
        while time.monotonic() < end and p.poll() is None:
            if os.path.exists(path):
                time.sleep(after_s)
                p.send_signal(sig)
                return
            time.sleep(0.002)
    return during


class Shim:
    """What upgrade() reads of vm.src when a test puts a QMP proxy in front
    of the source: the monitor it hands the driver is vm.path(name + '.qmp'),
    the proxy's socket."""

    def __init__(self, name: str):
        self.name = name

    def close_qmp(self) -> None:
        pass


class Target:
    """A target started by upgrade(), as the next upgrade's source (vm.src):
    its monitor is linked at vm.path(name + ".qmp"), where upgrade() looks."""

    def __init__(self, vm: VM, up: dict):
        self.pid = up["target_pid"]
        self.name = os.path.relpath(os.path.join(up["workdir"], "target"), vm.workdir)
        os.symlink(os.path.join(up["workdir"], "target-qmp.sock"),
                   vm.path(self.name + ".qmp"))
        self.qmp_path = os.path.join(up["workdir"], "target-qmp.sock")
        self.log_path = os.path.join(up["workdir"], "target.log")

    def close_qmp(self) -> None:
        pass

    def stderr(self) -> str:
        """What the target wrote to its log (the driver's target.log)."""
        return read_text(self.log_path)

    def alive(self) -> bool:
        return os.path.exists("/proc/%d" % self.pid)

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float = 15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.alive():
            time.sleep(0.01)
        return None if self.alive() else 0


__all__ = ["upgrade", "signal_when", "cli_path", "Target"]
