//! Running one step: timeouts, the journal, retries of `lock_not_available`
//! and the index checks around concurrent builds.
//!
//! Every statement is sent on its own with the simple query protocol. A
//! string of several statements would run as one implicit transaction, in
//! which `CREATE INDEX CONCURRENTLY` fails with SQLSTATE 25001.

mod backfill;

use std::time::{Duration, Instant};

use rand::Rng;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::error::{describe_blockers, ExecError};
use super::interrupt::Interrupt;
use super::reporter::{Reporter, RetryEvent, SkipReason};
use super::StepReport;
use crate::db::{self, BlockingPid, IndexState, Notices};
use crate::locks::RelationName;
use crate::plan::{Migration, Settings};
use crate::rewrite::{self, Step, StepKind, StepStatement};
use crate::state::{self, NewApplied, StepKey, StepStatus};

mod reindex;

/// How often the monitor session samples progress and blockers.
const MONITOR_INTERVAL: Duration = Duration::from_millis(200);

/// How often a concurrent build about to be retried checks whether the
/// transactions it waited for have ended.
const OLD_TRANSACTION_POLL: Duration = Duration::from_millis(250);

/// Upper bound of a concurrent build's raised `lock_timeout`.
const MAX_CONCURRENT_BUDGET: Duration = Duration::from_secs(3600);

/// Sets `statement_timeout` on pgshift's session; zero sets it to 0 (no
/// limit) instead of leaving the role's or database's default.
pub(super) async fn set_statement_timeout(
    client: &Client,
    timeout: Duration,
) -> Result<(), ExecError> {
    client
        .batch_execute(&format!(
            "SET statement_timeout = '{}ms'",
            timeout.as_millis()
        ))
        .await
        .map_err(session_error("SET statement_timeout"))
}

fn session_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> ExecError {
    move |source| ExecError::Session { what, source }
}

/// Failure of one attempt of a step.
enum Failure {
    /// SQLSTATE 55P03, or 57014 from `statement_timeout` while a concurrent
    /// build waited for other sessions: worth another attempt.
    LockNotAvailable {
        error: tokio_postgres::Error,
        /// Line of the statement that timed out.
        line: usize,
        blockers: Vec<BlockingPid>,
    },
    /// The statement was cancelled on the server because of an
    /// [`Interrupt`] request.
    Interrupted { line: usize },
    /// The session ended under the statement: a dropped connection, a
    /// server restart or `pg_terminate_backend`.
    ConnectionLost { line: usize, message: String },
    /// Any other error; the run stops.
    Fatal(ExecError),
}

impl From<ExecError> for Failure {
    fn from(error: ExecError) -> Self {
        Failure::Fatal(error)
    }
}

impl From<state::StateError> for Failure {
    fn from(error: state::StateError) -> Self {
        Failure::Fatal(error.into())
    }
}

/// Result of a successful attempt.
enum Outcome {
    Ran,
    Skipped(SkipReason),
}

/// Everything a step needs from its executor and migration.
pub(super) struct StepContext<'a> {
    pub client: &'a Client,
    pub notices: &'a mut Notices,
    pub monitor: &'a Client,
    pub backend_pid: i32,
    pub run_id: i64,
    pub migration: &'a Migration,
    pub plan_version: &'a str,
    pub settings: &'a Settings,
    pub reporter: &'a dyn Reporter,
    pub interrupt: &'a Interrupt,
    pub started: Instant,
    /// True once the migration is recorded applied.
    pub recorded: bool,
    /// The server's version, which decides what runs in a transaction block.
    pub server_version: crate::locks::PgVersion,
}

