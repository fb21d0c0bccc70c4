//! Linting migration files: parse, analyze, run the rules, apply
//! suppressions and the configured rule settings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::analysis::{file_mode, AnalyzeOptions, AnalyzedFile, Analyzer, StatementContext};
use crate::diagnostics::{Diagnostic, LockSummary, Suppression};
use crate::locks::{Analysis, ColumnTypes, PgVersion, RelationName};
use crate::rules::{self, Check, Checker, FileEnd, FileInfo, FilePass, Finding, Place, Severity};
use crate::sql::{Directive, LineIndex, MetaCommand, Statement};

/// Rule id of the finding reported for a psql meta-command.
pub const META_COMMAND_RULE: &str = "psql-meta-command";
/// Rule id of the finding reported for `COPY ... FROM stdin` with inline data.
pub const COPY_STDIN_RULE: &str = "copy-from-stdin";

/// The directive that silences rules for the next statement:
/// `-- pgshift:ignore rule-a,rule-b reason text`.
pub const IGNORE_DIRECTIVE: &str = "ignore";
/// The directive that silences rules for the whole file:
/// `-- pgshift:ignore-file rule-a reason text`.
pub const IGNORE_FILE_DIRECTIVE: &str = "ignore-file";

/// Settings of one lint run.
#[derive(Clone)]
pub struct LintOptions {
    /// The server version verdicts assume.
    pub pg_version: PgVersion,
    /// A `lock_timeout` is in effect from the start of every file, as when
    /// pgshift applies a plan.
    pub lock_timeout: bool,
    /// Statements outside `BEGIN` ... `COMMIT` each run in their own
    /// transaction, as with a runner that does not wrap files.
    pub no_wrap: bool,
    /// Rules switched off by id.
    pub disabled: Vec<String>,
    /// Severity overrides by rule id.
    pub severities: HashMap<String, Severity>,
    /// Column types of existing tables, from a live catalog.
    pub column_types: Option<std::sync::Arc<dyn ColumnTypes + Send + Sync>>,
    /// Partitioning, constraint-backed indexes and table sizes read with
    /// `--database-url`. With it, findings carry the size of what they lock
    /// and are ranked by it.
    pub catalog: Option<std::sync::Arc<LintCatalog>>,
    /// The configuration whose `exclude` patterns skip files.
    pub config: Option<crate::config::Config>,
    /// Renders each file's findings in this format as soon as the file is
    /// linted, on the thread that linted it, into
    /// [`LintReport::rendered`]. Ignored with `catalog`, whose ranking
    /// mixes the files.
    pub render: Option<crate::diagnostics::Format>,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            pg_version: PgVersion::new(15, 0),
            lock_timeout: false,
            no_wrap: false,
            disabled: Vec::new(),
            severities: HashMap::new(),
            column_types: None,
            catalog: None,
            config: None,
            render: None,
        }
    }
}

impl LintOptions {
    /// The analysis options for one file; `autocommit` is true when the
    /// file's name carries the `.autocommit` marker.
    pub fn analyze_options(&self, autocommit: bool) -> AnalyzeOptions<'_> {
        AnalyzeOptions {
            version: self.pg_version,
            autocommit,
            no_wrap: self.no_wrap,
            lock_timeout: self.lock_timeout,
            column_types: self.column_types.as_deref().map(|c| c as &dyn ColumnTypes),
        }
    }
}

/// A file that could not be linted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputError {
    #[serde(serialize_with = "crate::diagnostics::serialize_path")]
    pub path: PathBuf,
    /// 1-based line of the error, when it has one.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// The outcome of linting a set of paths.
#[derive(Debug, Default)]
pub struct LintReport {
    pub files: usize,
    pub diagnostics: Vec<Diagnostic>,
    pub errors: Vec<InputError>,
    /// The findings rendered file by file, when `LintOptions::render` asked
    /// for it.
    pub rendered: Option<crate::diagnostics::RenderedItems>,
}

impl LintReport {
    /// Returns true when a finding of severity error exists.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error && d.suppressed.is_none())
    }
}

/// Lints files and folders; folders are searched recursively for `.sql`
/// files, skipping `.down.sql`. Files are linted in sorted order, on as
/// many threads as the machine has cores, and reported in that order.
pub fn lint_paths(paths: &[PathBuf], options: &LintOptions) -> LintReport {
    let mut report = LintReport::default();
    let mut files = Vec::new();
    for path in paths {
        collect_sql_files(path, &mut files, &mut report.errors);
    }
    files.retain(|path| !options.config.as_ref().is_some_and(|c| c.excludes(path)));
    report.files = files.len();

    let render = options.render.filter(|_| options.catalog.is_none());
    let outcomes = map_in_parallel(&files, |path| lint_path(path, options, render));
    let mut items = Vec::new();
    for (path, outcome) in files.into_iter().zip(outcomes) {
        match outcome {
            Ok((linted, rendered)) => {
                report.errors.extend(linted.errors);
                report.diagnostics.extend(linted.diagnostics);
                items.push(rendered);
            }
            Err((line, column, message)) => report.errors.push(InputError {
                path,
                line,
                column,
                message,
            }),
        }
    }
    report.rendered = render.map(|format| crate::diagnostics::RenderedItems { format, items });
    if options.catalog.is_some() {
        // Largest locked table first; the sort is stable, so findings of
        // equal size, and those that lock nothing known, keep file order.
        report
            .diagnostics
            .sort_by_key(|d| std::cmp::Reverse(d.locked_bytes.map_or(-1, |b| b)));
    }
    report
}

