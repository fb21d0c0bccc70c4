//! pgshift's own schema: applied migrations with checksums and the step
//! journal, created and upgraded by refinery from `migrations/`.
//!
//! Every table lives in the `pgshift` schema, refinery's history table too,
//! so pgshift leaves nothing in the application's schemas.
//!
//! The journal is what makes a run resumable. A transactional step writes its
//! `done` row in the step's own transaction, so the row exists exactly when
//! the step's changes do. A step outside a transaction writes `started`
//! before it runs and `done` after. When a run dies, the next run marks its
//! `started` rows `interrupted` and runs those steps again. A batched
//! backfill also records the key of its last committed batch in
//! `backfill_progress`, in that batch's transaction, and resumes after it.

use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, GenericClient};

use crate::rewrite::Step;

/// pgshift's schema.
pub const SCHEMA: &str = "pgshift";

/// refinery's history table, inside pgshift's schema. refinery pastes the
/// name into its SQL as written, so a qualified name works.
pub const HISTORY_TABLE: &str = "pgshift.refinery_schema_history";

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Errors from reading or writing pgshift's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create schema {SCHEMA}: {0}")]
    CreateSchema(tokio_postgres::Error),
    #[error("cannot upgrade pgshift's state schema: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("state query failed ({what}): {source}")]
    Query {
        what: &'static str,
        source: tokio_postgres::Error,
    },
}

fn query_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StateError {
    move |source| StateError::Query { what, source }
}

/// A migration recorded as applied.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedMigration {
    pub migration_id: String,
    pub plan_version: String,
    pub name: String,
    pub checksum: String,
    pub applied_at: SystemTime,
    pub duration_ms: i64,
}

/// A migration to record as applied.
#[derive(Debug, Clone)]
pub struct NewApplied<'a> {
    pub migration_id: &'a str,
    pub plan_version: &'a str,
    pub name: &'a str,
    pub checksum: &'a str,
    pub duration_ms: i64,
    pub run_id: i64,
}

/// Status of a journal row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Started,
    Done,
    Failed,
    Interrupted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Started => "started",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> StepStatus {
        match text {
            "started" => StepStatus::Started,
            "done" => StepStatus::Done,
            "failed" => StepStatus::Failed,
            _ => StepStatus::Interrupted,
        }
    }
}

/// One row of the step journal.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub run_id: i64,
    pub migration_id: String,
    pub step_index: i32,
    pub step_checksum: String,
    pub status: StepStatus,
    pub attempts: i32,
    pub error: Option<String>,
}

/// Final status of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
    /// Stopped by an interrupt request (Ctrl-C).
    Interrupted,
}

/// Creates the `pgshift` schema and brings its tables to the latest
/// version. Callers hold the run lock, so two runs never race here.
pub async fn ensure_schema(client: &mut Client) -> Result<(), StateError> {
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS pgshift")
        .await
        .map_err(StateError::CreateSchema)?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(HISTORY_TABLE);
    runner.run_async(client).await?;
    Ok(())
}

/// Returns true when the state tables exist, without creating anything.
pub async fn schema_exists(client: &Client) -> Result<bool, StateError> {
    let row = client
        .query_one(
            "SELECT to_regclass('pgshift.applied_migrations') IS NOT NULL",
            &[],
        )
        .await
        .map_err(query_error("look up pgshift.applied_migrations"))?;
    Ok(row.get(0))
}

/// Lists applied migrations in the order they were applied.
pub async fn applied_migrations(client: &Client) -> Result<Vec<AppliedMigration>, StateError> {
    let rows = client
        .query(
            "SELECT migration_id, plan_version, name, checksum, applied_at, duration_ms \
             FROM pgshift.applied_migrations ORDER BY applied_at, migration_id",
            &[],
        )
        .await
        .map_err(query_error("list applied migrations"))?;
    Ok(rows
        .iter()
        .map(|row| AppliedMigration {
            migration_id: row.get(0),
            plan_version: row.get(1),
            name: row.get(2),
            checksum: row.get(3),
            applied_at: row.get(4),
            duration_ms: row.get(5),
        })
        .collect())
}