impl StepContext<'_> {
    /// Runs a step unless the journal records it done, retrying it after
    /// `lock_not_available` up to `settings.retries` times.
    pub async fn run(&mut self, step: &Step, is_last: bool) -> Result<StepReport, ExecError> {
        let checksum = state::step_checksum(step);
        if let Some(done) = state::step_done(self.client, &self.migration.id, step.index).await? {
            if done != checksum {
                return Err(ExecError::StepChanged {
                    path: self.migration.path.clone(),
                    step_index: step.index,
                });
            }
            self.replay_session_settings(step).await?;
            self.reporter
                .step_skipped(self.migration, step, SkipReason::AlreadyDone);
            return Ok(StepReport {
                index: step.index,
                attempts: 0,
                skipped: Some(SkipReason::AlreadyDone),
            });
        }
        if self.interrupt.is_requested() {
            return Err(self.interrupted(step, first_line(step), "the step did not start"));
        }

        let key = StepKey {
            run_id: self.run_id,
            migration_id: &self.migration.id,
            step_index: step.index,
            step_checksum: &checksum,
        };
        // An earlier step may have run `RESET statement_timeout`, which
        // brings back the role's or database's default; set it again.
        set_statement_timeout(self.client, self.settings.statement_timeout).await?;
        self.reporter.step_started(self.migration, step);
        let started = Instant::now();

        // A statement of a no-transaction file that PostgreSQL accepts in a
        // transaction block runs in a transaction of its own, committed with
        // its journal row. It commits alone as it would outside a block, and
        // a crash can never leave it applied but unrecorded, to run twice.
        let atomic = step.kind == StepKind::Autocommit
            && step.statements.len() == 1
            && rewrite::runs_in_transaction_block(&step.statements[0].sql, self.server_version);

        // A step outside a transaction leaves a `started` row while it runs,
        // so a crash shows in the journal. A transactional step writes its
        // row inside its own transaction instead.
        let journal_id = match step.kind {
            StepKind::Transaction => None,
            StepKind::Autocommit if atomic => None,
            StepKind::Autocommit
            | StepKind::ConcurrentIndex { .. }
            | StepKind::ConcurrentReindex { .. }
            | StepKind::Backfill { .. } => {
                Some(state::journal_insert(self.client, key, StepStatus::Started, 1).await?)
            }
        };

        let max_attempts = self.settings.retries + 1;
        let mut attempt = 1;
        let mut concurrent_budget = self.settings.concurrent_lock_timeout;
        let outcome = loop {
            let result = match &step.kind {
                StepKind::Transaction => {
                    self.try_transaction(step, key, attempt, is_last, Sampling::Blockers)
                        .await
                }
                StepKind::Autocommit if atomic => {
                    self.try_transaction(step, key, attempt, is_last, Sampling::Commands)
                        .await
                }
                StepKind::Autocommit => self.try_autocommit(step).await,
                StepKind::ConcurrentIndex { index, .. } => {
                    self.try_concurrent(step, index, concurrent_budget).await
                }
                StepKind::ConcurrentReindex { target } => {
                    self.try_reindex(step, target, concurrent_budget).await
                }
                StepKind::Backfill {
                    table,
                    qualifier,
                    batch_size,
                } => {
                    self.try_backfill(step, &checksum, table, qualifier, *batch_size)
                        .await
                }
            };
            let (error, line, blockers) = match result {
                Ok(outcome) => break outcome,
                Err(Failure::Fatal(error)) => {
                    self.journal_failure(journal_id, key, attempt, StepStatus::Failed, &error)
                        .await;
                    return Err(error);
                }
                Err(Failure::ConnectionLost { line, message }) => {
                    // The session is gone, so the journal keeps its
                    // `started` row (or none, for a transaction, which the
                    // server rolled back); the next run resumes here.
                    return Err(ExecError::ConnectionLost {
                        path: self.migration.path.clone(),
                        line,
                        step_index: step.index,
                        message,
                    });
                }
                Err(Failure::Interrupted { line }) => {
                    let cleanup = match &step.kind {
                        StepKind::Transaction => "its transaction was rolled back",
                        StepKind::ConcurrentIndex { .. } | StepKind::ConcurrentReindex { .. } => {
                            "the statement was cancelled and no INVALID index is left"
                        }
                        StepKind::Autocommit => "the statement was cancelled",
                        StepKind::Backfill { .. } => {
                            "the running batch was rolled back; the committed batches stay \
                             and the next run resumes after them"
                        }
                    };
                    let error = self.interrupted(step, line, cleanup);
                    self.journal_failure(journal_id, key, attempt, StepStatus::Interrupted, &error)
                        .await;
                    return Err(error);
                }
                Err(Failure::LockNotAvailable {
                    error,
                    line,
                    blockers,
                }) => (error, line, blockers),
            };
            let blockers = if !blockers.is_empty() {
                blockers
            } else if is_concurrent(step) {
                // The build timed out before the monitor sampled it.
                db::snapshot_holders(self.monitor, self.backend_pid)
                    .await
                    .unwrap_or_default()
            } else {
                // The lock wait timed out before the monitor sampled it.
                db::relation_lock_holders(self.monitor, self.backend_pid, &lock_requests(step))
                    .await
                    .unwrap_or_default()
            };

            if attempt >= max_attempts {
                let error = ExecError::RetriesExhausted {
                    path: self.migration.path.clone(),
                    line,
                    step_index: step.index,
                    attempts: attempt,
                    message: error_message(&error),
                    blockers,
                };
                self.journal_failure(journal_id, key, attempt, StepStatus::Failed, &error)
                    .await;
                return Err(error);
            }
            let backoff = backoff(self.settings, attempt);
            self.reporter.step_retry(&RetryEvent {
                migration: self.migration,
                step,
                attempt,
                max_attempts,
                error: error_message(&error),
                backoff,
                blockers: &blockers,
            });
            tracing::info!(
                migration = %self.migration.id,
                step = step.index + 1,
                attempt,
                max_attempts,
                backoff_ms = backoff.as_millis() as u64,
                blockers = %describe_blockers(&blockers),
                "{}; retrying",
                error_message(&error)
            );
            if !self.sleep_or_interrupt(backoff).await {
                let error = self.interrupted(step, line, "no statement was running");
                self.journal_failure(journal_id, key, attempt, StepStatus::Interrupted, &error)
                    .await;
                return Err(error);
            }
            if is_concurrent(step) {
                concurrent_budget = self
                    .wait_for_old_transactions(step, &blockers, concurrent_budget)
                    .await;
                if self.interrupt.is_requested() {
                    let error = self.interrupted(step, line, "no statement was running");
                    self.journal_failure(journal_id, key, attempt, StepStatus::Interrupted, &error)
                        .await;
                    return Err(error);
                }
            }
            attempt += 1;
            if let Some(id) = journal_id {
                state::journal_update(self.client, id, StepStatus::Started, attempt, None).await?;
            }
        };

        if let Some(id) = journal_id {
            self.finish_outside_transaction(id, attempt, is_last)
                .await?;
        }
        self.reporter
            .step_finished(self.migration, step, started.elapsed());
        Ok(StepReport {
            index: step.index,
            attempts: attempt,
            skipped: match outcome {
                Outcome::Ran => None,
                Outcome::Skipped(reason) => Some(reason),
            },
        })
    }

    /// Runs again the session `SET`s of a step that an earlier run did, so
    /// the steps after it see the same settings (a `search_path`, say) as in
    /// an uninterrupted run.
    async fn replay_session_settings(&mut self, step: &Step) -> Result<(), ExecError> {
        for statement in &step.statements {
            if !rewrite::sets_session_setting(&statement.sql) {
                continue;
            }
            tracing::info!(
                migration = %self.migration.id,
                line = statement.line,
                "replaying a SET of a step done by an earlier run"
            );
            self.client
                .batch_execute(&statement.sql)
                .await
                .map_err(session_error("replay a SET of a done step"))?;
        }
        Ok(())
    }

    fn interrupted(&self, step: &Step, line: usize, cleanup: &str) -> ExecError {
        ExecError::Interrupted {
            path: self.migration.path.clone(),
            line,
            step_index: step.index,
            cleanup: cleanup.to_string(),
        }
    }

    /// Sleeps for `duration`; returns false when an interrupt cut it short.
    async fn sleep_or_interrupt(&self, duration: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => true,
            _ = self.interrupt.requested() => false,
        }
    }

    /// Before a concurrent build runs again, waits up to
    /// `retry_backoff_max` for the transactions that made the last attempt
    /// wait. Returns the lock budget of the next attempt: unchanged when
    /// they ended, doubled when one of them still runs, because the same
    /// budget would run out on the same transaction again.
    async fn wait_for_old_transactions(
        &self,
        step: &Step,
        blockers: &[BlockingPid],
        budget: Duration,
    ) -> Duration {
        if blockers.is_empty() {
            return budget;
        }
        let waited = Instant::now();
        let mut remaining = blockers.to_vec();
        while !remaining.is_empty() && waited.elapsed() < self.settings.retry_backoff_max {
            self.reporter.blocked(self.migration, step, &remaining);
            if !self.sleep_or_interrupt(OLD_TRANSACTION_POLL).await {
                return budget;
            }
            match db::still_running(self.monitor, &remaining).await {
                Ok(still) => remaining = still,
                Err(error) => {
                    tracing::debug!(%error, "cannot look up the blocking sessions");
                    break;
                }
            }
        }
        self.reporter.blocked(self.migration, step, &[]);
        if remaining.is_empty() || budget.is_zero() {
            return budget;
        }
        let raised = budget.saturating_mul(2).min(MAX_CONCURRENT_BUDGET);
        tracing::info!(
            step = step.index + 1,
            budget_ms = raised.as_millis() as u64,
            blockers = %describe_blockers(&remaining),
            "the transactions that blocked the build still run; raising its lock_timeout"
        );
        raised
    }

    /// Records the migration applied on `client`, which may be in the
    /// transaction of the last step.
    pub async fn record_applied(&mut self, client: &Client) -> Result<(), ExecError> {
        state::record_applied(
            client,
            &NewApplied {
                migration_id: &self.migration.id,
                plan_version: self.plan_version,
                name: &self.migration.name,
                checksum: &self.migration.checksum,
                duration_ms: self.started.elapsed().as_millis() as i64,
                run_id: self.run_id,
            },
        )
        .await?;
        self.recorded = true;
        Ok(())
    }

    /// Marks a non-transactional step done, together with the migration's
    /// applied row when it is the last step.
    async fn finish_outside_transaction(
        &mut self,
        journal_id: i64,
        attempts: u32,
        is_last: bool,
    ) -> Result<(), ExecError> {
        let client = self.client;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(session_error("BEGIN"))?;
        let result = async {
            state::journal_update(client, journal_id, StepStatus::Done, attempts, None).await?;
            if is_last {
                self.record_applied(client).await?;
            }
            Ok::<(), ExecError>(())
        }
        .await;
        match result {
            Ok(()) => client
                .batch_execute("COMMIT")
                .await
                .map_err(session_error("COMMIT")),
            Err(error) => {
                self.recorded = false;
                let _ = client.batch_execute("ROLLBACK").await;
                Err(error)
            }
        }
    }

    /// Writes the end of a step that did not finish to the journal. A
    /// failure to write it is logged and the step's own error returned.
    async fn journal_failure(
        &self,
        journal_id: Option<i64>,
        key: StepKey<'_>,
        attempts: u32,
        status: StepStatus,
        error: &ExecError,
    ) {
        let text = error.to_string();
        let result = match journal_id {
            Some(id) => state::journal_update(self.client, id, status, attempts, Some(&text)).await,
            None => state::journal_insert(self.client, key, status, attempts)
                .await
                .map(|_| ()),
        };
        if let Err(journal_error) = result {
            tracing::warn!(%journal_error, "cannot write the unfinished step to the journal");
        }
        if journal_id.is_none() {
            // The row inserted above has no error text yet.
            let _ = self
                .client
                .execute(
                    "UPDATE pgshift.step_journal SET error = $1 \
                     WHERE id = (SELECT max(id) FROM pgshift.step_journal \
                                 WHERE run_id = $2 AND migration_id = $3 AND step_index = $4)",
                    &[
                        &text,
                        &key.run_id,
                        &key.migration_id,
                        &(key.step_index as i32),
                    ],
                )
                .await;
        }
    }

    /// Runs one attempt of a transactional step. Its statements, its journal
    /// row and, for the last step, the applied row commit together.
    async fn try_transaction(
        &mut self,
        step: &Step,
        key: StepKey<'_>,
        attempt: u32,
        is_last: bool,
        sampling: Sampling,
    ) -> Result<Outcome, Failure> {
        let client = self.client;
        let last_line = step.statements.last().map_or(0, |s| s.line);
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'",
                per_request_lock_timeout(step, self.settings.lock_timeout).as_millis()
            ))
            .await
            .map_err(|error| self.classify(error, first_line(step), Vec::new()))?;

        let result = async {
            for statement in &step.statements {
                self.execute(step, statement, sampling, true).await?;
            }
            state::journal_insert(client, key, StepStatus::Done, attempt).await?;
            if is_last {
                self.record_applied(client).await?;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|error| self.classify(error, last_line, Vec::new()))
        }
        .await;

        if result.is_err() {
            self.recorded = false;
            // After a failed COMMIT the transaction is already gone, and
            // ROLLBACK only warns.
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result.map(|()| Outcome::Ran)
    }

    /// Runs one attempt of a step whose statements each run on their own.
    async fn try_autocommit(&mut self, step: &Step) -> Result<Outcome, Failure> {
        set_lock_timeout(self.client, self.settings.lock_timeout).await?;
        for statement in &step.statements {
            self.execute(step, statement, Sampling::Commands, true)
                .await?;
        }
        Ok(Outcome::Ran)
    }

    /// Runs one attempt of a concurrent index build, with the catalog checks
    /// before and after it. `budget` is its `lock_timeout`.
    async fn try_concurrent(
        &mut self,
        step: &Step,
        index: &RelationName,
        budget: Duration,
    ) -> Result<Outcome, Failure> {
        let statement = &step.statements[0];
        let shown = display_name(index);
        set_lock_timeout(self.client, budget).await?;

        let existing = db::invalid_index(self.client, index.schema.as_deref(), &index.name)
            .await
            .map_err(|error| self.classify_db(error, statement.line))?;
        match existing {
            IndexState::Absent => {}
            IndexState::Valid { definition } => {
                if same_index_definition(&statement.sql, &definition) {
                    self.reporter
                        .step_skipped(self.migration, step, SkipReason::IndexExists);
                    return Ok(Outcome::Skipped(SkipReason::IndexExists));
                }
                return Err(Failure::Fatal(ExecError::IndexDefinitionDiffers {
                    path: self.migration.path.clone(),
                    line: statement.line,
                    index: shown,
                    existing: definition,
                    expected: statement.sql.clone(),
                }));
            }
            IndexState::Invalid => {
                tracing::info!(index = %shown, "dropping INVALID index left by an earlier build");
                self.drop_index(step, index, statement.line).await?;
            }
        }

        if let Err(mut failure) = self
            .execute(step, statement, Sampling::IndexBuild, true)
            .await
        {
            // A failed or cancelled build leaves an INVALID index behind.
            // Dropping it restores the database as it was before the step,
            // and stops it from slowing down writes until the next attempt.
            if !matches!(failure, Failure::ConnectionLost { .. }) {
                let dropped = self.drop_leftover(step, index, statement.line).await;
                if let (Ok(true), Failure::Fatal(error)) = (dropped, &mut failure) {
                    add_duplicate_hint(error);
                }
            }
            return Err(failure);
        }

        let after = db::invalid_index(self.client, index.schema.as_deref(), &index.name)
            .await
            .map_err(|error| self.classify_db(error, statement.line))?;
        match after {
            IndexState::Valid { .. } => Ok(Outcome::Ran),
            _ => Err(Failure::Fatal(ExecError::InvalidIndexAfterBuild {
                path: self.migration.path.clone(),
                line: statement.line,
                index: shown,
            })),
        }
    }

    /// Drops the index when it exists and is INVALID; returns true when it
    /// did. A failure to drop is logged, because the next attempt or run
    /// finds the leftover and drops it first.
    async fn drop_leftover(
        &mut self,
        step: &Step,
        index: &RelationName,
        line: usize,
    ) -> Result<bool, ()> {
        let shown = display_name(index);
        match db::invalid_index(self.client, index.schema.as_deref(), &index.name).await {
            Ok(IndexState::Invalid) => {}
            Ok(_) => return Ok(false),
            Err(error) => {
                tracing::warn!(%error, index = %shown, "cannot look up the index after its build");
                return Err(());
            }
        }
        match self.drop_index(step, index, line).await {
            Ok(()) => {
                tracing::info!(index = %shown, "dropped the INVALID index of the failed build");
                Ok(true)
            }
            Err(Failure::Fatal(error)) => {
                tracing::warn!(%error, index = %shown, "cannot drop the INVALID index");
                Err(())
            }
            Err(Failure::LockNotAvailable { error, .. }) => {
                tracing::warn!(%error, index = %shown, "cannot drop the INVALID index");
                Err(())
            }
            Err(Failure::ConnectionLost { message, .. }) => {
                tracing::warn!(%message, index = %shown, "cannot drop the INVALID index");
                Err(())
            }
            Err(Failure::Interrupted { .. }) => Err(()),
        }
    }

    /// Drops the index concurrently if it exists; errors point at `line`,
    /// the build statement's line. An interrupt does not cancel the drop,
    /// because it is the cleanup that an interrupt needs.
    async fn drop_index(
        &mut self,
        step: &Step,
        index: &RelationName,
        line: usize,
    ) -> Result<(), Failure> {
        let statement = StepStatement {
            sql: format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quoted_name(index)),
            line,
            rewritten: true,
            locks: Vec::new(),
        };
        self.execute(step, &statement, Sampling::Blockers, false)
            .await
    }

    /// Sends one statement and, while it runs, samples blockers (and the
    /// progress views that `sampling` names) on the monitor session and
    /// forwards server notices. When `cancellable` is set, an interrupt
    /// request sends a cancel request for the statement to the server.
    async fn execute(
        &mut self,
        step: &Step,
        statement: &StepStatement,
        sampling: Sampling,
        cancellable: bool,
    ) -> Result<(), Failure> {
        let client = self.client;
        let interrupt = self.interrupt.clone();
        let query = client.batch_execute(&statement.sql);
        tokio::pin!(query);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + MONITOR_INTERVAL,
            MONITOR_INTERVAL,
        );
        let mut blockers: Vec<BlockingPid> = Vec::new();
        let mut shown_blocked = false;
        let mut cancel_sent = false;

        let result = loop {
            tokio::select! {
                result = &mut query => break result,
                _ = interrupt.requested(), if cancellable && !cancel_sent => {
                    cancel_sent = true;
                    tracing::info!(line = statement.line, "interrupted; cancelling the running statement");
                    if let Err(error) = client.cancel_token().cancel_query(NoTls).await {
                        tracing::warn!(%error, "cannot send the cancel request");
                    }
                }
                _ = ticker.tick() => {
                    self.forward_notices();
                    if let Ok(seen) = db::blocking_pids(self.monitor, self.backend_pid).await {
                        if !seen.is_empty() {
                            self.reporter.blocked(self.migration, step, &seen);
                            shown_blocked = true;
                            blockers = seen;
                        } else if shown_blocked {
                            self.reporter.blocked(self.migration, step, &[]);
                            shown_blocked = false;
                        }
                    }
                    self.sample_progress(sampling).await;
                }
            }
        };
        if shown_blocked {
            self.reporter.blocked(self.migration, step, &[]);
        }
        self.forward_notices();
        match result {
            Ok(()) => {
                crate::kill_point::kill_point(crate::kill_point::KillPoint::StepStatementRan);
                Ok(())
            }
            Err(error) if cancel_sent && error.code() == Some(&SqlState::QUERY_CANCELED) => {
                Err(Failure::Interrupted {
                    line: statement.line,
                })
            }
            // A concurrent build that `statement_timeout` cancelled while it
            // waited for other sessions spent its budget waiting, so it is
            // retried like a lock timeout, once those sessions are gone.
            Err(error)
                if sampling == Sampling::IndexBuild
                    && error.code() == Some(&SqlState::QUERY_CANCELED)
                    && !blockers.is_empty() =>
            {
                Err(Failure::LockNotAvailable {
                    error,
                    line: statement.line,
                    blockers,
                })
            }
            Err(error) => Err(self.classify(error, statement.line, blockers)),
        }
    }

    async fn sample_progress(&self, sampling: Sampling) {
        match sampling {
            Sampling::Blockers => {}
            Sampling::IndexBuild => {
                if let Ok(Some(progress)) =
                    db::create_index_progress(self.monitor, self.backend_pid).await
                {
                    self.reporter.index_progress(&progress);
                }
            }
            Sampling::Commands => {
                if let Ok(Some(progress)) =
                    db::command_progress(self.monitor, self.backend_pid).await
                {
                    self.reporter.command_progress(&progress);
                }
            }
        }
    }

    fn forward_notices(&mut self) {
        while let Ok(notice) = self.notices.try_recv() {
            self.reporter.notice(&notice);
        }
    }

    fn classify_db(&self, error: db::DbError, line: usize) -> Failure {
        match error {
            db::DbError::Query { source, .. } => self.classify(source, line, Vec::new()),
            other => Failure::Fatal(other.into()),
        }
    }

    /// Sorts an error into a retryable lock timeout, a lost connection or a
    /// fatal statement error naming the file and line.
    fn classify(
        &self,
        error: tokio_postgres::Error,
        line: usize,
        blockers: Vec<BlockingPid>,
    ) -> Failure {
        if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
            return Failure::LockNotAvailable {
                error,
                line,
                blockers,
            };
        }
        let Some(db_error) = error.as_db_error() else {
            // Without an error from the server, the socket failed or closed.
            return Failure::ConnectionLost {
                line,
                message: error.to_string(),
            };
        };
        if session_ended(db_error.code()) {
            return Failure::ConnectionLost {
                line,
                message: format!(
                    "{} (SQLSTATE {})",
                    db_error.message(),
                    db_error.code().code()
                ),
            };
        }
        let hint = db_error.hint().map(str::to_string);
        Failure::Fatal(ExecError::Statement {
            path: self.migration.path.clone(),
            line,
            sqlstate: db_error.code().code().to_string(),
            message: db_error.message().to_string(),
            detail: db_error.detail().map(str::to_string),
            hint,
        })
    }
}