/// Why a file could not be linted: its line and column, when known, and
/// the message.
type PathError = (Option<usize>, Option<usize>, String);

/// Reads and lints one file, and renders its findings in `render`'s
/// format (else the buffer stays empty). An error carries its line, column
/// and message.
fn lint_path(
    path: &Path,
    options: &LintOptions,
    render: Option<crate::diagnostics::Format>,
) -> Result<(LintedFile, Vec<u8>), PathError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| (None, None, format!("cannot read file: {e}")))?;
    let linted =
        lint_text(path, &text, options).map_err(|e| (Some(e.line), Some(e.column), e.message))?;
    let mut rendered = Vec::new();
    if let Some(format) = render {
        let source = crate::diagnostics::Source::Text(&text);
        crate::diagnostics::render_items(format, &linted.diagnostics, source, &mut rendered)
            .map_err(|e| (None, None, format!("cannot render the findings: {e}")))?;
    }
    Ok((linted, rendered))
}

/// Stack size of the lint threads. Parse trees of deeply nested
/// expressions are decoded and walked recursively, so a chain of thousands
/// of `+` terms needs far more than a spawned thread's default 2 MiB. Only
/// the pages used are backed by memory.
const WORKER_STACK_SIZE: usize = 512 << 20;

/// Spawns a scoped thread with [`WORKER_STACK_SIZE`].
fn worker<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK_SIZE)
        .spawn_scoped(scope, work)
        .expect("the system cannot start a lint thread")
}

/// Applies `work` to every item on up to one thread per core and returns
/// the results in the order of `items`.
pub(crate) fn map_in_parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                worker(scope, || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            break;
                        };
                        done.push((i, work(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a lint worker thread panicked"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Parses the chunks of `sql` at `ranges` on one thread per core and
/// hands each parse to `consume` on the calling thread, in order.
///
/// The calling thread shares the parsing: while the next chunk in order is
/// not parsed yet, it parses a later one itself instead of waiting. Parsing
/// takes about twice the time of the analysis and the rules. So on 2 cores
/// one parser thread alone would leave the calling thread idle a third of
/// the time, and a second parser thread would compete with it for a core.
///
/// At most [`PARSE_WINDOW`] chunks per thread are parsed ahead of the one
/// being consumed, which bounds the parse trees held at once. The first
/// error from `consume` stops the parsers and is returned.
fn parse_in_parallel<E>(
    sql: &str,
    ranges: &[std::ops::Range<usize>],
    mut consume: impl FnMut(std::ops::Range<usize>, ParsedChunk) -> Result<(), E>,
) -> Result<(), E> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, ranges.len().max(1));
    let window = PARSE_WINDOW * threads;
    let shared = std::sync::Mutex::new(ParseQueue {
        next: 0,
        consumed: 0,
        parsed: (0..ranges.len()).map(|_| None).collect(),
        stop: false,
    });
    let ready = std::sync::Condvar::new();
    let parse = |i: usize| crate::sql::parse_chunk(sql, ranges[i].clone());

    std::thread::scope(|scope| {
        for _ in 1..threads {
            worker(scope, || {
                let mut queue = shared.lock().expect("a lint thread panicked");
                loop {
                    queue = ready
                        .wait_while(queue, |q| {
                            !q.stop && q.next < q.parsed.len() && q.next >= q.consumed + window
                        })
                        .expect("a lint thread panicked");
                    if queue.stop || queue.next >= queue.parsed.len() {
                        break;
                    }
                    let i = queue.next;
                    queue.next += 1;
                    drop(queue);
                    // A panic here would leave chunk i missing and the
                    // linting thread waiting for it. A failed chunk makes
                    // the linting thread parse the whole file itself, which
                    // then fails or panics there.
                    let chunk = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(i)))
                        .unwrap_or(None);
                    queue = shared.lock().expect("a lint thread panicked");
                    queue.parsed[i] = Some(chunk);
                    ready.notify_all();
                }
            });
        }

        // Stops the parser threads however this thread leaves the loop,
        // by an error from `consume` or by a panic, so the scope can join
        // them.
        let _stop = StopParsers(&shared, &ready);
        let result = (|| {
            for (i, range) in ranges.iter().enumerate() {
                let mut queue = shared.lock().expect("a lint thread panicked");
                let chunk = loop {
                    if let Some(chunk) = queue.parsed[i].take() {
                        queue.consumed = i + 1;
                        ready.notify_all();
                        break chunk;
                    }
                    if queue.next < queue.parsed.len() && queue.next < queue.consumed + window {
                        let j = queue.next;
                        queue.next += 1;
                        drop(queue);
                        let chunk = parse(j);
                        queue = shared.lock().expect("a lint thread panicked");
                        queue.parsed[j] = Some(chunk);
                        continue;
                    }
                    queue = ready.wait(queue).expect("a lint thread panicked");
                };
                drop(queue);
                consume(range.clone(), chunk)?;
            }
            Ok(())
        })();
        result
    })
}

