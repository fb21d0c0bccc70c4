//! Progress events of a run. The library reports them through [`Reporter`];
//! the CLI draws them (see `crate::progress`).

use std::time::Duration;

use crate::db::{BlockingPid, CommandProgress, IndexProgress, Notice};
use crate::locks::RelationName;
use crate::plan::Migration;
use crate::rewrite::Step;
use crate::state::BackfillProgress;

use super::run_lock::LockHolder;
use super::ApplyReport;

/// A step that failed with `lock_not_available` and will run again.
#[derive(Debug)]
pub struct RetryEvent<'a> {
    pub migration: &'a Migration,
    pub step: &'a Step,
    /// The attempt that failed, counting from 1.
    pub attempt: u32,
    /// Attempts allowed in total: the first one plus `retries`.
    pub max_attempts: u32,
    pub error: String,
    /// Sleep before the next attempt.
    pub backoff: Duration,
    /// Sessions seen blocking the failed attempt.
    pub blockers: &'a [BlockingPid],
}

/// The state of a batched backfill after a batch committed, or when a
/// resumed run picks it up.
#[derive(Debug)]
pub struct BackfillEvent<'a> {
    pub migration: &'a Migration,
    pub step: &'a Step,
    pub table: &'a RelationName,
    pub progress: &'a BackfillProgress,
    /// The table's row count as `pg_class.reltuples` estimates it; `None`
    /// when the table was never analyzed.
    pub estimated_rows: Option<i64>,
}

/// Reason a step did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The journal records it done by an earlier run.
    AlreadyDone,
    /// Its index already exists, valid and with the same definition.
    IndexExists,
}

/// Receives progress events. Every method has an empty default, so an
/// implementation overrides only what it shows.
pub trait Reporter: Send + Sync {
    /// Another run holds the run lock and pgshift waits for it.
    fn lock_waiting(&self, _holder: &LockHolder) {}
    /// A session of an earlier pgshift run that died still runs a
    /// statement, and the run waits for it to end.
    fn dead_run_waiting(&self, _pid: i32, _state: &str, _query: &str) {}
    fn run_started(&self, _total_steps: usize) {}
    fn migration_started(&self, _migration: &Migration, _plan_version: &str) {}
    fn step_started(&self, _migration: &Migration, _step: &Step) {}
    fn step_skipped(&self, _migration: &Migration, _step: &Step, _reason: SkipReason) {}
    fn step_retry(&self, _event: &RetryEvent<'_>) {}
    fn step_finished(&self, _migration: &Migration, _step: &Step, _duration: Duration) {}
    /// Receives the sessions that block the running step, about every
    /// 200 ms while it waits; an empty list once it no longer waits.
    fn blocked(&self, _migration: &Migration, _step: &Step, _blockers: &[BlockingPid]) {}
    /// Receives a sample of the running index build, about every 200 ms.
    fn index_progress(&self, _progress: &IndexProgress) {}
    /// Receives a sample of a running `CLUSTER`, `VACUUM FULL` or `VACUUM`.
    fn command_progress(&self, _progress: &CommandProgress) {}
    /// Receives the progress of a batched backfill after each batch.
    fn backfill_progress(&self, _event: &BackfillEvent<'_>) {}
    /// Receives a NOTICE or WARNING the server sent on pgshift's session.
    fn notice(&self, _notice: &Notice) {}
    fn migration_finished(&self, _migration: &Migration, _duration: Duration) {}
    fn run_finished(&self, _report: &ApplyReport) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopReporter;

impl Reporter for NoopReporter {}
