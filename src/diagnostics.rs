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

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::lint::{InputError, LintReport};
use crate::locks::{Hold, LockEffect, PgVersion};
use crate::rules::Place;
use crate::rules::Severity;

/// One finding.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diagnostic {
    #[serde(serialize_with = "serialize_path")]
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

/// Writes a path as a string, with U+FFFD in place of bytes that are not
/// UTF-8: serde's own form of a path fails on them, which cut JSON output
/// short.
pub(crate) fn serialize_path<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
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
///
/// The findings are written from `report.rendered` when lint rendered them
/// already, file by file as it linted (see [`render_items`]), and else
/// rendered here in slices, one thread per core, with `sources` reading
/// the files that human output quotes.
pub fn render(
    report: &LintReport,
    sources: &(dyn Fn(&std::path::Path) -> Option<String> + Sync),
    version: PgVersion,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rendered;
    let items: &[Vec<u8>] = match &report.rendered {
        Some(done) if done.format == format => &done.items,
        _ => {
            let slices: Vec<&[Diagnostic]> = report.diagnostics.chunks(RENDER_SLICE).collect();
            let results = crate::lint::map_in_parallel(&slices, |slice| {
                let mut buffer = Vec::new();
                render_items(format, slice, Source::Read(sources), &mut buffer).map(|()| buffer)
            });
            rendered = results.into_iter().collect::<io::Result<Vec<_>>>()?;
            &rendered
        }
    };
    match format {
        Format::Human => render_human(report, items, version, out),
        Format::Json => render_json(report, items, version, out),
        Format::Sarif => machine::render_sarif(report, items, out),
        Format::Github => machine::render_github(report, items, out),
        Format::Gitlab => machine::render_gitlab(report, items, out),
    }
}

/// Findings per slice that one thread renders.
const RENDER_SLICE: usize = 256;

/// Findings rendered ahead of [`render`]: one buffer per file or slice of
/// findings, in report order.
#[derive(Debug)]
pub struct RenderedItems {
    pub format: Format,
    pub items: Vec<Vec<u8>>,
}

/// The source of the file text that human output quotes.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// The text of the one file that all the findings are in.
    Text(&'a str),
    /// Reads each file when the findings come to it.
    Read(&'a (dyn Fn(&std::path::Path) -> Option<String> + Sync)),
}

/// Writes `diagnostics` as the items of `format`: a code frame each for
/// human output, a workflow command each for GitHub, and JSON values
/// separated by [`separator`] for the JSON formats. Silenced findings are
/// left out where the format has no place for them.
pub fn render_items(
    format: Format,
    diagnostics: &[Diagnostic],
    source: Source<'_>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let active = || diagnostics.iter().filter(|d| d.suppressed.is_none());
    let separator = separator(format);
    let mut first = true;
    let mut next = |out: &mut Vec<u8>| {
        if !first {
            out.extend_from_slice(separator);
        }
        first = false;
    };
    match format {
        Format::Human => render_findings(active(), &human_renderer(), source, out)?,
        Format::Json => {
            for d in diagnostics {
                next(out);
                write_pretty_indented(d, out)?;
            }
        }
        Format::Sarif => {
            for d in diagnostics {
                next(out);
                serde_json::to_writer(&mut *out, &machine::sarif_result(d))?;
            }
        }
        Format::Github => {
            for d in active() {
                machine::write_github_command(d, out)?;
            }
        }
        Format::Gitlab => {
            for d in active() {
                next(out);
                serde_json::to_writer(&mut *out, &machine::gitlab_issue(d))?;
            }
        }
    }
    Ok(())
}

/// Returns the separator between two items of `format`.
fn separator(format: Format) -> &'static [u8] {
    match format {
        Format::Human | Format::Github => b"",
        Format::Json => b",\n",
        Format::Sarif | Format::Gitlab => b",",
    }
}

/// Writes `items` with the separator of `format` between those that are
/// not empty.
fn write_items(format: Format, items: &[Vec<u8>], out: &mut dyn Write) -> io::Result<bool> {
    let mut wrote = false;
    for item in items.iter().filter(|item| !item.is_empty()) {
        if wrote {
            out.write_all(separator(format))?;
        }
        out.write_all(item)?;
        wrote = true;
    }
    Ok(wrote)
}

