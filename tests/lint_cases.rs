//! Every lint verdict of the real-world cases in `tests/cases/`, asserted
//! line by line.
//!
//! `cases.json` gives each case's verdicts per line in prose; the table
//! below maps each of them to the finding pgshift must report. A case line
//! without a table entry fails the test, so a new case cannot be skipped.
//!
//! The cases assume a runner that does not wrap a file in a transaction
//! unless the file says `BEGIN` (one case says so outright, and two more
//! name wrapping as a variant), so they are linted with `no_wrap`.
//! The variants with wrapping that the cases' notes describe have their
//! own tests at the end.
//!
//! NO-FLAG lines: the only finding allowed is the lock_timeout advisory
//! (`strong-lock-without-lock-timeout`), which the cases call appropriate
//! for any statement that takes a lock blocking writes without a
//! lock_timeout in effect. The table says for each such line whether the
//! advisory is expected, and the test checks that it is reported exactly
//! there. Lines of both kinds may also carry the `result-type-change`
//! compatibility note, which is information rather than a flag.

mod common;

use std::path::Path;

use pgshift::analysis::{AnalyzeOptions, AnalyzedFile};
use pgshift::diagnostics::Diagnostic;
use pgshift::lint::{lint_file, LintOptions};
use pgshift::locks::PgVersion;
use pgshift::rules::Severity;

const ADVISORY: &str = "strong-lock-without-lock-timeout";

/// The compatibility note on statements that change a table's row type.
/// It is information for application owners, not a flag, so NO-FLAG lines
/// may carry it. The select-star case, which expects it, has its own test.
const COMPAT_NOTE: &str = "result-type-change";