/// Progress views the monitor session samples while a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampling {
    /// Blocking sessions only.
    Blockers,
    /// Blockers and `pg_stat_progress_create_index`.
    IndexBuild,
    /// Blockers and the `CLUSTER`/`VACUUM` progress views.
    Commands,
}

/// Returns true for SQLSTATEs that end the session: class 08 (connection
/// exception) and 57P01..57P03 (administrator or crash shutdown, cannot
/// connect now).
fn session_ended(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

fn is_concurrent(step: &Step) -> bool {
    match step.kind {
        StepKind::ConcurrentIndex { .. } | StepKind::ConcurrentReindex { .. } => true,
        StepKind::Transaction | StepKind::Autocommit | StepKind::Backfill { .. } => false,
    }
}

/// Returns the relations a step locks with the mode of each request.
fn lock_requests(step: &Step) -> Vec<(RelationName, crate::locks::LockMode)> {
    step.statements
        .iter()
        .flat_map(|s| s.locks.iter())
        .map(|lock| (lock.relation.clone(), lock.mode))
        .collect()
}

fn first_line(step: &Step) -> usize {
    step.statements.first().map_or(0, |s| s.line)
}

/// Adds a hint to a unique build that failed on duplicate keys, once its
/// INVALID index is dropped.
fn add_duplicate_hint(error: &mut ExecError) {
    if let ExecError::Statement { sqlstate, hint, .. } = error {
        if sqlstate == SqlState::UNIQUE_VIOLATION.code() && hint.is_none() {
            *hint = Some(String::from(
                "remove the duplicate rows named in the detail, then run again; \
                 pgshift dropped the INVALID index the build left",
            ));
        }
    }
}

/// Returns the `lock_timeout` for each lock request of a transactional step.
///
/// A transaction keeps every lock it got while it waits for the next one, so
/// sessions queued behind its first lock wait for the sum of its later lock
/// waits too. Splitting the plan's `lock_timeout` evenly over the relations
/// the step locks in a mode that blocks writes keeps that sum, and so the
/// longest time the step makes a writer wait for a lock, within the plan's
/// `lock_timeout`. Time spent running statements under the locks (a
/// backfill, a scan) is not bounded by this.
fn per_request_lock_timeout(step: &Step, lock_timeout: Duration) -> Duration {
    if lock_timeout.is_zero() {
        return Duration::ZERO;
    }
    let mut relations = std::collections::BTreeSet::new();
    for statement in &step.statements {
        for lock in &statement.locks {
            if lock.mode.blocks_writes() {
                relations.insert(&lock.relation);
            }
        }
    }
    let requests = u32::try_from(relations.len()).unwrap_or(u32::MAX).max(1);
    // PostgreSQL reads 0 as "no timeout", so the share never rounds down to it.
    (lock_timeout / requests).max(Duration::from_millis(1))
}

async fn set_lock_timeout(client: &Client, timeout: Duration) -> Result<(), Failure> {
    client
        .batch_execute(&format!("SET lock_timeout = '{}ms'", timeout.as_millis()))
        .await
        .map_err(|source| Failure::Fatal(session_error("SET lock_timeout")(source)))
}

/// Returns the sleep before the attempt after `attempt`: `retry_backoff`
/// doubled per earlier attempt, capped at `retry_backoff_max`, then scaled
/// by a random factor in [0.5, 1] so that several waiting clients do not
/// retry in step.
fn backoff(settings: &Settings, attempt: u32) -> Duration {
    let doubled = settings
        .retry_backoff
        .saturating_mul(1u32 << (attempt - 1).min(20));
    let capped = doubled.min(settings.retry_backoff_max);
    let factor = rand::thread_rng().gen_range(0.5..=1.0);
    capped.mul_f64(factor)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quoted_name(name: &RelationName) -> String {
    match &name.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&name.name)),
        None => quote_ident(&name.name),
    }
}

