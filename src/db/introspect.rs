//! Catalog and statistics queries: server version, index state, blockers,
//! index build progress and table sizes.

use std::time::{Duration, SystemTime};

use tokio_postgres::Client;

use super::DbError;
use crate::locks::{LockMode, PgVersion, RelationName};

/// The state of an index in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexState {
    Absent,
    /// A usable index; `definition` is `pg_get_indexdef`'s text.
    Valid {
        definition: String,
    },
    /// `pg_index.indisvalid` is false: a concurrent build failed or was
    /// cancelled, and the index must be dropped before it is built again.
    Invalid,
}

/// A session that blocks another one, from `pg_blocking_pids`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockingPid {
    pub pid: i32,
    pub application_name: String,
    /// `pg_stat_activity.state`, e.g. `idle in transaction`.
    pub state: String,
    /// The session's current or last query.
    pub query: String,
    /// Time since its transaction began, or its query when it has none.
    pub duration: Duration,
    /// `pg_stat_activity.xact_start`; with `pid` it identifies one
    /// transaction, so a retry can tell whether the same one still runs.
    pub xact_start: Option<SystemTime>,
    /// What the blocked session waits for: `lock` for a conflicting lock
    /// (from `pg_blocking_pids`), `snapshot` for a transaction whose end a
    /// concurrent index build waits for (a `virtualxid` lock).
    pub wait: String,
}

/// One sample of `pg_stat_progress_cluster` (`CLUSTER`, `VACUUM FULL`) or
/// `pg_stat_progress_vacuum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandProgress {
    /// `CLUSTER`, `VACUUM FULL` or `VACUUM`.
    pub command: String,
    /// E.g. `seq scanning heap` or `scanning heap`.
    pub phase: String,
    pub blocks_done: i64,
    pub blocks_total: i64,
    /// Heap tuples written so far; always 0 for `VACUUM`, whose dead-tuple
    /// columns changed names in PostgreSQL 17.
    pub tuples_done: i64,
}

/// One sample of `pg_stat_progress_create_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexProgress {
    /// E.g. `building index: scanning table`.
    pub phase: String,
    pub blocks_done: i64,
    pub blocks_total: i64,
    pub tuples_done: i64,
    pub tuples_total: i64,
}

/// Size and estimated row count of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSize {
    pub table: RelationName,
    /// `pg_total_relation_size`: heap, indexes and TOAST.
    pub total_bytes: i64,
    /// `pg_class.reltuples`; -1 when the table was never analyzed.
    pub rows_estimate: f64,
}

fn query_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> DbError {
    move |source| DbError::Query { what, source }
}

/// Reads the server version from `server_version_num`.
pub async fn server_version(client: &Client) -> Result<PgVersion, DbError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(query_error("read server_version_num"))?;
    let number: i32 = row.get(0);
    Ok(version_from_num(number as u32))
}

/// Splits a `server_version_num`: `150004` becomes 15.4. Before version 10
/// the major version had two parts, so `90624` (9.6.24) becomes 9.6.
fn version_from_num(number: u32) -> PgVersion {
    if number >= 100_000 {
        PgVersion::new(number / 10_000, number % 10_000)
    } else {
        PgVersion::new(number / 10_000, (number / 100) % 100)
    }
}

/// Looks an index up by name. With no schema, the name resolves through the
/// session's `search_path`, as an unqualified name in a statement does.
pub async fn invalid_index(
    client: &Client,
    schema: Option<&str>,
    name: &str,
) -> Result<IndexState, DbError> {
    let row = client
        .query_opt(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) \
             FROM pg_index i \
             WHERE i.indexrelid = to_regclass(CASE WHEN $1::text IS NULL THEN quote_ident($2) \
                   ELSE quote_ident($1) || '.' || quote_ident($2) END)",
            &[&schema, &name],
        )
        .await
        .map_err(query_error("look up index"))?;
    Ok(match row {
        None => IndexState::Absent,
        Some(row) if row.get::<_, bool>(0) => IndexState::Valid {
            definition: row.get(1),
        },
        Some(_) => IndexState::Invalid,
    })
}

