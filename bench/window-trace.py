# bench/upgrade plugin: what happens between the source's STOP and the
# target's RESUME, step by step, for ours and for stock (issue 15).
#
#   bench/upgrade --plugin bench/window-trace.py --qemu-new QEMU \
#       --variants fd-handover-traced,cpr-transfer-traced --runs 1 --ram 512
#
# fd-handover-traced: ours (`fd-handover upgrade`), with `fd-handover trace`
# attached to the patched QEMU's USDT probes (dtrace backend): QEMU's
# vmstate_downtime_checkpoint / _save / _load (one row per hit, each
# device section with its duration), fd_handover_*, tap_*, vm_state_notify.
# cpr-transfer-traced: stock cpr-transfer; Debian's QEMU has no USDT probes
# but has the log backend, so both QEMUs run with
# `-trace enable=vmstate_downtime* -msg timestamp=on` and the same events
# are read from their stderr (wall clock, us).
#
# Each run prints its window table (ms from the source's STOP, per process)
# and stores it in --json as "window".  The uprobes cost a few us per hit
# (tens of hits in the window): the traced runs are a map of the window,
# not its benchmark; bench/upgrade without the plugin is.
import json
import os
import re
import signal
import subprocess
import sys
import time

from e2e import ours  # bench/upgrade puts qemu-glue on sys.path

_bench = sys.modules["__main__"]
variant = _bench.variant
log = _bench.log

TRACE_STEPS = ("vmstate_downtime_*", "fd_handover_*", "tap_*",
               "vm_state_notify", "migrate_set_state",
               "migrate_send_rp_message", "source_return_path_thread_shut",
               "loadvm_process_command", "qemu_loadvm_state_section_startfull",
               "savevm_section_start", "vhost_dev_start", "vhost_dev_stop",
               "vhost_user_*handover*")


def _window_rows(rows, t0, t1, slack=0.5e-3):
    return [r for r in rows if t0 - slack <= r[0] <= t1 + slack]


MILESTONES = (
    ("source", "ckpt src-fd-handover-target-ready", "target answered the PING, before the stop (ours, 0030)"),
    ("source", "ckpt src-vm-stopped", "vCPUs stopped, state handlers run"),
    ("source", "ckpt src-iterable-saved", "migration thread set up, RAM section done"),
    ("source", "ckpt src-non-iterable-saved", "every device section saved, EOF"),
    ("target", "ckpt dst-precopy-loadvm-completed", "every section loaded and checked"),
    ("target", "ckpt dst-fd-handover-loaded-sent", "target sent SHUT (ours, 0027: before the memory commit)"),
    ("target", "ckpt dst-fd-handover-layout-committed", "target committed the memory layout (ours, 0027)"),
    ("target", "ckpt dst-precopy-bh-enter", "target's BH: waits for the commit (ours) / starts (stock)"),
    ("source", "qemu:source_return_path_thread_shut", "source takes SHUT"),
    ("source", "ckpt src-fd-handover-committed", "source wrote FDHCOMIT"),
    ("target", "ckpt dst-precopy-bh-committed", "target read the commit"),
    ("target", "vm running", "RESUME (vm_start, TAP activation)"),
    ("target", "QMP RESUME", "RESUME"),
    ("source", "ckpt src-downtime-end", "source's downtime ends"),
    ("source", "fd_handover_fenced", "source fenced the handed fds"),
)


def _milestones(rows, t0):
    """The window in a few lines: when each milestone came, and the sums of
    the device sections' save and load durations QEMU measured."""
    out = []
    for side, name, what in MILESTONES:
        hit = [t for t, _, s, n in rows if s == side and n.split(" first:")[0].startswith(name)]
        if hit:
            out.append("%-8s %9.3f  %s (%s)" % (side, (min(hit) - t0) * 1e3, what, name))
    for side, kind in (("source", "save "), ("target", "load ")):
        d = [(dur, n) for _, dur, s, n in rows if s == side and n.startswith(kind)]
        if d:
            top = sorted(d, reverse=True)[:3]
            out.append("%-8s %9.3f  sum of %d %ssections (largest: %s)" % (
                side, sum(x for x, _ in d) * 1e3, len(d), kind,
                ", ".join("%s %.3f" % (n[5:], x * 1e3) for x, n in top)))
    return out


