//! Terminal output of long-running commands: the only module that uses
//! indicatif.
//!
//! [`CliReporter`] draws the executor's events on stderr: an overall bar of
//! steps plus a bar for the running index build or batched backfill when
//! stderr is a terminal, one plain line per event when it is not, and only
//! warnings in quiet mode.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::db::{BlockingPid, CommandProgress, IndexProgress, Notice};
use crate::exec::{ApplyReport, BackfillEvent, LockHolder, Reporter, RetryEvent, SkipReason};
use crate::locks::Hold;
use crate::plan::Migration;
use crate::rewrite::{Step, StepKind};

/// How much the reporter shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Progress bars; chosen when stderr is a terminal.
    Bars,
    /// One line per event.
    Plain,
    /// Server warnings, retries and nothing else.
    Quiet,
}

impl OutputMode {
    /// Picks bars for a terminal and plain lines otherwise, unless `quiet`.
    pub fn detect(quiet: bool) -> OutputMode {
        if quiet {
            OutputMode::Quiet
        } else if std::io::stderr().is_terminal() {
            OutputMode::Bars
        } else {
            OutputMode::Plain
        }
    }
}

/// The CLI's [`Reporter`].
pub struct CliReporter {
    mode: OutputMode,
    bars: MultiProgress,
    steps: ProgressBar,
    index: Mutex<Option<ProgressBar>>,
    /// The blockers last printed as a plain line, and when.
    blockers_shown: Mutex<(Vec<i32>, Option<Instant>)>,
    /// The progress phase last printed as a plain line.
    phase_shown: Mutex<String>,
    /// The running backfill's rate meter.
    backfill: Mutex<Option<BackfillMeter>>,
}

/// Rate and plain-line pacing of the running batched backfill.
struct BackfillMeter {
    step: usize,
    bar: ProgressBar,
    started: Instant,
    /// Rows scanned when this run picked the backfill up.
    rows_at_start: i64,
    last_line: Option<Instant>,
}

/// The bar of a running backfill: keys scanned of the estimated rows, the
/// rate and the time left at that rate.
const BACKFILL_TEMPLATE: &str =
    "{prefix:>10} [{bar:30}] {human_pos}/~{human_len} rows {per_sec} eta {eta} {wide_msg}";

/// How often plain output prints a line for a running backfill.
const BACKFILL_LINE_EVERY: Duration = Duration::from_secs(5);

/// How often plain output repeats an unchanged list of blockers.
const BLOCKERS_REPEAT: Duration = Duration::from_secs(10);

impl CliReporter {
    pub fn new(mode: OutputMode) -> CliReporter {
        let target = match mode {
            OutputMode::Bars => ProgressDrawTarget::stderr(),
            _ => ProgressDrawTarget::hidden(),
        };
        let bars = MultiProgress::with_draw_target(target);
        let steps = bars.add(ProgressBar::new(0));
        steps.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} steps {wide_msg}")
                .expect("the steps template is valid")
                .progress_chars("=> "),
        );
        steps.set_prefix("Applying");
        CliReporter {
            mode,
            bars,
            steps,
            index: Mutex::new(None),
            blockers_shown: Mutex::new((Vec::new(), None)),
            phase_shown: Mutex::new(String::new()),
            backfill: Mutex::new(None),
        }
    }

    /// Prints a line above the bars, or plainly without them.
    fn line(&self, text: &str) {
        match self.mode {
            OutputMode::Bars => self.bars.suspend(|| eprintln!("{text}")),
            OutputMode::Plain => eprintln!("{text}"),
            OutputMode::Quiet => {}
        }
    }

    /// Prints a line in every mode, quiet included.
    fn warn(&self, text: &str) {
        match self.mode {
            OutputMode::Bars => self.bars.suspend(|| eprintln!("{text}")),
            _ => eprintln!("{text}"),
        }
    }

    /// Prints a progress phase as a plain line when it changed.
    fn plain_phase(&self, phase: &str) {
        let mut shown = self.phase_shown.lock().expect("phase lock");
        if *shown != phase {
            *shown = phase.to_string();
            self.line(&format!("{:>10} {phase}", "Progress"));
        }
    }

    /// Returns the bar of the running index build or command, adding it
    /// on first use.
    fn index_bar(&self) -> ProgressBar {
        let mut slot = self.index.lock().expect("index bar lock");
        slot.get_or_insert_with(|| {
            let bar = self.bars.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {pos}/{len} blocks {wide_msg}",
                )
                .expect("the index template is valid")
                .progress_chars("=> "),
            );
            bar.set_prefix("Index");
            bar
        })
        .clone()
    }

    fn new_backfill_bar(&self) -> ProgressBar {
        if self.mode != OutputMode::Bars {
            return ProgressBar::hidden();
        }
        let bar = self.bars.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(BACKFILL_TEMPLATE)
                .expect("the backfill template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix("Backfill");
        bar
    }

    fn finish_index_bar(&self) {
        if let Some(meter) = self.backfill.lock().expect("backfill lock").take() {
            meter.bar.finish_and_clear();
        }
        self.phase_shown.lock().expect("phase lock").clear();
        if let Some(bar) = self.index.lock().expect("index bar lock").take() {
            bar.finish_and_clear();
        }
    }
}

