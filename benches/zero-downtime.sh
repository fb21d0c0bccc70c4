#!/usr/bin/env bash
# Zero-downtime benchmark for pgshift on the bundled OAuth example plan.
#
# Usage: benches/zero-downtime.sh [all|load|overhead]
#
#   load      the 1.3 -> 2.0 upgrade under a steady pgbench write and read
#             load, run naive (psql --single-transaction -f per file) and by
#             `pgshift apply`, once plain and once with a long-running reader
#             holding a lock on refresh_tokens when the upgrade starts
#   overhead  pgshift apply against psql on the same rewritten statements,
#             on an idle database
#   all       both (the default)
#
# Everything runs against 127.0.0.1:5432 as user postgres (trust auth). The
# databases it creates are named $DB_PREFIX_* (default pgshift_bench_*) and
# are dropped on exit; give each concurrent run of the script its own
# DB_PREFIX.
# Results go to $OUT (default target/bench): one directory per run with the
# pgbench logs, the migration output and result.json, and results.md with
# the tables. Needs a release build: cargo build --release.
#
# Sizes, rates, durations, the plan (PLAN, with NEW_VERSION_DIR for the naive
# runner), the write script (WRITE_SCRIPT) and the scenarios (SCENARIOS) can
# be changed through the environment variables below. Every wait and load
# has a fixed bound.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PGSHIFT:-$ROOT/target/release/pgshift}
PLAN=${PLAN:-$ROOT/plans/oauth-1x-to-2x.yaml}
NEW_VERSION_DIR=${NEW_VERSION_DIR:-$ROOT/plans/oauth/2.0}  # the naive runner's 2.0 files
SQL=$ROOT/benches/sql
WRITE_SCRIPT=${WRITE_SCRIPT:-$SQL/write.pgbench}
SCENARIOS=${SCENARIOS:-steady long-reader}
OUT=${OUT:-$ROOT/target/bench}

HOST=127.0.0.1
PORT=5432
PGUSER_NAME=postgres

REFRESH_ROWS=${REFRESH_ROWS:-1000000}   # refresh_tokens rows
ACCESS_ROWS=${ACCESS_ROWS:-200000}      # access_tokens rows (tokens of the last hour)
CLIENT_ROWS=${CLIENT_ROWS:-1000}
SESSION_ROWS=${SESSION_ROWS:-100000}    # login_sessions; consent_grants gets half
CODE_ROWS=${CODE_ROWS:-10000}           # authorization_codes
BATCH_ROWS=${BATCH_ROWS:-200000}        # refresh_tokens rows per INSERT

RATE=${RATE:-300}                 # pgbench -R, transactions per second in total
WRITE_WEIGHT=${WRITE_WEIGHT:-2}   # write:read = 2:1, so 200 writes/s at RATE=300
READ_WEIGHT=${READ_WEIGHT:-1}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-4}
PGBENCH_THREADS=${PGBENCH_THREADS:-2}
LOAD_BEFORE=${LOAD_BEFORE:-10}    # seconds of load before the upgrade starts
LOAD_AFTER=${LOAD_AFTER:-10}      # seconds of load after it ends
UPGRADE_LIMIT=${UPGRADE_LIMIT:-900}  # seconds before an upgrade is killed
READER_SECONDS=${READER_SECONDS:-20} # how long the long-running reader holds its lock
OVERHEAD_REPEATS=${OVERHEAD_REPEATS:-5}

DB_PREFIX=${DB_PREFIX:-pgshift_bench}
TEMPLATE_DB=${DB_PREFIX}_template
STARTED_PIDS=()

psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d postgres "$@"
}

psql_db() {
    local db=$1
    shift
    psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d "$db" "$@"
}

db_url() {
    echo "host=$HOST port=$PORT user=$PGUSER_NAME dbname=$1"
}

now() {
    date +%s.%N
}

seconds_between() {
    awk -v start="$1" -v end="$2" 'BEGIN { printf "%.3f", end - start }'
}

# Prefix each input line with the epoch time it was read at.
stamp_lines() {
    local line
    while IFS= read -r line; do
        printf '%s %s\n' "$(now)" "$line"
    done
}

log() {
    echo "[$(date +%H:%M:%S)] $*" >&2
}

drop_db() {
    psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    local db
    for db in $(psql -X -At -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -d postgres \
        -c "SELECT datname FROM pg_database WHERE datname LIKE '${DB_PREFIX//_/\\_}\_%'"); do
        drop_db "$db" || true
    done
}
trap cleanup EXIT

