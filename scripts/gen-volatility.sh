#!/bin/sh
# Regenerates src/locks/volatility.txt from a running PostgreSQL server.
#
# Each output line is "name v|s|i": the name of a built-in function (schema
# pg_catalog) and its volatility as pg_proc.provolatile spells it. A name with
# several overloads gets the most volatile class among them, so any volatile
# overload marks the name volatile.
#
# Usage: scripts/gen-volatility.sh [conninfo]
# The default conninfo points at the local PostgreSQL 15 server.
set -eu

conninfo=${1:-"host=127.0.0.1 port=5432 user=postgres dbname=postgres"}
out="$(dirname "$0")/../src/locks/volatility.txt"

{
    psql "$conninfo" -XAtc "SELECT 'server ' || current_setting('server_version_num')" |
        sed 's/^/# /'
    psql "$conninfo" -XAt -F ' ' -c "
        SELECT lower(p.proname),
               CASE WHEN bool_or(p.provolatile = 'v') THEN 'v'
                    WHEN bool_or(p.provolatile = 's') THEN 's'
                    ELSE 'i' END
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'pg_catalog'
        GROUP BY lower(p.proname)
        ORDER BY 1"
} > "$out"
echo "wrote $(wc -l < "$out") lines to $out"
