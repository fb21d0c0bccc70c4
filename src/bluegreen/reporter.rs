//! Progress events of a blue-green phase.

use std::io::Write;
use std::time::Duration;

use super::Stage;

/// Receives progress events; every method has an empty default.
pub trait BlueGreenReporter: Send + Sync {
    fn stage_started(&self, _stage: Stage) {}
    fn stage_skipped(&self, _stage: Stage) {}
    fn stage_finished(&self, _stage: Stage) {}
    fn hook(&self, _at: &str) {}
    fn capture_installed(&self, _table: &str) {}
    /// The copy runs at `snapshot` (the text form of a `pg_snapshot`).
    fn copy_started(&self, _snapshot: &str) {}
    /// An interrupted copy left rows on green; they are dropped first.
    fn copy_restarted(&self) {}
    /// Receives the archive bytes streamed so far, about every 500 ms.
    fn copy_progress(&self, _bytes: u64, _elapsed: Duration) {}
    fn copy_finished(&self, _bytes: u64, _elapsed: Duration) {}
    fn migration_started(&self, _migration_id: &str, _version: &str) {}
    /// Receives the events replayed so far and their rate per second.
    fn replayed(&self, _total: u64, _rate: Option<f64>) {}
    fn backlog(&self, _events: u64, _rate: Option<f64>) {}
    fn writes_paused(&self) {}
    fn writes_resumed(&self, _pause: Duration, _backlog: u64) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopBlueGreenReporter;

impl BlueGreenReporter for NoopBlueGreenReporter {}

/// A reporter that writes one line per event to stderr.
// TODO: draw these with indicatif in `crate::progress` like in-place steps.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrReporter;

fn line(text: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

impl BlueGreenReporter for StderrReporter {
    fn stage_started(&self, stage: Stage) {
        line(format_args!("blue-green: {stage} started"));
    }
    fn stage_skipped(&self, stage: Stage) {
        line(format_args!("blue-green: {stage} already done"));
    }
    fn stage_finished(&self, stage: Stage) {
        line(format_args!("blue-green: {stage} done"));
    }
    fn hook(&self, at: &str) {
        line(format_args!("blue-green: running {at}"));
    }
    fn copy_started(&self, snapshot: &str) {
        line(format_args!("blue-green: copying at snapshot {snapshot}"));
    }
    fn copy_progress(&self, bytes: u64, elapsed: Duration) {
        line(format_args!(
            "blue-green: copied {:.1} MB in {:.0}s",
            bytes as f64 / 1e6,
            elapsed.as_secs_f64()
        ));
    }
    fn migration_started(&self, migration_id: &str, version: &str) {
        line(format_args!(
            "blue-green: migrating green: {version} migration {migration_id}"
        ));
    }
    fn backlog(&self, events: u64, rate: Option<f64>) {
        line(format_args!(
            "blue-green: backlog {events} events, replay rate {:.0}/s",
            rate.unwrap_or(0.0)
        ));
    }
    fn writes_resumed(&self, pause: Duration, backlog: u64) {
        line(format_args!(
            "blue-green: writes paused for {:.0} ms; {backlog} events drained",
            pause.as_secs_f64() * 1000.0
        ));
    }
}
