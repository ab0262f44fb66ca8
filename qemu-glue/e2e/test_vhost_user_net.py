#!/usr/bin/env python3
"""End-to-end tests: a guest's virtio-net served over vhost-user by QEMU's
tests/vhost-user-bridge (vubr.py), 1000 packets/s each way.

The path: guest virtio-net <-vhost-user-> vhost-user-bridge <-UDP on the
netns's loopback-> relay <-> TAP fdhtap0 (10.99.0.1) <-> the traffic peer,
all inside the test's network namespace.  Each test boots the guest with
the patched QEMU, streams 1000 packets/s each way, does a switch and checks:
0 lost each way (over the run, and in the window around the switch: the
peer's report and window_stats, as test_upgrade.py), the bridge's pid and
its connection (socket inodes) unchanged, and lists the vhost-user
requests the bridge received across the switch (strace, vutrace.py).

- vhost_user_net_stop_cont_loses_no_packet: QMP stop, 50 ms, cont of one
  QEMU.
  The relay holds host->guest frames across it: vhost-user-bridge
  panics when a frame waits for the guest across a plain stop/cont of
  QEMU 10.0 (see vubr.py).
- vhost_user_net_keeps_its_backend_connection: the fd-handover upgrade
  (ours.upgrade) instead, with NO hold in the relay: the rings never stop
  (the target takes them over running, with the source's kick and call
  eventfds as its notifiers), so the bridge gets 0 requests from the
  source's STOP - 1 s to the target's RESUME + 1 s, and none across the
  whole upgrade; then a stop/cont of the target (a real stop and start
  of the adopted rings) for comparison.
- vhost_user_net_three_upgrades_zero_requests_each_then_a_guest_reboot: a
  chain of three upgrades, each with 0 requests to the bridge from its
  STOP - 1 s to its RESUME + 1 s and 0 lost each way over the three; then
  the guest reboots on the third target (its rings stop and restart at the
  target's addresses, with the relay's hold) and traffic flows again.
- vhost_user_net_rollback_target_killed_source_keeps_the_backend: the
  target dies mid-handover; the source keeps the bridge and its running
  rings (0 requests, no hold in the relay), 0 lost.
- vhost_user_net_completion_inside_the_window_reaches_the_guest: the
  bridge puts frames into the guest's receive queue and signals its call
  eventfd after the source's STOP and before the target's RESUME,
  deterministically (latecall.py: the relay holds the frames for the
  guest from before the upgrade, and lets them go only while the target
  waits for the commit); the target reads that eventfd after RESUME and
  the guest receives the frames: every probe is echoed, 0 lost.

KTAP output.

  FDH_QEMU=.../qemu-system-x86_64 FDH_VUBR=.../tests/vhost-user-bridge \
      [FDH_E2E_KEEP=1] test_vhost_user_net.py [NAME-FILTER]
"""
from __future__ import annotations

import os
import sys
import threading
import time

from . import HERE

from .vm import STREAM_MARK, VM, QMPClient, mono, qmp_event_mono, window_stats
from .vubr import Bridge
from .vutrace import INIT, names, settled_requests
from . import latecall
from . import ours
from .ktap import Fail, Skip, check, diag, run, test  # noqa: F401

QEMU = os.environ.get("FDH_QEMU", "")
VUBR = os.environ.get("FDH_VUBR", "")
# 0: frames for the guest are not held in the relay across a stop/cont, and
# the bridge meets libvhost-user's restart race (see vubr.py: it exits).
HOLD = os.environ.get("FDH_VUBR_HOLD", "1") != "0"
# What a real stop and start of the rings costs the bridge (a stop/cont of
# the target after the upgrade): its rings stop, and restart at the
# target's own addresses.  The upgrade itself costs nothing.
RESTART = {"GET_VRING_BASE", "SET_VRING_ENABLE", "REM_MEM_REG", "ADD_MEM_REG",
           "SET_VRING_NUM", "SET_VRING_BASE", "SET_VRING_ADDR", "SET_VRING_KICK",
           "SET_VRING_CALL"}
KEEP = bool(os.environ.get("FDH_E2E_KEEP"))
WARMUP_S = 1.0          # traffic before the switch
TAIL_S = 1.5            # traffic after it, before the peer stops
PAUSE_S = 0.05          # stop ... cont

