//! `pgshift apply --dry-run` on the bundled plans, without a database.

mod common;

use std::process::Command;

fn dry_run(args: &[&str]) -> (bool, String) {
    let output = Command::new(common::pgshift_bin())
        .args(["apply", "--dry-run"])
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PGHOST")
        .env_remove("PGDATABASE")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn blue_green_phase_shows_its_stages() {
    let plan = common::repo_path("plans/oauth-bluegreen.yaml");
    let (ok, text) = dry_run(&[plan.to_str().unwrap()]);
    assert!(ok, "{text}");
    for stage in ["capture", "copy", "migrate", "catch-up", "cutover"] {
        assert!(
            text.contains(&format!("stage {stage}")),
            "no stage {stage}:\n{text}"
        );
    }
    assert!(text.contains("refresh_tokens"), "{text}");
}

#[test]
fn blue_green_json_lists_phases() {
    let plan = common::repo_path("plans/oauth-bluegreen.yaml");
    let (ok, text) = dry_run(&["--format", "json", plan.to_str().unwrap()]);
    assert!(ok, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["blue_green"].as_array().unwrap().len(), 1);
    assert!(!json["phases"].as_array().unwrap().is_empty());
}

#[test]
fn in_place_plan_has_no_blue_green_section() {
    let plan = common::repo_path("plans/oauth-1x-to-2x.yaml");
    let (ok, text) = dry_run(&["--format", "json", plan.to_str().unwrap()]);
    assert!(ok, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["blue_green"].as_array().unwrap().is_empty());
}

/// Writes a two-version plan whose versions are the select-star case's
/// schema and input.
fn select_star_plan(dir: &std::path::Path) -> std::path::PathBuf {
    let case = common::repo_path("tests/cases/select-star-column-change");
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::create_dir_all(dir.join("v2")).unwrap();
    std::fs::copy(case.join("schema.sql"), dir.join("v1/V1__schema.sql")).unwrap();
    std::fs::copy(case.join("input.sql"), dir.join("v2/V2__columns.sql")).unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        "name: columns\nversions:\n  - version: \"1\"\n    path: v1\n  - version: \"2\"\n    path: v2\n\
         phases:\n  - name: all\n    to: \"2\"\n    strategy: in-place\n",
    )
    .unwrap();
    plan
}

#[test]
fn drop_column_labeled_contract() {
    let dir = tempfile::tempdir().unwrap();
    let plan = select_star_plan(dir.path());
    let (ok, text) = dry_run(&[plan.to_str().unwrap()]);
    assert!(ok, "{text}");

    let contract: Vec<&str> = text.lines().filter(|l| l.contains("contract:")).collect();
    assert_eq!(contract.len(), 1, "{text}");
    assert!(contract[0].contains("drops a column"), "{text}");
    let drop_at = text.find("DROP COLUMN legacy_secret").unwrap();
    let contract_at = text.find("contract:").unwrap();
    assert!(
        contract_at > drop_at,
        "the label follows the DROP COLUMN:\n{text}"
    );
}

#[tokio::test]
async fn add_column_progress_says_instant() {
    let dir = tempfile::tempdir().unwrap();
    let plan = select_star_plan(dir.path());
    let db = common::TestDb::new("dry_run_instant").await;
    let output = Command::new(common::pgshift_bin())
        .arg("apply")
        .arg(&plan)
        .args(["--database-url", &db.url])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    // Progress lines go to stderr.
    let running = stderr
        .lines()
        .find(|l| l.contains("Running") && l.contains("ADD COLUMN last_used_at"))
        .unwrap_or_else(|| panic!("no running line for the ADD COLUMN:\n{stderr}"));
    assert!(
        running.contains("instant: catalog change only"),
        "{running}"
    );
}

#[tokio::test]
async fn skipped_rewrite_shown_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("v1")).unwrap();
    std::fs::create_dir_all(dir.path().join("v2")).unwrap();
    std::fs::write(
        dir.path().join("v1/V1__events.sql"),
        "CREATE TABLE events (id int, k int) PARTITION BY RANGE (id);\n\
         CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (100);\n",
    )
    .unwrap();
    // An unnamed index cannot get the per-partition form, so it runs as
    // written.
    std::fs::write(
        dir.path().join("v2/V2__index.sql"),
        "CREATE INDEX ON events (k);\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "name: notes\nversions:\n  - version: \"1\"\n    path: v1\n  - version: \"2\"\n    path: v2\n\
         phases:\n  - name: all\n    to: \"2\"\n    strategy: in-place\n",
    )
    .unwrap();

    let (ok, text) = dry_run(&[plan.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("line 1: skipped partitioned-index"), "{text}");

    let db = common::TestDb::new("dry_run_notes").await;
    let output = Command::new(common::pgshift_bin())
        .arg("apply")
        .arg(&plan)
        .args(["--database-url", &db.url])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("V2__index.sql:1: skipped partitioned-index"),
        "{stderr}"
    );
}
