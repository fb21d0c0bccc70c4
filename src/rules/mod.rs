//! Lint rules: one module per rule, each with its documentation, its check
//! and its tests.
//!
//! Rule ids name the flagged pattern in kebab-case
//! (`index-build-without-concurrently`), never the advice. Rules read lock
//! facts from [`crate::locks`] through the statement's [`Analysis`]; they do
//! not derive locks themselves.

use std::ops::Range;

use crate::analysis::{AnalyzedFile, StatementContext};
use crate::locks::{Analysis, LockEffect};
use crate::sql::Statement;

mod concurrently_in_transaction;
mod index_build_without_concurrently;
mod index_drop_without_concurrently;

/// How bad a finding is. `Error` findings make `lint` exit with status 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
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
    pub check: fn(&Check<'_>) -> Option<Violation>,
}

/// What a rule sees of one statement.
pub struct Check<'a> {
    pub file: &'a AnalyzedFile,
    pub statement: &'a Statement,
    pub analysis: &'a Analysis,
    pub context: &'a StatementContext,
}

/// A rule's finding on one statement.
#[derive(Debug, Clone)]
pub struct Violation {
    /// What is wrong, e.g. "CREATE INDEX blocks writes to orders while it
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

/// All rules, in the order their findings are reported for one statement.
pub static RULES: &[&Rule] = &[
    &index_build_without_concurrently::RULE,
    &index_drop_without_concurrently::RULE,
    &concurrently_in_transaction::RULE,
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

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers that lint a snippet and return the findings of one rule.

    use std::path::Path;

    use crate::analysis::AnalyzedFile;
    use crate::locks::PgVersion;

    /// Lints `sql` as PostgreSQL 15 would run it and returns the 1-based
    /// lines that `rule` flags.
    pub fn flagged_lines(rule: &str, sql: &str) -> Vec<usize> {
        flagged_lines_on(rule, sql, PgVersion::new(15, 0))
    }

    /// Like [`flagged_lines`] for a given server version.
    pub fn flagged_lines_on(rule: &str, sql: &str, version: PgVersion) -> Vec<usize> {
        let file = AnalyzedFile::new(Path::new("test.sql"), sql.to_string(), false, version)
            .expect("test SQL parses");
        crate::lint::lint_file(&file, &crate::lint::LintOptions::default())
            .into_iter()
            .filter(|d| d.rule == rule)
            .map(|d| d.line)
            .collect()
    }
}
