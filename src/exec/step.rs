//! Running one step: timeouts, the journal, retries of `lock_not_available`
//! and the index checks around concurrent builds.
//!
//! Every statement is sent on its own with the simple query protocol. A
//! string of several statements would run as one implicit transaction, in
//! which `CREATE INDEX CONCURRENTLY` fails with SQLSTATE 25001.

use std::time::{Duration, Instant};

use rand::Rng;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::error::ExecError;
use super::reporter::{Reporter, RetryEvent, SkipReason};
use super::StepReport;
use crate::db::{self, BlockingPid, IndexState, Notices};
use crate::locks::RelationName;
use crate::plan::{Migration, Settings};
use crate::rewrite::{Step, StepKind, StepStatement};
use crate::state::{self, NewApplied, StepKey, StepStatus};

/// How often the monitor session samples progress and blockers.
const MONITOR_INTERVAL: Duration = Duration::from_millis(200);

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
    /// SQLSTATE 55P03: worth another attempt.
    LockNotAvailable {
        error: tokio_postgres::Error,
        /// Line of the statement that timed out.
        line: usize,
        blockers: Vec<BlockingPid>,
    },
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
    pub started: Instant,
    /// True once the migration is recorded applied.
    pub recorded: bool,
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
            self.reporter
                .step_skipped(self.migration, step, SkipReason::AlreadyDone);
            return Ok(StepReport {
                index: step.index,
                attempts: 0,
                skipped: Some(SkipReason::AlreadyDone),
            });
        }

        let key = StepKey {
            run_id: self.run_id,
            migration_id: &self.migration.id,
            step_index: step.index,
            step_checksum: &checksum,
        };
        self.reporter.step_started(self.migration, step);
        let started = Instant::now();

        // A step outside a transaction leaves a `started` row while it runs,
        // so a crash shows in the journal. A transactional step writes its
        // row inside its own transaction instead.
        let journal_id = match step.kind {
            StepKind::Transaction => None,
            _ => Some(state::journal_insert(self.client, key, StepStatus::Started, 1).await?),
        };

        let max_attempts = self.settings.retries + 1;
        let mut attempt = 1;
        let outcome = loop {
            let result = match &step.kind {
                StepKind::Transaction => self.try_transaction(step, key, attempt, is_last).await,
                StepKind::Autocommit => self.try_autocommit(step).await,
                StepKind::ConcurrentIndex { index, .. } => self.try_concurrent(step, index).await,
            };
            match result {
                Ok(outcome) => break outcome,
                Err(Failure::Fatal(error)) => {
                    self.journal_failure(journal_id, key, attempt, &error).await;
                    return Err(error);
                }
                Err(Failure::LockNotAvailable {
                    error,
                    line,
                    blockers,
                }) => {
                    if attempt >= max_attempts {
                        let error = ExecError::RetriesExhausted {
                            path: self.migration.path.clone(),
                            line,
                            step_index: step.index,
                            attempts: attempt,
                            message: error_message(&error),
                            blockers,
                        };
                        self.journal_failure(journal_id, key, attempt, &error).await;
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
                        step = step.index,
                        attempt,
                        backoff_ms = backoff.as_millis() as u64,
                        "lock not available; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                    if let Some(id) = journal_id {
                        state::journal_update(self.client, id, StepStatus::Started, attempt, None)
                            .await?;
                    }
                }
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

    /// Writes the failure to the journal. A failure to write it is logged
    /// and the step's own error returned.
    async fn journal_failure(
        &self,
        journal_id: Option<i64>,
        key: StepKey<'_>,
        attempts: u32,
        error: &ExecError,
    ) {
        let text = error.to_string();
        let result = match journal_id {
            Some(id) => {
                state::journal_update(self.client, id, StepStatus::Failed, attempts, Some(&text))
                    .await
            }
            None => state::journal_insert(self.client, key, StepStatus::Failed, attempts)
                .await
                .map(|_| ()),
        };
        if let Err(journal_error) = result {
            tracing::warn!(%journal_error, "cannot write the failed step to the journal");
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
    ) -> Result<Outcome, Failure> {
        let client = self.client;
        let last_line = step.statements.last().map_or(0, |s| s.line);
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'",
                self.settings.lock_timeout.as_millis()
            ))
            .await
            .map_err(session_error("BEGIN"))?;

        let result = async {
            for statement in &step.statements {
                self.execute(statement, false).await?;
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
            self.execute(statement, false).await?;
        }
        Ok(Outcome::Ran)
    }

    /// Runs one attempt of a concurrent index build, with the catalog checks
    /// before and after it.
    async fn try_concurrent(
        &mut self,
        step: &Step,
        index: &RelationName,
    ) -> Result<Outcome, Failure> {
        let statement = &step.statements[0];
        let shown = display_name(index);
        set_lock_timeout(self.client, self.settings.concurrent_lock_timeout).await?;

        let existing = db::invalid_index(self.client, index.schema.as_deref(), &index.name)
            .await
            .map_err(ExecError::from)?;
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
                self.drop_index(index, statement.line).await?;
            }
        }

        if let Err(mut failure) = self.execute(statement, true).await {
            if let Failure::Fatal(error) = &mut failure {
                // A failed build leaves an INVALID index behind. Dropping it
                // restores the database as it was before the step. After a
                // lock timeout it stays, because the retry drops it anyway.
                match self.drop_index(index, statement.line).await {
                    Ok(()) => add_duplicate_hint(error),
                    Err(Failure::Fatal(drop_error)) => {
                        tracing::warn!(%drop_error, index = %shown, "cannot drop the INVALID index");
                    }
                    Err(Failure::LockNotAvailable { error, .. }) => {
                        tracing::warn!(%error, index = %shown, "cannot drop the INVALID index");
                    }
                }
            }
            return Err(failure);
        }

        let after = db::invalid_index(self.client, index.schema.as_deref(), &index.name)
            .await
            .map_err(ExecError::from)?;
        match after {
            IndexState::Valid { .. } => Ok(Outcome::Ran),
            _ => Err(Failure::Fatal(ExecError::InvalidIndexAfterBuild {
                path: self.migration.path.clone(),
                line: statement.line,
                index: shown,
            })),
        }
    }

    /// Drops the index concurrently if it exists.
    /// Drops the index concurrently if it exists; errors point at `line`,
    /// the build statement's line.
    async fn drop_index(&mut self, index: &RelationName, line: usize) -> Result<(), Failure> {
        let statement = StepStatement {
            sql: format!("DROP INDEX CONCURRENTLY IF EXISTS {}", quoted_name(index)),
            line,
            rewritten: true,
            locks: Vec::new(),
        };
        self.execute(&statement, false).await
    }

    /// Sends one statement and, while it runs, samples blockers (and index
    /// progress when `index_build` is set) on the monitor session and
    /// forwards server notices.
    async fn execute(
        &mut self,
        statement: &StepStatement,
        index_build: bool,
    ) -> Result<(), Failure> {
        let client = self.client;
        let query = client.batch_execute(&statement.sql);
        tokio::pin!(query);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + MONITOR_INTERVAL,
            MONITOR_INTERVAL,
        );
        let mut blockers = Vec::new();

        let result = loop {
            tokio::select! {
                result = &mut query => break result,
                _ = ticker.tick() => {
                    self.forward_notices();
                    if let Ok(seen) = db::blocking_pids(self.monitor, self.backend_pid).await {
                        if !seen.is_empty() {
                            blockers = seen;
                        }
                    }
                    if index_build {
                        if let Ok(Some(progress)) =
                            db::create_index_progress(self.monitor, self.backend_pid).await
                        {
                            self.reporter.index_progress(&progress);
                        }
                    }
                }
            }
        };
        self.forward_notices();
        result.map_err(|error| self.classify(error, statement.line, blockers))
    }

    fn forward_notices(&mut self) {
        while let Ok(notice) = self.notices.try_recv() {
            self.reporter.notice(&notice);
        }
    }

    /// Sorts an error into a retryable lock timeout or a fatal statement
    /// error naming the file and line.
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
            return Failure::Fatal(ExecError::Statement {
                path: self.migration.path.clone(),
                line,
                sqlstate: String::from("-"),
                message: error.to_string(),
                detail: None,
                hint: None,
            });
        };
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

    let parsed = pg_query::parse(sql).ok()?;
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
    NodeEnum::IndexStmt(Box::new(stmt)).deparse().ok()
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