fn step_label(step: &Step) -> String {
    let kind = match &step.kind {
        StepKind::Transaction => "transaction",
        StepKind::Autocommit => "autocommit",
        StepKind::ConcurrentIndex { .. } => "concurrent index",
        StepKind::ConcurrentReindex { .. } => "concurrent reindex",
        StepKind::Backfill { .. } => "batched backfill",
    };
    let first = step
        .statements
        .first()
        .map(|s| s.sql.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    match hold_label(step) {
        Some(hold) => format!("step {} ({kind}, {hold}): {first}", step.index + 1),
        None => format!("step {} ({kind}): {first}", step.index + 1),
    }
}

/// Describes how long the step holds locks that block writes: "instant"
/// when every statement that locks anything takes only such locks and holds
/// them for a catalog change, else the longest hold. Returns `None` when the
/// step takes no such lock, or holds a brief one while other statements of
/// its transaction run.
fn hold_label(step: &Step) -> Option<&'static str> {
    let locking: Vec<_> = step
        .statements
        .iter()
        .filter(|s| !s.locks.is_empty())
        .collect();
    let strong = locking
        .iter()
        .flat_map(|s| s.locks.iter())
        .filter(|l| l.mode.blocks_writes());
    let longest = strong.map(|l| l.hold).max()?;
    let every_lock_strong = locking
        .iter()
        .all(|s| s.locks.iter().all(|l| l.mode.blocks_writes()));
    match longest {
        Hold::Brief if every_lock_strong => Some("instant: catalog change only"),
        Hold::Brief => None,
        Hold::Scan => Some("scans the table under lock"),
        Hold::Rewrite => Some("rewrites the table under lock"),
    }
}

/// Formats blockers as `pid 42 (idle in transaction for 3.0s, lock): LOCK t`.
fn describe_blockers(blockers: &[BlockingPid]) -> String {
    let list: Vec<String> = blockers
        .iter()
        .map(|b| {
            let waits_for = if b.wait == "snapshot" {
                "old snapshot"
            } else {
                "lock"
            };
            let query: String = b.query.split_whitespace().collect::<Vec<_>>().join(" ");
            let query: String = query.chars().take(80).collect();
            format!(
                "pid {} ({}, {} for {:.1}s): {}",
                b.pid,
                waits_for,
                b.state,
                b.duration.as_secs_f64(),
                query
            )
        })
        .collect();
    list.join("; ")
}

impl Reporter for CliReporter {
    fn lock_waiting(&self, holder: &LockHolder) {
        self.warn(&format!(
            "waiting for another pgshift run to finish ({holder})"
        ));
    }

    fn dead_run_waiting(&self, pid: i32, state: &str, query: &str) {
        let query: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
        self.warn(&format!(
            "waiting for pid {pid} of an earlier pgshift run that ended without finishing \
             ({state}: {query})"
        ));
    }

    fn run_started(&self, total_steps: usize) {
        self.steps.set_length(total_steps as u64);
        self.line(&format!("{:>10} {total_steps} steps", "Planned"));
    }

