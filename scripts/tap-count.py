#!/usr/bin/env python3
"""Count KTAP results in meson testlog.json files and plain TAP files.

Prints the failing, skipped and retried test points, then one closing line
"N passed, N failed, N skipped".  Exit status 1 if anything failed.

A test executable or TAP file that does not account for its whole plan
fails as well: one that printed no test point at all (a crash before its
plan or its first test), no plan, or fewer top-level test points than its
plan "1..N" announced (a crash half way).  "1..0 # SKIP why" is a whole
file skipped.  extra.tap, which test.sh appends to line by line, has no
plan and is exempt.
"""
import json
import re
import sys

POINT = re.compile(r"^(not ok|ok)\s+\d*\s*-?\s*(.*?)(\s+#\s*(SKIP|TODO)\b(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)\s*(#\s*(SKIP)\b\s*(.*))?$")
# ktap.py notes a retried test on its result line: "ok 3 name  # 40.1 s; retried: why"
RETRIED = re.compile(r"#.*\bretried:\s*(.*)$")


def count(lines, where, totals, notes):
    """Tally every test point (nested ones too); returns (plan or None,
    plan's SKIP reason or None, top-level test points)."""
    plan, plan_skip, top = None, None, 0
    for line in lines:
        if plan is None:
            p = PLAN.match(line)
            if p:
                plan = int(p.group(1))
                plan_skip = p.group(4) if p.group(3) else None
                continue
        m = POINT.match(line.strip())
        if not m:
            continue
        if not line[:1].isspace():
            top += 1
        name = f"{where}: {m.group(2)}"
        if m.group(1) == "not ok":
            totals["failed"] += 1
            notes.append(f"FAIL {name}")
        elif m.group(4) == "SKIP":
            totals["skipped"] += 1
            notes.append(f"SKIP {name} —{m.group(5)}")
        else:
            totals["passed"] += 1
            r = RETRIED.search(line)
            if r:
                bare = re.split(r"\s+#", m.group(2))[0]
                notes.append(f"RETRIED {where}: {bare} — {r.group(1)}")
    return plan, plan_skip, top


def check_plan(where, result, plan, plan_skip, top, totals, notes):
    """Fail a file whose test points fall short of its plan."""
    if plan == 0 and plan_skip is not None:
        totals["skipped"] += 1
        notes.append(f"SKIP {where} —{plan_skip}")
        return
    why = None
    if top == 0:
        why = "no test points"
    elif plan is None:
        why = f"{top} test points but no plan"
    elif top < plan:
        why = f"{top} of the {plan} planned test points"
    if why:
        totals["failed"] += 1
        notes.append(f"FAIL {where}: {why}" + (f" (result {result})" if result else ""))


def main(paths):
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    notes = []
    for path in paths:
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except FileNotFoundError:
            # (an unmatched shell glob, e.g. e2e-*.tap with FDH_E2E=0, is no file)
            if path.endswith(".tap") and not path.endswith("extra.tap") and "*" not in path:
                totals["failed"] += 1
                notes.append(f"FAIL {path}: no output file")
            continue
        if path.endswith(".json"):
            suite = path.rsplit("/", 1)[-1].split(".")[0]
            for row in text.splitlines():
                test = json.loads(row)
                where = f"{suite}/{test['name']}"
                got = count(test.get("stdout", "").splitlines(), where, totals, notes)
                check_plan(where, test.get("result"), *got, totals, notes)
        elif path.endswith("extra.tap"):
            count(text.splitlines(), "extra", totals, notes)
        else:
            where = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            got = count(text.splitlines(), where, totals, notes)
            check_plan(where, None, *got, totals, notes)
    for n in notes:
        print(n)
    print(f"{totals['passed']} passed, {totals['failed']} failed, "
          f"{totals['skipped']} skipped")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
