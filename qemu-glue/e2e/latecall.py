"""A backend's completion inside the switch window, made deterministic (stdlib only).

Shared by test_virtiofs.py, test_vhost_user.py and test_vhost_user_net.py.  The backend
is kept from completing while the guest has a request in flight: virtiofsd and
qemu-storage-daemon are frozen (SIGSTOP, freeze()); for vhost-user-bridge the relay on
its UDP side holds the frames for the guest (vubr.Bridge.hold()), so the receive queue's
buffers the guest posted wait.  upgrade() then runs `fd-handover upgrade` with the
target's return path held by faultproxy.py's StreamProxy, so that once the target has
loaded and sent its SHUT it waits for the commit while the source is stopped: both QEMUs
paused.  Only then is the backend let go (SIGCONT, or the relay's release); it completes
the request (the bridge: puts the held frames into the receive queue) and signals the
queue's call eventfd, which upgrade() sees become readable in the backend's
/proc/PID/fdinfo (eventfd-count), before it lets the SHUT through.  The test then checks
that this happened between the source's STOP and the target's RESUME, that the eventfd
is the queue's call eventfd of the manifest, that the target read it, and that the
guest, blocked on that request, goes on.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from typing import Callable, Optional

from . import ours
from .faultproxy import QmpProxy, StreamProxy
from .ktap import check, diag


def eventfd_counts(pid: int) -> dict:
    """{eventfd-id: count} of the eventfds process `pid` holds."""
    out = {}
    fddir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                t = f.read()
        except OSError:
            continue
        i = re.search(r"^eventfd-id:\s*(\d+)", t, re.M)
        c = re.search(r"^eventfd-count:\s*(\S+)", t, re.M)
        if i and c:
            out[int(i.group(1))] = int(c.group(1), 16)
    return out


def frozen(pid: int) -> bool:
    """Every thread of pid has stopped.  kill(SIGSTOP) returns before a group
    stop reaches every thread, and one woken by data meanwhile can still act
    (a daemon's I/O thread; a source's return-path thread, which commits
    right on the target's SHUT since patch 0029)."""
    states = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except OSError:
            pass                # a thread that exited meanwhile
    return bool(states) and all(st in "tT" for st in states)


def read_by(pid: int, eventfd_id: int, timeout: float = 2.0) -> bool:
    """Whether process `pid` reads eventfd `eventfd_id`: its count is seen at 0
    within `timeout` (sampled; the guest's I/O goes on, so later completions
    raise it again, but an eventfd nobody reads never drops back to 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if eventfd_counts(pid).get(eventfd_id) == 0:
            return True
        time.sleep(0.0005)
    return False


def freeze(pid: int, timeout: float = 5.0) -> bool:
    """SIGSTOP pid; True once every thread of it has stopped."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not frozen(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return frozen(pid)


def upgrade(vm, qemu: str, pid: int, let_go: Optional[Callable[[], None]] = None) -> tuple:
    """Upgrade vm.src to `qemu` with the held-back backend `pid` let go only while both
    QEMUs are paused (see the module's doc).  let_go(): what lets it go (default: SIGCONT
    to the frozen `pid`); called once, also if the upgrade fails before.  Returns (the
    driver's report, ev, the source): ev has t_shut (wall clock: the target's SHUT
    seen), t_call (an eventfd of the backend became readable) and hot ({eventfd-id:
    count} of those), or error."""
    ev: dict = {}
    go_done: list = []

    def go() -> None:
        if go_done:
            return
        go_done.append(1)
        if let_go:
            let_go()
        elif os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGCONT)

    def hold_shut(proxy: QmpProxy, line: bytes) -> None:
        s = StreamProxy(ev["workdir"])
        s.hold_up_from_shut = True  # the PONG passes: the source stops after it (0030)
        ev["stream"] = s
        proxy.send_up(line)

    def during(p, workdir: str) -> None:
        ev["workdir"] = workdir
        end = time.monotonic() + 30
        while "stream" not in ev and time.monotonic() < end:
            time.sleep(0.005)
        s = ev.get("stream")
        if not s or not s.wait(lambda s: s.shut_seen(), 20):
            ev["error"] = "the target sent no SHUT"
            return
        ev["t_shut"] = time.time()
        before = eventfd_counts(pid)
        go()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            hot = {i: c for i, c in eventfd_counts(pid).items() if c and not before.get(i)}
            if hot:
                ev["t_call"] = time.time()
                ev["hot"] = hot
                break
            time.sleep(0.002)
        s.set_hold("up", False)

    name = "lateproxy"
    src = vm.src
    src.close_qmp()
    proxy = QmpProxy(vm.path(name + ".qmp"), src.qmp_path, {"migrate": hold_shut})
    vm.src = ours.Shim(name)
    try:
        up = ours.upgrade(vm, qemu, mark=False, during=during)
    finally:
        go()
        proxy.close()
        if "stream" in ev:
            ev["stream"].close()
    return up, ev, src