def with_bridge(tag: str, body) -> None:
    """body(vm, bridge) on a fresh VM (net=vhost-user) and bridge."""
    with VM(queues=1, net="vhost-user", tag=tag, keep_workdir=KEEP) as vm:
        br = Bridge(vm, VUBR)
        try:
            body(vm, br)
        except BaseException:
            diag("bridge log: " + br.log_text()[-800:])
            for q in vm.qemus:
                diag("%s stderr: %s" % (q.name, q.stderr()[-800:]))
            raise
        finally:
            for q in vm.qemus:
                q.kill()
            br.stop()
        if KEEP:
            diag("work dir kept: " + vm.workdir)

def boot(vm: VM, br: Bridge) -> None:
    vm.src = vm.start_qemu(QEMU, "src")
    boot_s = vm.src.wait_stream(timeout=300)
    init = br.requests()
    diag("boot %.1f s; the bridge saw %d requests: %s" % (
        boot_s, len(init), " ".join(names(init))))
    vm.peer = vm.start_peer(max_s=240, window_ms=3000)
    time.sleep(WARMUP_S)

# -- the switches: each returns t_mark (mono, the peer is marked), t_stop, t_resume
def stop_cont(vm: VM) -> dict:
    """QMP stop, PAUSE_S, cont on the running QEMU."""
    q = vm.src.qmp()
    t_mark = vm.peer.mark()
    stop, resume = pause(q)
    return {"t_mark": t_mark, "t_stop": qmp_event_mono(stop),
            "t_resume": qmp_event_mono(resume)}


def pause(q: QMPClient) -> tuple:
    """stop, PAUSE_S, cont; returns the STOP and RESUME events."""
    q.execute("stop")
    time.sleep(PAUSE_S)
    q.execute("cont")
    resume = q.wait_event("RESUME", timeout=10)
    return next(e for e in q.events + [resume] if e["event"] == "STOP"), resume

def upgrade(vm: VM) -> dict:
    """The fd-handover upgrade of the running QEMU to QEMU (the same binary)."""
    up = ours.upgrade(vm, QEMU)
    check(up.get("ok"), "upgrade succeeded: %s" % up.get("error"))
    diag("driver: " + ", ".join("%s %.1f ms" % (p["phase"], p["ms"])
                                for p in up["phases"]))
    rc = vm.src.wait(timeout=15)
    check(rc == 0, "source exited 0, got %s" % rc)
    return up

class Sampler(threading.Thread):
    """Largest backlog (bytes) in the bridge's UDP receive queue while running."""

    def __init__(self, br: Bridge, every: float = 0.002):
        super().__init__(daemon=True)
        self.br, self.every, self.max, self.done = br, every, 0, False

    def run(self) -> None:
        while not self.done:
            try:
                self.max = max(self.max, self.br.udp_queue())
            except (OSError, StopIteration):
                pass
            time.sleep(self.every)

    def stop(self) -> int:
        self.done = True
        self.join(2)
        return self.max

