#!/usr/bin/env bash
# Lint benchmark: `pgshift lint` against squawk on generated migration SQL.
#
# Usage: benches/lint-vs-squawk.sh
#
# Inputs, written by benches/gen_lint_input.py with a fixed seed:
#   big.sql    80,000 statements in one file (about 6.8 MB)
#   half.sql   its first 40,000 statements, to check that time is linear
#   small/     2,000 files of 2 to 6 statements each
#
# Every tool, format and input runs RUNS times (default 3) under
# /usr/bin/time -v with output sent to /dev/null. The script records wall
# time and peak RSS of each run in $OUT/runs.tsv and writes the medians as
# markdown tables to $OUT/results.md. Exit status 1 means "findings
# reported" for both tools, so the script accepts 0 and 1 and stops on any
# other status. A run that takes longer than TIMEOUT seconds (default 120)
# is killed, recorded with exit status 124, and the remaining runs of that
# tool, format and input are skipped.
#
# Needs: a release build of pgshift (PGSHIFT, default target/release/pgshift)
# and squawk on PATH (pip install squawk-cli). Both lint for PostgreSQL 15.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGSHIFT=${PGSHIFT:-$ROOT/target/release/pgshift}
SQUAWK=${SQUAWK:-squawk}
OUT=${OUT:-$ROOT/target/bench/lint}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-120}
SEED=${SEED:-20261204}

PGSHIFT_FORMATS=(human json sarif github gitlab)
# squawk 2.70 has no SARIF or GitHub annotation reporter. Its
# `upload-to-github` command posts a pull request comment over the network,
# so it is not measured.
SQUAWK_REPORTERS=(tty gcc json gitlab)

for tool in "$PGSHIFT" "$SQUAWK" /usr/bin/time timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool not found. Install it as the Needs line at the top of $0 says." >&2
        exit 2
    fi
done

mkdir -p "$OUT"
IN=$OUT/input
python3 "$ROOT/benches/gen_lint_input.py" "$IN" --seed "$SEED"
# Run from the input folder so that neither tool picks up a config file
# from the repository, and so that paths in the output are short.
cd "$IN"

RUNS_TSV=$OUT/runs.tsv
printf 'input\ttool\tformat\trun\twall_s\tmax_rss_kb\texit\n' >"$RUNS_TSV"

# Convert /usr/bin/time's "h:mm:ss" or "m:ss.ss" elapsed time to seconds.
elapsed_seconds() {
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }' <<<"$1"
}

# measure INPUT TOOL FORMAT COMMAND...: time COMMAND RUNS times.
measure() {
    local input=$1 tool=$2 format=$3
    shift 3
    local run status wall rss log=$OUT/time.log
    for ((run = 1; run <= RUNS; run++)); do
        status=0
        /usr/bin/time -v -o "$log" timeout "$TIMEOUT" "$@" >/dev/null 2>&1 || status=$?
        if ((status == 124)); then
            printf '%s\t%s\t%s\t%d\t%s\t%s\t%d\n' "$input" "$tool" "$format" "$run" "$TIMEOUT" 0 124 >>"$RUNS_TSV"
            echo "$input $tool $format run $run: timed out after $TIMEOUT s" >&2
            return
        fi
        if ((status > 1)); then
            echo "error: exit status $status from: $*" >&2
            cat "$log" >&2
            exit 1
        fi
        wall=$(elapsed_seconds "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")")
        rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
        printf '%s\t%s\t%s\t%d\t%s\t%s\t%d\n' "$input" "$tool" "$format" "$run" "$wall" "$rss" "$status" >>"$RUNS_TSV"
        echo "$input $tool $format run $run: ${wall} s, $((rss / 1024)) MB, exit $status" >&2
    done
}

# Each input with the path arguments each tool needs: squawk does not
# search folders, so it gets a glob pattern that it expands itself.
declare -A PGSHIFT_ARGS=([big]=big.sql [half]=half.sql [small]=small)
declare -A SQUAWK_ARGS=([big]=big.sql [half]=half.sql [small]='small/*.sql')

for input in big half small; do
    for format in "${PGSHIFT_FORMATS[@]}"; do
        measure "$input" pgshift "$format" "$PGSHIFT" lint --pg-version 15 --format "$format" "${PGSHIFT_ARGS[$input]}"
    done
    for reporter in "${SQUAWK_REPORTERS[@]}"; do
        measure "$input" squawk "$reporter" "$SQUAWK" --pg-version 15 --reporter "$reporter" "${SQUAWK_ARGS[$input]}"
    done
done

# Median wall time and median peak RSS per input, tool and format. With an
# even RUNS the upper of the two middle values is used.
python3 - "$RUNS_TSV" >"$OUT/results.md" <<'EOF'
import csv, sys
from collections import defaultdict

runs = defaultdict(list)
order = []
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        key = (row["input"], row["tool"], row["format"])
        if key not in runs:
            order.append(key)
        runs[key].append((float(row["wall_s"]), int(row["max_rss_kb"]), row["exit"]))

def median(values):
    return sorted(values)[len(values) // 2]

current = None
for key in order:
    input_name, tool, fmt = key
    if input_name != current:
        current = input_name
        print(f"\n### {input_name}\n")
        print("| tool | format | median wall (s) | median peak RSS (MB) | runs (s) |")
        print("|---|---|---|---|---|")
    if any(status == "124" for _, _, status in runs[key]):
        limit = runs[key][-1][0]
        print(f"| {tool} | {fmt} | > {limit:.0f} (timed out) | not measured | killed after {limit:.0f} |")
        continue
    walls = [w for w, _, _ in runs[key]]
    rss = [r for _, r, _ in runs[key]]
    runs_text = ", ".join(f"{w:.2f}" for w in walls)
    print(f"| {tool} | {fmt} | {median(walls):.2f} | {median(rss) / 1024:.0f} | {runs_text} |")
EOF
cat "$OUT/results.md"
