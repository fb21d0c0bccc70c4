//! Named places where a test can have `pgshift apply` killed with
//! SIGKILL, to prove that a rerun after a crash at that place finishes with
//! the same result.

use std::time::Duration;

/// The environment variable that names a kill point, for the kill tests.
pub const KILL_POINT_ENV: &str = "PGSHIFT_KILL_POINT";

/// Named places inside the stages where a test can have the process killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPoint {
    /// Capture: after the first table's triggers are installed.
    CaptureTableInstalled,
    /// Copy: after the first bytes of the archive reached `pg_restore`.
    CopyStreaming,
    /// Migrate: after a migration was applied on green.
    MigrationApplied,
    /// Catch-up or cutover: a replay batch ran on green and is not committed.
    ReplayBatchOpen,
    /// Catch-up or cutover: a replay batch is committed on green.
    ReplayBatchCommitted,
    /// Cutover: writes are paused and the queue is drained; the checks have
    /// not run.
    CutoverDrained,
    /// Cutover: the `switch_traffic` hooks ran; the journal does not record
    /// the switch yet.
    CutoverSwitched,
    /// In place: a statement of a step ran without error, and the step is
    /// not recorded done yet (for a step in a transaction, not committed).
    StepStatementRan,
}

impl KillPoint {
    /// The points inside blue-green stages.
    pub const ALL: [KillPoint; 7] = [
        KillPoint::CaptureTableInstalled,
        KillPoint::CopyStreaming,
        KillPoint::MigrationApplied,
        KillPoint::ReplayBatchOpen,
        KillPoint::ReplayBatchCommitted,
        KillPoint::CutoverDrained,
        KillPoint::CutoverSwitched,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KillPoint::CaptureTableInstalled => "capture-table-installed",
            KillPoint::CopyStreaming => "copy-streaming",
            KillPoint::MigrationApplied => "migration-applied",
            KillPoint::ReplayBatchOpen => "replay-batch-open",
            KillPoint::ReplayBatchCommitted => "replay-batch-committed",
            KillPoint::CutoverDrained => "cutover-drained",
            KillPoint::CutoverSwitched => "cutover-switched",
            KillPoint::StepStatementRan => "step-statement-ran",
        }
    }
}

/// Sends SIGKILL to this process when `PGSHIFT_KILL_POINT` names `point`.
/// The kill tests use it to end `pgshift apply` at a known place inside a
/// stage, the way `kill -9` would: no destructor, rollback or journal write
/// runs. Outside tests the variable is unset and this only reads it.
pub(crate) fn kill_point(point: KillPoint) {
    let Some(wanted) = std::env::var_os(KILL_POINT_ENV) else {
        return;
    };
    if wanted != point.as_str() {
        return;
    }
    eprintln!(
        "{KILL_POINT_ENV}={}: sending SIGKILL to this process",
        point.as_str()
    );
    let pid = std::process::id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    if let Err(error) = sent {
        eprintln!("{KILL_POINT_ENV}: cannot run kill: {error}");
        std::process::abort();
    }
    // The signal may arrive a moment after `kill` returns.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