    fn migration_started(&self, migration: &Migration, plan_version: &str) {
        self.steps
            .set_message(format!("{} {}", migration.id, migration.name));
        self.line(&format!(
            "{:>10} {} {} (version {plan_version})",
            "Migrating", migration.id, migration.name
        ));
    }

    fn step_started(&self, _migration: &Migration, step: &Step) {
        if self.mode == OutputMode::Plain {
            self.line(&format!("{:>10} {}", "Running", step_label(step)));
        }
    }

    fn step_skipped(&self, _migration: &Migration, step: &Step, reason: SkipReason) {
        let why = match reason {
            SkipReason::AlreadyDone => "done by an earlier run",
            SkipReason::IndexExists => "index already exists",
        };
        self.steps.inc(1);
        self.line(&format!(
            "{:>10} step {} ({why})",
            "Skipped",
            step.index + 1
        ));
    }

    fn step_retry(&self, event: &RetryEvent<'_>) {
        let blocked = if event.blockers.is_empty() {
            String::new()
        } else {
            format!(", blocked by {}", describe_blockers(event.blockers))
        };
        self.warn(&format!(
            "{:>10} step {} attempt {}/{} failed: {}{blocked}; next try in {:.1}s",
            "Retrying",
            event.step.index + 1,
            event.attempt,
            event.max_attempts,
            event.error,
            event.backoff.as_secs_f64()
        ));
    }

    fn step_finished(&self, _migration: &Migration, step: &Step, duration: Duration) {
        self.finish_index_bar();
        self.steps.inc(1);
        self.line(&format!(
            "{:>10} {} in {:.2}s",
            "Finished",
            step_label(step),
            duration.as_secs_f64()
        ));
    }

    fn blocked(&self, _migration: &Migration, _step: &Step, blockers: &[BlockingPid]) {
        if self.mode == OutputMode::Bars {
            if blockers.is_empty() {
                self.steps.set_message("");
            } else {
                self.steps
                    .set_message(format!("waiting for {}", describe_blockers(blockers)));
            }
            return;
        }
        let pids: Vec<i32> = blockers.iter().map(|b| b.pid).collect();
        let mut shown = self.blockers_shown.lock().expect("blockers lock");
        let repeat = shown.1.is_some_and(|at| at.elapsed() >= BLOCKERS_REPEAT);
        if pids == shown.0 && !repeat {
            return;
        }
        *shown = (pids, Some(Instant::now()));
        if !blockers.is_empty() {
            self.line(&format!(
                "{:>10} for {}",
                "Waiting",
                describe_blockers(blockers)
            ));
        }
    }

    fn command_progress(&self, progress: &CommandProgress) {
        if self.mode == OutputMode::Plain {
            self.plain_phase(&format!("{} {}", progress.command, progress.phase));
            return;
        }
        if self.mode != OutputMode::Bars {
            return;
        }
        let bar = self.index_bar();
        bar.set_prefix(progress.command.clone());
        bar.set_length(progress.blocks_total.max(0) as u64);
        bar.set_position(progress.blocks_done.max(0) as u64);
        bar.set_message(format!(
            "{} ({} tuples written)",
            progress.phase, progress.tuples_done
        ));
    }

    fn index_progress(&self, progress: &IndexProgress) {
        if self.mode == OutputMode::Plain {
            self.plain_phase(&format!("CREATE INDEX {}", progress.phase));
            return;
        }
        if self.mode != OutputMode::Bars {
            return;
        }
        let bar = self.index_bar();
        bar.set_prefix("Index");
        bar.set_length(progress.blocks_total.max(0) as u64);
        bar.set_position(progress.blocks_done.max(0) as u64);
        bar.set_message(format!(
            "{} ({} of {} tuples)",
            progress.phase, progress.tuples_done, progress.tuples_total
        ));
    }

