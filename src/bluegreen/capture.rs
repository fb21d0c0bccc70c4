//! Capture: triggers on the captured tables queue every row write on blue,
//! in the writing transaction.
//!
//! `CREATE TRIGGER` takes SHARE ROW EXCLUSIVE on its table, which conflicts
//! with the ROW EXCLUSIVE lock of every writer, so it waits for open writers
//! and blocks new ones while it waits. Each table's triggers are created in
//! a transaction of their own under the phase's `lock_timeout`, and retried
//! with backoff on SQLSTATE 55P03 like an in-place step.

use std::collections::HashSet;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::{kill_point, query_error, BlueGreenError, Context, KillPoint};
use crate::plan::{CaptureTable, Settings};

/// Name of the row trigger on each captured table.
pub const TRIGGER: &str = "pgshift_capture";
/// Name of the statement trigger that rejects TRUNCATE, which row triggers
/// do not see.
pub const TRUNCATE_TRIGGER: &str = "pgshift_capture_truncate";

/// The queue and the trigger functions. The functions are SECURITY DEFINER
/// so an application role can write the queue without rights on pgshift's
/// schema.
pub const QUEUE_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS pgshift;
CREATE TABLE IF NOT EXISTS pgshift.capture_queue (
    seq         bigserial PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_name  text NOT NULL,
    op          text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    old_row     jsonb,
    new_row     jsonb,
    captured_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS capture_queue_txid ON pgshift.capture_queue (txid);
CREATE OR REPLACE FUNCTION pgshift.capture_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
BEGIN
    INSERT INTO pgshift.capture_queue (table_name, op, old_row, new_row)
    VALUES (TG_ARGV[0], lower(TG_OP),
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION pgshift.capture_reject_truncate() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of % is not captured during a blue-green phase', TG_TABLE_NAME
        USING HINT = 'delete the rows with DELETE, or wait until the cutover is confirmed';
END
$fn$;
"#;

/// Creates the queue and installs the triggers on every captured table.
pub async fn run(context: &Context<'_>) -> Result<(), BlueGreenError> {
    context
        .blue
        .batch_execute(QUEUE_DDL)
        .await
        .map_err(query_error("create the capture queue", "blue"))?;
    for (index, table) in context.spec.capture.iter().enumerate() {
        let qualified = resolve_table(context, index, table).await?;
        if has_trigger(&context.blue, &qualified).await? {
            continue;
        }
        install(&context.blue, &qualified, table, &context.phase.settings).await?;
        context.reporter.capture_installed(&table.table);
        kill_point(KillPoint::CaptureTableInstalled);
    }
    Ok(())
}

/// Checks, on a rerun after capture was done, that no trigger went missing,
/// because writes without one would be lost.
pub async fn check_installed(context: &Context<'_>) -> Result<(), BlueGreenError> {
    for (index, table) in context.spec.capture.iter().enumerate() {
        let qualified = resolve_table(context, index, table).await?;
        if !has_trigger(&context.blue, &qualified).await? {
            return Err(BlueGreenError::Invalid {
                phase: context.phase.name.clone(),
                message: format!(
                    "the capture trigger {TRIGGER} on {qualified} is gone, so writes since \
                     it was dropped are not queued; delete the phase's rows from \
                     pgshift.bluegreen_stages to start the phase over"
                ),
            });
        }
    }
    Ok(())
}

/// Returns the table's quoted, schema-qualified name, after checking that
/// every column the replay statements name exists on blue.
async fn resolve_table(
    context: &Context<'_>,
    index: usize,
    table: &CaptureTable,
) -> Result<String, BlueGreenError> {
    let invalid = |message: String| BlueGreenError::Invalid {
        phase: context.phase.name.clone(),
        message: format!("capture[{index}] (table `{}`): {message}", table.table),
    };
    let row = context
        .blue
        .query_one(
            "SELECT c.oid, format('%I.%I', n.nspname, c.relname) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1)",
            &[&table.table],
        )
        .await;
    let row = match row {
        Ok(row) => row,
        Err(_) => {
            return Err(invalid(
                "no such table on blue; check the name and schema".to_string(),
            ))
        }
    };
    let oid: u32 = row.get(0);
    let qualified: String = row.get(1);

    let columns: HashSet<String> = context
        .blue
        .query(
            "SELECT attname::text FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
            &[&oid],
        )
        .await
        .map_err(query_error("list columns", "blue"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for op in ["insert", "update", "delete"] {
        let statement = table.statement(op).expect("known operation");
        for param in &statement.params {
            if let Some(column) = &param.column {
                if !columns.contains(column) {
                    return Err(invalid(format!(
                        "the {op} statement uses {param}, but {qualified} has no column \
                         {column} on blue"
                    )));
                }
            }
        }
    }
    Ok(qualified)
}

async fn has_trigger(blue: &Client, qualified: &str) -> Result<bool, BlueGreenError> {
    let row = blue
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::text::regclass \
             AND tgname IN ($2, $3)",
            &[&qualified, &TRIGGER, &TRUNCATE_TRIGGER],
        )
        .await
        .map_err(query_error("look up capture triggers", "blue"))?;
    let count: i64 = row.get(0);
    Ok(count == 2)
}

/// Returns the trigger DDL for one table.
pub fn trigger_sql(qualified: &str, table: &CaptureTable) -> String {
    let name = literal(&table.table);
    format!(
        "DROP TRIGGER IF EXISTS {TRIGGER} ON {qualified};\n\
         DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {qualified};\n\
         CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {qualified} \
         FOR EACH ROW EXECUTE FUNCTION pgshift.capture_row({name});\n\
         CREATE TRIGGER {TRUNCATE_TRIGGER} BEFORE TRUNCATE ON {qualified} \
         FOR EACH STATEMENT EXECUTE FUNCTION pgshift.capture_reject_truncate();"
    )
}

async fn install(
    blue: &Client,
    qualified: &str,
    table: &CaptureTable,
    settings: &Settings,
) -> Result<(), BlueGreenError> {
    let what = format!("install capture triggers on {qualified}");
    run_with_retries(blue, &trigger_sql(qualified, table), settings, &what).await
}

/// Runs `sql` in a transaction under the phase's `lock_timeout`, and again
/// with backoff after SQLSTATE 55P03 (lock not available), up to `retries`
/// times.
async fn run_with_retries(
    blue: &Client,
    sql: &str,
    settings: &Settings,
    what: &str,
) -> Result<(), BlueGreenError> {
    let sql = format!(
        "BEGIN;\nSET LOCAL lock_timeout = '{}ms';\n{sql}\nCOMMIT;",
        settings.lock_timeout.as_millis(),
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        match blue.batch_execute(&sql).await {
            Ok(()) => return Ok(()),
            Err(error) => {
                let _ = blue.batch_execute("ROLLBACK").await;
                let locked = error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE);
                if !locked || attempt > settings.retries {
                    return Err(query_error(format!("{what} (attempt {attempt})"), "blue")(
                        error,
                    ));
                }
                let factor = 1u32 << (attempt - 1).min(16);
                let backoff = settings
                    .retry_backoff
                    .saturating_mul(factor)
                    .min(settings.retry_backoff_max);
                tracing::info!(what, attempt, "lock not available; retrying");
                tokio::time::sleep(backoff.max(Duration::from_millis(10))).await;
            }
        }
    }
}

/// Drops the capture triggers of every captured table on blue, after the
/// operator confirmed the cutover. `DROP TRIGGER` takes an ACCESS EXCLUSIVE
/// lock on its table, so each table's triggers are dropped in a transaction
/// of their own under the phase's `lock_timeout`, with retries. The queue
/// keeps its rows for inspection.
pub async fn remove(
    blue: &Client,
    tables: &[CaptureTable],
    settings: &Settings,
) -> Result<(), BlueGreenError> {
    for table in tables {
        let sql = format!(
            "DROP TRIGGER IF EXISTS {TRIGGER} ON {name};\n\
             DROP TRIGGER IF EXISTS {TRUNCATE_TRIGGER} ON {name};",
            name = table.table
        );
        let what = format!("drop capture triggers on {}", table.table);
        run_with_retries(blue, &sql, settings, &what).await?;
    }
    Ok(())
}

/// Quotes `text` as an SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
