//! The blue-green strategy: capture writes on blue, copy blue to green at a
//! snapshot, migrate green, replay the captured writes, then cut over.
//!
//! Zero loss rests on one rule. Capture triggers tag every queued event
//! with its transaction id, and the copy runs at a snapshot exported after
//! the triggers are active. An event is in the copy exactly when its
//! transaction is visible in that snapshot, so replay takes the events whose
//! transaction is not (`pg_visible_in_snapshot`). Catch-up works in windows
//! between two snapshots of blue: each window replays the events that became
//! visible between them, in queue order, and records its position on green in
//! the same transaction as the replayed rows.
//!
//! Every stage is journaled on blue (`pgshift.bluegreen_stages`); a rerun
//! skips done stages, so a finished copy is never repeated.

mod capture;
mod confirm;
mod copy;
mod cutover;
mod dry_run;
mod hooks;
mod journal;
mod replay;
mod reporter;

pub use confirm::{confirm_cutover, phase_status, ConfirmOutcome, PhaseState, PhaseStatus};
pub use dry_run::{dry_run, write_dry_run};
pub use journal::{Confirmation, StageRow};
pub use reporter::{BlueGreenReporter, NoopBlueGreenReporter, StderrReporter};

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::{Client, Config};

use crate::db::{self, ConnInfo, DbError};
use crate::exec::{
    ApplyOptions, ApplyReport, ExecError, ExecOptions, Executor, LockWait, NoopReporter,
};
use crate::plan::{BlueGreen, GreenForms, GreenTarget, Phase, Plan, Strategy};
use crate::state::RunStatus;

/// How long the migrate stage waits for green's run lock.
const GREEN_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The stages of a blue-green phase, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Capture,
    Copy,
    Migrate,
    CatchUp,
    Cutover,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Capture,
        Stage::Copy,
        Stage::Migrate,
        Stage::CatchUp,
        Stage::Cutover,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Capture => "capture",
            Stage::Copy => "copy",
            Stage::Migrate => "migrate",
            Stage::CatchUp => "catch-up",
            Stage::Cutover => "cutover",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options of one blue-green run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this stage is journaled done, as a kill would; the next
    /// run resumes at the stage after it.
    pub stop_after: Option<Stage>,
    /// Folder of `pg_dump` and `pg_restore`; found on `PATH` when `None`.
    pub pg_bin: Option<PathBuf>,
}

/// Outcome of a blue-green phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlueGreenReport {
    /// Stages run by this call.
    pub ran: Vec<Stage>,
    /// Stages the journal recorded done by an earlier run.
    pub skipped: Vec<Stage>,
    /// Set when `RunOptions::stop_after` ended the run early.
    pub stopped_after: Option<Stage>,
    pub copy_time: Option<Duration>,
    /// Bytes of the `pg_dump` archive streamed into `pg_restore`.
    pub copy_bytes: u64,
    /// Migrations applied on green by this call.
    pub migrations_applied: usize,
    /// Events replayed by this call, in catch-up and cutover.
    pub replayed: u64,
    /// Time spent replaying those events.
    pub replay_time: Duration,
    /// Events replayed after writes were paused.
    pub backlog_at_cutover: Option<u64>,
    /// From the start of the `pause_writes` hooks to the end of the
    /// `resume_writes` hooks.
    pub write_pause: Option<Duration>,
}

impl BlueGreenReport {
    /// Returns replayed events per second, when any were replayed.
    pub fn replay_rate(&self) -> Option<f64> {
        let seconds = self.replay_time.as_secs_f64();
        (self.replayed > 0 && seconds > 0.0).then(|| self.replayed as f64 / seconds)
    }
}