def across(vm: VM, br: Bridge, switch, what: str, hold: bool) -> tuple:
    """Boot, traffic, switch(vm), traffic; check 0 lost and the bridge's
    connection unchanged.  hold: the relay holds host->guest frames across
    the switch.  Returns (the vhost-user requests seen across, switch's
    report)."""
    boot(vm, br)
    pid0, conn0, socks0 = br.pid, br.connection(), br.sockets()
    udp0, cpu0 = br.udp_counters(), br.cpu_s()
    check(len(conn0) >= 1, "the bridge has a vhost-user connection: %s" % conn0)
    t0 = time.time()
    sampler = Sampler(br)
    sampler.start()
    if hold:
        sw, held = br.held(lambda: switch(vm))
    else:
        sw, held = switch(vm), {}
    t_done = mono()
    backlog = sampler.stop()
    cpu1 = br.cpu_s()
    reqs = settled_requests(br, t0)
    time.sleep(TAIL_S)
    rep = vm.peer.stop()
    udp1 = br.udp_counters()
    stream, echoes = vm.peer.raw()
    a, b = sw["t_mark"], t_done + 0.2
    ws, we = window_stats(stream, a, b), window_stats(echoes, a, b)
    g, h = rep["guest_to_host"], rep["host_to_guest"]

    diag("%s: the bridge saw %d requests: %s" % (what, len(reqs), " ".join(names(reqs))))
    if sw.get("t_stop"):
        t_stop_wall = sw["t_stop"] + (time.time() - mono())
        diag("  relative to STOP: " + " ".join(
            "%s@%+.1fms" % (n, (t - t_stop_wall) * 1e3) for t, n in reqs))
    if sw.get("t_stop") and sw.get("t_resume"):
        diag("STOP->RESUME %.1f ms" % ((sw["t_resume"] - sw["t_stop"]) * 1e3))
    diag("around the %s: guest->host blackout %.1f ms lost %d; host->guest blackout "
         "%.1f ms lost %d" % (what, ws["max_gap_ms"], ws["lost"], we["max_gap_ms"],
                              we["lost"]))
    diag("run: guest->host sent %d lost %d max gap %.1f ms; host->guest sent %d lost %d "
         "max gap %.1f ms" % (g["sent"], g["lost"], g["max_gap_ms"], h["sent"], h["lost"],
                              h["max_gap_ms"]))
    if hold:
        diag("relay held %d frames for the guest, at most %d at once, for %.1f ms "
             "(FDH_VUBR_HOLD=0: not held); the bridge's rings came back: %s" % (
                 held.get("held", 0), held.get("held_max", 0),
                 held.get("held_max_s", 0) * 1e3, held.get("rings_back")))
    diag("bridge: sent %d frames (TX hexdumps); UDP backlog up to %d bytes while switching, "
         "%.2f s CPU during it, netns Udp RcvbufErrors +%d; relay %s" % (
             br.tx_frames, backlog, cpu1 - cpu0,
             udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0),
             {k: v for k, v in br.relay_stats().items() if k.startswith(("tap", "udp"))}))

    check(br.alive() and br.pid == pid0, "the bridge runs, same pid %d" % pid0)
    check(br.connection() == conn0, "the bridge's connection is unchanged: %s -> %s"
          % (sorted(conn0), sorted(br.connection()) if br.alive() else "gone"))
    check(br.sockets() == socks0, "the bridge's sockets are unchanged: %s -> %s"
          % (sorted(socks0), sorted(br.sockets())))
    check(g["received"] > 500 and h["received"] > 500,
          "traffic flowed both ways (%d, %d)" % (g["received"], h["received"]))
    check(ws["lost"] == 0 and we["lost"] == 0,
          "0 lost across the %s: guest->host %d, host->guest %d"
          % (what, ws["lost"], we["lost"]))
    check(g["lost"] == 0, "0 lost guest->host over the run, got %d" % g["lost"])
    check(h["lost"] == 0, "0 lost host->guest over the run, got %d" % h["lost"])
    check(rep["guest"]["continuous"] and len(rep["guest"]["boot_ids"]) == 1,
          "guest uptime continues (no reboot): %s" % rep["guest"])
    return reqs, sw

@test
def vhost_user_net_stop_cont_loses_no_packet():
    def body(vm: VM, br: Bridge) -> None:
        reqs, _ = across(vm, br, stop_cont, "stop/cont", hold=HOLD)
        check(not {"SET_OWNER", "RESET_OWNER", "RESET_DEVICE"} & set(names(reqs)),
              "no new owner or reset on a stop/cont: %s" % names(reqs))
    with_bridge("vunsc", body)

@test
def vhost_user_net_keeps_its_backend_connection():
    def body(vm: VM, br: Bridge) -> None:
        reqs, up = across(vm, br, upgrade, "upgrade", hold=False)
        got = names(reqs)
        t_stop, t_resume = up.get("stop_wall"), up.get("resume_wall")
        check(t_stop and t_resume, "the driver reports STOP and RESUME")
        win = br.requests(t_stop - 1.0, t_resume + 1.0)
        check(not win, "0 requests from STOP-1s to RESUME+1s: %s" % names(win))
        check(not got, "0 requests across the whole upgrade: %s" % got)
        # The same switch for one QEMU, now the target: a plain stop/cont
        # (with the relay's hold, which the bridge needs for it).
        t0 = time.time()
        with QMPClient(os.path.join(up["workdir"], "target-qmp.sock")) as q:
            br.held(lambda: pause(q))
        sc = names(settled_requests(br, t0))
        diag("stop/cont of the target: %d requests: %s" % (len(sc), " ".join(sc)))
        check("GET_VRING_BASE" in sc and "SET_VRING_ADDR" in sc and set(sc) <= RESTART
              | {"SET_FEATURES"}, "a stop/cont of the target stops the adopted rings and "
              "restarts them at its own addresses: %s" % sc)
        check(br.alive(), "the bridge survives it")
    with_bridge("vunup", body)

@test
def vhost_user_net_rollback_target_killed_source_keeps_the_backend():
    def body(vm: VM, br: Bridge) -> None:
        # The source never stops its rings (it pauses, and goes on): no hold.
        reqs, up = across(vm, br, rollback, "rollback", hold=False)
        got = names(reqs)
        check(not got, "0 requests: the source goes on with the rings it never "
              "stopped: %s" % got)
    with_bridge("vunrb", body)