# Create the 1.3 database that every run clones: the example plan applied up
# to 1.3 by pgshift, then the token tables filled and vacuumed.
prepare_template() {
    drop_db "$TEMPLATE_DB"
    psql_admin -c "CREATE DATABASE $TEMPLATE_DB"
    log "applying the example plan up to 1.3"
    "$BIN" apply -q --to 1.3 --database-url "$(db_url $TEMPLATE_DB)" "$PLAN"

    local vars=(-v clients="$CLIENT_ROWS" -v sessions="$SESSION_ROWS" -v access="$ACCESS_ROWS"
        -v refresh="$REFRESH_ROWS" -v codes="$CODE_ROWS")
    log "loading clients, sessions, codes and $ACCESS_ROWS access tokens"
    psql_db "$TEMPLATE_DB" "${vars[@]}" -f "$SQL/load.sql"

    local low=1 high
    while [ "$low" -le "$REFRESH_ROWS" ]; do
        high=$((low + BATCH_ROWS - 1))
        [ "$high" -gt "$REFRESH_ROWS" ] && high=$REFRESH_ROWS
        log "loading refresh tokens $low..$high"
        psql_db "$TEMPLATE_DB" "${vars[@]}" -v lo="$low" -v hi="$high" -f "$SQL/load-refresh.sql"
        low=$((high + 1))
    done

    log "VACUUM ANALYZE"
    psql_db "$TEMPLATE_DB" -c "VACUUM ANALYZE"
    psql_db "$TEMPLATE_DB" -At -F ' ' -c "
        SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid))
        FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY relname" \
        >"$OUT/table-sizes.txt"
}

clone_db() {
    drop_db "$1"
    psql_admin -c "CREATE DATABASE $1 TEMPLATE $TEMPLATE_DB STRATEGY FILE_COPY"
}

# The naive runner: each 2.0 file in version order, each in one transaction,
# stopping at the first error, as a vendor's migration script does. Each file
# gets UPGRADE_LIMIT seconds.
upgrade_naive() {
    local db=$1 file
    for file in $(ls "$NEW_VERSION_DIR"/V*.sql | sort -V); do
        echo "== $(basename "$file") starts at $(now)"
        timeout "$UPGRADE_LIMIT" psql -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PORT" \
            -U "$PGUSER_NAME" -d "$db" --single-transaction -f "$file" || return $?
    done
}

# Print "yes" when the database has the 2.0 schema's last changes.
reached_2_0() {
    psql_db "$1" -At -c "
        SELECT CASE WHEN count(*) = 3 THEN 'yes' ELSE 'no' END FROM (
            SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname IN ('refresh_tokens_tenant_expires_at_idx',
                                    'access_tokens_tenant_subject_idx') AND i.indisvalid
            UNION ALL
            SELECT 1 FROM pg_attribute
                WHERE attrelid = 'refresh_tokens'::regclass AND attname = 'tenant_id'
                  AND attnotnull
        ) AS found"
}

