#!/usr/bin/env python3
"""Print one "label start end" line per migration from a timestamped log.

The input is the upgrade output with each line prefixed by its epoch time
(as zero-downtime.sh writes it). A migration starts at pgshift's
"Migrating NN name" line or the naive runner's "== VNN__name.sql" line and
ends where the next one starts, or at the given end time.
"""

import re
import sys

START = re.compile(r"^\s*(?:Migrating (\d+) (\S+)|== V(\d+)__(\S+?)\.sql)")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: migration_windows.py TIMESTAMPED_LOG END_EPOCH")
    marks = []
    with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
        for line in log:
            stamp, _, text = line.rstrip("\n").partition(" ")
            match = START.match(text)
            if match:
                number = match.group(1) or match.group(3)
                name = match.group(2) or match.group(4)
                marks.append((f"V{number}__{name}", float(stamp)))
    end = float(sys.argv[2])
    for (label, start), following in zip(marks, marks[1:] + [(None, end)]):
        print(label, start, following[1])


if __name__ == "__main__":
    main()