@test
def vhost_user_net_three_upgrades_zero_requests_each_then_a_guest_reboot():
    with_bridge("vunchain", run_chain_and_reboot)


def run_chain_and_reboot(vm: VM, br: Bridge) -> None:
    boot(vm, br)
    first = vm.src
    pid0, conn0 = br.pid, br.connection()
    t_mark = vm.peer.mark()
    for k in (1, 2, 3):
        src = vm.src
        up = ours.upgrade(vm, QEMU, mark=False)
        check(up.get("ok"), "upgrade %d succeeded: %s" % (k, up.get("error")))
        check(src.wait(timeout=15) in (0, None), "upgrade %d: the source exited" % k)
        t_stop, t_resume = up.get("stop_wall"), up.get("resume_wall")
        while time.time() < t_resume + 1.0:
            time.sleep(0.1)
        settled_requests(br, t_stop - 1.0)
        win = br.requests(t_stop - 1.0, t_resume + 1.0)
        diag("upgrade %d: STOP->RESUME %s ms, %d requests from STOP-1s to RESUME+1s"
             % (k, up.get("stop_to_resume_ms"), len(win)))
        check(not win, "upgrade %d: 0 requests: %s" % (k, names(win)))
        vm.src = ours.Target(vm, up)
        vm.qemus.append(vm.src)
    time.sleep(TAIL_S)
    rep = vm.peer.stop()
    stream, echoes = vm.peer.raw()
    ws, we = window_stats(stream, t_mark, mono()), window_stats(echoes, t_mark, mono())
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    diag("3 upgrades: guest->host sent %d lost %d max gap %.1f ms; host->guest sent %d "
         "lost %d max gap %.1f ms" % (g["sent"], g["lost"], g["max_gap_ms"], h["sent"],
                                      h["lost"], h["max_gap_ms"]))
    check(ws["lost"] == 0 and we["lost"] == 0 and g["lost"] == 0 and h["lost"] == 0,
          "0 lost each way across the 3 upgrades: %d %d" % (g["lost"], h["lost"]))
    check(rep["guest"]["continuous"] and len(rep["guest"]["boot_ids"]) == 1,
          "no reboot across them: %s" % rep["guest"])
    check(br.alive() and br.pid == pid0 and br.connection() == conn0,
          "the bridge (pid %d) and its connection are the same after 3 upgrades" % pid0)
    # The guest reboots on the third target: a real stop and start of the
    # rings (with the relay's hold: the bridge's own restart race, vubr.py).
    t0 = time.time()
    marks = first.serial().count(STREAM_MARK)
    n = br.eventfds()
    br.hold()
    try:
        with QMPClient(vm.src.qmp_path) as q:
            q.execute("system_reset")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.serial().count(STREAM_MARK) <= marks:
            time.sleep(0.5)
        rings = br.wait_rings(n)
    finally:
        br.release()
    rb = settled_requests(br, t0)
    diag("guest reboot: the bridge saw %d requests: %s" % (len(rb), " ".join(names(rb))))
    check(first.serial().count(STREAM_MARK) > marks, "the guest booted again and streams")
    check(rings and "GET_VRING_BASE" in names(rb) and "SET_VRING_ADDR" in names(rb),
          "the reboot stopped and restarted the rings: %s" % names(rb))
    vm.peer = vm.start_peer(max_s=60, window_ms=3000, tag="peer2")
    time.sleep(3)
    rep = vm.peer.stop()
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    diag("after the reboot: guest->host received %d lost %d; host->guest received %d "
         "lost %d" % (g["received"], g["lost"], h["received"], h["lost"]))
    # (the rebooted guest's stream under TCG on a loaded host: a few hundred a second)
    check(g["received"] > 100 and h["received"] > 100 and g["lost"] == 0 and h["lost"] == 0,
          "traffic flows both ways after the reboot, 0 lost (%d, %d)"
          % (g["received"], h["received"]))
    check(br.alive() and br.connection() == conn0,
          "the bridge and its connection survived the reboot")


NET_DEV = "/machine/peripheral-anon/device[0]"   # vm.py's virtio-net-pci (no id)
VIRTIO_RING_F_EVENT_IDX = 29


@test
def vhost_user_net_completion_inside_the_window_reaches_the_guest():
    with_bridge("vunlate", run_late_completion)


