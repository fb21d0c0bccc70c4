//! Lint findings and their renderings for people and machines.
//!
//! Every renderer writes each finding once and reads each source file at
//! most once, so output time is linear in the size of the input.
//!
//! NOTE: findings ranked by locked size (`--database-url`) can alternate
//! between files, and the human renderer then reads a file again each time
//! the ranking comes back to it.

mod machine;

use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{Level, Renderer, Snippet};

use crate::lint::{InputError, LintReport};
use crate::locks::{Hold, LockEffect, PgVersion};
use crate::rules::Place;
use crate::rules::Severity;

/// One finding.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line where the finding starts.
    pub line: usize,
    /// 1-based column (in characters) where the finding starts.
    pub column: usize,
    pub end_line: usize,
    /// 1-based column just past the last character of the finding.
    pub end_column: usize,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub help: String,
    pub locks: Vec<LockSummary>,
    /// Set when a `-- pgshift:ignore` comment silences the finding; a
    /// silenced finding is kept in JSON output and does not count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppression>,
    /// Size in bytes of the largest table the finding locks, read from the
    /// catalog with `--database-url`; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_bytes: Option<i64>,
    /// Byte range of the finding in the file.
    #[serde(skip)]
    pub span: Range<usize>,
}

/// Where and why a finding was silenced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suppression {
    /// The reason written after the rule ids, if any.
    pub reason: Option<String>,
    /// 1-based line of the `-- pgshift:ignore` comment.
    pub line: usize,
    /// True for `-- pgshift:ignore-file`.
    pub whole_file: bool,
}

/// A lock behind a finding, as reported.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LockSummary {
    pub relation: String,
    /// The mode as SQL spells it, e.g. `ACCESS EXCLUSIVE`.
    pub mode: String,
    /// `brief`, `scan` or `rewrite`.
    pub hold: &'static str,
    pub blocks_reads: bool,
    pub blocks_writes: bool,
}

impl From<&LockEffect> for LockSummary {
    fn from(effect: &LockEffect) -> Self {
        LockSummary {
            relation: crate::rules::qualified(&effect.relation),
            mode: effect.mode.sql_name().to_string(),
            hold: hold_name(effect.hold),
            blocks_reads: effect.mode.blocks_reads(),
            blocks_writes: effect.mode.blocks_writes(),
        }
    }
}

/// The name of a hold class as reports print it.
pub fn hold_name(hold: Hold) -> &'static str {
    match hold {
        Hold::Brief => "brief",
        Hold::Scan => "scan",
        Hold::Rewrite => "rewrite",
    }
}

impl Diagnostic {
    /// Builds a finding on a statement, underlining `span` or, when it is
    /// `None`, the whole statement.
    #[allow(clippy::too_many_arguments)]
    pub fn for_statement(
        path: &Path,
        text: &str,
        statement: &Place,
        rule: &str,
        severity: Severity,
        message: String,
        help: String,
        locks: Vec<LockSummary>,
        span: Option<Range<usize>>,
    ) -> Diagnostic {
        let span = span.unwrap_or_else(|| statement.span.clone());
        let (line, column) = position_in_statement(text, statement, span.start);
        let (end_line, end_column) = position_in_statement(text, statement, span.end);
        Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            end_line,
            end_column,
            rule: rule.to_string(),
            severity,
            message,
            help,
            locks,
            suppressed: None,
            locked_bytes: None,
            span,
        }
    }

    /// Builds a finding of a file-level rule at `span`.
    pub fn for_span(
        path: &Path,
        text: &str,
        lines: &crate::sql::LineIndex,
        rule: &str,
        severity: Severity,
        violation: crate::rules::Violation,
        span: Range<usize>,
    ) -> Diagnostic {
        let (line, column) = lines.line_col(text, span.start);
        let (end_line, end_column) = lines.line_col(text, span.end);
        Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            end_line,
            end_column,
            rule: rule.to_string(),
            severity,
            message: violation.message,
            help: violation.help,
            locks: violation.locks.iter().map(LockSummary::from).collect(),
            suppressed: None,
            locked_bytes: None,
            span,
        }
    }
}

/// Returns the 1-based line and column of `offset`, counting from the
/// statement's own start so the cost stays proportional to the statement.
fn position_in_statement(text: &str, statement: &Place, offset: usize) -> (usize, usize) {
    let start = statement.span.start;
    if offset < start {
        return (statement.line, statement.column);
    }
    let between = &text[start..offset];
    match between.rfind('\n') {
        None => (statement.line, statement.column + between.chars().count()),
        Some(last) => {
            let line = statement.line + between.matches('\n').count();
            (line, between[last + 1..].chars().count() + 1)
        }
    }
}

/// Output formats of `pgshift lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Github,
    Gitlab,
}

/// Writes a lint report in the given format.
pub fn render(
    report: &LintReport,
    sources: &(dyn Fn(&std::path::Path) -> Option<String> + Sync),
    version: PgVersion,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Human => render_human(report, sources, version, out),
        Format::Json => render_json(report, version, out),
        Format::Sarif => machine::render_sarif(report, out),
        Format::Github => machine::render_github(report, out),
        Format::Gitlab => machine::render_gitlab(report, out),
    }
}