/// Errors that stop a blue-green phase.
#[derive(Debug, thiserror::Error)]
pub enum BlueGreenError {
    #[error(
        "phase {phase} has `strategy: blue-green` but no `blue_green` block\n\
         hint: add `blue_green:` with `green`, `capture` and `hooks`; see docs/blue-green.md"
    )]
    MissingBlock { phase: String },

    #[error(transparent)]
    Connection(#[from] DbError),

    /// Boxed because `ExecError` is large and this enum is returned on
    /// every path.
    #[error(transparent)]
    Exec(Box<ExecError>),

    #[error("{what} on {side} failed: {source}")]
    Query {
        what: String,
        side: &'static str,
        source: tokio_postgres::Error,
    },

    #[error("blue-green phase {phase}: {message}")]
    Invalid { phase: String, message: String },

    #[error(
        "phase {phase} uses the blue-green strategy and must be applied whole\n\
         hint: pass `--to {to}`, or leave out `--to` when it is the last phase"
    )]
    PartialPhase { phase: String, to: String },

    #[error(
        "the cutover of phase {phase} cannot be confirmed: the phase is {state}\n\
         hint: run `pgshift apply` until the cutover is done, then confirm"
    )]
    NotCutOver { phase: String, state: String },

    #[error("{0}")]
    Copy(String),

    #[error("hook {at} failed: {message}")]
    Hook { at: String, message: String },

    #[error(
        "replay of event {seq} ({op} on {table}) failed on green: {message}\n\
         hint: fix the `{op}` replay statement of `{table}` in the plan and run again; \
         replay resumes at this event"
    )]
    Replay {
        seq: i64,
        table: String,
        op: String,
        message: String,
    },

    #[error(
        "cutover stopped, nothing switched: {} written on blue during the window \
         without a capture rule, so those writes are not on green\n\
         hint: add {} to `capture` (or to `allow_writes` if losing those writes is \
         acceptable), then restart the phase from the copy",
        tables.join(", "),
        if tables.len() == 1 { "it" } else { "them" }
    )]
    UncapturedWrites { tables: Vec<String> },

    #[error(
        "cutover stopped, nothing switched: row counts differ after the drain: {}\n\
         hint: check the replay statements of these tables, or set `verify_count: false` \
         when green merges or splits them",
        mismatches.join("; ")
    )]
    CountMismatch { mismatches: Vec<String> },

    #[error(
        "cutover stopped, nothing switched: transactions on blue were still open {}s after \
         writes were paused: {}\n\
         hint: end them or raise `drain_timeout`",
        timeout.as_secs(),
        xids.join(", ")
    )]
    DrainTimeout {
        timeout: Duration,
        xids: Vec<String>,
    },
}

impl From<ExecError> for BlueGreenError {
    fn from(error: ExecError) -> Self {
        BlueGreenError::Exec(Box::new(error))
    }
}

pub(crate) fn query_error(
    what: impl Into<String>,
    side: &'static str,
) -> impl FnOnce(tokio_postgres::Error) -> BlueGreenError {
    let what = what.into();
    move |source| BlueGreenError::Query { what, side, source }
}

/// Everything the stages share.
pub(crate) struct Context<'a> {
    pub plan: &'a Plan,
    pub phase: &'a Phase,
    pub spec: &'a BlueGreen,
    pub blue: Client,
    pub blue_config: Config,
    pub green_config: Config,
    pub options: &'a RunOptions,
    pub reporter: &'a dyn BlueGreenReporter,
}

/// Runs the blue-green phase `phase` of `plan`. `blue` is the executor on
/// blue and holds the run lock for the whole phase; `blue_config` opens
/// further sessions on blue.
pub async fn run_phase(
    blue: &mut Executor,
    blue_config: &Config,
    plan: &Plan,
    phase: &Phase,
    options: &RunOptions,
    reporter: &dyn BlueGreenReporter,
) -> Result<BlueGreenReport, BlueGreenError> {
    let spec = phase
        .blue_green
        .as_ref()
        .ok_or_else(|| BlueGreenError::MissingBlock {
            phase: phase.name.clone(),
        })?;
    blue.begin_run(&plan.name, &NoopReporter).await?;
    let result = run_stages(blue_config, plan, phase, spec, options, reporter).await;
    let status = match result {
        Ok(_) => RunStatus::Succeeded,
        Err(_) => RunStatus::Failed,
    };
    let ended = blue.end_run(status).await;
    let report = result?;
    ended?;
    Ok(report)
}