def _print_window(title, rows, t0):
    lines = ["%s (ms from the source's STOP)" % title,
             "%-8s %9s %9s  %s" % ("side", "start", "dur", "step")]
    for t, dur, side, what in sorted(rows):
        lines.append("%-8s %9.3f %9.3f  %s" % (side, (t - t0) * 1e3,
                                               dur * 1e3 if dur else 0.0, what))
    lines.append("milestones (ms from the source's STOP):")
    lines += _milestones(rows, t0)
    text = "\n".join(lines)
    log(text)
    return text


def _runq_rows(path, start, src_pid, dst_pid):
    """The two QEMUs' run-queue waits (>= --sched-min) from the tracer's
    Perfetto file: a thread that was woken, or preempted, and waited that
    long for a CPU.  One row each: 'runq <thread> tid (after <who ran>)'."""
    try:
        with open(path) as f:
            evs = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError):
        return []
    names, begins, rows = {}, {}, []
    for e in evs:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[e.get("tid")] = e.get("args", {}).get("name", "?")
    for e in evs:
        if e.get("name") != "runq wait" or e.get("pid") not in (src_pid, dst_pid):
            continue
        if e["ph"] == "b":
            begins[e["id"]] = e
        elif e["ph"] == "e" and e["id"] in begins:
            b = begins.pop(e["id"])
            side = "source" if b["pid"] == src_pid else "target"
            t = start + b["ts"] / 1e6
            who = b.get("args", {}).get("ran_before", "?")
            rows.append((t, (e["ts"] - b["ts"]) / 1e6, side, "runq %s %d (after %s)" % (
                names.get(b["tid"], "?"), b["tid"], who)))
    return rows


@variant("fd-handover-vublk-traced", binaries="new", vublk=True)
def v_fd_handover_vublk_traced(src_bin, dst_bin, vm):
    """the same with a vhost-user-blk disk (qemu-storage-daemon, blkverify)"""
    return v_fd_handover_traced(src_bin, dst_bin, vm)


@variant("fd-handover-base", binaries="env:FDH_QEMU_BASE")
def v_fd_handover_base(src_bin, dst_bin, vm):
    """ours with the QEMU in $FDH_QEMU_BASE (e.g. the series before a change) both sides"""
    return _bench._ours(src_bin, dst_bin, vm)


