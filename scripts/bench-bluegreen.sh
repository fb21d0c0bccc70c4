#!/bin/sh
# Measure a blue-green phase of the example plan on the local server:
# copy time, replay rate, backlog at cutover and write pause, with
# PGSHIFT_BENCH_ROWS rows (default 1000000) in the token tables and the
# test load (inserts, revocations, deletes) running for the whole phase.
# The run checks green against blue row by row, so it fails on any loss.
# pgshift runs as a release build.
#
# Usage: scripts/bench-bluegreen.sh [rows]
set -eu
cd "$(dirname "$0")/.."
PGSHIFT_BENCH_ROWS="${1:-${PGSHIFT_BENCH_ROWS:-1000000}}" \
    cargo test --release --test bluegreen bench_blue_green_phase -- --ignored --nocapture 2>&1 |
    grep -E '^BENCH|test result|panicked'
