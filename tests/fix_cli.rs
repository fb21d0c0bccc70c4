//! `pgshift fix` on the command line: diff, in-place and folder output,
//! and the notes about rewrites that need a database.

mod common;

use std::process::Command;

const INPUT: &str = "-- add a lookup index\nCREATE INDEX items_sku_idx ON items (sku);\nDROP INDEX items_old_idx;\n";

fn fix(args: &[&str]) -> std::process::Output {
    Command::new(common::pgshift_bin())
        .arg("fix")
        .args(args)
        .output()
        .expect("pgshift runs")
}

#[test]
fn diff_prints_unified_diff_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("V1__items.sql");
    std::fs::write(&path, INPUT).unwrap();
    let out = fix(&["--diff", path.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("--- a/"), "{stdout}");
    assert!(
        stdout.contains("-CREATE INDEX items_sku_idx ON items (sku);"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+CREATE INDEX CONCURRENTLY items_sku_idx ON items (sku);"),
        "{stdout}"
    );
    assert!(stdout.contains("+-- pgshift:no-transaction"), "{stdout}");
    // The file is not touched.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), INPUT);
}

#[test]
fn without_database_notes_unchecked_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("V1__items.sql");
    std::fs::write(&path, INPUT).unwrap();
    let out = fix(&["--diff", path.to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("V1__items.sql:3: unchecked drop-index-concurrently"),
        "{stderr}"
    );
    assert!(stderr.contains("--database-url"), "{stderr}");
    assert!(
        stderr.contains("V1__items.sql:2: unchecked create-index-concurrently"),
        "{stderr}"
    );
}

#[test]
fn table_from_earlier_file_needs_no_note() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V1__items.sql"),
        "CREATE TABLE items (id int, sku text);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("V2__sku.sql"),
        "CREATE INDEX items_sku_idx ON items (sku);\n",
    )
    .unwrap();
    let out = fix(&["--diff", dir.path().to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("unchecked"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("CREATE INDEX CONCURRENTLY items_sku_idx"),
        "{stdout}"
    );
}

#[test]
fn write_edits_in_place_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("V1__items.sql");
    std::fs::write(&path, INPUT).unwrap();
    let out = fix(&["--write", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let fixed = std::fs::read_to_string(&path).unwrap();
    assert!(fixed.starts_with("-- add a lookup index\n"), "{fixed}");
    assert!(
        fixed.contains("DROP INDEX CONCURRENTLY IF EXISTS items_old_idx;"),
        "{fixed}"
    );

    let again = fix(&["--diff", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(again.stdout.is_empty());
}

#[test]
fn out_writes_copies_into_folder() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("migrations");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("V1__items.sql"), INPUT).unwrap();
    std::fs::write(
        src.join("V1__items.down.sql"),
        "DROP INDEX items_sku_idx;\n",
    )
    .unwrap();
    let out_dir = dir.path().join("fixed");
    let out = fix(&["--out", out_dir.to_str().unwrap(), src.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let copy = std::fs::read_to_string(out_dir.join("V1__items.sql")).unwrap();
    assert!(copy.contains("CREATE INDEX CONCURRENTLY"), "{copy}");
    assert!(!out_dir.join("V1__items.down.sql").exists());
    assert_eq!(
        std::fs::read_to_string(src.join("V1__items.sql")).unwrap(),
        INPUT
    );
}

#[test]
fn missing_path_is_an_error_naming_it() {
    let out = fix(&["--diff", "/nonexistent/V9__x.sql"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/V9__x.sql"), "{stderr}");
}

#[tokio::test]
async fn database_url_finds_constraint_index() {
    let db = common::TestDb::new("fix_cli_db").await;
    db.exec("CREATE TABLE t (id bigint CONSTRAINT t_pkey PRIMARY KEY)")
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("V2__drop.sql");
    std::fs::write(&path, "DROP INDEX t_pkey;\n").unwrap();
    let out = fix(&["--diff", "--database-url", &db.url, path.to_str().unwrap()]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("skipped drop-index-concurrently"),
        "{stderr}"
    );
    assert!(stderr.contains("backs a constraint"), "{stderr}");
}

#[test]
fn batch_backfills_marks_updates_and_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("V1__items.sql"),
        "CREATE TABLE items (id bigint PRIMARY KEY, hits int);\nCREATE TABLE log (note text);\n",
    )
    .unwrap();
    let input = "UPDATE items SET hits = 0;\nUPDATE log SET note = '';\n";
    std::fs::write(dir.path().join("V2__backfill.sql"), input).unwrap();
    let folder = dir.path().to_str().unwrap();

    let out = fix(&[
        "--write",
        "--batch-backfills",
        "--backfill-batch-size",
        "500",
        folder,
    ]);
    assert!(out.status.success(), "{out:?}");
    let fixed = std::fs::read_to_string(dir.path().join("V2__backfill.sql")).unwrap();
    assert_eq!(
        fixed,
        "-- pgshift:backfill batch-size=500\nUPDATE items SET hits = 0;\nUPDATE log SET note = '';\n"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("V2__backfill.sql:2: skipped batched-backfill"),
        "{stderr}"
    );

    // Fixing again changes nothing.
    let again = fix(&[
        "--diff",
        "--batch-backfills",
        "--backfill-batch-size",
        "500",
        folder,
    ]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");

    // The directive is known to lint, and the batched UPDATE is not flagged.
    let lint = Command::new(common::pgshift_bin())
        .args(["lint", "--format", "json", folder])
        .output()
        .unwrap();
    let stdout = String::from_utf8(lint.stdout).unwrap();
    assert_eq!(lint.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("unknown directive"), "{stdout}");
    assert_eq!(
        stdout.matches("update-or-delete-without-where").count(),
        1,
        "only the log UPDATE is flagged: {stdout}"
    );
}

#[test]
fn batch_size_zero_is_rejected() {
    let out = fix(&[
        "--diff",
        "--batch-backfills",
        "--backfill-batch-size",
        "0",
        "x.sql",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--backfill-batch-size"), "{stderr}");
}

#[test]
fn if_not_exists_dropped_from_concurrent_build() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("V1__items.sql");
    std::fs::write(
        &path,
        "CREATE UNIQUE INDEX IF NOT EXISTS items_sku_key ON items (sku);\n",
    )
    .unwrap();
    let out = fix(&["--write", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let fixed = std::fs::read_to_string(&path).unwrap();
    assert!(
        fixed.contains("CREATE UNIQUE INDEX CONCURRENTLY items_sku_key ON items (sku);"),
        "{fixed}"
    );

    // The concurrent form no longer hides an INVALID leftover, so its own
    // rule has nothing to report.
    let lint = Command::new(common::pgshift_bin())
        .args(["lint", "--format", "json", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8(lint.stdout).unwrap();
    assert!(
        !stdout.contains("concurrent-index-if-not-exists"),
        "{stdout}"
    );
}

#[test]
fn crlf_file_keeps_crlf_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("V1__items.sql");
    std::fs::write(&path, INPUT.replace('\n', "\r\n")).unwrap();
    let out = fix(&["--write", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let fixed = std::fs::read_to_string(&path).unwrap();
    assert!(fixed.contains("CONCURRENTLY"), "{fixed:?}");
    assert_eq!(
        fixed.matches('\n').count(),
        fixed.matches("\r\n").count(),
        "every line ends in CRLF: {fixed:?}"
    );

    // Fixing the fixed file changes nothing.
    let again = fix(&["--diff", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{again:?}");
}