@variant("fd-handover-traced", binaries="new")
def v_fd_handover_traced(src_bin, dst_bin, vm):
    """ours with `fd-handover trace` on both QEMUs' probes: the window's steps"""
    cli = ours.cli_path()
    # run-queue waits of >= 100 us come only in the Perfetto file
    perfetto = vm.path("window-trace.perfetto.json")
    argv = [cli, "-j", "trace", "--no-packets", "--sched-min", "100",
            "--perfetto", perfetto, "--usdt", dst_bin, "--duration", "60"]
    if src_bin != dst_bin:
        argv += ["--usdt", src_bin]
    for p in TRACE_STEPS:
        argv += ["--usdt-probe", "%s:qemu:%s" % (dst_bin, p)]
    tr = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    # "Tracing N processes, M probes" on stderr: everything is attached
    buf = ""
    deadline = time.monotonic() + 60
    while "Tracing" not in buf and time.monotonic() < deadline:
        ch = tr.stderr.readline()
        if not ch:
            break
        buf += ch
    if "Tracing" not in buf:
        tr.kill()
        raise RuntimeError("fd-handover trace did not start: %s" % buf[-500:])
    t_begin_wall = time.time()
    try:
        up = ours.upgrade(vm, dst_bin)
    finally:
        time.sleep(0.3)
        tr.send_signal(signal.SIGINT)
        out_json, err = tr.communicate(timeout=120)
    if not up.get("ok"):
        raise RuntimeError("fd-handover upgrade failed: %s" % up.get("error"))
    rep = json.loads(out_json)
    src_pid, dst_pid = vm.src.pid, up.get("target_pid")
    start = rep["start_ns"] / 1e9
    rows = []
    t_stop = t_resume = None
    for ph in rep["phases"]:
        if ph["pid"] not in (src_pid, dst_pid):
            continue
        side = "source" if ph["pid"] == src_pid else "target"
        t = start + ph["offset_ns"] / 1e9
        name = ph["name"] + (" " + ph["detail"] if ph.get("detail") else "")
        if ph.get("count", 1) > 1:
            name += " x%d" % ph["count"]
        if ph["name"].startswith("vm stopped") and side == "source" and t_stop is None:
            t_stop = t
        if ph["name"] == "vm running" and side == "target":
            t_resume = t
        rows.append((t, ph["duration_ns"] / 1e9, side, name))
    rows += _runq_rows(perfetto, start, src_pid, dst_pid)
    out = {k: up[k] for k in ("t_mark", "t_running", "t_stop", "t_resume",
                              "downtime_ms", "migrate_running_ms", "stop_wall",
                              "resume_wall", "target_pid") if k in up}
    out["stop_resume_ms"] = up.get("stop_to_resume_ms")
    out["t_begin_wall"] = t_begin_wall      # the vhost-user-blk columns need it
    out["target_serial"] = vm.src.serial_path + ".new"
    out["source_rc"] = vm.src.wait(timeout=15)
    if t_stop and t_resume:
        out["window"] = _print_window(
            "fd-handover window: STOP->RESUME %.3f ms (tracer), %.1f ms (QMP)"
            % ((t_resume - t_stop) * 1e3, out["stop_resume_ms"] or -1),
            _window_rows(rows, t_stop, t_resume + 3e-3), t_stop)
    else:
        out["window"] = "no STOP/RESUME in the trace: %s" % err[-500:]
        log(out["window"])
    return out


# QEMU's log backend, with -msg timestamp=on: "PID@SEC.USEC:event args"
_LOG = re.compile(r"^(\d+)@(\d+\.\d+):(vmstate_downtime_\w+) (.*)$")


def _log_rows(text, side):
    rows = []
    for line in text.splitlines():
        m = _LOG.match(line.strip())
        if not m:
            continue
        t, ev, args = float(m.group(2)), m.group(3), m.group(4)
        kv = dict(re.findall(r"(\w+)=(\S+)", args))
        if ev == "vmstate_downtime_checkpoint":
            rows.append((t, 0.0, side, "ckpt " + kv.get("checkpoint", args)))
        else:
            us = float(kv.get("downtime", 0))
            rows.append((t - us / 1e6, us / 1e6, side, "%s %s" % (
                "save" if ev.endswith("save") else "load", kv.get("idstr", "?"))))
    return rows


@variant("cpr-transfer-traced",
         extra_args=["-trace", "enable=vmstate_downtime*", "-msg", "timestamp=on"])
def v_cpr_transfer_traced(src_bin, dst_bin, vm):
    """stock cpr-transfer, QEMU's own downtime trace events (log backend)"""
    out = _bench._cpr_transfer(src_bin, dst_bin, vm)
    target = out["target"]
    rows = _log_rows(vm.src.stderr(), "source") + _log_rows(target.stderr(), "target")
    t0, t1 = out["stop_wall"], out["resume_wall"]
    rows.append((t0, 0.0, "source", "QMP STOP"))
    rows.append((t1, 0.0, "target", "QMP RESUME"))
    out["window"] = _print_window(
        "cpr-transfer window: STOP->RESUME %.3f ms (QMP)" % ((t1 - t0) * 1e3),
        _window_rows(rows, t0, t1 + 3e-3), t0)
    return out