/// What pgshift must report on one line of a case.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The rule reports the line as an error.
    Error(&'static str),
    /// The rule reports the line as a warning.
    Warning(&'static str),
    /// The rule reports the line as information.
    Info(&'static str),
    /// Nothing is reported.
    Nothing,
    /// Only the lock_timeout advisory is reported.
    OnlyAdvisory,
    /// The line is a statement of a parse case; the verdict is about
    /// splitting, checked by `parse_cases_split_as_expected`.
    Statement,
}

use Expect::*;

const TABLE: &[(&str, usize, Expect)] = &[
    (
        "plain-create-index-rewrite",
        2,
        Error("index-build-without-concurrently"),
    ),
    (
        "plain-create-index-rewrite",
        3,
        Error("index-build-without-concurrently"),
    ),
    (
        "plain-create-index-rewrite",
        4,
        Error("index-drop-without-concurrently"),
    ),
    (
        "add-column-rewrite-forms",
        1,
        Error("add-column-with-rewrite"),
    ),
    (
        "add-column-rewrite-forms",
        2,
        Error("add-column-with-rewrite"),
    ),
    (
        "add-column-rewrite-forms",
        3,
        Error("add-column-with-rewrite"),
    ),
    (
        "add-column-rewrite-forms",
        4,
        Error("add-column-with-rewrite"),
    ),
    (
        "add-column-rewrite-forms",
        5,
        Error("add-column-with-rewrite"),
    ),
    (
        "add-column-rewrite-forms",
        6,
        Error("add-column-with-rewrite"),
    ),
    ("add-column-nonvolatile-default-safe", 1, OnlyAdvisory),
    ("add-column-nonvolatile-default-safe", 2, OnlyAdvisory),
    ("add-column-nonvolatile-default-safe", 3, OnlyAdvisory),
    ("add-column-nonvolatile-default-safe", 4, OnlyAdvisory),
    ("add-column-nonvolatile-default-safe", 5, OnlyAdvisory),
    (
        "set-not-null-and-required-column",
        1,
        Error("set-not-null-without-check"),
    ),
    ("set-not-null-and-required-column", 2, OnlyAdvisory),
    ("set-not-null-and-required-column", 3, Nothing),
    (
        "set-not-null-and-required-column",
        4,
        Error("set-not-null-without-check"),
    ),
    (
        "set-not-null-and-required-column",
        5,
        Error("not-null-column-without-default"),
    ),
    ("not-valid-validate-same-transaction", 2, OnlyAdvisory),
    (
        "not-valid-validate-same-transaction",
        3,
        Error("validate-after-not-valid-in-transaction"),
    ),
    ("not-valid-validate-same-transaction", 4, OnlyAdvisory),
    (
        "not-valid-validate-same-transaction",
        5,
        Error("validate-after-not-valid-in-transaction"),
    ),
    ("add-foreign-key-locks-both-tables", 1, Nothing),
    (
        "add-foreign-key-locks-both-tables",
        2,
        Error("constraint-without-not-valid"),
    ),
    ("fk-in-create-table-referenced-lock", 2, Nothing),
    ("fk-in-create-table-referenced-lock", 7, Nothing),
    ("fk-in-create-table-referenced-lock", 8, Nothing),
    ("fk-in-create-table-referenced-lock", 9, Nothing),
    ("index-on-table-created-in-same-txn", 2, Nothing),
    ("index-on-table-created-in-same-txn", 7, Nothing),
    ("index-on-table-created-in-same-txn", 8, Nothing),
    ("rename-column-running-app", 1, OnlyAdvisory),
    ("rename-column-running-app", 2, Warning("rename-column")),
    ("rename-column-running-app", 3, Warning("rename-table")),
    // Line 1 also carries the result-type-change note, which
    // `column_change_gets_compat_note` checks.
    ("select-star-column-change", 1, OnlyAdvisory),
    ("select-star-column-change", 2, Warning("drop-column")),
    ("cic-inside-explicit-transaction", 2, OnlyAdvisory),
    (
        "cic-inside-explicit-transaction",
        3,
        Error("concurrently-in-transaction"),
    ),
    ("multi-statement-implicit-transaction", 2, Nothing),
    ("multi-statement-implicit-transaction", 3, Nothing),
    (
        "cic-invalid-index-rerun",
        2,
        Warning("concurrent-index-if-not-exists"),
    ),
    (
        "cic-lock-timeout-snapshot-wait",
        2,
        Info("lock-timeout-before-concurrent-build"),
    ),
    ("cic-lock-timeout-snapshot-wait", 3, Nothing),
    (
        "statement-timeout-kills-cic",
        2,
        Info("statement-timeout-before-concurrent-build"),
    ),
    ("statement-timeout-kills-cic", 3, Nothing),
    (
        "lock-queue-needs-lock-timeout",
        1,
        Warning("strong-lock-without-lock-timeout"),
    ),
    (
        "advisory-lock-pgbouncer-transaction-pooling",
        1,
        OnlyAdvisory,
    ),
    (
        "reindex-concurrently-rewrite",
        1,
        Error("reindex-without-concurrently"),
    ),
    (
        "reindex-concurrently-rewrite",
        2,
        Error("reindex-without-concurrently"),
    ),
    (
        "unique-constraint-using-index",
        1,
        Error("key-constraint-without-using-index"),
    ),
    ("unique-constraint-using-index", 2, Nothing),
    ("unique-constraint-using-index", 3, OnlyAdvisory),
    ("unique-constraint-using-index", 4, OnlyAdvisory),
    ("dollar-quoted-bodies-splitter", 1, Nothing),
    (
        "dollar-quoted-bodies-splitter",
        10,
        Info("opaque-statement"),
    ),
    ("dollar-quoted-bodies-splitter", 18, OnlyAdvisory),
    ("copy-from-stdin-in-migration", 1, Statement),
    (
        "copy-from-stdin-in-migration",
        2,
        Warning("copy-from-stdin"),
    ),
    ("copy-from-stdin-in-migration", 6, Statement),
    ("psql-meta-commands", 1, Error("psql-meta-command")),
    ("psql-meta-commands", 2, Error("psql-meta-command")),
    ("psql-meta-commands", 3, Nothing),
    ("psql-meta-commands", 4, Nothing),
    ("psql-meta-commands", 5, Warning("psql-include")),
    ("psql-meta-commands", 6, Nothing),
    (
        "non-transactional-partial-failure",
        2,
        Warning("transactional-statement-in-no-transaction-file"),
    ),
    ("non-transactional-partial-failure", 3, Nothing),
    (
        "non-transactional-partial-failure",
        4,
        Warning("transactional-statement-in-no-transaction-file"),
    ),
];

fn cases() -> Vec<serde_json::Value> {
    let path = common::repo_path("tests/cases/cases.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn case_text(id: &str) -> String {
    let path = common::repo_path(&format!("tests/cases/{id}/input.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lint_text(text: &str, version: PgVersion, no_wrap: bool) -> Vec<Diagnostic> {
    let options = AnalyzeOptions {
        no_wrap,
        ..AnalyzeOptions::new(version)
    };
    let file = AnalyzedFile::with_options(Path::new("input.sql"), text.to_string(), &options)
        .expect("case input parses");
    lint_file(&file, &LintOptions::default())
}

fn on_line(found: &[Diagnostic], line: usize) -> Vec<(String, Severity)> {
    found
        .iter()
        .filter(|d| d.line == line && d.suppressed.is_none())
        .filter(|d| !(d.rule == COMPAT_NOTE && d.severity == Severity::Info))
        .map(|d| (d.rule.clone(), d.severity))
        .collect()
}

/// Checks one expectation; returns a description of the failure.
fn check(found: &[Diagnostic], line: usize, expect: Expect) -> Result<(), String> {
    let here = on_line(found, line);
    let has =
        |rule: &str, severity: Severity| here.iter().any(|(r, s)| r == rule && *s == severity);
    match expect {
        Error(rule) if !has(rule, Severity::Error) => Err(format!("expected error {rule}")),
        Warning(rule) if !has(rule, Severity::Warning) => Err(format!("expected warning {rule}")),
        Info(rule) if !has(rule, Severity::Info) => Err(format!("expected info {rule}")),
        Info(rule) if here.iter().any(|(r, _)| r != rule) => {
            Err(format!("expected only info {rule}"))
        }
        Nothing if !here.is_empty() => Err("expected no finding".to_string()),
        OnlyAdvisory if here.len() != 1 || here[0].0 != ADVISORY => {
            Err(format!("expected only {ADVISORY}"))
        }
        _ => Ok(()),
    }
    .map_err(|message| format!("{message}, found {here:?}"))
}

#[test]
fn every_case_line_has_an_expectation() {
    let mut missing = Vec::new();
    for case in cases() {
        let id = case["id"].as_str().unwrap();
        for e in case["expectations"].as_array().unwrap() {
            let line = e["line"].as_u64().unwrap() as usize;
            if !TABLE.iter().any(|(c, l, _)| *c == id && *l == line) {
                missing.push(format!("{id}:{line}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "case lines without an expectation: {missing:?}"
    );
}

#[test]
fn case_lines_match_their_text() {
    for case in cases() {
        let id = case["id"].as_str().unwrap();
        let text = case_text(id);
        let lines: Vec<&str> = text.lines().collect();
        for e in case["expectations"].as_array().unwrap() {
            let line = e["line"].as_u64().unwrap() as usize;
            let wanted = e["match"].as_str().unwrap();
            assert!(
                lines[line - 1].contains(wanted),
                "{id}:{line}: `{}` does not contain `{wanted}`",
                lines[line - 1]
            );
        }
    }
}

#[test]
fn every_case_verdict_holds() {
    let mut failures = Vec::new();
    for case in cases() {
        let id = case["id"].as_str().unwrap();
        let found = lint_text(&case_text(id), PgVersion::new(15, 0), true);
        for (_, line, expect) in TABLE.iter().filter(|(c, _, _)| *c == id) {
            if let Err(message) = check(&found, *line, *expect) {
                failures.push(format!("{id}:{line}: {message}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn verdicts_do_not_depend_on_version_where_cases_say_so() {
    let id = "set-not-null-and-required-column";
    for version in [
        PgVersion::new(11, 0),
        PgVersion::new(12, 0),
        PgVersion::new(17, 0),
    ] {
        let found = lint_text(&case_text(id), version, true);
        for (_, line, expect) in TABLE.iter().filter(|(c, _, _)| *c == id) {
            if let Err(message) = check(&found, *line, *expect) {
                panic!("{id}:{line} on {version}: {message}");
            }
        }
    }
}

#[test]
fn foreign_key_reports_both_tables() {
    let found = lint_text(
        &case_text("add-foreign-key-locks-both-tables"),
        PgVersion::new(15, 0),
        true,
    );
    let d = found
        .iter()
        .find(|d| d.rule == "constraint-without-not-valid")
        .unwrap();
    let locks: Vec<(&str, &str)> = d
        .locks
        .iter()
        .map(|l| (l.relation.as_str(), l.mode.as_str()))
        .collect();
    assert!(
        locks.contains(&("orders", "SHARE ROW EXCLUSIVE")),
        "{locks:?}"
    );
    assert!(
        locks.contains(&("accounts", "SHARE ROW EXCLUSIVE")),
        "{locks:?}"
    );
    assert!(d.message.contains("accounts"), "{}", d.message);
}

#[test]
fn reindex_reports_share_on_table() {
    let found = lint_text(
        &case_text("reindex-concurrently-rewrite"),
        PgVersion::new(15, 0),
        true,
    );
    let table = found
        .iter()
        .find(|d| d.line == 2 && d.rule == "reindex-without-concurrently");
    let lock = &table.unwrap().locks[0];
    assert_eq!(
        (lock.relation.as_str(), lock.mode.as_str()),
        ("orders", "SHARE")
    );
}

#[test]
fn parse_cases_split_as_expected() {
    let statements = |id: &str| {
        let file = AnalyzedFile::new(
            Path::new("input.sql"),
            case_text(id),
            true,
            PgVersion::new(15, 0),
        )
        .unwrap();
        file.parsed
            .statements
            .iter()
            .map(|s| s.line)
            .collect::<Vec<_>>()
    };
    assert_eq!(statements("dollar-quoted-bodies-splitter"), vec![1, 10, 18]);
    assert_eq!(statements("copy-from-stdin-in-migration"), vec![1, 2, 6]);
    assert_eq!(statements("psql-meta-commands"), vec![3, 4, 6]);
}

#[test]
fn function_bodies_are_not_linted() {
    let found = lint_text(
        &case_text("dollar-quoted-bodies-splitter"),
        PgVersion::new(15, 0),
        true,
    );
    let inside: Vec<_> = found
        .iter()
        .filter(|d| (2..=8).contains(&d.line) || (11..=16).contains(&d.line))
        .collect();
    assert!(inside.is_empty(), "{inside:?}");
}

// Variants the cases' notes describe.

#[test]
fn add_column_defaults_rewrite_before_11() {
    let text = case_text("add-column-nonvolatile-default-safe");
    let found = lint_text(&text, PgVersion::new(10, 0), true);
    let lines: Vec<usize> = found
        .iter()
        .filter(|d| d.rule == "add-column-with-rewrite")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, vec![1, 2, 3, 4]);
    let same = lint_text(&text, PgVersion::parse("11").unwrap(), true);
    let dot_zero = lint_text(&text, PgVersion::parse("11.0").unwrap(), true);
    let rules = |d: &[Diagnostic]| {
        d.iter()
            .map(|d| (d.line, d.rule.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(rules(&same), rules(&dot_zero));
    assert!(!rules(&same)
        .iter()
        .any(|(_, r)| r == "add-column-with-rewrite"));
}

#[test]
fn validate_flagged_when_runner_wraps_the_file() {
    let text = case_text("not-valid-validate-same-transaction")
        .replace("BEGIN;\n", "")
        .replace("COMMIT;\n", "");
    let found = lint_text(&text, PgVersion::new(15, 0), false);
    let lines: Vec<usize> = found
        .iter()
        .filter(|d| d.rule == "validate-after-not-valid-in-transaction")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, vec![2, 4]);
}

#[test]
fn validate_in_later_transaction_not_flagged() {
    let text = "BEGIN;\nALTER TABLE orders ADD CONSTRAINT c CHECK (qty > 0) NOT VALID;\nCOMMIT;\n\
                BEGIN;\nALTER TABLE orders VALIDATE CONSTRAINT c;\nCOMMIT;\n";
    let found = lint_text(text, PgVersion::new(15, 0), false);
    assert!(!found
        .iter()
        .any(|d| d.rule == "validate-after-not-valid-in-transaction"));
}

#[test]
fn fk_in_create_table_without_timeout_flags_only_the_referencing_table() {
    let text = case_text("fk-in-create-table-referenced-lock").replacen(
        "SET lock_timeout = '2s';\n",
        "",
        1,
    );
    let found = lint_text(&text, PgVersion::new(15, 0), true);
    let all: Vec<(usize, &str)> = found.iter().map(|d| (d.line, d.rule.as_str())).collect();
    assert_eq!(
        all,
        vec![(1, ADVISORY)],
        "refunds is on line 1 after removing the SET"
    );
    assert_eq!(found[0].locks[0].relation, "orders");
    assert_eq!(found[0].locks[0].mode, "SHARE ROW EXCLUSIVE");
}

#[test]
fn index_on_table_from_earlier_migration_is_flagged() {
    let text = "CREATE INDEX webhooks_account_id_idx ON webhooks (account_id);\n\
                CREATE UNIQUE INDEX webhooks_account_url_key ON webhooks (account_id, url);\n";
    let found = lint_text(text, PgVersion::new(15, 0), true);
    let lines: Vec<usize> = found
        .iter()
        .filter(|d| d.rule == "index-build-without-concurrently")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, vec![1, 2]);
}

#[test]
fn lone_concurrent_build_not_flagged() {
    let text = "CREATE INDEX CONCURRENTLY accounts_referrer_id_idx ON accounts (referrer_id);\n";
    for no_wrap in [true, false] {
        assert!(lint_text(text, PgVersion::new(15, 0), no_wrap).is_empty());
    }
}

#[test]
fn column_change_gets_compat_note() {
    let found = lint_text(
        &case_text("select-star-column-change"),
        PgVersion::new(15, 0),
        true,
    );
    let notes: Vec<(usize, Severity)> = found
        .iter()
        .filter(|d| d.rule == COMPAT_NOTE)
        .map(|d| (d.line, d.severity))
        .collect();
    assert_eq!(notes, vec![(1, Severity::Info)]);
    let note = found.iter().find(|d| d.rule == COMPAT_NOTE).unwrap();
    assert!(
        note.message
            .contains("cached plan must not change result type"),
        "{}",
        note.message
    );
}