async fn run_stages(
    blue_config: &Config,
    plan: &Plan,
    phase: &Phase,
    spec: &BlueGreen,
    options: &RunOptions,
    reporter: &dyn BlueGreenReporter,
) -> Result<BlueGreenReport, BlueGreenError> {
    let (blue, _notices) = db::connect_config(blue_config).await?;
    let green_config = green_config(blue_config, &spec.green)?;
    journal::register_phase(&blue, plan, phase, &db::redacted(&green_config)).await?;
    if journal::confirmation(&blue, &plan.name, &phase.name)
        .await?
        .is_some()
    {
        // Capture is gone from blue, so the stages must not be checked or
        // run again.
        return Ok(BlueGreenReport {
            skipped: Stage::ALL.to_vec(),
            ..BlueGreenReport::default()
        });
    }

    let context = Context {
        plan,
        phase,
        spec,
        blue,
        blue_config: blue_config.clone(),
        green_config,
        options,
        reporter,
    };
    let mut report = BlueGreenReport::default();
    for stage in Stage::ALL {
        let state = journal::stage_state(&context.blue, plan, phase, stage).await?;
        if state.done {
            if stage == Stage::Capture {
                capture::check_installed(&context).await?;
            }
            reporter.stage_skipped(stage);
            report.skipped.push(stage);
            continue;
        }
        reporter.stage_started(stage);
        let before = hooks::before(spec, stage);
        let key = stage.as_str().replace('-', "_");
        hooks::run(&context, before, &format!("before_{key}")).await?;
        journal::mark_started(&context.blue, plan, phase, stage).await?;

        let outcome = match stage {
            Stage::Capture => capture::run(&context).await.map(|()| serde_json::json!({})),
            Stage::Copy => copy::run(&context, state.started, &mut report).await,
            Stage::Migrate => migrate_green(&context, &mut report).await,
            Stage::CatchUp => replay::catch_up(&context, &mut report).await,
            Stage::Cutover => cutover::run(&context, &state.detail, &mut report).await,
        };
        let detail = match outcome {
            Ok(detail) => detail,
            Err(error) => {
                journal::mark_failed(&context.blue, plan, phase, stage, &error.to_string()).await?;
                return Err(error);
            }
        };
        journal::mark_done(&context.blue, plan, phase, stage, &detail).await?;
        let after = hooks::after(spec, stage);
        hooks::run(&context, after, &format!("after_{key}")).await?;
        reporter.stage_finished(stage);
        report.ran.push(stage);

        if options.stop_after == Some(stage) && stage != Stage::Cutover {
            report.stopped_after = Some(stage);
            return Ok(report);
        }
    }
    Ok(report)
}

/// Returns the configuration of green: blue's with another database name,
/// or the given connection string.
fn green_config(blue: &Config, target: &GreenTarget) -> Result<Config, BlueGreenError> {
    match target {
        GreenTarget::Database(name) => {
            let mut config = blue.clone();
            config.dbname(name);
            Ok(config)
        }
        GreenTarget::Conninfo(text) => Ok(db::resolve_config(Some(text))?),
    }
}

/// Opens a session on green.
pub(crate) async fn connect_green(context: &Context<'_>) -> Result<Client, BlueGreenError> {
    let (client, _notices) = db::connect_config(&context.green_config).await?;
    Ok(client)
}

