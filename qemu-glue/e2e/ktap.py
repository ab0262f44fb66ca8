"""A tiny KTAP runner for the end-to-end tests (standard library only).

    from e2e.ktap import test, check, diag, Skip, run

    @test
    def something_holds():
        check(1 + 1 == 2, "arithmetic")

    sys.exit(run(sys.argv, needs=[(QEMU, "FDH_QEMU (patched QEMU) not set")]))

A test passes when it returns, fails on Fail (check) or any exception (with
its traceback), and is skipped on Skip or when a requirement is missing.
note("retried: why") adds to the test's result line ("ok 3 name  # 41.0 s;
retried: why"), where scripts/tap-count.py finds it: a passing test that
needed a second attempt says so where the result is counted.
"""
from __future__ import annotations

import os
import sys
import time
import traceback

TESTS: list = []
_NOTES: list = []       # note()s of the running test


class Skip(Exception):
    pass


class Fail(Exception):
    pass


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Fail(what)


def diag(text) -> None:
    for line in str(text).splitlines():
        print("# " + line, flush=True)


def note(text: str) -> None:
    """Say `text` on the running test's result line (and as a diagnostic now)."""
    diag(text)
    _NOTES.append(" ".join(str(text).split()))


def missing(needs: list) -> str:
    """The reason to skip: the first (path, why) whose path is not an
    executable, or root missing; "" when all is there."""
    for path, why in needs:
        if not path or not os.access(path, os.X_OK):
            return why
    if os.geteuid() != 0:
        return "needs root (network namespaces, TAP)"
    return ""


def run(argv: list, needs: list) -> int:
    # Every traffic run of vm.py (Peer.stop()) says where its losses died,
    # as a diagnostic of the test it belongs to (when the test uses vm.py).
    vm = sys.modules.get(__package__ + ".vm")
    if vm is not None and hasattr(vm, "on_traffic_report"):
        vm.on_traffic_report(lambda rep: diag(rep.get("drops", "")))
    flt = argv[1] if len(argv) > 1 else ""
    tests = [t for t in TESTS if flt in t.__name__]
    skip_all = missing(needs)
    print("TAP version 13\n1..%d" % len(tests), flush=True)
    failed = 0
    for i, t in enumerate(tests, 1):
        name = t.__name__
        if skip_all:
            print("ok %d %s # SKIP %s" % (i, name, skip_all), flush=True)
            continue
        t0 = time.monotonic()
        del _NOTES[:]
        try:
            t()
            print("ok %d %s  # %.1f s%s" % (i, name, time.monotonic() - t0,
                                           "".join("; " + n for n in _NOTES)),
                  flush=True)
        except Skip as e:
            print("ok %d %s # SKIP %s" % (i, name, e), flush=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            diag("%s: %s" % (type(e).__name__, e))
            if not isinstance(e, Fail):
                diag(traceback.format_exc())
            print("not ok %d %s%s" % (i, name, "  #" + ";".join(" " + n for n in _NOTES)
                                      if _NOTES else ""), flush=True)
    return 1 if failed else 0
