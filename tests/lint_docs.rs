//! `docs/rules.md` is generated from the rule modules and must match them.
//!
//! Run with `PGSHIFT_REGENERATE_DOCS=1` to rewrite the file.

mod common;

use std::process::Command;

#[test]
fn rules_md_is_current() {
    let output = Command::new(common::pgshift_bin())
        .args(["rules", "--markdown"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    let path = common::repo_path("docs/rules.md");
    if std::env::var_os("PGSHIFT_REGENERATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/rules.md is stale; regenerate it with \
         PGSHIFT_REGENERATE_DOCS=1 cargo test --test lint_docs"
    );
}

#[test]
fn every_rule_documents_every_section() {
    for rule in pgshift::rules::RULES {
        for section in [
            "## What it flags",
            "## Why it hurts",
            "## Lock taken",
            "## Safe alternative",
            "## Example",
        ] {
            assert!(rule.docs.contains(section), "{} lacks {section}", rule.id);
        }
        let kebab = rule
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        assert!(kebab, "{} is not kebab-case", rule.id);
    }
}

#[test]
fn rule_ids_are_unique() {
    let mut ids: Vec<&str> = pgshift::rules::RULES.iter().map(|r| r.id).collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[test]
fn explain_prints_rule_docs() {
    let output = Command::new(common::pgshift_bin())
        .args(["explain", "set-not-null-without-check"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("# set-not-null-without-check"), "{text}");
    assert!(text.contains("### Lock taken"), "{text}");
    assert!(text.contains("CHECK (col IS NOT NULL)"), "{text}");
}

#[test]
fn explain_unknown_rule_exits_2() {
    let output = Command::new(common::pgshift_bin())
        .args(["explain", "no-such-rule"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(text.contains("no-such-rule"), "{text}");
}

#[test]
fn rules_lists_every_rule() {
    let output = Command::new(common::pgshift_bin())
        .arg("rules")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    for rule in pgshift::rules::RULES {
        assert!(text.contains(rule.id), "{} missing", rule.id);
    }
}

/// Returns the SQL of the first fenced `sql` block of a rule's docs.
fn example_sql(docs: &str) -> &str {
    let start = docs.find("```sql\n").expect("docs have an sql example") + "```sql\n".len();
    let end = docs[start..]
        .find("```")
        .expect("the sql example is closed")
        + start;
    &docs[start..end]
}

#[test]
fn finding_texts_are_single_spaced() {
    use pgshift::analysis::{AnalyzeOptions, AnalyzedFile};
    use pgshift::lint::{lint_file, LintOptions};
    use pgshift::locks::PgVersion;

    let mut bad = Vec::new();
    let mut findings = 0;
    for rule in pgshift::rules::RULES {
        let sql = example_sql(rule.docs);
        let options = AnalyzeOptions::new(PgVersion::new(15, 0));
        let Ok(file) = AnalyzedFile::with_options(
            std::path::Path::new("example.sql"),
            sql.to_string(),
            &options,
        ) else {
            continue;
        };
        for found in lint_file(&file, &LintOptions::default()) {
            findings += 1;
            for text in [&found.message, &found.help] {
                if text.contains("  ") || text.contains('\n') {
                    bad.push(format!("{}: {text:?}", found.rule));
                }
            }
        }
    }
    assert!(
        findings > pgshift::rules::RULES.len(),
        "{findings} findings"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
