#!/usr/bin/env python3
"""Summarise pgbench per-transaction logs over a time window.

pgbench -l (PostgreSQL 15) writes one line per transaction:
    client_id transaction_no time script_no time_epoch time_us [schedule_lag]
where `time` is the latency in microseconds (or `failed` / `skipped`) and
time_epoch.time_us is when the transaction ended. Under --rate the latency
counts from the scheduled start, so time spent queued behind a lock counts.
A transaction belongs to the window when it overlaps it: it ended after the
window start and started before the window end.
"""

import argparse
import glob
import json
import math


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list, or None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def read_log(prefix):
    """Yield (script_no, latency_us or None for a failure, end_seconds)."""
    for path in sorted(glob.glob(prefix + ".*")):
        with open(path, encoding="ascii", errors="replace") as log:
            for line in log:
                fields = line.split()
                # The last line can be cut short when pgbench is stopped
                # with SIGTERM, because its log buffer is not flushed.
                if len(fields) < 6 or not fields[4].isdigit() or not fields[5].isdigit():
                    continue
                end = int(fields[4]) + int(fields[5]) / 1e6
                if fields[2] == "failed":
                    yield int(fields[3]), None, end
                elif fields[2].isdigit():
                    yield int(fields[3]), int(fields[2]), end


def summarise(rows):
    latencies = sorted(latency for latency, _ in rows if latency is not None)
    failed = sum(1 for latency, _ in rows if latency is None)

    def ms(value):
        return None if value is None else round(value / 1000, 1)

    return {
        "transactions": len(latencies),
        "failed": failed,
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(latencies[-1] if latencies else None),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="pgbench --log-prefix value")
    parser.add_argument("--start", type=float, required=True, help="window start, epoch seconds")
    parser.add_argument("--end", type=float, required=True, help="window end, epoch seconds")
    parser.add_argument(
        "--script-names",
        default="",
        help="comma-separated names of the -f scripts in order, e.g. write,read",
    )
    args = parser.parse_args()
    names = [name for name in args.script_names.split(",") if name]

    window = {}
    before = []
    for script, latency, end in read_log(args.prefix):
        start = end - (latency or 0) / 1e6
        if end >= args.start and start <= args.end:
            window.setdefault(script, []).append((latency, end))
        elif end < args.start:
            before.append((latency, end))

    result = {"window_seconds": round(args.end - args.start, 1)}
    everything = [row for rows in window.values() for row in rows]
    result["all"] = summarise(everything)
    for script, rows in sorted(window.items()):
        name = names[script] if script < len(names) else str(script)
        result[name] = summarise(rows)
    result["before_window"] = summarise(before)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
