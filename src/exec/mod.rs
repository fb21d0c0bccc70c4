//! The executor: runs the steps of a plan against a live database.
//!
//! A run holds the run lock (see [`run_lock`]) from start to end, brings
//! pgshift's state schema up to date, checks every applied migration's
//! checksum against its file, then runs the pending migrations in plan order.
//! Each migration's steps come from [`crate::rewrite::plan_migration`] and
//! run with the phase's timeouts and retries (see the `step` module).
//!
//! An [`Interrupt`] request (Ctrl-C in the CLI) cancels the running
//! statement on the server, drops the INVALID index a cancelled concurrent
//! build leaves, marks the step `interrupted` in the journal and ends the
//! run with [`ExecError::Interrupted`]. A lost connection ends it with
//! [`ExecError::ConnectionLost`]; in both cases the next run resumes at the
//! unfinished step.

mod error;
mod interrupt;
mod reporter;
pub mod run_lock;
mod step;

pub use error::ExecError;
pub use interrupt::Interrupt;
pub use reporter::{BackfillEvent, NoopReporter, Reporter, RetryEvent, SkipReason};
pub use run_lock::{LockHolder, LockWait, RunLock, RUN_LOCK_KEY};

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Config};

use crate::db::{self, ConnInfo, Notices};
use crate::locks::PgVersion;
use crate::plan::{Migration, Plan, Settings, Strategy};
use crate::rewrite::Step;
use crate::state::{self, RunStatus};

/// How often a new run checks whether sessions of a dead run have ended.
const DEAD_RUN_POLL: Duration = Duration::from_millis(100);

/// Options of an executor.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Behavior when another run holds the run lock.
    pub lock_wait: LockWait,
    /// The advisory lock key; tests change it to run side by side.
    pub run_lock_key: i64,
    /// A stop request shared with the caller, e.g. a Ctrl-C handler.
    pub interrupt: Interrupt,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            lock_wait: LockWait::Fail,
            run_lock_key: RUN_LOCK_KEY,
            interrupt: Interrupt::default(),
        }
    }
}

/// Options of one `apply`.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// The last version to apply; all versions when `None`.
    pub to: Option<String>,
}

/// Outcome of one migration's run.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationReport {
    pub migration_id: String,
    pub steps: Vec<StepReport>,
    pub duration: Duration,
}

/// Outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub index: usize,
    /// Attempts made in this run; 0 when the step was skipped.
    pub attempts: u32,
    pub skipped: Option<SkipReason>,
}

/// Outcome of a whole `apply`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApplyReport {
    pub run_id: i64,
    /// Migrations run by this call, in order.
    pub applied: Vec<MigrationReport>,
    /// Migrations found already applied.
    pub already_applied: usize,
}

/// State of a plan's migration on the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    Applied,
    Pending,
    /// Applied, but the file's checksum differs from the recorded one.
    Changed,
    /// Recorded as applied, but no file of the plan has its id: the file
    /// was removed or renamed to another id.
    Missing,
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: String,
    pub migration_id: String,
    pub name: String,
    pub path: PathBuf,
    pub state: MigrationState,
    /// Steps of a pending migration that an interrupted run finished.
    pub steps_done: usize,
}

/// Runs migrations on one database.
pub struct Executor {
    client: Client,
    notices: Notices,
    config: Config,
    /// A second session that samples index build progress and blocking
    /// sessions while `client` runs a statement.
    monitor: Client,
    monitor_pid: i32,
    backend_pid: i32,
    server_version: PgVersion,
    options: ExecOptions,
    lock: Option<RunLock>,
    run_id: Option<i64>,
}

