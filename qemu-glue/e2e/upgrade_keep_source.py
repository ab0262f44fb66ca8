#!/usr/bin/env python3
"""qemu-glue/fdh_upgrade.py, except that the source is not told to quit
after the switch: the fence tests need a source that is still alive once
the target has committed.  Same arguments and report as the driver."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fdh_upgrade  # noqa: E402

fdh_upgrade.Upgrade.quit_source = lambda self: "kept alive (fence test)"

if __name__ == "__main__":
    sys.exit(fdh_upgrade.main(sys.argv[1:]))
