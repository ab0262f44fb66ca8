#!/usr/bin/env python3
"""Test wrapper: run a target QEMU and SIGKILL it mid-handover.

    die_on_incoming.py [--stop] -- qemu-system-x86_64 ... -qmp unix:DIR/target-qmp.sock ...

The target has pulled the source's fds and created its machine by the time
it listens for the migration stream (DIR/migrate.sock appears after the
driver's migrate-incoming); it dies right then, so the source's migrate
finds no target and the source must go on with everything it had.

--stop: SIGSTOP it instead, and wait: the source's migration then hangs
before the commit point until the driver rolls back (which kills this
wrapper's whole process group, the stopped QEMU with it).
"""
import os
import signal
import subprocess
import sys
import time

stop = "--stop" in sys.argv[1:sys.argv.index("--")]
argv = sys.argv[sys.argv.index("--") + 1:]
qmp = next(a for a in argv if a.startswith("unix:") and "target-qmp" in a)
sock = os.path.join(os.path.dirname(qmp[5:].split(",")[0]), "migrate.sock")
# close_fds=False: QEMU must get the fds the driver placed at the source's
# numbers (an fd=N monitor listener, -add-fd): this wrapper's own files
# are not inheritable (PEP 446), those are.
p = subprocess.Popen(argv, close_fds=False)
deadline = time.monotonic() + 120
while p.poll() is None and time.monotonic() < deadline:
    if os.path.exists(sock):
        if stop:
            os.kill(p.pid, signal.SIGSTOP)
            p.wait()
        p.kill()
        break
    time.sleep(0.0005)
sys.exit(p.wait() or 1)
