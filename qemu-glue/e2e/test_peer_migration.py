#!/usr/bin/env python3
"""Peer suite: QEMU's own tests/qtest/migration-test, built from our patched
tree (qemu-glue/build.sh builds it), run with --full against our
qemu-system-x86_64.  The patches must not regress stock migration.

Its TAP goes through unchanged, one result line per migration test, so
that every case counts in scripts/test.sh's totals.  QEMU registers some
cases (cpr-transfer among them) only where KVM works: the first lines say
which accelerator this run has.

  FDH_QEMU=.../qemu-system-x86_64 FDH_MIGRATION_TEST_BIN=.../migration-test \
      test_peer_migration.py
"""
import os
import subprocess
import sys
import time

QEMU = os.environ.get("FDH_QEMU", "")
MIGRATION_TEST = os.environ.get("FDH_MIGRATION_TEST_BIN", "")
TIMEOUT_S = 3600


def kvm_usable() -> bool:
    import fcntl
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        vm = fcntl.ioctl(fd, 0xAE01, 0)     # KVM_CREATE_VM
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def main() -> int:
    for path, what in ((QEMU, "FDH_QEMU"), (MIGRATION_TEST, "FDH_MIGRATION_TEST_BIN")):
        if not path or not os.access(path, os.X_OK):
            print("TAP version 13\n1..1\nok 1 migration-test # SKIP %s not built" % what)
            return 0
    print("# accel: %s" % ("kvm (KVM-only cases such as cpr-transfer are registered)"
                           if kvm_usable() else
                           "tcg only (KVM-only cases such as cpr-transfer are not registered)"),
          flush=True)
    env = dict(os.environ, QTEST_QEMU_BINARY=QEMU)
    t0 = time.monotonic()
    p = subprocess.run([MIGRATION_TEST, "--full", "--tap", "-k"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=TIMEOUT_S,
                       cwd=os.path.dirname(QEMU))
    sys.stdout.write(p.stdout)
    print("# migration-test --full: exit %d in %.0f s" % (p.returncode,
                                                          time.monotonic() - t0))
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
