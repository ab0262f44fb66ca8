# bench/upgrade --plugin bench/issue11-plugin.py: two experiments on where the
# virtio-fs I/O gap after RESUME goes (bench/README.md, "Where ours' virtio-fs
# I/O gap goes").  Exec'd by bench/upgrade with variant, time, ... in scope.
from e2e import ours, vufs


@variant("fdh-vufs-keep", binaries="new", vufs=True)
def v_fdh_vufs_keep(src_bin, dst_bin, vm):
    """ours, virtio-fs, the committed source kept alive until RESUME + 1.5 s"""
    t_begin_wall = time.time()
    up = ours.upgrade(vm, dst_bin, keep_source=True)
    if not up.get("ok"):
        raise RuntimeError("fd-handover upgrade failed: %s" % up.get("error"))
    out = {k: up[k] for k in ("t_mark", "t_running", "t_stop", "t_resume",
                              "downtime_ms", "migrate_running_ms", "stop_wall",
                              "resume_wall", "target_pid") if k in up}
    out["stop_resume_ms"] = up.get("stop_to_resume_ms")
    out["t_begin_wall"] = t_begin_wall
    out["target_serial"] = vm.src.serial_path + ".new"
    # past the measured window (RESUME + 1 s): its exit cannot be in it
    while time.time() < up["resume_wall"] + 1.5:
        time.sleep(0.05)
    vm.src.kill()
    out["source_rc"] = vm.src.wait(timeout=15)
    return out


@variant("stock-vufs-ourbin", binaries="env:FDH_QEMU", vufs=True)
def v_stock_vufs_ourbin(src_bin, dst_bin, vm):
    """stock-vufs's cpr-transfer (no fd handover), run by the patched build ($FDH_QEMU)"""
    return cpr_transfer(src_bin, dst_bin, vm,
                extra=vufs.fs_args(vm, vm.daemon.fsd[1].sock, stream=True))
