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
