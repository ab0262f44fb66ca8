"""The end-to-end harness: a package, so that its modules import each other
(``from .vm import VM``) with no sys.path edits.  Run a test from qemu-glue/:

    cd qemu-glue && python3 -m e2e.test_upgrade

This is the one prologue every module shares."""
import os
import sys

# No __pycache__ in the source tree (this file's own is written before
# the flag: scripts/test.sh runs python3 -B).
sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))   # qemu-glue/e2e
REPO = os.path.dirname(os.path.dirname(HERE))         # the repository
