"""The fd-handover upgrade as the e2e tests and bench/upgrade run it.

upgrade(vm, new_qemu) runs qemu-glue/fdh_upgrade.py (the same driver as
`fd-handover upgrade`) inside the VM's network namespace, as the VM's uid,
against the running source vm.src, and returns the driver's JSON report
plus the fields bench/upgrade reads (t_mark, t_stop, t_resume, ...).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Optional

from vm import VM, mono, realtime_to_mono

GLUE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(GLUE, "fdh_upgrade.py")
KEEP_SOURCE_DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                  "upgrade_keep_source.py")


def upgrade(vm: VM, new_qemu: str, *, uid: Optional[int] = None,
            target_wrapper: str = "", timeout: float = 60.0,
            mark: bool = True, cli: str = "", keep_source: bool = False) -> dict:
    """Upgrade vm.src to new_qemu.  uid: run the driver (and so the target)
    as this uid; default the VM's.  cli: go through `fd-handover -j
    upgrade` (this path to the command) instead of the driver script.
    keep_source: leave the source alive after the switch (fence tests).
    Returns the report; report["ok"] says whether it succeeded ("error"
    says why when not)."""
    n = 1
    while os.path.exists(vm.path("upgrade-%d" % n)):
        n += 1
    workdir = vm.path("upgrade-%d" % n)
    os.makedirs(workdir)
    run_uid = vm.uid if uid is None else uid
    driver = KEEP_SOURCE_DRIVER if keep_source else DRIVER
    if run_uid is not None:
        os.chmod(workdir, 0o777)
        if not cli and not keep_source:
            # The checkout may not be readable by that uid (a CI clone in
            # a 0700 mktemp dir): run a copy of the driver from the workdir,
            # as an operator would run an installed one.
            for f in ("fdh_upgrade.py", "qmp.py"):
                shutil.copy(os.path.join(GLUE, f), workdir)
            driver = os.path.join(workdir, "fdh_upgrade.py")
    front = [cli, "-j", "upgrade"] if cli else [sys.executable, driver, "--json"]
    argv = front + ["--qmp", vm.path(vm.src.name + ".qmp"),
                    "--new-qemu", new_qemu, "--workdir", workdir,
                    "--timeout", str(timeout)]
    if target_wrapper:
        argv += ["--target-wrapper", target_wrapper]
    full = vm.netns.exec_argv(argv, uid=run_uid, gid=run_uid)
    vm.src.close_qmp()  # the driver talks to the source's monitor now
    t_mark = vm.peer.mark() if mark and getattr(vm, "peer", None) else mono()
    p = subprocess.run(full, capture_output=True, text=True,
                       timeout=timeout * 4)
    try:
        rep = json.loads(p.stdout)
    except ValueError:
        rep = {"ok": False,
               "error": "driver exit %d, no JSON: %s %s" % (
                   p.returncode, p.stdout[-800:], p.stderr[-800:])}
    rep["driver_rc"] = p.returncode
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