def run_late_completion(vm: VM, br: Bridge) -> None:
    """latecall.py with the bridge.  The guest has posted receive buffers
    (the manifest's receive queue: last_avail_idx ahead of used_idx) and
    the relay holds every frame for it from before the upgrade, so the
    bridge has nothing to put in them; the relay lets the frames go once
    the target has loaded and waits for the commit, the source stopped.
    The bridge fills the guest's buffers and signals the receive queue's
    call eventfd inside the window.  Nothing else can wake the guest's
    receive path: with VIRTIO_RING_F_EVENT_IDX (libvhost-user offers it)
    the bridge signals once when the used index passes the guest's
    used_event and then not again until the guest has run its receive
    poll, so a lost call stops every later frame too."""
    boot(vm, br)
    pid0, conn0 = br.pid, br.connection()
    udp0 = br.udp_counters()
    # Frames for the guest wait in the relay from now on (in order).
    br.hold()
    t_hold = mono()
    up, ev, src = latecall.upgrade(vm, QEMU, br.pid,
                                   let_go=lambda: br.release(drain_s=0))
    if up.get("target_pid"):
        vm.qemus.append(ours.Target(vm, up))
    t_stop, t_resume = latecall.check_window(up, ev, src, "the bridge")
    m = latecall.manifest(up)
    latecall.check_call(m, ev, up, NET_DEV, 0, "receive queue", chardev="vun0")
    feat = [d.get("acked_features", 0) for d in m["devices"]
            if d["owner"].startswith(NET_DEV)]
    check(feat and feat[0] >> VIRTIO_RING_F_EVENT_IDX & 1,
          "the guest negotiated VIRTIO_RING_F_EVENT_IDX (acked features %s): one call "
          "per crossing of its used_event, so the window's call is the one that wakes "
          "its receive path" % [hex(f) for f in feat])
    relay = br.release(drain_s=5)
    time.sleep(TAIL_S)
    rep = vm.peer.stop()
    udp1 = br.udp_counters()
    _, echoes = vm.peer.raw()
    g, h = rep["guest_to_host"], rep["host_to_guest"]
    r_mono = up["t_resume"]
    before = [q for q, t in echoes if t < t_hold]
    after = [(q, t) for q, t in echoes if t >= r_mono]
    late = [q for q, t in after if t >= r_mono + 0.5]
    diag("relay: held %d frames for the guest for %.1f ms, let go %+.1f ms after STOP; "
         "the guest echoed probes %s..%s after RESUME (%d), %d of them 0.5 s or more "
         "after it; netns Udp RcvbufErrors +%d" % (
             relay.get("held", 0), relay.get("held_max_s", 0) * 1e3,
             (ev["t_shut"] - t_stop) * 1e3, after[0][0] if after else "-",
             after[-1][0] if after else "-", len(after), len(late),
             udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0)))
    diag("run: guest->host sent %d lost %d; host->guest sent %d lost %d max gap %.1f ms"
         % (g["sent"], g["lost"], h["sent"], h["lost"], h["max_gap_ms"]))
    check(relay.get("held", 0) > 0 and not relay.get("draining"),
          "the relay held frames for the guest and has sent them all: %s" % relay)
    check(before and after and after[0][0] > max(before),
          "the probes held in the relay were echoed after RESUME (first %s, the last "
          "before the hold %s)" % (after[0][0] if after else None,
                                   max(before) if before else None))
    check(len(late) > 300, "the guest's receive path goes on after RESUME (%d probes "
          "echoed 0.5 s or more after it): the call of the window was delivered" % len(late))
    check(h["lost"] == 0 and g["lost"] == 0,
          "0 lost each way over the run: host->guest %d, guest->host %d"
          % (h["lost"], g["lost"]))
    win = br.requests(t_stop - 1.0, t_resume + 1.0)
    sw = settled_requests(br, t_stop - 1.0)
    check(not win and not sw, "0 requests to the bridge from STOP-1s on: %s"
          % names(sw))
    check(br.alive() and br.pid == pid0 and br.connection() == conn0,
          "the bridge (pid %d) and its connection are unchanged" % pid0)


def rollback(vm: VM) -> dict:
    """The target dies mid-handover (die_on_incoming.py): the source goes on."""
    wrapper = "%s %s --" % (sys.executable, os.path.join(HERE, "die_on_incoming.py"))
    up = ours.upgrade(vm, QEMU, target_wrapper=wrapper)
    check(not up.get("ok"), "the upgrade fails")
    diag("error: " + (up.get("error") or "").splitlines()[0])
    check(vm.src.alive(), "the source is alive")
    stq = vm.src.qmp().execute("query-status")["status"]
    check(stq == "running", "the source VM runs: %s" % stq)
    return up


if __name__ == "__main__":
    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set"),
                          (VUBR, "FDH_VUBR (QEMU's tests/vhost-user-bridge) not set")]))