/// Sets [`ParseQueue::stop`] when dropped and wakes the parser threads.
struct StopParsers<'a>(&'a std::sync::Mutex<ParseQueue>, &'a std::sync::Condvar);

impl Drop for StopParsers<'_> {
    fn drop(&mut self) {
        // A poisoned lock still guards a valid queue: set the flag anyway.
        let mut queue = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        queue.stop = true;
        self.1.notify_all();
    }
}

/// Chunks per thread that may be parsed ahead of the chunk being linted.
const PARSE_WINDOW: usize = 4;

/// The chunks of one file: which to parse next, and the parses not yet
/// consumed.
struct ParseQueue {
    /// Index of the next chunk that no thread has started to parse.
    next: usize,
    /// Number of chunks handed to `consume`.
    consumed: usize,
    parsed: Vec<Option<ParsedChunk>>,
    /// Set when the consumer stops early, so the parser threads end.
    stop: bool,
}

/// The result of [`crate::sql::parse_chunk`].
type ParsedChunk = Option<Vec<pg_query::protobuf::RawStmt>>;

/// The findings on one file, and the errors in its directives.
#[derive(Debug, Default)]
pub struct LintedFile {
    /// Findings sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Unknown directives and `-- pgshift:ignore` rule ids that name no rule.
    pub errors: Vec<InputError>,
}

/// Parses, analyzes and lints the text of one file, read from `path`.
///
/// Statements are parsed in chunks, and the rules see each statement as
/// its chunk is analyzed. Each chunk's parse trees are dropped once it is
/// linted, so memory grows with the findings, not with the file.
pub fn lint_text(
    path: &Path,
    text: &str,
    options: &LintOptions,
) -> Result<LintedFile, crate::sql::ParseError> {
    let autocommit = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains(".autocommit."));
    let analyze_options = options.analyze_options(autocommit);
    let mut stream = crate::sql::StatementStream::new(text)?;
    let keep_lines = has_ignore_directive(stream.directives());

    let mut linter: Option<(Analyzer<'_>, FileLinter<'_>)> = None;
    let mut lint_chunk = |chunk: Vec<Statement>, directives: &[Directive]| {
        let Some(first) = chunk.first() else {
            return;
        };
        let (analyzer, file_linter) = linter.get_or_insert_with(|| {
            let (mode, marked) = file_mode(directives, Some(first.span.start), &analyze_options);
            let info = FileInfo {
                version: options.pg_version,
                mode,
                marked_no_transaction: marked,
            };
            let analyzer = Analyzer::new(mode, &analyze_options).with_directives(directives);
            (
                analyzer,
                FileLinter::new(path, text, info, options, keep_lines),
            )
        });
        for statement in &chunk {
            let (analysis, context) = analyzer.analyze(statement);
            file_linter.statement(statement, &analysis, &context);
        }
    };

    let (meta_commands, directives) = if stream.has_several_chunks() {
        let directives = stream.directives().to_vec();
        // The parser threads need the text while this thread borrows the
        // stream mutably, so only a blanked text is copied.
        let blanked = stream.blanked().map(str::to_string);
        let sql = blanked.as_deref().unwrap_or(text);
        let ranges = stream.chunk_ranges();
        parse_in_parallel(sql, &ranges, |range, parsed| {
            let chunk = stream.build_chunk(range, parsed)?;
            lint_chunk(chunk, &directives);
            Ok(())
        })?;
        stream.into_parts()
    } else {
        while let Some(chunk) = stream.next_chunk() {
            lint_chunk(chunk?, stream.directives());
        }
        stream.into_parts()
    };

    let file_linter = match linter {
        Some((_, file_linter)) => file_linter,
        None => {
            let (mode, marked) = file_mode(&directives, None, &analyze_options);
            let info = FileInfo {
                version: options.pg_version,
                mode,
                marked_no_transaction: marked,
            };
            FileLinter::new(path, text, info, options, keep_lines)
        }
    };
    let statement_lines = file_linter.statement_lines.clone();
    let diagnostics = file_linter.finish(&meta_commands, &directives);

    let mut errors = Vec::new();
    for directive in &directives {
        if !is_known_directive(&directive.text) {
            errors.push(InputError {
                path: path.to_path_buf(),
                line: Some(directive.line),
                column: Some(1),
                message: format!(
                    "unknown directive `-- pgshift:{}`; the known ones are \
                     `no-transaction`, `backfill [batch-size=N]`, \
                     `ignore RULE[,RULE] [reason]` and \
                     `ignore-file RULE[,RULE] [reason]`",
                    directive.text
                ),
            });
        }
        if let Err(message) = crate::analysis::parse_backfill_directive(&directive.text) {
            errors.push(InputError {
                path: path.to_path_buf(),
                line: Some(directive.line),
                column: Some(1),
                message,
            });
        }
    }
    let ignores = parse_ignore_directives(&directives, &statement_lines, &meta_commands);
    for ignore in ignores.iter().filter(|i| i.rules.is_empty()) {
        errors.push(InputError {
            path: path.to_path_buf(),
            line: Some(ignore.directive_line),
            column: Some(1),
            message: "pgshift:ignore names no rule, so it silences nothing; write \
                      `-- pgshift:ignore RULE[,RULE] [reason]`"
                .to_string(),
        });
    }
    for (line, id) in unknown_ignored_rules(&ignores) {
        errors.push(InputError {
            path: path.to_path_buf(),
            line: Some(line),
            column: Some(1),
            message: format!(
                "pgshift:ignore names `{id}`, which is not a rule; `pgshift rules` \
                 lists them"
            ),
        });
    }
    Ok(LintedFile {
        diagnostics,
        errors,
    })
}