    fn backfill_progress(&self, event: &BackfillEvent<'_>) {
        let progress = event.progress;
        let mut slot = self.backfill.lock().expect("backfill lock");
        if slot.as_ref().map(|m| m.step) != Some(event.step.index) {
            if let Some(old) = slot.take() {
                old.bar.finish_and_clear();
            }
            *slot = Some(BackfillMeter {
                step: event.step.index,
                bar: self.new_backfill_bar(),
                started: Instant::now(),
                rows_at_start: progress.rows_scanned,
                last_line: None,
            });
        }
        let meter = slot.as_mut().expect("the meter was just set");
        let scanned = progress.rows_scanned.max(0) as u64;
        // The estimate may lag behind the table; the bar never ends early.
        let estimate = event.estimated_rows.unwrap_or(0).max(0) as u64;
        let table = crate::rules::qualified(event.table);
        meter.bar.set_length(estimate.max(scanned));
        meter.bar.set_position(scanned);
        meter.bar.set_message(format!(
            "{table}: {} batches, {} rows updated",
            progress.batches, progress.rows_updated
        ));
        if self.mode != OutputMode::Plain {
            return;
        }
        let due = meter
            .last_line
            .is_none_or(|at| at.elapsed() >= BACKFILL_LINE_EVERY);
        if !due && !progress.finished {
            return;
        }
        meter.last_line = Some(Instant::now());
        let elapsed = meter.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            (progress.rows_scanned - meter.rows_at_start) as f64 / elapsed
        } else {
            0.0
        };
        let of = match event.estimated_rows {
            Some(total) => format!(" of ~{total}"),
            None => String::new(),
        };
        let state = if progress.finished { "done" } else { "running" };
        self.line(&format!(
            "{:>10} {table} {state}: {} rows scanned{of}, {} updated, {} batches, \
             {rate:.0} rows/s",
            "Backfill", progress.rows_scanned, progress.rows_updated, progress.batches
        ));
    }

    fn notice(&self, notice: &Notice) {
        let mut text = format!("{}: {}", notice.severity, notice.message);
        if let Some(detail) = &notice.detail {
            text.push_str(&format!("\ndetail: {detail}"));
        }
        if let Some(hint) = &notice.hint {
            text.push_str(&format!("\nhint: {hint}"));
        }
        self.warn(&text);
    }

    fn migration_finished(&self, migration: &Migration, duration: Duration) {
        self.line(&format!(
            "{:>10} {} {} in {:.2}s",
            "Applied",
            migration.id,
            migration.name,
            duration.as_secs_f64()
        ));
    }

    fn run_finished(&self, report: &ApplyReport) {
        self.finish_index_bar();
        self.steps.finish_and_clear();
        self.line(&format!(
            "{:>10} {} migrations applied, {} already applied",
            "Done",
            report.applied.len(),
            report.already_applied
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::PgVersion;
    use crate::rewrite::plan_migration;

    fn labels(sql: &str) -> Vec<String> {
        let migration = Migration {
            id: "1".to_string(),
            name: "m".to_string(),
            path: "V1__m.sql".into(),
            autocommit: false,
            checksum: String::new(),
            sql: sql.to_string(),
        };
        plan_migration(&migration, PgVersion::new(15, 0))
            .unwrap()
            .iter()
            .map(step_label)
            .collect()
    }

    #[test]
    fn catalog_change_labeled_instant() {
        let labels = labels(
            "ALTER TABLE tokens ADD COLUMN last_used_at timestamptz;\n\
             ALTER TABLE tokens DROP COLUMN legacy_secret;\n",
        );
        assert_eq!(
            labels,
            vec![
                "step 1 (transaction, instant: catalog change only): \
                 ALTER TABLE tokens ADD COLUMN last_used_at timestamptz"
            ]
        );
    }

    #[test]
    fn rewrite_and_scan_labeled() {
        let rewrite = labels("ALTER TABLE t ALTER COLUMN n TYPE bigint;\n");
        assert!(
            rewrite[0].contains("rewrites the table under lock"),
            "{rewrite:?}"
        );
        let scan = labels("ALTER TABLE p ATTACH PARTITION c FOR VALUES FROM (1) TO (10);\n");
        assert!(scan[0].contains("scans the table under lock"), "{scan:?}");
    }

    #[test]
    fn lock_held_over_dml_not_instant() {
        let labels = labels(
            "ALTER TABLE t ADD COLUMN c int;\n\
             UPDATE t SET c = 1;\n",
        );
        assert!(!labels[0].contains("instant"), "{labels:?}");
    }

    #[test]
    fn backfill_template_parses() {
        assert!(ProgressStyle::with_template(BACKFILL_TEMPLATE).is_ok());
    }
}
