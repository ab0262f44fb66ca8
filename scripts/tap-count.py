#!/usr/bin/env python3
"""Count KTAP results in meson testlog.json files and plain TAP files.

Prints the failing and skipped test points, then one closing line
"N passed, N failed, N skipped".  Exit status 1 if anything failed or a
test executable reported no test point at all (a crash before its plan).
"""
import json
import re
import sys

POINT = re.compile(r"^(not ok|ok)\s+\d*\s*-?\s*(.*?)(\s+#\s*(SKIP|TODO)\b(.*))?$")


def count(lines, where, totals, notes):
    points = 0
    for line in lines:
        m = POINT.match(line.strip())
        if not m:
            continue
        points += 1
        name = f"{where}: {m.group(2)}"
        if m.group(1) == "not ok":
            totals["failed"] += 1
            notes.append(f"FAIL {name}")
        elif m.group(4) == "SKIP":
            totals["skipped"] += 1
            notes.append(f"SKIP {name} —{m.group(5)}")
        else:
            totals["passed"] += 1
    return points


def main(paths):
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    notes = []
    for path in paths:
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except FileNotFoundError:
            continue
        if path.endswith(".json"):
            suite = path.rsplit("/", 1)[-1].split(".")[0]
            for row in text.splitlines():
                test = json.loads(row)
                where = f"{suite}/{test['name']}"
                points = count(test.get("stdout", "").splitlines(), where,
                               totals, notes)
                if points == 0:
                    totals["failed"] += 1
                    notes.append(f"FAIL {where}: no test points "
                                 f"(result {test.get('result')})")
        else:
            count(text.splitlines(), "extra", totals, notes)
    for n in notes:
        print(n)
    print(f"{totals['passed']} passed, {totals['failed']} failed, "
          f"{totals['skipped']} skipped")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