impl Executor {
    /// Wraps a connection from [`db::connect`] and opens the monitor
    /// session beside it.
    pub async fn new(
        client: Client,
        info: ConnInfo,
        options: ExecOptions,
    ) -> Result<Executor, ExecError> {
        if info.pooler_suspected {
            tracing::warn!(
                target = %info.redacted(),
                "the target looks like a transaction-mode pooler; pgshift needs a \
                 session of its own for its run lock and timeouts"
            );
        }
        let (monitor, _monitor_notices) = db::connect_config(&info.config).await?;
        let row = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|source| ExecError::Session {
                what: "pg_backend_pid",
                source,
            })?;
        let server_version = db::server_version(&client).await?;
        // pgshift's bookkeeping (state schema upgrades, journal, sampling)
        // must not inherit a role's or database's statement_timeout; each
        // step sets its phase's value before it runs.
        step::set_statement_timeout(&monitor, Duration::ZERO).await?;
        prepare_session(&client, server_version).await?;
        Ok(Executor {
            backend_pid: row.get(0),
            client,
            notices: info.notices,
            config: info.config,
            monitor_pid: monitor
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .map_err(|source| ExecError::Session {
                    what: "pg_backend_pid",
                    source,
                })?
                .get(0),
            monitor,
            server_version,
            options,
            lock: None,
            run_id: None,
        })
    }

    /// Returns the client that runs migrations.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Returns the backend pid of the client that runs migrations.
    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    pub fn server_version(&self) -> PgVersion {
        self.server_version
    }

    /// Takes the run lock, brings the state schema up to date and records
    /// a new run. Does nothing when a run is already open.
    pub async fn begin_run(
        &mut self,
        plan_name: &str,
        reporter: &dyn Reporter,
    ) -> Result<i64, ExecError> {
        if let Some(run_id) = self.run_id {
            return Ok(run_id);
        }
        if self.lock.is_none() {
            let lock = RunLock::acquire(
                &self.config,
                self.options.run_lock_key,
                self.options.lock_wait,
                reporter,
            )
            .await?;
            self.lock = Some(lock);
        }
        self.wait_for_dead_runs(reporter).await?;
        state::ensure_schema(&mut self.client).await?;
        // Notices of the schema upgrade ("already exists, skipping") are
        // pgshift's own business, not the migrations'.
        while let Ok(notice) = self.notices.try_recv() {
            tracing::debug!(message = %notice.message, "notice while upgrading the state schema");
        }
        let run_id = state::start_run(&self.client, plan_name).await?;
        self.run_id = Some(run_id);
        Ok(run_id)
    }

    /// Waits until no session of an earlier, dead pgshift run still runs a
    /// statement on this database. A killed client's backend keeps running
    /// its statement (an index build, `DROP INDEX CONCURRENTLY`) until the
    /// server notices the closed socket, and running the same statement
    /// beside it fails, e.g. with "tuple concurrently updated". The run
    /// lock is held here, so such sessions belong to no live run.
    async fn wait_for_dead_runs(&self, reporter: &dyn Reporter) -> Result<(), ExecError> {
        let Some(lock) = &self.lock else {
            return Ok(());
        };
        let own = vec![
            self.backend_pid,
            self.monitor_pid,
            lock.backend_pid().await?,
        ];
        let mut reported = false;
        loop {
            let rows = self
                .monitor
                .query(
                    "SELECT pid, coalesce(state, ''), coalesce(query, '') \
                     FROM pg_stat_activity \
                     WHERE datname = current_database() \
                       AND application_name = current_setting('application_name') \
                       AND state IS DISTINCT FROM 'idle' AND pid <> ALL ($1)",
                    &[&own],
                )
                .await
                .map_err(|source| ExecError::Session {
                    what: "look up sessions of earlier runs",
                    source,
                })?;
            let Some(row) = rows.first() else {
                return Ok(());
            };
            if !reported {
                let pid: i32 = row.get(0);
                let state: String = row.get(1);
                let query: String = row.get(2);
                reporter.dead_run_waiting(pid, &state, &query);
                reported = true;
            }
            tokio::time::sleep(DEAD_RUN_POLL).await;
        }
    }

    /// Returns the stop request this executor obeys.
    pub fn interrupt(&self) -> &Interrupt {
        &self.options.interrupt
    }

    /// Records the run's end and releases the run lock. The lock is released
    /// even when the run's row cannot be written, e.g. after a lost
    /// connection; the next run then marks that row `interrupted`.
    pub async fn end_run(&mut self, status: RunStatus) -> Result<(), ExecError> {
        let finished = match self.run_id.take() {
            Some(run_id) => state::finish_run(&self.client, run_id, status)
                .await
                .map_err(ExecError::from),
            None => Ok(()),
        };
        let released = match self.lock.take() {
            Some(lock) => lock.release().await,
            None => Ok(()),
        };
        finished.and(released)
    }

    /// Applies the pending migrations of `plan` up to `options.to`.
    pub async fn apply(
        &mut self,
        plan: &Plan,
        options: &ApplyOptions,
        reporter: &dyn Reporter,
    ) -> Result<ApplyReport, ExecError> {
        let last = match &options.to {
            Some(name) => plan
                .version_index(name)
                .ok_or_else(|| ExecError::UnknownVersion {
                    name: name.clone(),
                    available: plan.versions.iter().map(|v| v.name.clone()).collect(),
                })?,
            None => plan.versions.len().saturating_sub(1),
        };
        if let Some(report) =
            crate::bluegreen::apply(self.config.clone(), self, plan, options, reporter).await?
        {
            return Ok(report);
        }
        let run_id = self.begin_run(&plan.name, reporter).await?;
        let result = self.apply_in_run(plan, last, run_id, reporter).await;
        let status = match &result {
            Ok(_) => RunStatus::Succeeded,
            Err(ExecError::Interrupted { .. }) => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        };
        let ended = self.end_run(status).await;
        let report = result?;
        ended?;
        reporter.run_finished(&report);
        Ok(report)
    }

    async fn apply_in_run(
        &mut self,
        plan: &Plan,
        last: usize,
        run_id: i64,
        reporter: &dyn Reporter,
    ) -> Result<ApplyReport, ExecError> {
        let applied: HashMap<String, String> = state::applied_migrations(&self.client)
            .await?
            .into_iter()
            .map(|a| (a.migration_id, a.checksum))
            .collect();
        let mut report = ApplyReport {
            run_id,
            ..ApplyReport::default()
        };

        // Check every applied file first, so drift stops the run before it
        // changes anything.
        let mut pending = Vec::new();
        for (index, version) in plan.versions.iter().enumerate().take(last + 1) {
            let settings = settings_of(plan, index)?;
            for migration in &version.migrations {
                match applied.get(&migration.id) {
                    Some(checksum) if *checksum == migration.checksum => {
                        report.already_applied += 1;
                    }
                    Some(checksum) => {
                        return Err(ExecError::Drift {
                            path: migration.path.clone(),
                            migration_id: migration.id.clone(),
                            applied_checksum: checksum.clone(),
                            file_checksum: migration.checksum.clone(),
                        })
                    }
                    None => pending.push((version.name.as_str(), migration, settings)),
                }
            }
        }

        // Rewrites that depend on the schema (partitioned tables, indexes
        // that back constraints) see the database as it is, plus what the
        // pending migrations before them create.
        let mut facts = match crate::db::catalog::schema_facts(&self.client).await {
            Ok(facts) => facts,
            Err(error) => {
                tracing::warn!(%error, "cannot read schema facts; planning without them");
                crate::rewrite::SchemaFacts::default()
            }
        };
        let mut planned = Vec::new();
        for (version, migration, settings) in pending {
            let options = crate::rewrite::RewriteOptions::from_settings(settings);
            let plan = crate::rewrite::plan_migration_with(
                migration,
                self.server_version,
                &facts,
                &options,
            )?;
            // A statement whose rewrite was skipped runs as written, with the
            // lock `fix` and the dry-run show; the operator must know before
            // it does.
            for note in plan.notes.iter().filter(|n| n.skipped) {
                let backfill = matches!(
                    note.rewrite,
                    "batched-backfill" | "add-column-batched-default"
                );
                if backfill && options.batch_backfills {
                    tracing::warn!(
                        "{}:{}: not batched, runs in its migration's transaction: {}",
                        migration.path.display(),
                        note.line,
                        note.reason
                    );
                } else if !backfill {
                    tracing::warn!(
                        "{}:{}: skipped {}: {}",
                        migration.path.display(),
                        note.line,
                        note.rewrite,
                        note.reason
                    );
                }
            }
            let steps = plan.steps;
            facts.learn_sql(&migration.sql);
            planned.push((version, migration, settings, steps));
        }
        reporter.run_started(planned.iter().map(|p| p.3.len()).sum());

        for (version, migration, settings, steps) in &planned {
            let migration_report = self
                .run_migration(migration, version, steps, settings, reporter)
                .await?;
            report.applied.push(migration_report);
        }
        Ok(report)
    }

    /// Runs the steps of one migration, skipping those the journal records
    /// done, and records the migration applied after its last step. Opens a
    /// run (taking the run lock) when none is open.
    pub async fn run_migration(
        &mut self,
        migration: &Migration,
        plan_version: &str,
        steps: &[Step],
        settings: &Settings,
        reporter: &dyn Reporter,
    ) -> Result<MigrationReport, ExecError> {
        let run_id = self.begin_run("", reporter).await?;
        reporter.migration_started(migration, plan_version);
        // Each migration starts from the session's defaults, as `psql -f`
        // run once per file would, so a `SET search_path` of one migration
        // does not change where the next one's statements go.
        db::reset_session(&self.client).await?;
        prepare_session(&self.client, self.server_version).await?;

        let mut context = step::StepContext {
            client: &self.client,
            notices: &mut self.notices,
            monitor: &self.monitor,
            backend_pid: self.backend_pid,
            run_id,
            migration,
            plan_version,
            settings,
            reporter,
            interrupt: &self.options.interrupt,
            started: Instant::now(),
            recorded: false,
            server_version: self.server_version,
        };
        let mut reports = Vec::new();
        for (position, current) in steps.iter().enumerate() {
            // The run lock lives on its own idle session; if the server
            // closed it (idle_session_timeout, pg_terminate_backend), another
            // run may start, so this one stops before its next step.
            if let Some(lock) = &self.lock {
                if lock.client().is_closed() {
                    return Err(ExecError::RunLockLost {
                        target: lock.target().to_string(),
                    });
                }
            }
            let is_last = position + 1 == steps.len();
            reports.push(context.run(current, is_last).await?);
        }
        if !context.recorded {
            // No step left to record it with: the migration is empty, or its
            // last step was done by an earlier run.
            context.record_applied(&self.client).await?;
        }
        let duration = context.started.elapsed();
        reporter.migration_finished(migration, duration);
        Ok(MigrationReport {
            migration_id: migration.id.clone(),
            steps: reports,
            duration,
        })
    }
}