/// Lists the INVALID indexes that an interrupted or failed
/// `REINDEX CONCURRENTLY` left on a table. PostgreSQL names the new copy
/// `<index>_ccnew` and, after the swap, the old index `<index>_ccold` (a
/// digit is appended on a name clash, and `<index>` is cut short so the
/// name fits in 63 bytes). With `index` set, only the leftovers of that
/// index count; otherwise those of every index on `table`.
pub async fn reindex_leftovers(
    client: &Client,
    table_or_index: &RelationName,
    index: bool,
) -> Result<Vec<RelationName>, DbError> {
    let rows = client
        .query(
            "WITH target AS ( \
                 SELECT coalesce(i.indrelid, c.oid) AS tbl, \
                        CASE WHEN $3 THEN c.relname END AS index_name \
                 FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid \
                 WHERE c.oid = to_regclass(CASE WHEN $1::text IS NULL THEN quote_ident($2) \
                       ELSE quote_ident($1) || '.' || quote_ident($2) END)), \
             leftover AS ( \
                 SELECT n.nspname, c.relname, t.index_name, \
                        regexp_replace(c.relname, '_cc(new|old)[0-9]*$', '') AS stem \
                 FROM target t \
                 JOIN pg_index i ON i.indrelid = t.tbl AND NOT i.indisvalid \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname ~ '_cc(new|old)[0-9]*$') \
             SELECT nspname, relname FROM leftover \
             WHERE index_name IS NULL OR stem = index_name \
                OR (octet_length(relname) >= 61 AND left(index_name, length(stem)) = stem) \
             ORDER BY relname",
            &[&table_or_index.schema, &table_or_index.name, &index],
        )
        .await
        .map_err(query_error("look up REINDEX CONCURRENTLY leftovers"))?;
    Ok(rows
        .iter()
        .map(|row| RelationName {
            schema: Some(row.get(0)),
            name: row.get(1),
        })
        .collect())
}

/// Lists the sessions that block `pid`, with what they are doing.
/// `pg_blocking_pids` lists `virtualxid` waits too; the join on `pg_locks`
/// marks those as `snapshot` waits (a concurrent index build waiting for an
/// older transaction) rather than a conflicting table lock.
pub async fn blocking_pids(client: &Client, pid: i32) -> Result<Vec<BlockingPid>, DbError> {
    let rows = client
        .query(
            "WITH blockers AS ( \
                 SELECT unnest(pg_blocking_pids($1)) AS pid, 'lock' AS wait \
                 UNION \
                 SELECT holder.pid, 'snapshot' \
                 FROM pg_locks waiter \
                 JOIN pg_locks holder ON holder.locktype = 'virtualxid' \
                      AND holder.virtualxid = waiter.virtualxid \
                      AND holder.granted AND holder.pid <> waiter.pid \
                 WHERE waiter.pid = $1 AND waiter.locktype = 'virtualxid' \
                       AND NOT waiter.granted \
             ) \
             SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), \
                    coalesce(a.query, ''), \
                    coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)), 0)::float8, \
                    a.xact_start, max(b.wait) \
             FROM blockers b JOIN pg_stat_activity a ON a.pid = b.pid \
             GROUP BY a.pid, a.application_name, a.state, a.query, a.xact_start, a.query_start \
             ORDER BY a.pid",
            &[&pid],
        )
        .await
        .map_err(query_error("list blocking sessions"))?;
    Ok(rows.iter().map(blocking_pid_from_row).collect())
}

fn blocking_pid_from_row(row: &tokio_postgres::Row) -> BlockingPid {
    BlockingPid {
        pid: row.get(0),
        application_name: row.get(1),
        state: row.get(2),
        query: row.get(3),
        duration: Duration::from_secs_f64(row.get::<_, f64>(4).max(0.0)),
        xact_start: row.get(5),
        wait: row.get(6),
    }
}

/// Returns those of `sessions` that still run the same transaction: same
/// pid and same `xact_start`.
pub async fn still_running(
    client: &Client,
    sessions: &[BlockingPid],
) -> Result<Vec<BlockingPid>, DbError> {
    let pids: Vec<i32> = sessions.iter().map(|s| s.pid).collect();
    let rows = client
        .query(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), \
                    coalesce(a.query, ''), \
                    coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)), 0)::float8, \
                    a.xact_start, '' \
             FROM pg_stat_activity a WHERE a.pid = ANY ($1) ORDER BY a.pid",
            &[&pids],
        )
        .await
        .map_err(query_error("look up blocking sessions"))?;
    Ok(rows
        .iter()
        .map(blocking_pid_from_row)
        .filter_map(|now| {
            let before = sessions.iter().find(|s| s.pid == now.pid)?;
            let same = now.xact_start.is_some() && now.xact_start == before.xact_start;
            same.then(|| BlockingPid {
                wait: before.wait.clone(),
                ..now
            })
        })
        .collect())
}

/// Lists the other sessions of the current database that hold a snapshot
/// (`backend_xmin` set), except `pid` and the calling session. A concurrent
/// index build waits for every such older snapshot, so after a build timed
/// out these are the sessions it probably waited for.
pub async fn snapshot_holders(client: &Client, pid: i32) -> Result<Vec<BlockingPid>, DbError> {
    let rows = client
        .query(
            "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), \
                    coalesce(a.query, ''), \
                    coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)), 0)::float8, \
                    a.xact_start, 'snapshot' \
             FROM pg_stat_activity a \
             WHERE a.datname = current_database() AND a.backend_xmin IS NOT NULL \
               AND a.pid <> $1 AND a.pid <> pg_backend_pid() \
             ORDER BY a.pid",
            &[&pid],
        )
        .await
        .map_err(query_error("list sessions holding a snapshot"))?;
    Ok(rows.iter().map(blocking_pid_from_row).collect())
}

