//! Errors of the executor.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{BlockingPid, DbError};
use crate::rewrite::RewriteError;
use crate::state::StateError;

use super::run_lock::LockHolder;

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Connection(#[from] DbError),

    #[error("pgshift's state schema: {0}")]
    State(#[from] StateError),

    #[error("query on pgshift's session failed ({what}): {source}")]
    Session {
        what: &'static str,
        source: tokio_postgres::Error,
    },

    #[error(
        "{}: migration {migration_id} was applied with checksum {applied_checksum}, \
         but the file now has checksum {file_checksum}\n\
         hint: restore the file as it was applied and put the change in a new migration, \
         or accept the edited file with `pgshift repair PLAN`",
        path.display()
    )]
    Drift {
        path: PathBuf,
        migration_id: String,
        applied_checksum: String,
        file_checksum: String,
    },

    #[error(
        "{}: step {} was already run with different SQL in an unfinished run\n\
         hint: restore the file as it was, finish the migration, then change it in a new one",
        path.display(),
        step_index + 1
    )]
    StepChanged { path: PathBuf, step_index: usize },

    #[error(
        "another pgshift run holds the run lock on {target}: {holder}{}\n\
         hint: wait for that run to finish, or pass --wait (or --wait-timeout DURATION) to queue behind it",
        waited.map(|w| format!(" (waited {:.1}s)", w.as_secs_f64())).unwrap_or_default()
    )]
    LockHeld {
        target: String,
        holder: LockHolder,
        /// How long pgshift waited, when it waited at all.
        waited: Option<Duration>,
    },

    #[error(
        "pg_advisory_unlock returned false on {target}: the run lock was not held by \
         pgshift's session. This happens behind a transaction-mode pooler such as \
         pgbouncer, which hands each transaction to a different server session; \
         connect to the server directly"
    )]
    UnlockFailed { target: String },

    #[error(
        "the session holding pgshift's run lock on {target} was closed, so another run \
         could start; stopped before the next step. Run the same command again to resume"
    )]
    RunLockLost { target: String },

    #[error(
        "{}:{line}: {message} (SQLSTATE {sqlstate}){}",
        path.display(),
        detail_and_hint(detail, hint)
    )]
    Statement {
        path: PathBuf,
        line: usize,
        sqlstate: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },

    #[error(
        "{}:{line}: step {} still failed after {attempts} attempts: {message}{}\n\
         hint: raise `retries` or `lock_timeout`, or run when the blocking sessions are idle",
        path.display(),
        step_index + 1,
        describe_blockers(blockers)
    )]
    RetriesExhausted {
        path: PathBuf,
        line: usize,
        step_index: usize,
        attempts: u32,
        message: String,
        /// The sessions seen blocking the last attempt.
        blockers: Vec<BlockingPid>,
    },

    #[error(
        "{}:{line}: index {index} is INVALID after its concurrent build\n\
         hint: drop it with DROP INDEX CONCURRENTLY and run again",
        path.display()
    )]
    InvalidIndexAfterBuild {
        path: PathBuf,
        line: usize,
        index: String,
    },

    #[error(
        "{}:{line}: index {index} already exists with a different definition\n  \
         existing: {existing}\n  migration: {expected}\n\
         hint: drop or rename the existing index, or change the migration to match it",
        path.display()
    )]
    IndexDefinitionDiffers {
        path: PathBuf,
        line: usize,
        index: String,
        existing: String,
        expected: String,
    },

    #[error(
        "{}:{line}: interrupted during step {}; {cleanup}\n\
         hint: run the same command again to resume at this step",
        path.display(),
        step_index + 1
    )]
    Interrupted {
        path: PathBuf,
        line: usize,
        /// The step's position in its migration, counting from 0.
        step_index: usize,
        /// What pgshift cleaned up after the cancelled statement.
        cleanup: String,
    },

    #[error(
        "{}:{line}: lost the connection to the server during step {}: {message}\n\
         hint: the journal records the step as unfinished; once the server accepts \
         connections again, run the same command to resume at this step",
        path.display(),
        step_index + 1
    )]
    ConnectionLost {
        path: PathBuf,
        line: usize,
        /// The step's position in its migration, counting from 0.
        step_index: usize,
        message: String,
    },

    #[error(
        "{}:{line}: cannot run the UPDATE of {table} as a batched backfill: {reason}",
        path.display()
    )]
    Backfill {
        path: PathBuf,
        line: usize,
        table: String,
        /// The reason batching is not possible, and what to change.
        reason: String,
    },

    #[error(transparent)]
    Rewrite(#[from] RewriteError),

    #[error("version {name} is not in the plan; its versions are: {}", available.join(", "))]
    UnknownVersion {
        name: String,
        available: Vec<String>,
    },

    #[error("{0}")]
    Unsupported(String),

    /// A blue-green phase failed. Boxed because `BlueGreenError` contains an
    /// `ExecError` itself.
    #[error(transparent)]
    BlueGreen(Box<crate::bluegreen::BlueGreenError>),
}

impl From<crate::bluegreen::BlueGreenError> for ExecError {
    fn from(error: crate::bluegreen::BlueGreenError) -> Self {
        ExecError::BlueGreen(Box::new(error))
    }
}

fn detail_and_hint(detail: &Option<String>, hint: &Option<String>) -> String {
    let mut text = String::new();
    if let Some(detail) = detail {
        text.push_str("\ndetail: ");
        text.push_str(detail);
    }
    if let Some(hint) = hint {
        text.push_str("\nhint: ");
        text.push_str(hint);
    }
    text
}

/// Formats blocking sessions as `; blocked by pid 42 (lock, idle in
/// transaction for 3.0s: LOCK t)`.
pub(crate) fn describe_blockers(blockers: &[BlockingPid]) -> String {
    if blockers.is_empty() {
        return String::new();
    }
    let list: Vec<String> = blockers
        .iter()
        .map(|b| {
            format!(
                "pid {} ({}, {} for {:.1}s: {})",
                b.pid,
                if b.wait == "snapshot" {
                    "old snapshot"
                } else {
                    "lock"
                },
                b.state,
                b.duration.as_secs_f64(),
                b.query.trim()
            )
        })
        .collect();
    format!("; blocked by {}", list.join(", "))
}
