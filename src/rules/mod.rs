//! Lint rules: one module per rule, each with its documentation, its check
//! and its tests.
//!
//! Rule ids name the flagged pattern in kebab-case
//! (`index-build-without-concurrently`), never the advice. Rules read lock
//! facts from [`crate::locks`] through the statement's [`Analysis`]; they do
//! not derive locks themselves.

use std::ops::Range;

use crate::analysis::{FileMode, StatementContext};
use crate::locks::{Analysis, LockEffect, PgVersion, RelationName};
use crate::sql::{MetaCommand, Statement};

pub mod docs;
pub mod versions;

mod add_column_with_rewrite;
mod attach_partition;
mod begin_without_commit;
mod cluster_table;
mod column_type_change_rewrites;
mod concurrent_build_on_corrupting_version;
mod concurrent_index_if_not_exists;
mod concurrently_in_transaction;
mod constraint_without_not_valid;
mod copy_from_stdin;
mod detach_partition_without_concurrently;
mod drop_column;
mod drop_index_backing_constraint;
mod drop_table;
mod enum_value_used_in_transaction;
mod exclusion_constraint_added;
mod identifier_over_63_bytes;
mod index_build_without_concurrently;
mod index_drop_without_concurrently;
mod key_constraint_without_using_index;
mod lock_table;
mod lock_timeout_before_concurrent_build;
mod not_null_column_without_default;
mod opaque_statement;
mod psql_include;
mod psql_meta_command;
mod refresh_materialized_view_without_concurrently;
mod reindex_without_concurrently;
mod rename_column;
mod rename_table;
mod result_type_change;
mod second_strong_lock_in_transaction;
mod set_logged_or_unlogged;
mod set_not_null_without_check;
mod statement_after_access_exclusive;
mod statement_timeout_before_concurrent_build;
mod strong_lock_without_lock_timeout;
mod transactional_statement_in_no_transaction_file;
mod truncate_table;
mod update_or_delete_without_where;
mod vacuum_full;
mod validate_after_not_valid_in_transaction;
mod view_with_select_star;

/// The severity of a finding. `Error` findings make `lint` exit with status 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    /// The severity as configuration and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses `info`, `warning` or `error`.
    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// The scope a rule checks: one statement or the whole file.