/// Lists the sessions other than `pid` that hold a granted lock conflicting
/// with one of `requests` (a relation and the mode a step requests on it).
/// It names the blocker of a lock wait that timed out before the monitor
/// sampled it, because the holder usually still holds the lock then.
pub async fn relation_lock_holders(
    client: &Client,
    pid: i32,
    requests: &[(RelationName, LockMode)],
) -> Result<Vec<BlockingPid>, DbError> {
    let mut relations = Vec::new();
    let mut modes = Vec::new();
    for (relation, requested) in requests {
        let quoted = match &relation.schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&relation.name)),
            None => quote_ident(&relation.name),
        };
        for held in LockMode::ALL {
            if requested.conflicts_with(held) {
                relations.push(quoted.clone());
                modes.push(held.pg_locks_name().to_string());
            }
        }
    }
    let rows = client
        .query(
            "WITH wanted AS ( \
                 SELECT to_regclass(r) AS rel, m FROM unnest($2::text[], $3::text[]) AS w(r, m)) \
             SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), \
                    coalesce(a.query, ''), \
                    coalesce(extract(epoch FROM now() - coalesce(a.xact_start, a.query_start)), 0)::float8, \
                    a.xact_start, 'lock' \
             FROM pg_locks l \
             JOIN wanted w ON l.relation = w.rel AND l.mode = w.m \
             JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.granted AND l.pid <> $1 AND l.pid <> pg_backend_pid() \
             ORDER BY a.pid",
            &[&pid, &relations, &modes],
        )
        .await
        .map_err(query_error("list sessions holding conflicting locks"))?;
    Ok(rows.iter().map(blocking_pid_from_row).collect())
}

/// Quotes an identifier in double quotes, doubling the quotes inside it.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Samples a `CLUSTER`, `VACUUM FULL` or `VACUUM` run by backend `pid`;
/// `None` when it runs none of them.
pub async fn command_progress(
    client: &Client,
    pid: i32,
) -> Result<Option<CommandProgress>, DbError> {
    let row = client
        .query_opt(
            "SELECT command, phase, heap_blks_scanned, heap_blks_total, heap_tuples_written \
             FROM pg_stat_progress_cluster WHERE pid = $1 \
             UNION ALL \
             SELECT 'VACUUM', phase, heap_blks_scanned, heap_blks_total, 0::bigint \
             FROM pg_stat_progress_vacuum WHERE pid = $1 \
             LIMIT 1",
            &[&pid],
        )
        .await
        .map_err(query_error("read pg_stat_progress_cluster and _vacuum"))?;
    Ok(row.map(|row| CommandProgress {
        command: row.get(0),
        phase: row.get(1),
        blocks_done: row.get(2),
        blocks_total: row.get(3),
        tuples_done: row.get(4),
    }))
}

/// Samples the index build of backend `pid`; `None` when it builds none.
pub async fn create_index_progress(
    client: &Client,
    pid: i32,
) -> Result<Option<IndexProgress>, DbError> {
    let row = client
        .query_opt(
            "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total \
             FROM pg_stat_progress_create_index WHERE pid = $1",
            &[&pid],
        )
        .await
        .map_err(query_error("read pg_stat_progress_create_index"))?;
    Ok(row.map(|row| IndexProgress {
        phase: row.get(0),
        blocks_done: row.get(1),
        blocks_total: row.get(2),
        tuples_done: row.get(3),
        tuples_total: row.get(4),
    }))
}

/// Reads size and row estimate of each table that exists; missing tables are
/// left out.
pub async fn table_sizes(
    client: &Client,
    tables: &[RelationName],
) -> Result<Vec<TableSize>, DbError> {
    let mut sizes = Vec::new();
    for table in tables {
        let row = client
            .query_opt(
                "SELECT pg_total_relation_size(c.oid), c.reltuples::float8 \
                 FROM pg_class c \
                 WHERE c.oid = to_regclass(CASE WHEN $1::text IS NULL THEN quote_ident($2) \
                       ELSE quote_ident($1) || '.' || quote_ident($2) END)",
                &[&table.schema, &table.name],
            )
            .await
            .map_err(query_error("read table sizes"))?;
        if let Some(row) = row {
            sizes.push(TableSize {
                table: table.clone(),
                total_bytes: row.get(0),
                rows_estimate: row.get(1),
            });
        }
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_split() {
        assert_eq!(version_from_num(150004), PgVersion::new(15, 4));
        assert_eq!(version_from_num(110000), PgVersion::new(11, 0));
        assert_eq!(version_from_num(90624), PgVersion::new(9, 6));
    }
}