fn display_name(name: &RelationName) -> String {
    match &name.schema {
        Some(schema) => format!("{schema}.{}", name.name),
        None => name.name.clone(),
    }
}

fn error_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db_error) => db_error.message().to_string(),
        None => error.to_string(),
    }
}

/// Compares a `CREATE INDEX` statement with `pg_get_indexdef`'s text after
/// removing what does not change the index: `CONCURRENTLY`, `IF NOT
/// EXISTS`, the table's schema and an implicit `USING btree`.
///
/// TODO: expressions and predicates come back from `pg_get_indexdef` with
/// added casts and parentheses, so an equal expression index compares as
/// different. The executor then stops with an error instead of skipping.
pub(crate) fn same_index_definition(statement: &str, definition: &str) -> bool {
    match (normalized_index(statement), normalized_index(definition)) {
        (Some(left), Some(right)) => left == right,
        _ => false,
    }
}

fn normalized_index(sql: &str) -> Option<String> {
    use pg_query::NodeEnum;

    let parsed = pg_query::parse(sql, 0).ok()?;
    let raw = parsed.protobuf.stmts.first()?;
    let NodeEnum::IndexStmt(stmt) = raw.stmt.as_ref()?.node.as_ref()? else {
        return None;
    };
    let mut stmt = stmt.as_ref().clone();
    stmt.concurrent = false;
    stmt.if_not_exists = false;
    if let Some(relation) = stmt.relation.as_mut() {
        relation.schemaname.clear();
        relation.catalogname.clear();
        relation.location = 0;
    }
    if stmt.access_method.is_empty() {
        stmt.access_method = String::from("btree");
    }
    NodeEnum::IndexStmt(Box::new(stmt))
        .deparse(Default::default())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_definitions_compare() {
        let step = "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email)";
        let same = "CREATE UNIQUE INDEX users_email ON public.users USING btree (email)";
        let other = "CREATE UNIQUE INDEX users_email ON public.users USING btree (name)";
        let plain = "CREATE INDEX users_email ON public.users USING btree (email)";
        assert!(same_index_definition(step, same));
        assert!(!same_index_definition(step, other));
        assert!(!same_index_definition(step, plain));
    }

    #[test]
    fn backoff_stays_within_cap() {
        let settings = Settings {
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(300),
            ..Settings::default()
        };
        for attempt in 1..40 {
            let delay = backoff(&settings, attempt);
            assert!(delay <= Duration::from_millis(300), "{attempt}: {delay:?}");
        }
        assert!(backoff(&settings, 1) >= Duration::from_millis(50));
        assert!(backoff(&settings, 1) <= Duration::from_millis(100));
    }
}