/// Sets what pgshift's main session needs on top of the server's defaults.
async fn prepare_session(client: &Client, server_version: PgVersion) -> Result<(), ExecError> {
    step::set_statement_timeout(client, Duration::ZERO).await?;
    if server_version >= PgVersion::new(14, 0) {
        // Without this a backend whose client died (killed, network
        // gone) keeps running its statement, e.g. an index build, until
        // it tries to send the result.
        client
            .batch_execute("SET client_connection_check_interval = '1s'")
            .await
            .map_err(|source| ExecError::Session {
                what: "SET client_connection_check_interval",
                source,
            })?;
    }
    Ok(())
}

/// Returns the settings of the phase that applies version `index`.
// An ExecError ends the run, so its size costs nothing on a hot path.
#[allow(clippy::result_large_err)]
fn settings_of(plan: &Plan, index: usize) -> Result<&Settings, ExecError> {
    static DEFAULT: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
    let Some(phase) = plan.phases.iter().find(|p| p.versions.contains(&index)) else {
        return Ok(DEFAULT.get_or_init(Settings::default));
    };
    if phase.strategy == Strategy::BlueGreen {
        // `apply` hands any range that reaches a blue-green phase to
        // `bluegreen::apply`, which runs the phase's migrations on green and
        // calls back here only for the versions before the phase.
        return Err(crate::bluegreen::BlueGreenError::Invalid {
            phase: phase.name.clone(),
            message: "its versions run on green through the blue-green stages, not in \
                      place on blue"
                .to_string(),
        }
        .into());
    }
    Ok(&phase.settings)
}

