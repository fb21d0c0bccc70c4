//! Rendering a plan back into a migration file.
//!
//! The text between statements (comments, blank lines) is kept; each
//! statement is replaced by its planned form. Where the plan splits what
//! the file ran together, transaction boundaries are written in: a
//! `COMMIT;` before a statement that must run outside a transaction block
//! and a `BEGIN;` after it, `COMMIT;` `BEGIN;` between two steps of one
//! explicit block, and `BEGIN;` ... `COMMIT;` around a step that would
//! otherwise merge with the one before it. A statement that runs outside a
//! transaction block gets the `-- pgshift:no-transaction` marker, and a
//! batched backfill the `-- pgshift:backfill batch-size=N` marker. Planning
//! the rendered text again gives the same steps, and rendering those gives
//! the same text.

use crate::analysis::{AnalyzedFile, FileMode, NO_TRANSACTION_DIRECTIVE};
use crate::locks::TransactionControl;

use super::{Place, Step, StepKind, Unit};

/// The marker line written above a statement that runs on its own.
fn marker() -> String {
    format!("-- pgshift:{NO_TRANSACTION_DIRECTIVE}\n")
}

struct Renderer<'a> {
    file: &'a AnalyzedFile,
    out: String,
    /// The output is inside a `BEGIN` of the file.
    file_block: bool,
    /// The output text has an open `BEGIN` (the file's or pgshift's).
    out_block: bool,
    /// pgshift wrote the open `BEGIN`, outside any block of the file.
    own_block: Option<usize>,
    /// The step of the last statement written in the current transaction.
    last_step: Option<usize>,
    /// The last source statement whose leading text was written.
    written_source: Option<usize>,
    /// A statement (not transaction control) was written.
    wrote_statement: bool,
}

/// Renders `units` of `file` as a migration file.
pub(super) fn render(file: &AnalyzedFile, units: &[Unit], steps: &[Step]) -> String {
    let all_alone = steps.iter().all(|s| !s.in_transaction());
    let mut r = Renderer {
        file,
        out: String::with_capacity(file.text.len() + 256),
        file_block: false,
        out_block: false,
        own_block: None,
        last_step: None,
        written_source: None,
        wrote_statement: false,
    };
    for unit in units {
        match unit.control {
            Some(TransactionControl::Begin) => {
                r.close_own_block();
                r.leading(unit.source);
                r.out.push_str(&unit.sql);
                r.out.push(';');
                r.file_block = true;
                r.out_block = true;
                r.last_step = None;
            }
            Some(_) => {
                r.close_own_block();
                // A COMMIT whose transaction pgshift already ended before a
                // statement that runs alone is left out.
                r.leading(unit.source);
                if r.out_block {
                    r.out.push_str(&unit.sql);
                    r.out.push(';');
                }
                r.file_block = false;
                r.out_block = false;
                r.last_step = None;
            }
            None => r.statement(unit, all_alone),
        }
    }
    r.close_own_block();
    let end = file.parsed.statements.last().map_or(0, |s| s.span.end);
    r.out.push_str(strip_separator(&file.text[end..]));
    r.out
}

impl Renderer<'_> {
    fn statement(&mut self, unit: &Unit, all_alone: bool) {
        let step = unit.step;
        if self.file.mode == FileMode::Autocommit {
            self.leading(unit.source);
            self.backfill_directive(unit);
            self.push_statement(&unit.sql);
            return;
        }
        if self.own_block.is_some() && self.own_block != step {
            self.close_own_block();
        }
        match &unit.place {
            Place::Alone(_) => {
                if self.out_block {
                    self.leading(unit.source);
                    self.boundary("COMMIT;\n");
                    self.out_block = false;
                } else {
                    self.leading(unit.source);
                }
                let first = !self.wrote_statement;
                if matches!(unit.place, Place::Alone(StepKind::Backfill { .. })) {
                    // The backfill directive also takes the statement out
                    // of its transaction.
                    self.backfill_directive(unit);
                } else if (!first || all_alone) && !self.marked(unit.source) {
                    self.boundary(&marker());
                }
                self.push_statement(&unit.sql);
                self.last_step = None;
            }
            Place::Transaction | Place::OwnTransaction => {
                self.leading(unit.source);
                if self.file_block {
                    if !self.out_block {
                        self.boundary("BEGIN;\n");
                        self.out_block = true;
                    } else if self.last_step.is_some() && self.last_step != step {
                        self.boundary("COMMIT;\nBEGIN;\n");
                    }
                } else if self.own_block.is_none()
                    && self.last_step.is_some()
                    && self.last_step != step
                {
                    self.boundary("BEGIN;\n");
                    self.own_block = step;
                    self.out_block = true;
                }
                self.push_statement(&unit.sql);
                self.last_step = step;
            }
        }
    }

    /// Writes the text before a source statement once: the separator after
    /// the previous statement is dropped (each statement gets its own `;`),
    /// the comments and blank lines are kept. A later unit of the same
    /// source statement starts on a new line.
    fn leading(&mut self, source: usize) {
        if self.written_source == Some(source) {
            self.out.push('\n');
            return;
        }
        let statements = &self.file.parsed.statements;
        let start = statements[source].span.start;
        let from = if source == 0 {
            0
        } else {
            statements[source - 1].span.end
        };
        let gap = &self.file.text[from..start];
        self.out.push_str(if source == 0 {
            gap
        } else {
            strip_separator(gap)
        });
        self.written_source = Some(source);
    }

    /// Returns true when the text before `source` already holds the marker.
    fn marked(&self, source: usize) -> bool {
        let statements = &self.file.parsed.statements;
        let start = statements[source].span.start;
        let from = if source == 0 {
            0
        } else {
            statements[source - 1].span.end
        };
        self.file.parsed.directives.iter().any(|d| {
            d.text == NO_TRANSACTION_DIRECTIVE && d.span.start >= from && d.span.start < start
        })
    }

    /// Writes `-- pgshift:backfill batch-size=N` above a batched backfill
    /// whose text does not carry the directive yet.
    fn backfill_directive(&mut self, unit: &Unit) {
        let Place::Alone(StepKind::Backfill { batch_size, .. }) = unit.place else {
            return;
        };
        if !self.file.contexts[unit.source].batched_backfill {
            self.boundary(&super::backfill::directive_line(batch_size));
        }
    }

    /// Writes a line of pgshift's own between the leading text and the
    /// statement, starting it on a line of its own.
    fn boundary(&mut self, text: &str) {
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        self.out.push_str(text);
    }

    fn push_statement(&mut self, sql: &str) {
        self.wrote_statement = true;
        self.out.push_str(sql);
        self.out.push(';');
    }

    fn close_own_block(&mut self) {
        if self.own_block.take().is_some() {
            self.out.push_str("\nCOMMIT;");
            self.out_block = false;
            self.last_step = None;
        }
    }
}

/// Drops the `;` that ended the previous statement from the text after it,
/// when it comes before any comment.
fn strip_separator(gap: &str) -> &str {
    let trimmed = gap.trim_start_matches([' ', '\t']);
    match trimmed.strip_prefix(';') {
        Some(rest) => rest,
        None => gap,
    }
}