#[cfg(test)]
mod lock_timeout_tests {
    use super::*;
    use crate::locks::{Hold, LockEffect, LockMode, RelationKind};
    use crate::rewrite::{StepKind, StepStatement};

    fn step_locking(locks: &[(&str, LockMode)]) -> Step {
        let statements = locks
            .iter()
            .map(|(table, mode)| StepStatement {
                sql: format!("ALTER TABLE {table} ..."),
                line: 1,
                rewritten: false,
                locks: vec![LockEffect {
                    relation: RelationName {
                        schema: None,
                        name: table.to_string(),
                    },
                    kind: RelationKind::Table,
                    mode: *mode,
                    hold: Hold::Brief,
                }],
            })
            .collect();
        Step {
            index: 0,
            kind: StepKind::Transaction,
            statements,
        }
    }

    #[test]
    fn split_over_write_blocking_relations() {
        let step = step_locking(&[
            ("a", LockMode::AccessExclusive),
            ("b", LockMode::ShareRowExclusive),
            ("a", LockMode::AccessExclusive),
            ("c", LockMode::RowExclusive),
        ]);
        let share = per_request_lock_timeout(&step, Duration::from_millis(1000));
        assert_eq!(share, Duration::from_millis(500));
    }

    #[test]
    fn whole_for_one_relation() {
        let step = step_locking(&[("a", LockMode::AccessExclusive)]);
        let share = per_request_lock_timeout(&step, Duration::from_millis(800));
        assert_eq!(share, Duration::from_millis(800));
    }

    #[test]
    fn zero_stays_unlimited() {
        let step = step_locking(&[("a", LockMode::AccessExclusive), ("b", LockMode::Share)]);
        assert_eq!(
            per_request_lock_timeout(&step, Duration::ZERO),
            Duration::ZERO
        );
    }
}