#[derive(Clone, Copy)]
pub enum Checker {
    /// One statement at a time, with its analysis and context.
    Statement(fn(&Check<'_>) -> Option<Violation>),
    /// A pass over the whole file, for findings that depend on statements
    /// after the flagged one or that are not about one statement (psql
    /// meta-commands, an unclosed `BEGIN`). The function starts a pass for
    /// one file.
    File(fn() -> Box<dyn FilePass>),
}

/// A rule's pass over one file. The linter calls [`FilePass::statement`]
/// for every statement in file order, then [`FilePass::finish`] once.
/// Parse trees are dropped as the pass moves on, so a pass keeps only the
/// facts it needs.
pub trait FilePass {
    /// Looks at the next statement and adds any findings it settles.
    fn statement(&mut self, _check: &Check<'_>, _found: &mut Vec<Finding>) {}

    /// Adds the findings that the end of the file settles.
    fn finish(&mut self, _end: &FileEnd<'_>, _found: &mut Vec<Finding>) {}
}

/// The facts a pass reads at the end of a file.
pub struct FileEnd<'a> {
    pub meta_commands: &'a [MetaCommand],
}

/// A finding of a [`FilePass`].
#[derive(Debug, Clone)]
pub struct Finding {
    /// The statement the finding is on: it is ordered with that statement's
    /// findings and underlines the statement unless the violation has its
    /// own span. `None` for a finding on the file, whose violation carries
    /// a span and which is ordered before statement findings on the same
    /// line and column.
    pub statement: Option<Place>,
    pub violation: Violation,
}

/// The position of a statement, kept after its parse tree is dropped.
#[derive(Debug, Clone)]
pub struct Place {
    /// Position of the statement in its file, counting from 0.
    pub index: usize,
    pub span: Range<usize>,
    /// 1-based line of the statement's first token.
    pub line: usize,
    /// 1-based column of the statement's first token.
    pub column: usize,
}

impl Place {
    pub fn of(statement: &Statement) -> Place {
        Place {
            index: statement.index,
            span: statement.span.clone(),
            line: statement.line,
            column: statement.column,
        }
    }
}

/// Facts about a whole file that rules read, known before its first
/// statement is analyzed.
#[derive(Debug, Clone, Copy)]
pub struct FileInfo {
    /// The server version verdicts assume.
    pub version: PgVersion,
    pub mode: FileMode,
    /// The file itself requests to run without a transaction: the
    /// `-- pgshift:no-transaction` directive or the `.autocommit` name.
    pub marked_no_transaction: bool,
}

/// A lint rule.
pub struct Rule {
    /// Kebab-case name of the flagged pattern.
    pub id: &'static str,
    /// One line saying what the rule flags.
    pub summary: &'static str,
    /// Markdown with the sections "What it flags", "Why it hurts",
    /// "Lock taken", "Safe alternative" and "Example".
    pub docs: &'static str,
    pub severity: Severity,
    pub check: Checker,
}

/// The input of a rule for one statement.
pub struct Check<'a> {
    pub file: &'a FileInfo,
    pub statement: &'a Statement,
    pub analysis: &'a Analysis,
    pub context: &'a StatementContext,
    /// The database's catalog, with `--database-url`.
    pub catalog: Option<&'a crate::lint::LintCatalog>,
}

impl Check<'_> {
    /// Returns true when the file created `relation` before this statement.
    pub fn is_new(&self, relation: &RelationName) -> bool {
        self.context.created_in_file.contains(relation)
    }

    /// The statement's locks on relations the file did not create.
    pub fn existing_locks(&self) -> Vec<LockEffect> {
        self.analysis
            .effects
            .iter()
            .filter(|e| !self.is_new(&e.relation))
            .cloned()
            .collect()
    }

    /// Returns true when the statement is an `ALTER TABLE` with a
    /// subcommand of this kind.
    pub fn has_subcommand(&self, kind: &str) -> bool {
        self.analysis.subcommands.contains(&kind)
    }

    /// The table an `ALTER TABLE` (or other single-table statement) names.
    pub fn target(&self) -> Option<&RelationName> {
        self.analysis.effects.first().map(|e| &e.relation)
    }

    /// Returns true when the statement's first table was created earlier in
    /// the file.
    pub fn target_is_new(&self) -> bool {
        self.target().is_some_and(|t| self.is_new(t))
    }
}

/// A rule's finding on one statement.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The problem, e.g. "CREATE INDEX blocks writes to orders while it
    /// builds".
    pub message: String,
    /// The fix as an imperative, e.g. "build the index with CREATE INDEX
    /// CONCURRENTLY".
    pub help: String,
    /// The locks behind the finding.
    pub locks: Vec<LockEffect>,
    /// Byte range in the file to underline; the whole statement when
    /// `None`.
    pub span: Option<Range<usize>>,
}

impl Violation {
    /// A finding that underlines the whole statement.
    pub fn new(message: String, help: impl Into<String>, locks: Vec<LockEffect>) -> Violation {
        Violation {
            message,
            help: help.into(),
            locks,
            span: None,
        }
    }
}

/// Builds the finding of a change that running code of the previous
/// release fails on: `what` says what breaks, `error` is the SQLSTATE with
/// its name. Returns `None` when the statement locks no existing relation.
pub(crate) fn contract_violation(check: &Check<'_>, what: &str, error: &str) -> Option<Violation> {
    let locks = check.existing_locks();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "{what}: running instances fail with SQLSTATE {error} until all of them are \
             replaced (lock: {})",
            describe_locks(&locks)
        ),
        "remove the old name in a later release, after no running code uses it (expand and \
         contract)",
        locks,
    ))
}