# One upgrade under load. $1: scenario (steady or long-reader), $2: naive or pgshift.
run_under_load() {
    local scenario=$1 mode=$2
    local db=${DB_PREFIX}_${scenario//-/_}_$mode
    local dir=$OUT/$scenario-$mode
    rm -rf "$dir"
    mkdir -p "$dir"
    log "$scenario/$mode: cloning $db"
    clone_db "$db"

    local load_limit=$((LOAD_BEFORE + UPGRADE_LIMIT + READER_SECONDS + LOAD_AFTER + 30))
    pgbench -h "$HOST" -p "$PORT" -U "$PGUSER_NAME" -n \
        -c "$PGBENCH_CLIENTS" -j "$PGBENCH_THREADS" -R "$RATE" -T "$load_limit" \
        --max-tries=1 \
        -D nrefresh="$REFRESH_ROWS" -D naccess="$ACCESS_ROWS" -D nclients="$CLIENT_ROWS" \
        -f "$WRITE_SCRIPT@$WRITE_WEIGHT" -f "$SQL/read.pgbench@$READ_WEIGHT" \
        -l --log-prefix="$dir/pgbench" "$db" >"$dir/pgbench.out" 2>"$dir/pgbench.err" &
    local pgbench_pid=$!
    STARTED_PIDS+=("$pgbench_pid")
    log "$scenario/$mode: load started (pgbench pid $pgbench_pid), upgrade in ${LOAD_BEFORE}s"
    sleep "$LOAD_BEFORE"

    local reader_pid=""
    if [ "$scenario" = long-reader ]; then
        # A report query that read refresh_tokens and stays in its
        # transaction, holding ACCESS SHARE until it commits.
        psql_db "$db" -c "BEGIN" \
            -c "SELECT count(*) FROM (SELECT 1 FROM refresh_tokens LIMIT 10000) AS page" \
            -c "SELECT pg_sleep($READER_SECONDS)" -c "COMMIT" >"$dir/reader.out" 2>&1 &
        reader_pid=$!
        STARTED_PIDS+=("$reader_pid")
        sleep 0.5
    fi

    local start end status=0
    start=$(now)
    if [ "$mode" = naive ]; then
        upgrade_naive "$db" 2>&1 | stamp_lines >"$dir/upgrade.out" || status=${PIPESTATUS[0]}
    else
        timeout "$UPGRADE_LIMIT" "$BIN" apply -v --database-url "$(db_url "$db")" "$PLAN" 2>&1 |
            stamp_lines >"$dir/upgrade.out" || status=${PIPESTATUS[0]}
    fi
    end=$(now)
    log "$scenario/$mode: upgrade exited with $status after $(seconds_between "$start" "$end") s"

    if [ -n "$reader_pid" ]; then
        wait "$reader_pid" || true
    fi
    sleep "$LOAD_AFTER"
    # SIGTERM loses pgbench's unflushed log lines, which are from the last
    # second or so of LOAD_AFTER and so outside the window measured.
    kill -TERM "$pgbench_pid" 2>/dev/null || true
    wait "$pgbench_pid" || true
    STARTED_PIDS=()

    local reached
    reached=$(reached_2_0 "$db")
    local aborted
    aborted=$(grep -c "aborted" "$dir/pgbench.err" || true)
    python3 "$ROOT/benches/pgbench_window.py" --prefix "$dir/pgbench" \
        --start "$start" --end "$end" --script-names write,read >"$dir/window.json"
    local label from to
    python3 "$ROOT/benches/migration_windows.py" "$dir/upgrade.out" "$end" |
        while read -r label from to; do
            python3 "$ROOT/benches/pgbench_window.py" --prefix "$dir/pgbench" \
                --start "$from" --end "$to" --script-names write,read >"$dir/window-$label.json"
        done
    python3 - "$dir" "$scenario" "$mode" "$start" "$end" "$status" "$reached" \
        "$aborted" >"$dir/result.json" <<'PY'
import glob, json, os, sys
directory, scenario, mode, start, end, status, reached, aborted = sys.argv[1:]
window = json.load(open(os.path.join(directory, "window.json")))
window.update(scenario=scenario, mode=mode, wall_seconds=round(float(end) - float(start), 1),
              exit_status=int(status), reached_2_0=reached, aborted_clients=int(aborted))
migrations = {}
for path in sorted(glob.glob(os.path.join(directory, "window-V*.json"))):
    label = os.path.basename(path)[len("window-"):-len(".json")]
    migrations[label] = json.load(open(path))
window["migrations"] = migrations
print(json.dumps(window))
PY
    drop_db "$db"
}

# Print the seconds each of OVERHEAD_REPEATS runs of the function $2 takes,
# one per line, each on a fresh database $3 made by the function $1.
time_on_fresh_db() {
    local make_db=$1 run=$2 db=$3
    local i start end
    for i in $(seq 1 "$OVERHEAD_REPEATS"); do
        "$make_db" "$db"
        start=$(now)
        "$run" "$db" >>"$OUT/overhead/runs.log" 2>&1
        end=$(now)
        seconds_between "$start" "$end"
        echo
        drop_db "$db"
    done
}

empty_db() {
    drop_db "$1"
    psql_admin -c "CREATE DATABASE $1"
}

STEPS_DIR=""

run_steps_with_psql() {
    local db=$1 file
    for file in "$STEPS_DIR"/*.sql; do
        case $file in
        *.tx.sql) psql_db "$db" --single-transaction -f "$file" ;;
        *.auto.sql) psql_db "$db" -c "$(cat "$file")" ;;
        esac
    done
}

run_pgshift_full() {
    "$BIN" apply -q --database-url "$(db_url "$1")" "$PLAN"
}

# Executor overhead: the whole plan on an empty database, and the 1.3 -> 2.0
# phase on a copy of the loaded template, each run by pgshift and by psql on
# the statements pgshift's dry run prints.
run_overhead() {
    local dir=$OUT/overhead
    rm -rf "$dir"
    mkdir -p "$dir"

    "$BIN" apply --dry-run --format json "$PLAN" >"$dir/dry-run-empty.json"
    STEPS_DIR=$dir/steps-empty
    python3 "$ROOT/benches/dry_run_steps.py" "$dir/dry-run-empty.json" "$STEPS_DIR" >/dev/null
    log "overhead: empty database, $OVERHEAD_REPEATS runs each"
    time_on_fresh_db empty_db run_pgshift_full ${DB_PREFIX}_overhead >"$dir/empty-pgshift.txt"
    time_on_fresh_db empty_db run_steps_with_psql ${DB_PREFIX}_overhead >"$dir/empty-psql.txt"

    clone_db ${DB_PREFIX}_overhead
    "$BIN" apply --dry-run --format json --database-url "$(db_url ${DB_PREFIX}_overhead)" \
        "$PLAN" >"$dir/dry-run-loaded.json"
    drop_db ${DB_PREFIX}_overhead
    STEPS_DIR=$dir/steps-loaded
    python3 "$ROOT/benches/dry_run_steps.py" "$dir/dry-run-loaded.json" "$STEPS_DIR" >/dev/null
    log "overhead: loaded 1.3 database, $OVERHEAD_REPEATS runs each"
    time_on_fresh_db clone_db run_pgshift_full ${DB_PREFIX}_overhead >"$dir/loaded-pgshift.txt"
    time_on_fresh_db clone_db run_steps_with_psql ${DB_PREFIX}_overhead >"$dir/loaded-psql.txt"
}

write_results() {
    python3 - "$OUT" "$RATE" "$WRITE_WEIGHT" "$READ_WEIGHT" >"$OUT/results.md" <<'PY'
import json, os, statistics, sys
out, rate, write_weight, read_weight = sys.argv[1:]

def cell(value):
    return "-" if value is None else str(value)

for scenario in ("steady", "long-reader"):
    rows = []
    for mode in ("naive", "pgshift"):
        path = os.path.join(out, f"{scenario}-{mode}", "result.json")
        if os.path.exists(path):
            rows.append(json.load(open(path)))
    if not rows:
        continue
    print(f"### {scenario}\n")
    print("| runner | upgrade wall time | exit | reached 2.0 | load | txns | failed "
          "| p50 ms | p99 ms | max ms | p99 ms before |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for load in ("all", "write", "read"):
            stats = row.get(load)
            if stats is None:
                continue
            print(f"| {row['mode']} | {row['wall_seconds']} s | {row['exit_status']} "
                  f"| {row['reached_2_0']} | {load} | {stats['transactions']} | {stats['failed']} "
                  f"| {cell(stats['p50_ms'])} | {cell(stats['p99_ms'])} | {cell(stats['max_ms'])} "
                  f"| {cell(row['before_window']['p99_ms']) if load == 'all' else ''} |")
        print(f"\n{row['mode']}: {row['aborted_clients']} pgbench client(s) aborted.\n")
    print("Per migration (all transactions overlapping it):\n")
    print("| runner | migration | duration s | txns | failed | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for label, stats in sorted(row.get("migrations", {}).items(),
                                   key=lambda item: int(item[0][1:].split("__")[0])):
            total = stats["all"]
            print(f"| {row['mode']} | {label} | {stats['window_seconds']} | {total['transactions']} "
                  f"| {total['failed']} | {cell(total['p50_ms'])} | {cell(total['p99_ms'])} "
                  f"| {cell(total['max_ms'])} |")
    print()

overhead = os.path.join(out, "overhead")
if os.path.isdir(overhead):
    print("### executor overhead\n")
    print("| database | runs | pgshift median s | psql median s | ratio |")
    print("|---|---|---|---|---|")
    for case in ("empty", "loaded"):
        try:
            pgshift = [float(x) for x in open(os.path.join(overhead, f"{case}-pgshift.txt"))]
            psql = [float(x) for x in open(os.path.join(overhead, f"{case}-psql.txt"))]
        except FileNotFoundError:
            continue
        pgshift_median, psql_median = statistics.median(pgshift), statistics.median(psql)
        print(f"| {case} | {len(pgshift)} | {pgshift_median:.3f} | {psql_median:.3f} "
              f"| {pgshift_median / psql_median:.2f} |")
        print(f"\n{case}: pgshift runs {', '.join(f'{x:.3f}' for x in pgshift)}; "
              f"psql runs {', '.join(f'{x:.3f}' for x in psql)}\n")
PY
    cat "$OUT/results.md"
}

main() {
    local what=${1:-all}
    case $what in
    all | load | overhead) ;;
    *)
        echo "usage: $0 [all|load|overhead]" >&2
        exit 2
        ;;
    esac
    if [ ! -x "$BIN" ]; then
        echo "error: $BIN not found; run cargo build --release first" >&2
        exit 2
    fi
    mkdir -p "$OUT"
    prepare_template

    if [ "$what" != overhead ]; then
        local scenario mode
        for scenario in $SCENARIOS; do
            for mode in naive pgshift; do
                run_under_load "$scenario" "$mode"
            done
        done
    fi
    if [ "$what" != load ]; then
        run_overhead
    fi
    write_results
}

main "$@"
