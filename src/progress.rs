//! Terminal output of long-running commands: the only module that uses
//! indicatif.
//!
//! [`CliReporter`] draws the executor's events on stderr: an overall bar of
//! steps plus a bar for the running index build when stderr is a terminal,
//! one plain line per event when it is not, and only warnings in quiet mode.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::db::{IndexProgress, Notice};
use crate::exec::{ApplyReport, LockHolder, Reporter, RetryEvent, SkipReason};
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
}

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

    fn finish_index_bar(&self) {
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
    };
    let first = step
        .statements
        .first()
        .map(|s| s.sql.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    format!("step {} ({kind}): {first}", step.index)
}

impl Reporter for CliReporter {
    fn lock_waiting(&self, holder: &LockHolder) {
        self.warn(&format!(
            "waiting for another pgshift run to finish ({holder})"
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
        self.line(&format!("{:>10} step {} ({why})", "Skipped", step.index));
    }

    fn step_retry(&self, event: &RetryEvent<'_>) {
        let blockers: Vec<String> = event
            .blockers
            .iter()
            .map(|b| format!("pid {} ({})", b.pid, b.state))
            .collect();
        let blocked = if blockers.is_empty() {
            String::new()
        } else {
            format!(", blocked by {}", blockers.join(", "))
        };
        self.warn(&format!(
            "{:>10} step {} attempt {}/{} failed: {}{blocked}; next try in {:.1}s",
            "Retrying",
            event.step.index,
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

    fn index_progress(&self, progress: &IndexProgress) {
        if self.mode != OutputMode::Bars {
            return;
        }
        let mut slot = self.index.lock().expect("index bar lock");
        let bar = slot.get_or_insert_with(|| {
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
        });
        bar.set_length(progress.blocks_total.max(0) as u64);
        bar.set_position(progress.blocks_done.max(0) as u64);
        bar.set_message(format!(
            "{} ({} of {} tuples)",
            progress.phase, progress.tuples_done, progress.tuples_total
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
