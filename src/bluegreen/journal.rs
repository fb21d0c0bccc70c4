//! The stage journal of blue-green phases, kept on blue in pgshift's schema.
//! Its tables come from the state schema's refinery migrations
//! (`migrations/V2__bluegreen_journal.sql`), which `Executor::begin_run`
//! brings up to date before a phase starts.

use tokio_postgres::Client;

use super::{query_error, BlueGreenError, Stage};
use crate::plan::{Phase, Plan};

/// Records the phase and its green target; a rerun must name the same green.
pub async fn register_phase(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    green: &str,
) -> Result<(), BlueGreenError> {
    let row = blue
        .query_one(
            "INSERT INTO pgshift.bluegreen_phases (plan_name, phase, green) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (plan_name, phase) DO UPDATE SET plan_name = EXCLUDED.plan_name \
             RETURNING green",
            &[&plan.name, &phase.name, &green],
        )
        .await
        .map_err(query_error("register the phase", "blue"))?;
    let recorded: String = row.get(0);
    if recorded != green {
        return Err(BlueGreenError::Invalid {
            phase: phase.name.clone(),
            message: format!(
                "an earlier run of this phase copied to {recorded}, but the plan now names \
                 {green}; restore the plan's `green`, or delete the phase's rows from \
                 pgshift.bluegreen_phases and pgshift.bluegreen_stages to start over"
            ),
        });
    }
    Ok(())
}

/// A stage as the journal records it.
#[derive(Debug, Default)]
pub struct StageState {
    pub done: bool,
    /// True when an earlier run started the stage and did not finish it.
    pub started: bool,
    pub detail: serde_json::Value,
}

pub async fn stage_state(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    stage: Stage,
) -> Result<StageState, BlueGreenError> {
    let row = blue
        .query_opt(
            "SELECT status, detail::text FROM pgshift.bluegreen_stages \
             WHERE plan_name = $1 AND phase = $2 AND stage = $3",
            &[&plan.name, &phase.name, &stage.as_str()],
        )
        .await
        .map_err(query_error("read the stage journal", "blue"))?;
    let Some(row) = row else {
        return Ok(StageState::default());
    };
    let status: &str = row.get(0);
    let detail: &str = row.get(1);
    Ok(StageState {
        done: status == "done",
        started: status != "done",
        detail: serde_json::from_str(detail).unwrap_or_default(),
    })
}

pub async fn mark_started(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    stage: Stage,
) -> Result<(), BlueGreenError> {
    blue.execute(
        "INSERT INTO pgshift.bluegreen_stages (plan_name, phase, stage, status) \
         VALUES ($1, $2, $3, 'started') \
         ON CONFLICT (plan_name, phase, stage) DO UPDATE \
         SET status = 'started', started_at = now(), finished_at = NULL, error = NULL, \
             runs = pgshift.bluegreen_stages.runs + 1",
        &[&plan.name, &phase.name, &stage.as_str()],
    )
    .await
    .map_err(query_error("write the stage journal", "blue"))?;
    Ok(())
}

pub async fn mark_done(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    stage: Stage,
    detail: &serde_json::Value,
) -> Result<(), BlueGreenError> {
    set_detail(blue, plan, phase, stage, "done", detail).await
}

/// Stores `detail` on a stage that is still running, e.g. that the cutover
/// switched traffic.
pub async fn record_progress(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    stage: Stage,
    detail: &serde_json::Value,
) -> Result<(), BlueGreenError> {
    set_detail(blue, plan, phase, stage, "started", detail).await
}

async fn set_detail(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    stage: Stage,
    status: &str,
    detail: &serde_json::Value,
) -> Result<(), BlueGreenError> {
    blue.execute(
        "UPDATE pgshift.bluegreen_stages \
         SET status = $4, detail = $5::text::jsonb, \
             finished_at = CASE WHEN $4 = 'started' THEN NULL ELSE now() END \
         WHERE plan_name = $1 AND phase = $2 AND stage = $3",
        &[
            &plan.name,
            &phase.name,
            &stage.as_str(),
            &status,
            &detail.to_string(),
        ],
    )
    .await
    .map_err(query_error("write the stage journal", "blue"))?;
    Ok(())
}

