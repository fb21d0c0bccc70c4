#!/usr/bin/env python3
"""Write the steps of `pgshift apply --dry-run --format json` as psql inputs.

Each step becomes one numbered file in OUT_DIR: NNN.tx.sql for a step that
runs in one transaction (to run with psql --single-transaction -f) and
NNN.auto.sql for a step that runs outside a transaction block (one statement,
to run with psql -c). Only migrations in the state "pending" are written, so
a dry run against a database yields what a real run would still execute.
"""

import json
import os
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: dry_run_steps.py DRY_RUN_JSON OUT_DIR")
    with open(sys.argv[1], encoding="utf-8") as source:
        report = json.load(source)
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)

    count = 0
    for phase in report["phases"]:
        for version in phase["versions"]:
            for migration in version["migrations"]:
                if migration["state"] != "pending":
                    continue
                for step in migration["steps"]:
                    statements = [statement["sql"] for statement in step["statements"]]
                    in_transaction = step["kind"] == "Transaction"
                    if not in_transaction and len(statements) != 1:
                        sys.exit(f"{migration['path']}: step {step['index']} runs outside "
                                 f"a transaction but has {len(statements)} statements")
                    suffix = "tx" if in_transaction else "auto"
                    path = os.path.join(out_dir, f"{count:03d}.{suffix}.sql")
                    with open(path, "w", encoding="utf-8") as out:
                        out.write(";\n".join(statements) + ";\n")
                    count += 1
    print(count)


if __name__ == "__main__":
    main()