/// Records a migration as applied; `client` may be the transaction of the
/// migration's last step.
pub async fn record_applied(
    client: &impl GenericClient,
    applied: &NewApplied<'_>,
) -> Result<(), StateError> {
    client
        .execute(
            "INSERT INTO pgshift.applied_migrations \
                 (migration_id, plan_version, name, checksum, duration_ms, run_id) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &applied.migration_id,
                &applied.plan_version,
                &applied.name,
                &applied.checksum,
                &applied.duration_ms,
                &applied.run_id,
            ],
        )
        .await
        .map_err(query_error("record applied migration"))?;
    Ok(())
}

/// Replaces the recorded checksum of an applied migration, for a repair
/// after an intended edit of an applied file. Returns false when the
/// migration is not recorded.
pub async fn update_checksum(
    client: &Client,
    migration_id: &str,
    checksum: &str,
) -> Result<bool, StateError> {
    let count = client
        .execute(
            "UPDATE pgshift.applied_migrations SET checksum = $2 WHERE migration_id = $1",
            &[&migration_id, &checksum],
        )
        .await
        .map_err(query_error("update checksum"))?;
    Ok(count == 1)
}

/// Returns the step checksum: hex SHA-256 of the step's statements as sent,
/// each followed by `;\n`.
pub fn step_checksum(step: &Step) -> String {
    let mut hasher = Sha256::new();
    for statement in &step.statements {
        hasher.update(statement.sql.as_bytes());
        hasher.update(b";\n");
    }
    hex::encode(hasher.finalize())
}

/// Returns the checksum of the `done` row of a step, if there is one.
pub async fn step_done(
    client: &Client,
    migration_id: &str,
    step_index: usize,
) -> Result<Option<String>, StateError> {
    let row = client
        .query_opt(
            "SELECT step_checksum FROM pgshift.step_journal \
             WHERE migration_id = $1 AND step_index = $2 AND status = 'done'",
            &[&migration_id, &(step_index as i32)],
        )
        .await
        .map_err(query_error("look up done step"))?;
    Ok(row.map(|row| row.get(0)))
}

/// Lists the journal rows of a migration, oldest first.
pub async fn journal(client: &Client, migration_id: &str) -> Result<Vec<JournalEntry>, StateError> {
    let rows = client
        .query(
            "SELECT run_id, migration_id, step_index, step_checksum, status, attempts, error \
             FROM pgshift.step_journal WHERE migration_id = $1 ORDER BY id",
            &[&migration_id],
        )
        .await
        .map_err(query_error("read step journal"))?;
    Ok(rows
        .iter()
        .map(|row| JournalEntry {
            run_id: row.get(0),
            migration_id: row.get(1),
            step_index: row.get(2),
            step_checksum: row.get(3),
            status: StepStatus::parse(row.get(4)),
            attempts: row.get(5),
            error: row.get(6),
        })
        .collect())
}

/// Starts a run and returns its id. Rows that earlier runs left `started`
/// or `running` belong to runs that died, so they become `interrupted`.
pub async fn start_run(client: &Client, plan_name: &str) -> Result<i64, StateError> {
    client
        .batch_execute(
            "UPDATE pgshift.step_journal SET status = 'interrupted', finished_at = now() \
                 WHERE status = 'started'; \
             UPDATE pgshift.runs SET status = 'interrupted', finished_at = now() \
                 WHERE status = 'running'",
        )
        .await
        .map_err(query_error("mark interrupted runs"))?;
    let os_user = std::env::var("USER").ok();
    let row = client
        .query_one(
            "INSERT INTO pgshift.runs (plan_name, pgshift_version, os_user) \
             VALUES ($1, $2, $3) RETURNING id",
            &[&plan_name, &env!("CARGO_PKG_VERSION"), &os_user],
        )
        .await
        .map_err(query_error("start run"))?;
    Ok(row.get(0))
}

/// Records the end of a run.
pub async fn finish_run(client: &Client, run_id: i64, status: RunStatus) -> Result<(), StateError> {
    let status = match status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Interrupted => "interrupted",
    };
    client
        .execute(
            "UPDATE pgshift.runs SET status = $2, finished_at = now() WHERE id = $1",
            &[&run_id, &status],
        )
        .await
        .map_err(query_error("finish run"))?;
    Ok(())
}