pub async fn mark_failed(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
    stage: Stage,
    error: &str,
) -> Result<(), BlueGreenError> {
    blue.execute(
        "UPDATE pgshift.bluegreen_stages SET status = 'failed', error = $4, finished_at = now() \
         WHERE plan_name = $1 AND phase = $2 AND stage = $3",
        &[&plan.name, &phase.name, &stage.as_str(), &error],
    )
    .await
    .map_err(query_error("write the stage journal", "blue"))?;
    Ok(())
}

/// The operator's confirmation of a phase's cutover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// `confirmed_at` as text.
    pub at: String,
    /// The database role that confirmed.
    pub by: String,
}

/// Returns the confirmation of the phase, when one is recorded.
pub async fn confirmation(
    blue: &Client,
    plan_name: &str,
    phase_name: &str,
) -> Result<Option<Confirmation>, BlueGreenError> {
    let row = blue
        .query_opt(
            "SELECT confirmed_at::text, coalesce(confirmed_by, '') \
             FROM pgshift.bluegreen_phases \
             WHERE plan_name = $1 AND phase = $2 AND confirmed_at IS NOT NULL",
            &[&plan_name, &phase_name],
        )
        .await
        .map_err(query_error("read the phase journal", "blue"))?;
    Ok(row.map(|row| Confirmation {
        at: row.get(0),
        by: row.get(1),
    }))
}

/// Records that the operator confirmed the phase's cutover.
pub async fn record_confirmation(
    blue: &Client,
    plan_name: &str,
    phase_name: &str,
) -> Result<(), BlueGreenError> {
    blue.execute(
        "UPDATE pgshift.bluegreen_phases SET confirmed_at = now(), confirmed_by = current_user \
         WHERE plan_name = $1 AND phase = $2",
        &[&plan_name, &phase_name],
    )
    .await
    .map_err(query_error("record the confirmation", "blue"))?;
    Ok(())
}

/// One row of `pgshift.bluegreen_stages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRow {
    pub stage: String,
    /// `started`, `done` or `failed`.
    pub status: String,
    /// How many runs started the stage.
    pub runs: i32,
    /// `finished_at` as text, for done and failed stages.
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub detail: serde_json::Value,
}

/// Returns the recorded green target and the stage rows of a phase, or
/// `None` when no run of the phase started. Creates nothing: a database
/// without the journal tables has no phase.
pub async fn phase_rows(
    blue: &Client,
    plan_name: &str,
    phase_name: &str,
) -> Result<Option<(String, Vec<StageRow>)>, BlueGreenError> {
    let exists: bool = blue
        .query_one(
            "SELECT to_regclass('pgshift.bluegreen_stages') IS NOT NULL \
                    AND to_regclass('pgshift.bluegreen_phases') IS NOT NULL",
            &[],
        )
        .await
        .map_err(query_error("look up the phase journal", "blue"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let Some(phase) = blue
        .query_opt(
            "SELECT green FROM pgshift.bluegreen_phases WHERE plan_name = $1 AND phase = $2",
            &[&plan_name, &phase_name],
        )
        .await
        .map_err(query_error("read the phase journal", "blue"))?
    else {
        return Ok(None);
    };
    let rows = blue
        .query(
            "SELECT stage, status, runs, finished_at::text, error, detail::text \
             FROM pgshift.bluegreen_stages WHERE plan_name = $1 AND phase = $2",
            &[&plan_name, &phase_name],
        )
        .await
        .map_err(query_error("read the stage journal", "blue"))?;
    let stages = rows
        .iter()
        .map(|row| StageRow {
            stage: row.get(0),
            status: row.get(1),
            runs: row.get(2),
            finished_at: row.get(3),
            error: row.get(4),
            detail: serde_json::from_str(row.get(5)).unwrap_or_default(),
        })
        .collect();
    Ok(Some((phase.get(0), stages)))
}