/// Runs the phase's migrations on green with the normal executor.
async fn migrate_green(
    context: &Context<'_>,
    report: &mut BlueGreenReport,
) -> Result<serde_json::Value, BlueGreenError> {
    let (client, notices) = db::connect_config(&context.green_config).await?;
    let info = ConnInfo {
        config: context.green_config.clone(),
        pooler_suspected: false,
        notices,
    };
    // This run has the run lock on blue, so a holder of green's run lock is
    // the session of a killed earlier run. The server ends that session
    // once it notices the closed socket.
    let options = ExecOptions {
        lock_wait: LockWait::Wait {
            poll: Duration::from_millis(100),
            timeout: Some(GREEN_LOCK_TIMEOUT),
        },
        ..ExecOptions::default()
    };
    let mut green = Executor::new(client, info, options).await?;
    let run_id = green.begin_run(&context.plan.name, &NoopReporter).await?;
    let result = migrate_in_run(context, &mut green).await;
    let status = if result.is_ok() {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    green.end_run(status).await?;
    let applied = result?;
    report.migrations_applied += applied;
    Ok(serde_json::json!({ "green_run_id": run_id, "applied": applied }))
}

async fn migrate_in_run(
    context: &Context<'_>,
    green: &mut Executor,
) -> Result<usize, BlueGreenError> {
    let applied: std::collections::HashSet<String> =
        crate::state::applied_migrations(green.client())
            .await
            .map_err(ExecError::from)?
            .into_iter()
            .map(|a| a.migration_id)
            .collect();
    let mut count = 0;
    for version in &context.plan.versions[context.phase.versions.clone()] {
        for migration in &version.migrations {
            if applied.contains(&migration.id) {
                continue;
            }
            let steps = match context.spec.green_forms {
                GreenForms::Online => {
                    crate::rewrite::plan_migration(migration, green.server_version())
                }
                GreenForms::Plain => {
                    crate::rewrite::plan_migration_plain(migration, green.server_version())
                }
            }
            .map_err(ExecError::from)?;
            context
                .reporter
                .migration_started(&migration.id, &version.name);
            green
                .run_migration(
                    migration,
                    &version.name,
                    &steps,
                    &context.phase.settings,
                    &NoopReporter,
                )
                .await?;
            count += 1;
            kill_point(KillPoint::MigrationApplied);
        }
    }
    Ok(count)
}

/// Runs `apply` for a plan whose range up to `options.to` contains a
/// blue-green phase: the in-place phases before it on blue through the
/// executor, then the blue-green phase. Returns `None` when the range has
/// no blue-green phase, so the executor runs it as usual.
// The executor's own functions return ExecError the same way; it ends the
// run, so its size costs nothing on a hot path.
#[allow(clippy::result_large_err)]
pub async fn apply(
    blue_config: Config,
    executor: &mut Executor,
    plan: &Plan,
    options: &ApplyOptions,
    reporter: &dyn crate::exec::Reporter,
) -> Result<Option<ApplyReport>, ExecError> {
    let last = match &options.to {
        Some(name) => plan.version_index(name),
        None => plan.versions.len().checked_sub(1),
    };
    let Some(last) = last else {
        return Ok(None);
    };
    let Some(phase) = plan
        .phases
        .iter()
        .find(|p| p.strategy == Strategy::BlueGreen && p.versions.start <= last)
    else {
        return Ok(None);
    };
    if phase.versions.end - 1 != last {
        return Err(BlueGreenError::PartialPhase {
            phase: phase.name.clone(),
            to: phase.to.clone(),
        }
        .into());
    }

    let mut report = ApplyReport::default();
    if let Some(from) = &phase.from {
        let before = ApplyOptions {
            to: Some(from.clone()),
        };
        report = Box::pin(executor.apply(plan, &before, reporter)).await?;
    }
    let phase_report = run_phase(
        executor,
        &blue_config,
        plan,
        phase,
        &RunOptions::default(),
        &StderrReporter,
    )
    .await
    .map_err(ExecError::from)?;
    tracing::info!(
        phase = %phase.name,
        migrations = phase_report.migrations_applied,
        "blue-green phase finished"
    );
    Ok(Some(report))
}

pub(crate) use crate::kill_point::kill_point;
pub use crate::kill_point::{KillPoint, KILL_POINT_ENV};