/// All rules, in the order their findings are reported for one statement.
pub static RULES: &[&Rule] = &[
    &psql_meta_command::RULE,
    &psql_include::RULE,
    &copy_from_stdin::RULE,
    &begin_without_commit::RULE,
    &index_build_without_concurrently::RULE,
    &index_drop_without_concurrently::RULE,
    &reindex_without_concurrently::RULE,
    &concurrently_in_transaction::RULE,
    &concurrent_build_on_corrupting_version::RULE,
    &concurrent_index_if_not_exists::RULE,
    &drop_index_backing_constraint::RULE,
    &constraint_without_not_valid::RULE,
    &validate_after_not_valid_in_transaction::RULE,
    &key_constraint_without_using_index::RULE,
    &exclusion_constraint_added::RULE,
    &add_column_with_rewrite::RULE,
    &not_null_column_without_default::RULE,
    &set_not_null_without_check::RULE,
    &column_type_change_rewrites::RULE,
    &drop_column::RULE,
    &drop_table::RULE,
    &rename_column::RULE,
    &rename_table::RULE,
    &truncate_table::RULE,
    &vacuum_full::RULE,
    &cluster_table::RULE,
    &refresh_materialized_view_without_concurrently::RULE,
    &set_logged_or_unlogged::RULE,
    &attach_partition::RULE,
    &detach_partition_without_concurrently::RULE,
    &lock_table::RULE,
    &enum_value_used_in_transaction::RULE,
    &update_or_delete_without_where::RULE,
    &strong_lock_without_lock_timeout::RULE,
    &second_strong_lock_in_transaction::RULE,
    &statement_after_access_exclusive::RULE,
    &lock_timeout_before_concurrent_build::RULE,
    &statement_timeout_before_concurrent_build::RULE,
    &transactional_statement_in_no_transaction_file::RULE,
    &identifier_over_63_bytes::RULE,
    &view_with_select_star::RULE,
    &result_type_change::RULE,
    &opaque_statement::RULE,
];