/// Identifies a step in the journal.
#[derive(Debug, Clone, Copy)]
pub struct StepKey<'a> {
    pub run_id: i64,
    pub migration_id: &'a str,
    pub step_index: usize,
    pub step_checksum: &'a str,
}

/// Inserts a journal row and returns its id.
pub async fn journal_insert(
    client: &impl GenericClient,
    key: StepKey<'_>,
    status: StepStatus,
    attempts: u32,
) -> Result<i64, StateError> {
    let finished = status != StepStatus::Started;
    let row = client
        .query_one(
            "INSERT INTO pgshift.step_journal \
                 (run_id, migration_id, step_index, step_checksum, status, attempts, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END) RETURNING id",
            &[
                &key.run_id,
                &key.migration_id,
                &(key.step_index as i32),
                &key.step_checksum,
                &status.as_str(),
                &(attempts as i32),
                &finished,
            ],
        )
        .await
        .map_err(query_error("write step journal"))?;
    Ok(row.get(0))
}

/// Updates a journal row's status, attempts and error.
pub async fn journal_update(
    client: &impl GenericClient,
    id: i64,
    status: StepStatus,
    attempts: u32,
    error: Option<&str>,
) -> Result<(), StateError> {
    client
        .execute(
            "UPDATE pgshift.step_journal \
             SET status = $2, attempts = $3, error = $4, \
                 finished_at = CASE WHEN $2 = 'started' THEN NULL ELSE now() END \
             WHERE id = $1",
            &[&id, &status.as_str(), &(attempts as i32), &error],
        )
        .await
        .map_err(query_error("update step journal"))?;
    Ok(())
}

/// Progress of a batched backfill, as its last committed batch left it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackfillProgress {
    pub step_checksum: String,
    /// The primary key of the last row of the last committed batch, one
    /// text value per key column; `None` before the first batch.
    pub last_key: Option<Vec<String>>,
    /// Keys covered by the committed batches.
    pub rows_scanned: i64,
    /// Rows the committed batches changed.
    pub rows_updated: i64,
    pub batches: i64,
    /// The last batch committed, so the backfill is complete.
    pub finished: bool,
}

/// Returns the recorded progress of the backfill step `step_index` of a
/// migration, if any batch of it committed.
pub async fn backfill_progress(
    client: &impl GenericClient,
    migration_id: &str,
    step_index: usize,
) -> Result<Option<BackfillProgress>, StateError> {
    let row = client
        .query_opt(
            "SELECT step_checksum, last_key, rows_scanned, rows_updated, batches, finished \
             FROM pgshift.backfill_progress WHERE migration_id = $1 AND step_index = $2",
            &[&migration_id, &(step_index as i32)],
        )
        .await
        .map_err(query_error("read backfill progress"))?;
    Ok(row.map(|row| BackfillProgress {
        step_checksum: row.get(0),
        last_key: row.get(1),
        rows_scanned: row.get(2),
        rows_updated: row.get(3),
        batches: row.get(4),
        finished: row.get(5),
    }))
}

/// Records the progress of a backfill step; `client` is the transaction of
/// the batch that reached it.
pub async fn record_backfill_progress(
    client: &impl GenericClient,
    migration_id: &str,
    step_index: usize,
    progress: &BackfillProgress,
) -> Result<(), StateError> {
    client
        .execute(
            "INSERT INTO pgshift.backfill_progress AS p \
                 (migration_id, step_index, step_checksum, last_key, rows_scanned, \
                  rows_updated, batches, finished) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (migration_id, step_index) DO UPDATE SET \
                 step_checksum = EXCLUDED.step_checksum, last_key = EXCLUDED.last_key, \
                 rows_scanned = EXCLUDED.rows_scanned, rows_updated = EXCLUDED.rows_updated, \
                 batches = EXCLUDED.batches, finished = EXCLUDED.finished, updated_at = now()",
            &[
                &migration_id,
                &(step_index as i32),
                &progress.step_checksum,
                &progress.last_key,
                &progress.rows_scanned,
                &progress.rows_updated,
                &progress.batches,
                &progress.finished,
            ],
        )
        .await
        .map_err(query_error("record backfill progress"))?;
    Ok(())
}