/// Writes `value` as pretty JSON indented to sit in an array that is a
/// field of the top-level object, as `serde_json::to_writer_pretty` writes
/// the whole report. JSON strings hold no raw line breaks, so indenting
/// every line is exact.
fn write_pretty_indented(value: &impl serde::Serialize, out: &mut Vec<u8>) -> io::Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(b"    ");
        out.extend_from_slice(line);
    }
    Ok(())
}

/// Builds the code frame renderer, styled on a terminal unless `NO_COLOR`
/// is set, and returns whether it is styled.
fn human_renderer() -> (Renderer, bool) {
    // Decided once per process, because it is needed for every file linted.
    static STYLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let styled = *STYLED.get_or_init(|| {
        // NO_COLOR counts only when set to a value that is not empty.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        !no_color && io::IsTerminal::is_terminal(&io::stdout())
    });
    if styled {
        (Renderer::styled(), true)
    } else {
        (Renderer::plain(), false)
    }
}

fn render_human(
    report: &LintReport,
    items: &[Vec<u8>],
    version: PgVersion,
    out: &mut dyn Write,
) -> io::Result<()> {
    for error in &report.errors {
        writeln!(out, "{}", describe_input_error(error))?;
    }
    write_items(Format::Human, items, out)?;

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

/// The inputs a code frame depends on: the file, the span and the level.
type FrameKey<'a> = (&'a Path, Range<usize>, Severity);

