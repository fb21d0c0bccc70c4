//! Loading and dry-running the `blue_green` block of a plan.

mod common;

use pgshift::bluegreen::{self, BlueGreenError, Stage};
use pgshift::locks::PgVersion;
use pgshift::plan::{GreenForms, GreenTarget, Hook, Plan, Side};

fn example() -> Plan {
    Plan::load(&common::repo_path("plans/oauth-bluegreen.yaml")).unwrap()
}

/// Loads the example plan with `from` replaced by `to` in its text.
fn example_with(from: &str, to: &str) -> Result<Plan, String> {
    let path = common::repo_path("plans/oauth-bluegreen.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "the example contains {from:?}");
    Plan::from_yaml(&path, &text.replacen(from, to, 1)).map_err(|e| e.to_string())
}

#[test]
fn example_loads() {
    let plan = example();
    let phase = &plan.phases[1];
    let spec = phase.blue_green.as_ref().unwrap();
    assert_eq!(spec.green, GreenTarget::Database("oauth_green".to_string()));
    let tables: Vec<&str> = spec.capture.iter().map(|c| c.table.as_str()).collect();
    assert_eq!(
        tables,
        [
            "access_tokens",
            "refresh_tokens",
            "authorization_codes",
            "login_sessions",
            "consent_grants",
            "device_codes"
        ]
    );
    let delete = &spec.capture[0].delete;
    assert_eq!(
        delete.sql.trim(),
        "DELETE FROM access_tokens WHERE signature = $1"
    );
    assert_eq!(delete.params[0].to_string(), ":old.signature");
    assert_eq!(spec.catch_up_threshold, 500);
    assert!(matches!(
        &spec.hooks.before_capture[0],
        Hook::Sql { on: Side::Blue, .. }
    ));
    assert_eq!(spec.hooks.switch_traffic.len(), 1);
    assert!(plan.phases[0].blue_green.is_none());
}

#[test]
fn unknown_key_is_named() {
    let error = example_with("catch_up_threshold:", "catchup_threshold:").unwrap_err();
    assert!(
        error.contains("unknown field `catchup_threshold`"),
        "{error}"
    );
    assert!(error.contains("line"), "{error}");

    let error = example_with(
        "drain_timeout: 30s",
        "drain_timeout: 30s\n      capture_all: true",
    )
    .unwrap_err();
    assert!(error.contains("unknown field `capture_all`"), "{error}");
}

#[test]
fn bad_replay_statement_is_named() {
    let error = example_with(
        "delete: DELETE FROM access_tokens WHERE signature = :old.signature",
        "delete: DELETE FROM access_tokens WHERE signature = $1",
    )
    .unwrap_err();
    assert!(
        error.contains("phases[1].blue_green.capture[0].delete: positional parameter"),
        "{error}"
    );
}

#[test]
fn hook_needs_one_kind() {
    let error = example_with(
        "- shell: echo \"point",
        "- sql: SELECT 1\n            shell: echo \"point",
    )
    .unwrap_err();
    assert!(error.contains("hooks.switch_traffic[0]"), "{error}");
    assert!(error.contains("not both"), "{error}");

    let error = example_with("          - on: blue\n", "          - on: purple\n").unwrap_err();
    assert!(error.contains("unknown database `purple`"), "{error}");
}

#[test]
fn block_on_in_place_phase_is_rejected() {
    let error = example_with("strategy: blue-green", "strategy: in-place").unwrap_err();
    assert!(
        error.contains("`blue_green` is set on an in-place phase"),
        "{error}"
    );
}

#[test]
fn conninfo_green_is_recognised() {
    let plan = example_with("green: oauth_green", "green: host=127.0.0.1 dbname=g").unwrap();
    let spec = plan.phases[1].blue_green.as_ref().unwrap();
    assert_eq!(
        spec.green,
        GreenTarget::Conninfo("host=127.0.0.1 dbname=g".to_string())
    );
}

#[tokio::test]
async fn dry_run_shows_every_stage() {
    let plan = example();
    let dry = bluegreen::dry_run(&plan, &plan.phases[1], PgVersion::new(15, 0), None)
        .await
        .unwrap();
    let stages: Vec<Stage> = dry.stages.iter().map(|s| s.stage).collect();
    assert_eq!(stages, Stage::ALL.to_vec());
    let mut text = Vec::new();
    bluegreen::write_dry_run(&dry, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    for expected in [
        "CREATE TRIGGER pgshift_capture AFTER INSERT OR UPDATE OR DELETE ON access_tokens",
        "pg_export_snapshot()",
        "--snapshot=<snapshot>",
        "V13__token_indexes.sql",
        "CREATE INDEX CONCURRENTLY access_tokens_tenant_expires_at_idx",
        "DELETE FROM access_tokens WHERE signature = $1",
        "$1 = :old.signature",
        "hook switch_traffic (shell)",
        "stops the cutover",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(dry.replay.len(), 18);
    assert!(dry.stopping_tables.is_none());
}

#[test]
fn green_forms_default_and_values() {
    let spec = example().phases[1].blue_green.clone().unwrap();
    assert_eq!(spec.green_forms, GreenForms::Online, "default");

    let plan = example_with(
        "drain_timeout: 30s",
        "drain_timeout: 30s\n      green_forms: plain",
    )
    .unwrap();
    let spec = plan.phases[1].blue_green.as_ref().unwrap();
    assert_eq!(spec.green_forms, GreenForms::Plain);

    let error = example_with(
        "drain_timeout: 30s",
        "drain_timeout: 30s\n      green_forms: fast",
    )
    .unwrap_err();
    assert!(
        error.contains("unknown green_forms `fast`, expected `online` or `plain`"),
        "{error}"
    );
}

/// With `green_forms: plain` the dry-run names the forms and shows the
/// statements as written, in the transaction they share.
#[tokio::test]
async fn dry_run_shows_plain_forms() {
    let plan = example_with(
        "drain_timeout: 30s",
        "drain_timeout: 30s\n      green_forms: plain",
    )
    .unwrap();
    let dry = bluegreen::dry_run(&plan, &plan.phases[1], PgVersion::new(15, 0), None)
        .await
        .unwrap();
    assert_eq!(dry.green_forms, GreenForms::Plain);
    let mut text = Vec::new();
    bluegreen::write_dry_run(&dry, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("green_forms: plain"), "{text}");
    assert!(
        text.contains(
            "V13__token_indexes.sql step 0, in a transaction): CREATE INDEX \
             access_tokens_tenant_expires_at_idx"
        ),
        "{text}"
    );
    assert!(
        !text.contains("CREATE INDEX CONCURRENTLY access_tokens_tenant_expires_at_idx"),
        "{text}"
    );

    let plan = example();
    let online = bluegreen::dry_run(&plan, &plan.phases[1], PgVersion::new(15, 0), None)
        .await
        .unwrap();
    let mut text = Vec::new();
    bluegreen::write_dry_run(&online, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("green_forms: online"), "{text}");
}

#[tokio::test]
async fn dry_run_lists_stopping_tables() {
    let db = common::TestDb::new("bg_dry_run").await;
    let plan = example();
    let client = db.client().await;
    let mut executor = {
        let (c, info) = pgshift::db::connect(Some(&db.url)).await.unwrap();
        pgshift::exec::Executor::new(c, info, Default::default())
            .await
            .unwrap()
    };
    let options = pgshift::exec::ApplyOptions {
        to: Some("1.3".to_string()),
    };
    executor
        .apply(&plan, &options, &pgshift::exec::NoopReporter)
        .await
        .unwrap();
    let dry = bluegreen::dry_run(&plan, &plan.phases[1], PgVersion::new(15, 0), Some(&client))
        .await
        .unwrap();
    assert_eq!(
        dry.stopping_tables.unwrap(),
        ["public.clients", "public.signing_keys"]
    );
}

/// `--to` inside a blue-green phase is rejected as a `BlueGreenError`
/// before anything runs, and the error names the version to pass.
#[tokio::test]
async fn partial_phase_is_rejected() {
    let db = common::TestDb::new("bg_partial").await;
    let path = common::repo_path("plans/oauth-bluegreen.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen(
            "    to: \"1.3\"\n    strategy: in-place",
            "    to: \"1.2\"\n    strategy: in-place",
            1,
        )
        .replacen("    from: \"1.3\"", "    from: \"1.2\"", 1);
    let plan = Plan::from_yaml(&path, &text).unwrap();
    assert_eq!(plan.phases[1].versions, 3..5, "the phase spans 1.3 and 2.0");

    let (client, info) = pgshift::db::connect(Some(&db.url)).await.unwrap();
    let mut executor = pgshift::exec::Executor::new(client, info, Default::default())
        .await
        .unwrap();
    let options = pgshift::exec::ApplyOptions {
        to: Some("1.3".to_string()),
    };
    let error = executor
        .apply(&plan, &options, &pgshift::exec::NoopReporter)
        .await
        .unwrap_err();
    let pgshift::exec::ExecError::BlueGreen(inner) = &error else {
        panic!("expected a blue-green error, got {error}");
    };
    assert!(
        matches!(**inner, BlueGreenError::PartialPhase { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("must be applied whole"), "{message}");
    assert!(message.contains("pass `--to 2.0`"), "{message}");
    let client = db.client().await;
    let state: bool = client
        .query_one("SELECT to_regclass('pgshift.runs') IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(state, "nothing ran, not even the state schema");
}
