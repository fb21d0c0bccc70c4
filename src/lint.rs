//! Linting migration files: parse, analyze, run the rules, apply
//! suppressions and the configured rule settings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::analysis::{AnalyzeOptions, AnalyzedFile};
use crate::diagnostics::{Diagnostic, LockSummary, Suppression};
use crate::locks::{ColumnTypes, PgVersion};
use crate::rules::{self, Check, Checker, Severity};

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
    /// The configuration whose `exclude` patterns skip files.
    pub config: Option<crate::config::Config>,
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
            config: None,
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
/// files, skipping `.down.sql`. Files are linted in sorted order.
pub fn lint_paths(paths: &[PathBuf], options: &LintOptions) -> LintReport {
    let mut report = LintReport::default();
    let mut files = Vec::new();
    for path in paths {
        collect_sql_files(path, &mut files, &mut report.errors);
    }
    for path in files {
        if options.config.as_ref().is_some_and(|c| c.excludes(&path)) {
            continue;
        }
        report.files += 1;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                report.errors.push(InputError {
                    path,
                    line: None,
                    column: None,
                    message: format!("cannot read file: {e}"),
                });
                continue;
            }
        };
        let autocommit = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".autocommit."));
        match AnalyzedFile::with_options(&path, text, &options.analyze_options(autocommit)) {
            Ok(file) => {
                for directive in &file.parsed.directives {
                    if !is_known_directive(&directive.text) {
                        report.errors.push(InputError {
                            path: path.clone(),
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
                }
                for directive in &file.parsed.directives {
                    if let Err(message) = crate::analysis::parse_backfill_directive(&directive.text)
                    {
                        report.errors.push(InputError {
                            path: path.clone(),
                            line: Some(directive.line),
                            column: Some(1),
                            message,
                        });
                    }
                }
                for (line, id) in unknown_ignored_rules(&file) {
                    report.errors.push(InputError {
                        path: path.clone(),
                        line: Some(line),
                        column: Some(1),
                        message: format!(
                            "pgshift:ignore names `{id}`, which is not a rule; `pgshift rules` \
                             lists them"
                        ),
                    });
                }
                report.diagnostics.extend(lint_file(&file, options))
            }
            Err(e) => report.errors.push(InputError {
                path,
                line: Some(e.line),
                column: Some(e.column),
                message: e.message,
            }),
        }
    }
    report
}

/// Runs every enabled rule on an analyzed file and marks the findings that
/// a `-- pgshift:ignore` comment silences. Findings come out sorted by
/// position.
pub fn lint_file(file: &AnalyzedFile, options: &LintOptions) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let enabled: Vec<&rules::Rule> = rules::RULES
        .iter()
        .copied()
        .filter(|r| !options.disabled.iter().any(|d| d == r.id))
        .collect();
    let severity = |rule: &rules::Rule| {
        options
            .severities
            .get(rule.id)
            .copied()
            .unwrap_or(rule.severity)
    };

    let line_index = crate::sql::LineIndex::new(&file.text);
    for rule in &enabled {
        if let Checker::File(check) = rule.check {
            for v in check(file) {
                let span = v.span.clone().unwrap_or(0..0);
                diagnostics.push(Diagnostic::for_span(
                    file,
                    &line_index,
                    rule.id,
                    severity(rule),
                    v,
                    span,
                ));
            }
        }
    }

    for (statement, analysis, context) in file.statements() {
        let check = Check {
            file,
            statement,
            analysis,
            context,
        };
        for rule in &enabled {
            let Checker::Statement(run) = rule.check else {
                continue;
            };
            if let Some(v) = run(&check) {
                diagnostics.push(Diagnostic::for_statement(
                    file,
                    statement,
                    rule.id,
                    severity(rule),
                    v.message,
                    v.help,
                    v.locks.iter().map(LockSummary::from).collect(),
                    v.span,
                ));
            }
        }
    }
    apply_suppressions(file, &mut diagnostics);
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics
}

/// A parsed `-- pgshift:ignore` or `-- pgshift:ignore-file` comment.
struct IgnoreDirective {
    rules: Vec<String>,
    reason: Option<String>,
    /// Lines the directive covers, inclusive; the whole file when `None`.
    lines: Option<(usize, usize)>,
    directive_line: usize,
}

fn parse_ignore_directives(file: &AnalyzedFile) -> Vec<IgnoreDirective> {
    let mut directives = Vec::new();
    for directive in &file.parsed.directives {
        let mut words = directive.text.splitn(3, char::is_whitespace);
        let kind = words.next().unwrap_or("");
        let whole_file = match kind {
            IGNORE_DIRECTIVE => false,
            IGNORE_FILE_DIRECTIVE => true,
            _ => continue,
        };
        let rules: Vec<String> = words
            .next()
            .unwrap_or("")
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        let reason = words
            .next()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        let lines = if whole_file {
            None
        } else {
            // The next statement or meta-command that starts after the
            // comment's line.
            let statement = file
                .parsed
                .statements
                .iter()
                .find(|s| s.line > directive.line)
                .map(|s| (s.line, s.end_line));
            let meta = file
                .parsed
                .meta_commands
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
        directives.push(IgnoreDirective {
            rules,
            reason,
            lines,
            directive_line: directive.line,
        });
    }
    directives
}

fn apply_suppressions(file: &AnalyzedFile, diagnostics: &mut [Diagnostic]) {
    let directives = parse_ignore_directives(file);
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
pub fn unknown_ignored_rules(file: &AnalyzedFile) -> Vec<(usize, String)> {
    parse_ignore_directives(file)
        .into_iter()
        .flat_map(|d| {
            let line = d.directive_line;
            d.rules.into_iter().map(move |r| (line, r))
        })
        .filter(|(_, r)| r != "all" && rules::find(r).is_none())
        .collect()
}

fn collect_sql_files(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    if !path.is_dir() {
        errors.push(InputError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: "no such file or folder".to_string(),
        });
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
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
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if entry.is_dir() {
            collect_sql_files(&entry, out, errors);
        } else if name.ends_with(".sql") && !name.ends_with(".down.sql") {
            out.push(entry);
        }
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
