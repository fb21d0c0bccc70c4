//! `pgshift lint` on the bundled example reports every plain index build
//! with its file, line and lock.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Finds `CREATE [UNIQUE] INDEX` statements without CONCURRENTLY by reading
/// the files line by line, independently of pgshift's parser, and skips
/// indexes on tables that the same file creates.
fn plain_index_builds(folder: &Path) -> BTreeSet<(String, usize, String)> {
    let mut found = BTreeSet::new();
    for version in std::fs::read_dir(folder).unwrap() {
        for file in std::fs::read_dir(version.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let created: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("CREATE TABLE "))
                .map(|rest| rest.split_whitespace().next().unwrap().to_string())
                .collect();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let is_build =
                    line.starts_with("CREATE INDEX ") || line.starts_with("CREATE UNIQUE INDEX ");
                if !is_build || line.contains("CONCURRENTLY") {
                    continue;
                }
                // The table follows ON, on this line or the next one.
                let statement = format!("{} {}", line, lines.get(i + 1).unwrap_or(&""));
                let words: Vec<&str> = statement.split_whitespace().collect();
                let on = words.iter().position(|w| *w == "ON").unwrap();
                let table = words[on + 1].to_string();
                if !created.contains(&table) {
                    found.insert((path.display().to_string(), i + 1, table));
                }
            }
        }
    }
    found
}

#[test]
fn lint_reports_every_plain_index_build() {
    let folder = common::repo_path("plans/oauth");
    let expected = plain_index_builds(&folder);
    assert!(
        expected.len() >= 5,
        "the example has plain index builds: {expected:?}"
    );

    let output = Command::new(common::pgshift_bin())
        .args(["lint", "--format", "json"])
        .arg(&folder)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "error-level findings exit 1");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let mut reported = BTreeSet::new();
    for d in report["diagnostics"].as_array().unwrap() {
        if d["rule"] != "index-build-without-concurrently" {
            continue;
        }
        let lock = &d["locks"][0];
        assert_eq!(lock["mode"], "SHARE", "{d}");
        assert_eq!(lock["blocks_writes"], true, "{d}");
        assert_eq!(lock["blocks_reads"], false, "{d}");
        reported.insert((
            d["path"].as_str().unwrap().to_string(),
            d["line"].as_u64().unwrap() as usize,
            lock["relation"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(reported, expected);
}

#[test]
fn lint_human_output_names_file_line_and_lock() {
    let file = common::repo_path("plans/oauth/2.0/V13__token_indexes.sql");
    let output = Command::new(common::pgshift_bin())
        .arg("lint")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("V13__token_indexes.sql:4:1\n"), "{text}");
    assert!(text.contains("lock: SHARE on access_tokens"), "{text}");
    assert!(text.contains("blocks writes"), "{text}");
    assert!(text.contains("assuming PostgreSQL 15.0"), "{text}");
}

#[test]
fn lint_pg_version_is_reported() {
    let file = common::repo_path("plans/oauth/2.0");
    let output = Command::new(common::pgshift_bin())
        .args(["lint", "--format", "json", "--pg-version", "11"])
        .arg(&file)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["pg_version"], "11.0");
}

#[test]
fn lint_unreadable_input_exits_2() {
    let output = Command::new(common::pgshift_bin())
        .args(["lint", "no/such/folder"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("no/such/folder"), "{text}");
}

#[test]
fn lint_syntax_error_exits_2_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.sql");
    std::fs::write(&path, "SELECT 1;\nALTER TABLE t ADD COLUMN;\n").unwrap();
    let output = Command::new(common::pgshift_bin())
        .arg("lint")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("bad.sql:2:"), "{text}");
}

#[test]
fn lint_misspelt_directive_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.sql");
    std::fs::write(
        &path,
        "-- pgshift:no-transction\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n",
    )
    .unwrap();
    let output = Command::new(common::pgshift_bin())
        .arg("lint")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("typo.sql:1:1"), "{text}");
    assert!(text.contains("pgshift:no-transction"), "{text}");
}