fn render_human(
    report: &LintReport,
    sources: &(dyn Fn(&std::path::Path) -> Option<String> + Sync),
    version: PgVersion,
    out: &mut dyn Write,
) -> io::Result<()> {
    let renderer =
        if std::env::var_os("NO_COLOR").is_none() && io::IsTerminal::is_terminal(&io::stdout()) {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
    for error in &report.errors {
        writeln!(out, "{}", describe_input_error(error))?;
    }
    // Slices of findings are rendered on one thread per core, each slice
    // with its own source cache, and written in order.
    let active_findings: Vec<&Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.suppressed.is_none())
        .collect();
    let slices: Vec<&[&Diagnostic]> = active_findings.chunks(HUMAN_SLICE).collect();
    let rendered = crate::lint::map_in_parallel(&slices, |slice| {
        let mut buffer = Vec::new();
        render_findings(slice, &renderer, sources, &mut buffer).map(|()| buffer)
    });
    for buffer in rendered {
        out.write_all(&buffer?)?;
    }

    let active = || report.diagnostics.iter().filter(|d| d.suppressed.is_none());
    let errors = active().filter(|d| d.severity == Severity::Error).count();
    let warnings = active().filter(|d| d.severity == Severity::Warning).count();
    let silenced = report.diagnostics.len() - active().count();
    writeln!(
        out,
        "assuming PostgreSQL {}.{}: {} error(s), {} warning(s) in {} file(s){}{}",
        version.major,
        version.minor,
        errors,
        warnings,
        report.files,
        if silenced == 0 {
            String::new()
        } else {
            format!("; {silenced} silenced by pgshift:ignore")
        },
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; {} file(s) could not be linted", report.errors.len())
        }
    )
}

/// Describes a file that could not be linted as `path:line:column: message`.
pub fn describe_input_error(error: &InputError) -> String {
    match (error.line, error.column) {
        (Some(line), Some(column)) => {
            format!(
                "{}:{}:{}: error: {}",
                error.path.display(),
                line,
                column,
                error.message
            )
        }
        _ => format!("{}: error: {}", error.path.display(), error.message),
    }
}

/// Findings per slice of human output that one thread renders.
const HUMAN_SLICE: usize = 256;

/// Writes `findings` as human output, reading each finding's source file
/// when it differs from the previous finding's.
fn render_findings(
    findings: &[&Diagnostic],
    renderer: &Renderer,
    sources: &(dyn Fn(&std::path::Path) -> Option<String> + Sync),
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut cached: Option<(PathBuf, String)> = None;
    for d in findings {
        if cached.as_ref().map(|(p, _)| p != &d.path).unwrap_or(true) {
            cached = sources(&d.path).map(|text| (d.path.clone(), text));
        }
        let origin = format!("{}:{}:{}", d.path.display(), d.line, d.column);
        // annotate-snippets appends the line and column to the origin itself.
        let path = d.path.display().to_string();
        match &cached {
            Some((_, text)) => {
                let (excerpt, range) = excerpt(text, &d.span);
                let level = level_of(d.severity);
                let message = level.title(&d.message).id(&d.rule).snippet(
                    Snippet::source(excerpt)
                        .line_start(d.line)
                        .origin(&path)
                        .fold(true)
                        .annotation(level.span(range)),
                );
                writeln!(out, "{}", renderer.render(message))?;
            }
            None => writeln!(
                out,
                "{origin}: {}[{}]: {}",
                severity_name(d.severity),
                d.rule,
                d.message
            )?,
        }
        for lock in &d.locks {
            writeln!(
                out,
                "  = lock: {} on {} ({}), blocks {}",
                lock.mode,
                lock.relation,
                lock.hold,
                blocked_words(lock)
            )?;
        }
        writeln!(out, "  = help: {}", d.help)?;
        writeln!(out)?;
    }
    Ok(())
}

fn blocked_words(lock: &LockSummary) -> &'static str {
    match (lock.blocks_reads, lock.blocks_writes) {
        (true, _) => "reads and writes",
        (false, true) => "writes",
        (false, false) => "neither reads nor writes",
    }
}

pub(crate) fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn level_of(severity: Severity) -> Level {
    match severity {
        Severity::Error => Level::Error,
        Severity::Warning => Level::Warning,
        Severity::Info => Level::Info,
    }
}

/// Returns the whole lines that `span` touches and `span` relative to them.
fn excerpt<'a>(text: &'a str, span: &Range<usize>) -> (&'a str, Range<usize>) {
    let start = text[..span.start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[span.end..]
        .find('\n')
        .map(|i| span.end + i)
        .unwrap_or(text.len());
    (&text[start..end], span.start - start..span.end - start)
}

#[derive(serde::Serialize)]
struct JsonReport<'a> {
    /// Version of this JSON layout; bumped on incompatible changes.
    schema_version: u32,
    pg_version: String,
    files: usize,
    diagnostics: &'a [Diagnostic],
    errors: &'a [InputError],
}

fn render_json(report: &LintReport, version: PgVersion, out: &mut dyn Write) -> io::Result<()> {
    let json = JsonReport {
        schema_version: 1,
        pg_version: format!("{}.{}", version.major, version.minor),
        files: report.files,
        diagnostics: &report.diagnostics,
        errors: &report.errors,
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}