/// Writes `findings` as human output. With [`Source::Read`], a finding's
/// file is read when it differs from the previous finding's.
fn render_findings<'d>(
    findings: impl Iterator<Item = &'d Diagnostic>,
    (renderer, styled): &(Renderer, bool),
    source: Source<'_>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut cached: Option<(&Path, String)> = None;
    let mut last_frame: Option<(FrameKey<'_>, String)> = None;
    for d in findings {
        let text = match source {
            Source::Text(text) => Some(text),
            Source::Read(read) => {
                if cached.as_ref().map(|(p, _)| *p != d.path).unwrap_or(true) {
                    cached = read(&d.path).map(|text| (d.path.as_path(), text));
                }
                cached.as_ref().map(|(_, text)| text.as_str())
            }
        };
        // annotate-snippets appends the line and column to the origin itself.
        let path = d.path.display().to_string();
        match text {
            Some(text) => {
                let (excerpt, range) = excerpt(text, &d.span);
                // The title and the code frame render apart exactly as they
                // do together. So the previous finding's frame is reused
                // when it underlines the same span at the same level, as
                // for most statements with several findings.
                let level = level_of(d.severity);
                if *styled {
                    let title = level
                        .clone()
                        .primary_title(d.message.as_str())
                        .id(d.rule.as_str());
                    writeln!(out, "{}", renderer.render(&[Group::with_title(title)]))?;
                } else {
                    // The plain title line is written directly, because
                    // annotate-snippets lays it out one character at a time:
                    // that was 14% of the CPU time of human output on the
                    // 2,000 small benchmark files (12,136 findings). The
                    // test below checks both ways give the same bytes.
                    let name = severity_name(d.severity);
                    writeln!(out, "{name}[{}]: {}", d.rule, d.message)?;
                }
                let key = (d.path.as_path(), d.span.clone(), d.severity);
                if !matches!(&last_frame, Some((k, _)) if *k == key) {
                    let snippet = Snippet::source(excerpt)
                        .line_start(d.line)
                        .path(path.as_str())
                        .fold(true)
                        .annotation(AnnotationKind::Primary.span(range));
                    let frame = renderer.render(&[Group::with_level(level).element(snippet)]);
                    last_frame = Some((key, frame));
                }
                if let Some((_, frame)) = &last_frame {
                    writeln!(out, "{frame}")?;
                }
            }
            None => writeln!(
                out,
                "{path}:{}:{}: {}[{}]: {}",
                d.line,
                d.column,
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
        if let Some(bytes) = d.locked_bytes {
            writeln!(
                out,
                "  = size: {} in the largest table it locks",
                indicatif::BinaryBytes(u64::try_from(bytes).unwrap_or(0))
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

fn level_of(severity: Severity) -> Level<'static> {
    match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Info => Level::INFO,
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

/// Writes the JSON report. The layout is that of `serde_json`'s pretty
/// printer applied to
///
/// ```text
/// { schema_version, pg_version, files, diagnostics: [...], errors: [...] }
/// ```
///
/// with the findings taken from `items`; `schema_version` is bumped on
/// incompatible changes.
fn render_json(
    report: &LintReport,
    items: &[Vec<u8>],
    version: PgVersion,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "{{")?;
    writeln!(out, "  \"schema_version\": 1,")?;
    writeln!(
        out,
        "  \"pg_version\": \"{}.{}\",",
        version.major, version.minor
    )?;
    writeln!(out, "  \"files\": {},", report.files)?;
    write!(out, "  \"diagnostics\": [")?;
    if items.iter().any(|item| !item.is_empty()) {
        writeln!(out)?;
        write_items(Format::Json, items, out)?;
        write!(out, "\n  ")?;
    }
    writeln!(out, "],")?;
    write!(out, "  \"errors\": [")?;
    if !report.errors.is_empty() {
        let mut errors = Vec::new();
        for (i, error) in report.errors.iter().enumerate() {
            if i > 0 {
                errors.extend_from_slice(b",\n");
            }
            write_pretty_indented(error, &mut errors)?;
        }
        writeln!(out)?;
        out.write_all(&errors)?;
        write!(out, "\n  ")?;
    }
    writeln!(out, "]")?;
    writeln!(out, "}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "CREATE INDEX i ON t (a);\nALTER TABLE \"ü\" ADD COLUMN b int NOT NULL;\n";

    fn finding(line: usize, span: Range<usize>, rule: &str, severity: Severity) -> Diagnostic {
        Diagnostic {
            path: PathBuf::from("dir/m.sql"),
            line,
            column: 1,
            end_line: line,
            end_column: span.len() + 1,
            rule: rule.to_string(),
            severity,
            message: format!("message of {rule} with \"quotes\", 100% and ü"),
            help: "a fix".to_string(),
            locks: vec![LockSummary {
                relation: "t".to_string(),
                mode: "SHARE".to_string(),
                hold: "scan",
                blocks_reads: false,
                blocks_writes: true,
            }],
            suppressed: None,
            locked_bytes: None,
            span,
        }
    }

    fn report(with_findings: bool, with_errors: bool) -> LintReport {
        let mut report = LintReport {
            files: 2,
            ..LintReport::default()
        };
        if with_findings {
            let mut silenced = finding(
                1,
                0..24,
                "index-build-without-concurrently",
                Severity::Error,
            );
            silenced.suppressed = Some(Suppression {
                reason: Some("tiny table".to_string()),
                line: 1,
                whole_file: false,
            });
            let mut sized = finding(
                2,
                25..67,
                "not-null-column-without-default",
                Severity::Warning,
            );
            sized.locked_bytes = Some(8192);
            let info = finding(2, 25..67, "result-type-change", Severity::Info);
            report.diagnostics = vec![silenced, sized, info];
        }
        if with_errors {
            report.errors = vec![
                InputError {
                    path: PathBuf::from("dir/bad.sql"),
                    line: Some(3),
                    column: Some(7),
                    message: "syntax error at or near \"SELEC\"".to_string(),
                },
                InputError {
                    path: PathBuf::from("dir/gone.sql"),
                    line: None,
                    column: None,
                    message: "cannot read file".to_string(),
                },
            ];
        }
        report
    }

    fn read(_: &Path) -> Option<String> {
        Some(TEXT.to_string())
    }

    fn rendered(report: &LintReport, format: Format) -> String {
        let mut out = Vec::new();
        render(report, &read, PgVersion::new(15, 0), format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Renders `report` from items made ahead, one per finding with an
    /// empty item between each, as lint hands them over file by file.
    fn rendered_ahead(report: &LintReport, format: Format) -> String {
        let mut items = vec![Vec::new()];
        for d in &report.diagnostics {
            let mut item = Vec::new();
            render_items(
                format,
                std::slice::from_ref(d),
                Source::Text(TEXT),
                &mut item,
            )
            .unwrap();
            items.push(item);
            items.push(Vec::new());
        }
        let ahead = LintReport {
            files: report.files,
            diagnostics: report.diagnostics.clone(),
            errors: report.errors.clone(),
            rendered: Some(RenderedItems { format, items }),
        };
        rendered(&ahead, format)
    }

    #[test]
    fn json_report_matches_serde_pretty() {
        #[derive(serde::Serialize)]
        struct Layout<'a> {
            schema_version: u32,
            pg_version: &'a str,
            files: usize,
            diagnostics: &'a [Diagnostic],
            errors: &'a [InputError],
        }
        for (findings, errors) in [(true, true), (true, false), (false, true), (false, false)] {
            let report = report(findings, errors);
            let layout = Layout {
                schema_version: 1,
                pg_version: "15.0",
                files: report.files,
                diagnostics: &report.diagnostics,
                errors: &report.errors,
            };
            let expected = serde_json::to_string_pretty(&layout).unwrap() + "\n";
            assert_eq!(rendered(&report, Format::Json), expected);
            assert_eq!(rendered_ahead(&report, Format::Json), expected);
        }
    }

    #[test]
    fn items_rendered_ahead_give_the_same_output() {
        for format in [
            Format::Human,
            Format::Json,
            Format::Sarif,
            Format::Github,
            Format::Gitlab,
        ] {
            for (findings, errors) in [(true, true), (true, false), (false, true), (false, false)] {
                let report = report(findings, errors);
                let whole = rendered(&report, format);
                assert_eq!(rendered_ahead(&report, format), whole, "{format:?}");
                if matches!(format, Format::Json | Format::Sarif | Format::Gitlab) {
                    let value: serde_json::Value = serde_json::from_str(&whole)
                        .unwrap_or_else(|e| panic!("{format:?} is not JSON: {e}\n{whole}"));
                    let listed = match format {
                        Format::Json => value["diagnostics"].as_array().unwrap().len(),
                        Format::Sarif => value["runs"][0]["results"].as_array().unwrap().len(),
                        _ => value.as_array().unwrap().len() - report.errors.len(),
                    };
                    // GitLab leaves the silenced finding out.
                    let expected = match format {
                        Format::Gitlab => report.diagnostics.len().saturating_sub(1),
                        _ => report.diagnostics.len(),
                    };
                    assert_eq!(listed, expected, "{format:?}");
                }
            }
        }
    }

    #[test]
    fn reused_frames_match_whole_renders() {
        // Three findings underline the same statement (two at one level),
        // one underlines another statement.
        let mut findings = report(true, false).diagnostics;
        findings[0].suppressed = None;
        findings.push(finding(2, 25..67, "another-rule", Severity::Warning));
        for (renderer, styled) in [(Renderer::plain(), false), (Renderer::styled(), true)] {
            let mut out = Vec::new();
            let human = (renderer, styled);
            render_findings(findings.iter(), &human, Source::Text(TEXT), &mut out).unwrap();
            let renderer = human.0;
            let mut expected = String::new();
            for d in &findings {
                let (excerpt, range) = excerpt(TEXT, &d.span);
                let path = d.path.display().to_string();
                let whole = level_of(d.severity)
                    .primary_title(d.message.as_str())
                    .id(d.rule.as_str())
                    .element(
                        Snippet::source(excerpt)
                            .line_start(d.line)
                            .path(path.as_str())
                            .fold(true)
                            .annotation(AnnotationKind::Primary.span(range)),
                    );
                expected.push_str(&renderer.render(&[whole]));
                expected.push('\n');
                for lock in &d.locks {
                    expected.push_str(&format!(
                        "  = lock: {} on {} ({}), blocks {}\n",
                        lock.mode,
                        lock.relation,
                        lock.hold,
                        blocked_words(lock)
                    ));
                }
                if let Some(bytes) = d.locked_bytes {
                    let size = indicatif::BinaryBytes(u64::try_from(bytes).unwrap());
                    expected.push_str(&format!("  = size: {size} in the largest table it locks\n"));
                }
                expected.push_str(&format!("  = help: {}\n\n", d.help));
            }
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn human_output_quotes_statements() {
        let report = report(true, false);
        let text = rendered(&report, Format::Human);
        assert!(!text.contains("index-build-without-concurrently"), "{text}");
        assert!(
            text.contains("warning[not-null-column-without-default]"),
            "{text}"
        );
        assert!(text.contains("--> dir/m.sql:2:1"), "{text}");
        assert!(
            text.contains("2 | ALTER TABLE \"ü\" ADD COLUMN b int NOT NULL;"),
            "{text}"
        );
        assert!(
            text.contains("  = lock: SHARE on t (scan), blocks writes"),
            "{text}"
        );
        assert!(
            text.ends_with("0 error(s), 1 warning(s) in 2 file(s); 1 silenced by pgshift:ignore\n"),
            "{text}"
        );
    }
}