/// Reads the state of each migration of `plan` on the database behind
/// `client`, without creating pgshift's schema.
pub async fn status(plan: &Plan, client: &Client) -> Result<Vec<MigrationStatus>, ExecError> {
    let has_state = state::schema_exists(client).await?;
    let recorded = if has_state {
        state::applied_migrations(client).await?
    } else {
        Vec::new()
    };
    let applied: HashMap<String, String> = recorded
        .iter()
        .map(|a| (a.migration_id.clone(), a.checksum.clone()))
        .collect();
    let mut lines = Vec::new();
    for version in &plan.versions {
        for migration in &version.migrations {
            let state = match applied.get(&migration.id) {
                None => MigrationState::Pending,
                Some(checksum) if *checksum == migration.checksum => MigrationState::Applied,
                Some(_) => MigrationState::Changed,
            };
            let steps_done = if state == MigrationState::Pending && has_state {
                let journal = state::journal(client, &migration.id).await?;
                let mut done: Vec<i32> = journal
                    .iter()
                    .filter(|entry| entry.status == state::StepStatus::Done)
                    .map(|entry| entry.step_index)
                    .collect();
                done.sort_unstable();
                done.dedup();
                done.len()
            } else {
                0
            };
            lines.push(MigrationStatus {
                version: version.name.clone(),
                migration_id: migration.id.clone(),
                name: migration.name.clone(),
                path: migration.path.clone(),
                state,
                steps_done,
            });
        }
    }
    for row in recorded {
        let in_plan = plan
            .versions
            .iter()
            .flat_map(|v| &v.migrations)
            .any(|m| m.id == row.migration_id);
        if !in_plan {
            lines.push(MigrationStatus {
                version: row.plan_version,
                migration_id: row.migration_id,
                path: PathBuf::from(&row.name),
                name: row.name,
                state: MigrationState::Missing,
                steps_done: 0,
            });
        }
    }
    Ok(lines)
}