/// Runs every enabled rule on an analyzed file and marks the findings that
/// a `-- pgshift:ignore` comment silences. Findings come out sorted by
/// position.
pub fn lint_file(file: &AnalyzedFile, options: &LintOptions) -> Vec<Diagnostic> {
    let info = FileInfo {
        version: file.version,
        mode: file.mode,
        marked_no_transaction: file.marked_no_transaction,
    };
    let keep_lines = has_ignore_directive(&file.parsed.directives);
    let mut linter = FileLinter::new(&file.path, &file.text, info, options, keep_lines);
    for (statement, analysis, context) in file.statements() {
        linter.statement(statement, analysis, context);
    }
    linter.finish(&file.parsed.meta_commands, &file.parsed.directives)
}

/// The order of findings that start at the same line and column: findings
/// on the file first, by rule, then findings on statements, by statement
/// and rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tiebreak {
    File { rule: usize, sequence: usize },
    Statement { statement: usize, rule: usize },
}

/// The rules of one lint run applied to one file, fed one statement at a
/// time.
struct FileLinter<'a> {
    path: &'a Path,
    text: &'a str,
    info: FileInfo,
    /// Enabled per-statement rules with their position in [`rules::RULES`]
    /// and their severity.
    statement_rules: Vec<(usize, &'static rules::Rule, Severity)>,
    /// Passes of the enabled file rules, with the same.
    passes: Vec<(usize, &'static rules::Rule, Severity, Box<dyn FilePass>)>,
    found: Vec<(Tiebreak, Diagnostic)>,
    catalog: Option<std::sync::Arc<LintCatalog>>,
    /// `(line, end_line)` of every statement, kept only when an ignore
    /// directive needs to find the statement below it.
    statement_lines: Vec<(usize, usize)>,
    keep_lines: bool,
}

impl<'a> FileLinter<'a> {
    fn new(
        path: &'a Path,
        text: &'a str,
        info: FileInfo,
        options: &LintOptions,
        keep_lines: bool,
    ) -> FileLinter<'a> {
        let mut statement_rules = Vec::new();
        let mut passes = Vec::new();
        for (position, rule) in rules::RULES.iter().copied().enumerate() {
            if options.disabled.iter().any(|d| d == rule.id) {
                continue;
            }
            let severity = options
                .severities
                .get(rule.id)
                .copied()
                .unwrap_or(rule.severity);
            match rule.check {
                Checker::Statement(_) => statement_rules.push((position, rule, severity)),
                Checker::File(start) => passes.push((position, rule, severity, start())),
            }
        }
        FileLinter {
            path,
            text,
            info,
            statement_rules,
            passes,
            found: Vec::new(),
            catalog: options.catalog.clone(),
            statement_lines: Vec::new(),
            keep_lines,
        }
    }

    fn statement(
        &mut self,
        statement: &Statement,
        analysis: &Analysis,
        context: &StatementContext,
    ) {
        if self.keep_lines {
            self.statement_lines
                .push((statement.line, statement.end_line));
        }
        let check = Check {
            file: &self.info,
            statement,
            analysis,
            context,
            catalog: self.catalog.as_deref(),
        };
        let place = Place::of(statement);
        for &(position, rule, severity) in &self.statement_rules {
            let Checker::Statement(run) = rule.check else {
                continue;
            };
            if let Some(v) = run(&check) {
                let locked_bytes = self.catalog.as_ref().and_then(|c| c.locked_bytes(&v.locks));
                let mut diagnostic = Diagnostic::for_statement(
                    self.path,
                    self.text,
                    &place,
                    rule.id,
                    severity,
                    v.message,
                    v.help,
                    v.locks.iter().map(LockSummary::from).collect(),
                    v.span,
                );
                diagnostic.locked_bytes = locked_bytes;
                let tiebreak = Tiebreak::Statement {
                    statement: statement.index,
                    rule: position,
                };
                self.found.push((tiebreak, diagnostic));
            }
        }
        let mut findings = Vec::new();
        for (position, rule, severity, pass) in &mut self.passes {
            pass.statement(&check, &mut findings);
            for finding in findings.drain(..) {
                let tiebreak = tiebreak_of(&finding, *position, self.found.len());
                let locked_bytes = self
                    .catalog
                    .as_ref()
                    .and_then(|c| c.locked_bytes(&finding.violation.locks));
                let mut diagnostic =
                    finding_diagnostic(self.path, self.text, None, rule.id, *severity, finding);
                diagnostic.locked_bytes = locked_bytes;
                self.found.push((tiebreak, diagnostic));
            }
        }
    }

    /// Ends the file: finishes the passes, applies the ignore directives
    /// and returns the findings sorted by position.
    fn finish(
        mut self,
        meta_commands: &[MetaCommand],
        directives: &[Directive],
    ) -> Vec<Diagnostic> {
        let end = FileEnd { meta_commands };
        let mut findings = Vec::new();
        let mut lines: Option<LineIndex> = None;
        for (position, rule, severity, pass) in &mut self.passes {
            pass.finish(&end, &mut findings);
            for finding in findings.drain(..) {
                let tiebreak = tiebreak_of(&finding, *position, self.found.len());
                let locked_bytes = self
                    .catalog
                    .as_ref()
                    .and_then(|c| c.locked_bytes(&finding.violation.locks));
                let mut diagnostic = finding_diagnostic(
                    self.path,
                    self.text,
                    Some(&mut lines),
                    rule.id,
                    *severity,
                    finding,
                );
                diagnostic.locked_bytes = locked_bytes;
                self.found.push((tiebreak, diagnostic));
            }
        }
        self.found
            .sort_by_key(|(tiebreak, d)| (d.line, d.column, *tiebreak));
        let mut diagnostics: Vec<Diagnostic> = self.found.into_iter().map(|(_, d)| d).collect();
        let ignores = parse_ignore_directives(directives, &self.statement_lines, meta_commands);
        apply_suppressions(&ignores, &mut diagnostics);
        diagnostics
    }
}

