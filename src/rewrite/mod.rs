//! Online forms of unsafe statements, and the split of a migration into the
//! steps the executor runs.
//!
//! Statements that PostgreSQL rejects inside a transaction block
//! (`CREATE INDEX CONCURRENTLY` and friends) become steps of their own; the
//! other statements of a migration stay together in transactional steps,
//! in file order. Edits are made on the original text by byte span, so the
//! rewritten SQL keeps the author's comments and layout.

use crate::locks::{LockEffect, RelationName};

/// How the executor runs a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum StepKind {
    /// Statements run together in one transaction, committed with the
    /// step's journal row.
    Transaction,
    /// One statement that must run outside a transaction block, sent as its
    /// own protocol message.
    Autocommit,
    /// A concurrent index build. Before it runs (and before each retry) the
    /// executor looks the index up: an INVALID leftover from an earlier
    /// attempt is dropped concurrently, a valid one with the same
    /// definition is kept.
    ConcurrentIndex {
        /// The index name as written (schema-qualified when the table
        /// name was).
        index: RelationName,
        /// The table the index is built on.
        table: RelationName,
    },
}

/// One unit of execution.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Position of the step in its migration, counting from 0.
    pub index: usize,
    pub kind: StepKind,
    /// The statements of the step, as they will be sent.
    pub statements: Vec<StepStatement>,
}

/// One statement of a step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepStatement {
    /// The SQL that is sent, after rewriting.
    pub sql: String,
    /// 1-based line of the statement in its migration file.
    pub line: usize,
    /// True when the text differs from the file.
    pub rewritten: bool,
    pub locks: Vec<LockEffect>,
}

impl Step {
    /// Returns true when the step runs inside a transaction block.
    pub fn in_transaction(&self) -> bool {
        self.kind == StepKind::Transaction
    }
}

/// Errors from turning a migration into steps.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A statement pgshift cannot run, such as a psql meta-command.
    #[error("{path}:{line}: {message}")]
    Unsupported {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
}

/// Parses a migration, rewrites its statements into their online forms and
/// groups them into steps.
pub fn plan_migration(
    migration: &crate::plan::Migration,
    version: crate::locks::PgVersion,
) -> Result<Vec<Step>, RewriteError> {
    let _ = (migration, version);
    todo!()
}
