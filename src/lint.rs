//! Linting migration files: parse, analyze, run the rules.

use std::path::{Path, PathBuf};

use crate::analysis::AnalyzedFile;
use crate::diagnostics::{Diagnostic, LockSummary};
use crate::locks::PgVersion;
use crate::rules::{self, Check, Severity};

/// Rule id of the finding reported for a psql meta-command.
pub const META_COMMAND_RULE: &str = "psql-meta-command";
/// Rule id of the finding reported for `COPY ... FROM stdin` with inline data.
pub const COPY_STDIN_RULE: &str = "copy-from-stdin";

/// Settings of one lint run.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// The server version verdicts assume.
    pub pg_version: PgVersion,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            pg_version: PgVersion::new(15, 0),
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
            .any(|d| d.severity == Severity::Error)
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
        match AnalyzedFile::new(&path, text, autocommit, options.pg_version) {
            Ok(file) => report.diagnostics.extend(lint_file(&file, options)),
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

/// Runs every rule on every statement of an analyzed file.
pub fn lint_file(file: &AnalyzedFile, options: &LintOptions) -> Vec<Diagnostic> {
    let _ = options;
    let mut diagnostics = Vec::new();

    for meta in &file.parsed.meta_commands {
        diagnostics.push(Diagnostic {
            path: file.path.clone(),
            line: meta.line,
            column: meta.column,
            end_line: meta.line,
            end_column: meta.column + meta.text.trim_end().chars().count(),
            rule: META_COMMAND_RULE.to_string(),
            severity: Severity::Error,
            message: format!(
                "`{}` is a psql meta-command, not SQL; pgshift cannot run it",
                meta.text.trim()
            ),
            help: "remove the line, or do its work in SQL (SET instead of \\set; a separate \
                   migration per database instead of \\connect)"
                .to_string(),
            locks: Vec::new(),
            span: meta.span.clone(),
        });
    }

    for (statement, analysis, context) in file.statements() {
        if statement.copy_data.is_some() {
            diagnostics.push(Diagnostic::for_statement(
                file,
                statement,
                COPY_STDIN_RULE,
                Severity::Warning,
                "COPY ... FROM stdin carries inline data that only psql can send; pgshift \
                 apply rejects the file"
                    .to_string(),
                "load the rows with INSERT statements".to_string(),
                Vec::new(),
                None,
            ));
        }
        let check = Check {
            file,
            statement,
            analysis,
            context,
        };
        for rule in rules::RULES {
            if let Some(v) = (rule.check)(&check) {
                diagnostics.push(Diagnostic::for_statement(
                    file,
                    statement,
                    rule.id,
                    rule.severity,
                    v.message,
                    v.help,
                    v.locks.iter().map(LockSummary::from).collect(),
                    v.span,
                ));
            }
        }
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics
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