fn tiebreak_of(finding: &Finding, rule: usize, sequence: usize) -> Tiebreak {
    match &finding.statement {
        Some(place) => Tiebreak::Statement {
            statement: place.index,
            rule,
        },
        None => Tiebreak::File { rule, sequence },
    }
}

/// Builds the diagnostic of a pass's finding. A finding on the file needs
/// the line index, which is built on first use.
fn finding_diagnostic(
    path: &Path,
    text: &str,
    lines: Option<&mut Option<LineIndex>>,
    rule: &str,
    severity: Severity,
    finding: Finding,
) -> Diagnostic {
    let violation = finding.violation;
    match finding.statement {
        Some(place) => Diagnostic::for_statement(
            path,
            text,
            &place,
            rule,
            severity,
            violation.message,
            violation.help,
            violation.locks.iter().map(LockSummary::from).collect(),
            violation.span,
        ),
        None => {
            let span = violation.span.clone().unwrap_or(0..0);
            let mut built = None;
            let lines = match lines {
                Some(slot) => slot.get_or_insert_with(|| LineIndex::new(text)),
                None => built.insert(LineIndex::new(text)),
            };
            Diagnostic::for_span(path, text, lines, rule, severity, violation, span)
        }
    }
}

fn has_ignore_directive(directives: &[Directive]) -> bool {
    directives.iter().any(|d| {
        let kind = d.text.split_whitespace().next().unwrap_or("");
        kind == IGNORE_DIRECTIVE
    })
}

/// A parsed `-- pgshift:ignore` or `-- pgshift:ignore-file` comment.
struct IgnoreDirective {
    rules: Vec<String>,
    reason: Option<String>,
    /// Lines the directive covers, inclusive; the whole file when `None`.
    lines: Option<(usize, usize)>,
    directive_line: usize,
}

/// Reads the ignore directives. `statement_lines` contains `(line,
/// end_line)` of every statement when the file has an `ignore` directive.
fn parse_ignore_directives(
    directives: &[Directive],
    statement_lines: &[(usize, usize)],
    meta_commands: &[MetaCommand],
) -> Vec<IgnoreDirective> {
    let mut parsed = Vec::new();
    for directive in directives {
        let (kind, rest) = directive
            .text
            .split_once(char::is_whitespace)
            .unwrap_or((directive.text.as_str(), ""));
        let whole_file = match kind {
            IGNORE_DIRECTIVE => false,
            IGNORE_FILE_DIRECTIVE => true,
            _ => continue,
        };
        let (rules, reason) = split_rules_and_reason(rest);
        let on_its_line = statement_lines
            .iter()
            .find(|&&(start, end)| start <= directive.line && directive.line <= end)
            .copied();
        let lines = if whole_file {
            None
        } else if on_its_line.is_some() {
            // A comment at the end of a statement's line (or inside it)
            // is about that statement.
            on_its_line
        } else {
            // The next statement or meta-command that starts after the
            // comment's line.
            let after = statement_lines.partition_point(|&(line, _)| line <= directive.line);
            let statement = statement_lines.get(after).copied();
            let meta = meta_commands
                .iter()
                .find(|m| m.line > directive.line)
                .map(|m| (m.line, m.line));
            match (statement, meta) {
                (Some(s), Some(m)) => Some(if m.0 < s.0 { m } else { s }),
                (Some(s), None) => Some(s),
                (None, Some(m)) => Some(m),
                (None, None) => continue,
            }
        };
        parsed.push(IgnoreDirective {
            rules,
            reason,
            lines,
            directive_line: directive.line,
        });
    }
    parsed
}