def manifest(up: dict) -> dict:
    """`fd-handover manifest show` of the stream's manifest (its JSON form)."""
    p = subprocess.run([ours.cli_path(), "--json", "manifest", "show",
                        up["stream_manifest"]], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "fd-handover manifest show: exit %d %s"
          % (p.returncode, p.stderr[-300:]))
    return json.loads(p.stdout)


def check_window(up: dict, ev: dict, src, who: str) -> tuple:
    """upgrade()'s result as both late-completion tests check it: the upgrade
    succeeded, the source exited 0, and the backend (`who`) signalled a call
    eventfd after the source's STOP and before the target's RESUME.  Returns
    (STOP, RESUME), wall clock."""
    check(up.get("ok"), "upgrade succeeded: %s %s" % (up.get("error"), ev.get("error", "")))
    check(src.wait(timeout=15) == 0, "the source exited 0")
    t_stop, t_resume = up.get("stop_wall"), up.get("resume_wall")
    check("t_call" in ev, "%s signalled a call eventfd once let go: %s" % (who, ev))
    diag("STOP %.3f, target loaded (SHUT) %+.1f ms, %s let go, call signalled "
         "%+.1f ms (eventfd-id: count %s), RESUME %+.1f ms"
         % (t_stop, (ev["t_shut"] - t_stop) * 1e3, who, (ev["t_call"] - t_stop) * 1e3,
            ev["hot"], (t_resume - t_stop) * 1e3))
    check(t_stop < ev["t_call"] < t_resume,
          "the completion was signalled after the source's STOP and before the "
          "target's RESUME")
    return t_stop, t_resume


def check_call(m: dict, ev: dict, up: dict, device: str, queue: int, what: str,
               chardev: str = "vu0") -> None:
    """In the stream's manifest m: the eventfd the backend signalled is queue
    `queue`'s call eventfd (CHARDEV.call QUEUE; `what` names the queue), that queue
    of /machine/peripheral/DEVICE (DEVICE: that QOM path if it starts with "/") had
    a request in flight when the source paused (for a receive queue: buffers the
    guest posted for the backend to fill), and the target reads the eventfd."""
    by = {(e["owner"], e["index"]): e for e in m["entries"]}
    call = by.get((chardev + ".call", queue), {}).get("kind_id")
    check(call in ev["hot"], "the eventfd signalled is the %s's call eventfd "
          "(%s.call %d, eventfd-id %s)" % (what, chardev, queue, call))
    owner = device if device.startswith("/") else "/machine/peripheral/" + device
    rings = [r for dv in m["devices"] if dv["owner"].startswith(owner)
             for r in dv["vrings"]]
    diag("the %s at the pause: %s" % (what, rings[queue:]))
    check(len(rings) > queue and rings[queue]["last_avail_idx"] != rings[queue]["used_idx"],
          "a request was in flight when the source paused: %s" % rings[queue:])
    check(read_by(up["target_pid"], call),
          "the target reads that eventfd (its count drops to 0)")
