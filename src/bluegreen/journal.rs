//! The stage journal of blue-green phases, kept on blue in pgshift's schema.
//!
//! TODO: these tables are created here with `IF NOT EXISTS`; they belong in
//! a refinery migration of the state schema next to the step journal.

use tokio_postgres::Client;

use super::{query_error, BlueGreenError, Stage};
use crate::plan::{Phase, Plan};

const TABLES: &str = "
CREATE SCHEMA IF NOT EXISTS pgshift;
CREATE TABLE IF NOT EXISTS pgshift.bluegreen_phases (
    plan_name      text NOT NULL,
    phase          text NOT NULL,
    green          text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_name, phase)
);
CREATE TABLE IF NOT EXISTS pgshift.bluegreen_stages (
    plan_name   text NOT NULL,
    phase       text NOT NULL,
    stage       text NOT NULL,
    status      text NOT NULL CHECK (status IN ('started', 'done', 'failed')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    runs        integer NOT NULL DEFAULT 1,
    error       text,
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (plan_name, phase, stage)
);
";

/// Creates the journal tables when missing.
pub async fn ensure_tables(blue: &Client) -> Result<(), BlueGreenError> {
    blue.batch_execute(TABLES)
        .await
        .map_err(query_error("create the blue-green journal", "blue"))
}

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