/// Splits the text after `ignore` into its comma-separated rule ids (a
/// space may follow each comma) and the reason after them.
fn split_rules_and_reason(text: &str) -> (Vec<String>, Option<String>) {
    let mut rules = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let end = rest
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        rules.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None => break,
        }
    }
    let reason = Some(rest.trim().to_string()).filter(|r| !r.is_empty());
    (rules, reason)
}

fn apply_suppressions(directives: &[IgnoreDirective], diagnostics: &mut [Diagnostic]) {
    if directives.is_empty() {
        return;
    }
    for d in diagnostics.iter_mut() {
        let found = directives.iter().find(|directive| {
            let covers = match directive.lines {
                None => true,
                Some((first, last)) => d.line >= first && d.line <= last,
            };
            covers && directive.rules.iter().any(|r| r == &d.rule || r == "all")
        });
        if let Some(directive) = found {
            d.suppressed = Some(Suppression {
                reason: directive.reason.clone(),
                line: directive.directive_line,
                whole_file: directive.lines.is_none(),
            });
        }
    }
}

/// Returns true when a `-- pgshift:` directive's text starts with a
/// directive pgshift recognizes, so a misspelt one is reported instead of being
/// ignored.
pub fn is_known_directive(text: &str) -> bool {
    let kind = text.split_whitespace().next().unwrap_or("");
    [
        crate::analysis::NO_TRANSACTION_DIRECTIVE,
        crate::analysis::BACKFILL_DIRECTIVE,
        IGNORE_DIRECTIVE,
        IGNORE_FILE_DIRECTIVE,
    ]
    .contains(&kind)
}

/// Returns the `-- pgshift:ignore` rule ids that name no rule, as
/// `(line, id)`, so typos surface instead of silencing nothing.
fn unknown_ignored_rules(directives: &[IgnoreDirective]) -> Vec<(usize, String)> {
    directives
        .iter()
        .flat_map(|d| d.rules.iter().map(move |r| (d.directive_line, r.clone())))
        .filter(|(_, r)| r != "all" && rules::find(r).is_none())
        .collect()
}

fn collect_sql_files(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    if !path.is_dir() {
        let message = if path.exists() {
            "not a regular file or folder (a pipe or device cannot be linted; save \
             the SQL to a file)"
        } else {
            "no such file or folder"
        };
        errors.push(InputError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.to_string(),
        });
        return;
    }
    // The entry's type comes with the folder listing on most file systems,
    // so only symbolic links (and file systems without it) cost a stat.
    let mut entries: Vec<(PathBuf, bool)> = match std::fs::read_dir(path) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| {
                let path = e.path();
                let is_dir = match e.file_type() {
                    Ok(t) if !t.is_symlink() => t.is_dir(),
                    _ => path.is_dir(),
                };
                (path, is_dir)
            })
            .collect(),
        Err(e) => {
            errors.push(InputError {
                path: path.to_path_buf(),
                line: None,
                column: None,
                message: format!("cannot read folder: {e}"),
            });
            return;
        }
    };
    entries.sort();
    for (entry, is_dir) in entries {
        // Lossy, so a name that is not UTF-8 still ends in `.sql`.
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if is_dir {
            collect_sql_files(&entry, out, errors);
        } else if name.ends_with(".sql") && !name.ends_with(".down.sql") {
            out.push(entry);
        }
    }
}

/// Catalog facts of the database that `--database-url` names: column
/// types, partitioned tables, indexes that back a constraint, and the size
/// of every table.
#[derive(Debug, Default)]
pub struct LintCatalog {
    pub columns: CatalogColumns,
    pub facts: crate::rewrite::SchemaFacts,
    /// `pg_total_relation_size` of every table and materialized view, in
    /// bytes; for a partitioned table, the sum over its partitions.
    pub sizes: HashMap<RelationName, i64>,
}

/// Table sizes, with partitioned tables as the sum of their partitions
/// (`pg_partition_tree` exists from PostgreSQL 12).
const TABLE_SIZES: &str = "
SELECT n.nspname::text, c.relname::text,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::int8
                    FROM pg_partition_tree(c.oid) t)
            ELSE pg_total_relation_size(c.oid) END
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%'";

