//! The end of a phase: the operator's confirmation after the cutover, and
//! the phase state that `pgshift status` shows.
//!
//! After the cutover blue keeps its old schema and its capture triggers, so
//! writes that still reach blue, from a client not yet switched or after a
//! switch back, stay queued. `pgshift confirm-cutover` drops the triggers
//! and records the confirmation. From then on a rerun of the phase does
//! nothing.

use tokio_postgres::Client;

use super::journal::{self, Confirmation, StageRow};
use super::{capture, BlueGreenError, Stage};
use crate::plan::{Phase, Plan};

/// Outcome of [`confirm_cutover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Capture was removed from blue and the confirmation recorded now.
    Confirmed,
    /// An earlier call confirmed the phase; nothing changed.
    AlreadyConfirmed(Confirmation),
}

/// Removes capture from blue and records the confirmation, once the phase's
/// cutover is journaled done. Call it while holding the run lock, so no run
/// of the phase is in progress.
pub async fn confirm_cutover(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
) -> Result<ConfirmOutcome, BlueGreenError> {
    let spec = phase
        .blue_green
        .as_ref()
        .ok_or_else(|| BlueGreenError::MissingBlock {
            phase: phase.name.clone(),
        })?;
    let status = phase_status(blue, plan, phase).await?;
    match status.state {
        PhaseState::WaitingForConfirmation { .. } => {}
        PhaseState::Confirmed(confirmation) => {
            return Ok(ConfirmOutcome::AlreadyConfirmed(confirmation))
        }
        state => {
            return Err(BlueGreenError::NotCutOver {
                phase: phase.name.clone(),
                state: state.describe(),
            })
        }
    }
    capture::remove(blue, &spec.capture, &phase.settings).await?;
    journal::record_confirmation(blue, &plan.name, &phase.name).await?;
    Ok(ConfirmOutcome::Confirmed)
}

/// A blue-green phase as its journal on blue records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseStatus {
    pub phase: String,
    /// The green target recorded by the first run, with any password
    /// redacted; `None` before the first run.
    pub green: Option<String>,
    pub state: PhaseState,
}

/// How far a blue-green phase got.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseState {
    NotStarted,
    /// The first stage not done, with its journal row when it has one.
    InProgress {
        stage: Stage,
        row: Option<StageRow>,
    },
    /// Traffic was switched to green; capture still runs on blue.
    WaitingForConfirmation {
        /// `finished_at` of the cutover stage, as text.
        cut_over_at: String,
    },
    Confirmed(Confirmation),
}

impl PhaseState {
    /// Describes the state in one line.
    pub fn describe(&self) -> String {
        match self {
            PhaseState::NotStarted => "not started".to_string(),
            PhaseState::InProgress { stage, row: None } => {
                format!("stage {stage} not started yet")
            }
            PhaseState::InProgress {
                stage,
                row: Some(row),
            } => {
                let mut text = format!("stage {stage} {} (runs: {})", row.status, row.runs);
                if let Some(error) = &row.error {
                    let first = error.lines().next().unwrap_or_default();
                    text.push_str(&format!(": {first}"));
                }
                text
            }
            PhaseState::WaitingForConfirmation { cut_over_at } => {
                format!("cut over at {cut_over_at}, waiting for confirmation")
            }
            PhaseState::Confirmed(confirmation) => format!(
                "cut over and confirmed at {} by {}",
                confirmation.at, confirmation.by
            ),
        }
    }
}

/// Reads the state of `phase` from the journal on blue, without creating
/// anything.
pub async fn phase_status(
    blue: &Client,
    plan: &Plan,
    phase: &Phase,
) -> Result<PhaseStatus, BlueGreenError> {
    let Some((green, rows)) = journal::phase_rows(blue, &plan.name, &phase.name).await? else {
        return Ok(PhaseStatus {
            phase: phase.name.clone(),
            green: None,
            state: PhaseState::NotStarted,
        });
    };
    let row_of = |stage: Stage| rows.iter().find(|r| r.stage == stage.as_str()).cloned();
    let pending = Stage::ALL
        .into_iter()
        .find(|stage| row_of(*stage).is_none_or(|row| row.status != "done"));
    let state = match pending {
        Some(stage) => PhaseState::InProgress {
            stage,
            row: row_of(stage),
        },
        None => match journal::confirmation(blue, &plan.name, &phase.name).await? {
            Some(confirmation) => PhaseState::Confirmed(confirmation),
            None => PhaseState::WaitingForConfirmation {
                cut_over_at: row_of(Stage::Cutover)
                    .and_then(|row| row.finished_at)
                    .unwrap_or_default(),
            },
        },
    };
    Ok(PhaseStatus {
        phase: phase.name.clone(),
        green: Some(green),
        state,
    })
}
