# bench/upgrade plugin: the upgrade driver's own overhead, C vs Python, in
# the same run (issue 12, Benchmark).
#
#   bench/upgrade --plugin bench/driver-overhead.py \
#       --variants driver-c,driver-py --ram 512,4096 --runs 10 --qemu-new QEMU
#
# driver-c is `fd-handover upgrade` ($FDH_CLI, tools/cmd-upgrade.c);
# driver-py is the Python driver it replaced (bench/fdh_upgrade.py), kept
# for this comparison only.  Both upgrade the same way (same patched QEMU,
# same argv rewrite where the drivers agree); the runs are interleaved by
# bench/upgrade.  Extra columns: the driver's switch phase (migrate sent
# -> target running, as each driver sees it) and its total.
import sys

from e2e import ours  # noqa: E402  (bench/upgrade puts qemu-glue on sys.path)

_bench = sys.modules["__main__"]
for _col in (("switch ms", "switch_ms", 1), ("driver total ms", "driver_total_ms", 1)):
    if _col not in _bench.COLUMNS:
        _bench.COLUMNS.append(_col)


def _driver_run(dst_bin, vm, driver):
    up = ours.upgrade(vm, dst_bin, driver=driver)
    if not up.get("ok"):
        raise RuntimeError("%s driver: upgrade failed: %s" % (driver, up.get("error")))
    out = {k: up[k] for k in ("t_mark", "t_running", "t_stop", "t_resume",
                              "downtime_ms", "migrate_running_ms", "stop_wall",
                              "resume_wall", "target_pid") if k in up}
    out["stop_resume_ms"] = up.get("stop_to_resume_ms")
    out["switch_ms"] = next((p["ms"] for p in up["phases"] if p["phase"] == "switch"), None)
    out["driver_total_ms"] = up.get("total_ms")
    out["target_serial"] = vm.src.serial_path + ".new"
    out["source_rc"] = vm.src.wait(timeout=15)
    return out


@variant("driver-c", binaries="new")
def v_driver_c(src_bin, dst_bin, vm):
    """fd-handover upgrade (C driver): switch phase and total measured"""
    return _driver_run(dst_bin, vm, "c")


@variant("driver-py", binaries="new")
def v_driver_py(src_bin, dst_bin, vm):
    """the replaced Python driver (bench/fdh_upgrade.py), same measurements"""
    return _driver_run(dst_bin, vm, "python")