/// The same without partition trees, for PostgreSQL 11, where a
/// partitioned table counts as 0 bytes.
const TABLE_SIZES_11: &str = "
SELECT n.nspname::text, c.relname::text, pg_total_relation_size(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%'";

impl LintCatalog {
    /// Reads the catalog of the database `client` is connected to, a
    /// server of `version`.
    pub async fn load(
        client: &tokio_postgres::Client,
        version: PgVersion,
    ) -> anyhow::Result<LintCatalog> {
        use anyhow::Context as _;

        let columns = CatalogColumns::load(client)
            .await
            .context("cannot read column types from the catalog")?;
        let facts = crate::db::catalog::schema_facts(client)
            .await
            .context("cannot read partitions and constraint indexes from the catalog")?;
        let query = if version.major >= 12 {
            TABLE_SIZES
        } else {
            TABLE_SIZES_11
        };
        let rows = client
            .query(query, &[])
            .await
            .context("cannot read table sizes from the catalog")?;
        let sizes = rows
            .iter()
            .map(|row| {
                let name = RelationName {
                    schema: Some(row.get(0)),
                    name: row.get(1),
                };
                (name, row.get::<_, i64>(2))
            })
            .collect();
        Ok(LintCatalog {
            columns,
            facts,
            sizes,
        })
    }

    /// Returns the size in bytes of `table`. A name without a schema
    /// matches the table of that name when exactly one schema has one,
    /// else the one in `public`.
    pub fn table_bytes(&self, table: &RelationName) -> Option<i64> {
        if table.schema.is_some() {
            return self.sizes.get(table).copied();
        }
        let mut matches = self
            .sizes
            .iter()
            .filter(|(name, _)| name.name == table.name);
        let first = matches.next();
        match (first, matches.next()) {
            (Some((_, bytes)), None) => Some(*bytes),
            _ => self
                .sizes
                .get(&RelationName {
                    schema: Some("public".to_string()),
                    name: table.name.clone(),
                })
                .copied(),
        }
    }

    /// Returns the size of the largest table among `locks`, or `None` when
    /// the catalog lists none of them.
    pub fn locked_bytes(&self, locks: &[crate::locks::LockEffect]) -> Option<i64> {
        locks
            .iter()
            .filter_map(|lock| self.table_bytes(&lock.relation))
            .max()
    }

    /// Returns true when the catalog lists `index` as backing a PRIMARY
    /// KEY, UNIQUE or EXCLUDE constraint.
    pub fn backs_constraint(&self, index: &RelationName) -> bool {
        self.facts.backs_constraint(index) == crate::rewrite::Known::Yes
    }
}

impl ColumnTypes for LintCatalog {
    fn column_type(&self, table: &RelationName, column: &str) -> Option<String> {
        self.columns.column_type(table, column)
    }

    fn is_partitioned(&self, table: &RelationName) -> Option<bool> {
        if self.facts.is_partitioned(table) == crate::rewrite::Known::Yes {
            return Some(true);
        }
        self.table_bytes(table).map(|_| false)
    }
}

/// Column types read from a live catalog, keyed by schema, table and
/// column. A name written without a schema matches the table in any schema
/// when exactly one schema has it.
#[derive(Debug, Default)]
pub struct CatalogColumns {
    types: HashMap<(String, String, String), String>,
    by_table: HashMap<(String, String), Vec<String>>,
}

impl CatalogColumns {
    /// Reads every column of every user table.
    pub async fn load(
        client: &tokio_postgres::Client,
    ) -> Result<CatalogColumns, tokio_postgres::Error> {
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, a.attname::text,
                        format_type(a.atttypid, a.atttypmod)
                   FROM pg_attribute a
                   JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
                    AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
                &[],
            )
            .await?;
        let mut columns = CatalogColumns::default();
        for row in rows {
            let (schema, table, column, sql_type): (String, String, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let schemas = columns
                .by_table
                .entry((table.clone(), column.clone()))
                .or_default();
            if !schemas.contains(&schema) {
                schemas.push(schema.clone());
            }
            columns.types.insert((schema, table, column), sql_type);
        }
        Ok(columns)
    }
}

impl ColumnTypes for CatalogColumns {
    fn column_type(&self, table: &crate::locks::RelationName, column: &str) -> Option<String> {
        let schema = match &table.schema {
            Some(schema) => schema.clone(),
            None => match self
                .by_table
                .get(&(table.name.clone(), column.to_string()))?
                .as_slice()
            {
                [only] => only.clone(),
                _ => "public".to_string(),
            },
        };
        self.types
            .get(&(schema, table.name.clone(), column.to_string()))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of `SELECT n;` statements, `per_chunk` statements each.
    fn select_chunks(chunks: usize, per_chunk: usize) -> (String, Vec<std::ops::Range<usize>>) {
        let mut sql = String::new();
        let mut ranges = Vec::new();
        for c in 0..chunks {
            let start = sql.len();
            for s in 0..per_chunk {
                sql.push_str(&format!("SELECT {};\n", c * per_chunk + s));
            }
            ranges.push(start..sql.len());
        }
        (sql, ranges)
    }

    #[test]
    fn parallel_parse_hands_chunks_over_in_order() {
        let (sql, ranges) = select_chunks(40, 50);
        let mut seen = Vec::new();
        parse_in_parallel(&sql, &ranges, |range, parsed| {
            let statements = parsed.expect("the chunk parses");
            assert_eq!(statements.len(), 50);
            let first = usize::try_from(statements[0].stmt_location).unwrap();
            assert_eq!(first, range.start, "the chunk's statements are its own");
            seen.push(range);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(seen, ranges);
    }

    #[test]
    fn parallel_parse_survives_a_panic_in_consume() {
        // The parser threads must end, or the scope would wait for them
        // forever instead of passing the panic on.
        let (sql, ranges) = select_chunks(40, 50);
        let outcome = std::panic::catch_unwind(|| {
            parse_in_parallel(&sql, &ranges, |range, _| {
                assert!(range.start == 0, "consume fails on the second chunk");
                Ok::<(), ()>(())
            })
        });
        assert!(outcome.is_err(), "the panic reaches the caller");
    }

    #[test]
    fn parallel_parse_stops_at_the_first_error() {
        let (sql, ranges) = select_chunks(40, 50);
        let mut consumed = 0;
        let result = parse_in_parallel(&sql, &ranges, |_, _| {
            consumed += 1;
            if consumed == 3 {
                Err("stop")
            } else {
                Ok(())
            }
        });
        assert_eq!(result, Err("stop"));
        assert_eq!(consumed, 3, "no chunk is consumed after the error");
    }

    /// Builds a file of several parse chunks whose findings depend on
    /// statements in other chunks. A timeout set in the first chunk is in
    /// effect for a concurrent build in the third, and a constraint added
    /// in the first has its index dropped in the last. An ignore directive
    /// and an open transaction end the file.
    fn several_chunks() -> String {
        let mut sql = String::from("SET lock_timeout = '2s';\n");
        sql.push_str("ALTER TABLE accounts ADD CONSTRAINT accounts_key UNIQUE (handle);\n");
        for i in 0..1200 {
            match i % 4 {
                0 => sql.push_str(&format!("ALTER TABLE orders ADD COLUMN c{i} int;\n")),
                1 => sql.push_str(&format!("CREATE TABLE t{i} (id int);\n")),
                2 => sql.push_str(&format!("CREATE INDEX i{i} ON t{} (id);\n", i - 1)),
                _ => sql.push_str(&format!("UPDATE orders SET c{} = 1;\n", i - 3)),
            }
        }
        sql.push_str("CREATE INDEX CONCURRENTLY orders_c0_idx ON orders (c0);\n");
        sql.push_str("-- pgshift:ignore drop-index-backing-constraint known\n");
        sql.push_str("DROP INDEX accounts_key;\n");
        sql.push_str("\\echo done\n");
        sql.push_str("BEGIN;\nALTER TABLE orders DROP COLUMN c4;\n");
        sql
    }

    fn as_json(diagnostics: &[Diagnostic]) -> String {
        serde_json::to_string_pretty(diagnostics).unwrap()
    }

    #[test]
    fn streaming_matches_whole_file_analysis() {
        // With a meta-command the parser gets a blanked copy of the text;
        // without one it parses the file's text itself.
        let with_meta = several_chunks();
        let without_meta = with_meta.replace("\\echo done\n", "");
        assert_ne!(with_meta, without_meta);
        for sql in [with_meta, without_meta] {
            let path = Path::new("chunks.sql");
            let options = LintOptions::default();
            let streamed = lint_text(path, &sql, &options).unwrap();
            let whole =
                AnalyzedFile::with_options(path, sql.clone(), &options.analyze_options(false))
                    .unwrap();
            let expected = lint_file(&whole, &options);
            assert_eq!(as_json(&streamed.diagnostics), as_json(&expected));
            assert!(streamed.errors.is_empty());
        }
    }

    #[test]
    fn streaming_keeps_findings_across_chunks() {
        let sql = several_chunks();
        let linted = lint_text(Path::new("chunks.sql"), &sql, &LintOptions::default()).unwrap();
        let rules_on = |line: usize| -> Vec<&str> {
            linted
                .diagnostics
                .iter()
                .filter(|d| d.line == line)
                .map(|d| d.rule.as_str())
                .collect()
        };
        assert!(rules_on(1).contains(&"lock-timeout-before-concurrent-build"));
        let drop_line = sql
            .lines()
            .position(|l| l.starts_with("DROP INDEX"))
            .unwrap()
            + 1;
        let backing = linted
            .diagnostics
            .iter()
            .find(|d| d.line == drop_line && d.rule == "drop-index-backing-constraint")
            .expect("the DROP INDEX of the constraint's index is flagged");
        assert!(backing.suppressed.is_some());
        let begin_line = sql.lines().position(|l| l == "BEGIN;").unwrap() + 1;
        assert!(rules_on(begin_line).contains(&"begin-without-commit"));
    }

    #[test]
    fn syntax_error_in_later_chunk_names_its_line() {
        let mut sql = String::new();
        for i in 0..1500 {
            sql.push_str(&format!("ALTER TABLE orders ADD COLUMN c{i} int;\n"));
        }
        sql.push_str("ALTER TABLE orders ADD COLUMN;\n");
        sql.push_str("ALTER TABLE orders ADD COLUMN last int;\n");
        let error = lint_text(Path::new("bad.sql"), &sql, &LintOptions::default()).unwrap_err();
        assert_eq!(error.line, 1501);
    }
}
