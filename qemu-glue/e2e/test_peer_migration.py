#!/usr/bin/env python3
"""Peer suite: QEMU's own tests/qtest/migration-test, built from our patched
tree (qemu-glue/build.sh builds it), run with --full against our
qemu-system-x86_64.  The patches must not regress stock migration.

Its TAP goes through unchanged, one result line per migration test, so
that every case counts in scripts/test.sh's totals.

Accelerator: TCG, always.  QEMU registers some cases (cpr-transfer and
dirty_ring among them) only where it can open /dev/kvm, and on the
machines here /dev/kvm can exist and create a VM while a guest under it
barely runs (nested without hardware help: dirty_ring did not finish in
6 minutes, a Linux guest did not get past SeaBIOS in 5).  So the suite
runs in a private mount namespace with /dev/kvm masked, and says so.
FDH_PEER_KVM=1 runs it with /dev/kvm instead, on a host where KVM is
real.

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


def main() -> int:
    for path, what in ((QEMU, "FDH_QEMU"), (MIGRATION_TEST, "FDH_MIGRATION_TEST_BIN")):
        if not path or not os.access(path, os.X_OK):
            print("TAP version 13\n1..1\nok 1 migration-test # SKIP %s not built" % what)
            return 0
    argv = [MIGRATION_TEST, "--full", "--tap", "-k"]
    if os.environ.get("FDH_PEER_KVM") == "1":
        print("# accel: /dev/kvm visible: KVM-only cases (cpr-transfer, "
              "dirty_ring) are registered", flush=True)
    else:
        print("# accel: tcg, /dev/kvm masked: the KVM-only cases "
              "(cpr-transfer, dirty_ring) are not registered", flush=True)
        if os.path.exists("/dev/kvm"):
            argv = ["unshare", "--mount", "--", "sh", "-c",
                    'mount --bind /dev/null /dev/kvm && exec "$@"', "sh"] + argv
    # PYTHON: the analyze-script case runs scripts/analyze-migration.py.
    env = dict(os.environ, QTEST_QEMU_BINARY=QEMU, PYTHON=sys.executable)
    t0 = time.monotonic()
    p = subprocess.run(argv, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=TIMEOUT_S,
                       cwd=os.path.dirname(QEMU))
    sys.stdout.write(p.stdout)
    print("# migration-test --full: exit %d in %.0f s" % (p.returncode,
                                                          time.monotonic() - t0))
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