/// Returns the rule with the given id.
pub fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// Describes a set of locks for a message: `SHARE on orders, ACCESS
/// EXCLUSIVE on accounts`.
pub fn describe_locks(locks: &[LockEffect]) -> String {
    locks
        .iter()
        .map(|l| format!("{} on {}", l.mode, qualified(&l.relation)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Describes what a set of locks blocks: "reads and writes", "writes" or
/// "nothing".
pub fn describe_blocked(locks: &[LockEffect]) -> &'static str {
    let reads = locks.iter().any(|l| l.mode.blocks_reads());
    let writes = locks.iter().any(|l| l.mode.blocks_writes());
    match (reads, writes) {
        (true, _) => "reads and writes",
        (false, true) => "writes",
        (false, false) => "no reads or writes",
    }
}

/// A relation name as SQL would write it, schema first when known.
pub fn qualified(name: &crate::locks::RelationName) -> String {
    match &name.schema {
        Some(schema) => format!("{schema}.{}", name.name),
        None => name.name.clone(),
    }
}

/// The pass behind the two rules that report a `SET` of a timeout still in
/// effect for a later concurrent statement (`CREATE INDEX CONCURRENTLY`
/// and the other statements that cannot run in a transaction block).
///
/// A `SET` of `setting` starts a search. The search ends without a finding
/// at the next `SET` or `RESET` of the same setting, or at the first
/// statement for which `in_effect` reads the setting as off. It ends with a
/// finding on the `SET` at a concurrent statement. Each statement is looked
/// at once.
pub(crate) struct TimeoutBeforeConcurrent {
    setting: &'static str,
    in_effect: fn(&StatementContext) -> bool,
    /// Builds the violation from the line of the concurrent statement.
    violation: fn(usize) -> Violation,
    /// The `SET` whose search is running.
    pending: Option<Place>,
}

impl TimeoutBeforeConcurrent {
    pub(crate) fn new(
        setting: &'static str,
        in_effect: fn(&StatementContext) -> bool,
        violation: fn(usize) -> Violation,
    ) -> TimeoutBeforeConcurrent {
        TimeoutBeforeConcurrent {
            setting,
            in_effect,
            violation,
            pending: None,
        }
    }
}

impl FilePass for TimeoutBeforeConcurrent {
    fn statement(&mut self, check: &Check<'_>, found: &mut Vec<Finding>) {
        let sets = matches!(
            &check.statement.node,
            pg_query::NodeEnum::VariableSetStmt(s) if s.name == self.setting
        );
        if let Some(set) = self.pending.take() {
            // A later SET of the same setting is reported on its own line.
            let concurrent = check.analysis.transaction == crate::locks::TransactionUse::NotInBlock
                && check
                    .statement
                    .text
                    .to_ascii_uppercase()
                    .contains("CONCURRENTLY");
            if !sets && (self.in_effect)(check.context) {
                if concurrent {
                    found.push(Finding {
                        statement: Some(set),
                        violation: (self.violation)(check.statement.line),
                    });
                } else {
                    self.pending = Some(set);
                }
            }
        }
        // SET LOCAL ends with its transaction, and a concurrent statement
        // runs outside any transaction block, so the two never overlap.
        let local = matches!(
            &check.statement.node,
            pg_query::NodeEnum::VariableSetStmt(s) if s.is_local
        );
        if sets && !local {
            self.pending = Some(Place::of(check.statement));
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers that lint a snippet and return the findings of one rule.

    use std::path::Path;

    use crate::analysis::{AnalyzeOptions, AnalyzedFile};
    use crate::diagnostics::Diagnostic;
    use crate::locks::PgVersion;

    pub fn pg(major: u32, minor: u32) -> PgVersion {
        PgVersion::new(major, minor)
    }

    pub fn analyze_on(sql: &str, version: PgVersion, autocommit: bool) -> AnalyzedFile {
        let options = AnalyzeOptions {
            no_wrap: autocommit,
            ..AnalyzeOptions::new(version)
        };
        AnalyzedFile::with_options(Path::new("test.sql"), sql.to_string(), &options)
            .expect("test SQL parses")
    }

    fn lines(rule: &str, file: &AnalyzedFile) -> Vec<usize> {
        crate::lint::lint_file(file, &crate::lint::LintOptions::default())
            .into_iter()
            .filter(|d| d.rule == rule)
            .map(|d| d.line)
            .collect()
    }

    /// Lints `sql` as pgshift would run it (consecutive statements wrapped
    /// in one transaction) on PostgreSQL 15 and returns the 1-based lines
    /// that `rule` flags.
    pub fn flagged_lines(rule: &str, sql: &str) -> Vec<usize> {
        flagged_lines_on(rule, sql, pg(15, 0))
    }

    /// Like [`flagged_lines`] for a given server version.
    pub fn flagged_lines_on(rule: &str, sql: &str, version: PgVersion) -> Vec<usize> {
        lines(rule, &analyze_on(sql, version, false))
    }

    /// Like [`flagged_lines`], with every statement outside `BEGIN` ...
    /// `COMMIT` in its own transaction.
    pub fn flagged_autocommit(rule: &str, sql: &str) -> Vec<usize> {
        flagged_autocommit_on(rule, sql, pg(15, 0))
    }

    pub fn flagged_autocommit_on(rule: &str, sql: &str, version: PgVersion) -> Vec<usize> {
        lines(rule, &analyze_on(sql, version, true))
    }

    /// All findings on `sql` (wrapped mode) for a given server version.
    pub fn diagnostics_on(sql: &str, version: PgVersion) -> Vec<Diagnostic> {
        let file = analyze_on(sql, version, false);
        crate::lint::lint_file(&file, &crate::lint::LintOptions::default())
    }
}
