//! pgshift's state schema on a real server.

mod common;

use pgshift::state::{self, NewApplied, StepKey, StepStatus};

async fn state_db(tag: &str) -> (common::TestDb, tokio_postgres::Client) {
    let db = common::TestDb::new(tag).await;
    let mut client = db.client().await;
    state::ensure_schema(&mut client).await.unwrap();
    (db, client)
}

async fn exists(client: &tokio_postgres::Client, name: &str) -> bool {
    let row = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn schema_lives_in_pgshift() {
    let (_db, mut client) = state_db("state_schema").await;
    // A second call finds everything in place.
    state::ensure_schema(&mut client).await.unwrap();

    assert!(exists(&client, "pgshift.refinery_schema_history").await);
    assert!(!exists(&client, "public.refinery_schema_history").await);
    assert!(exists(&client, "pgshift.applied_migrations").await);
    assert!(exists(&client, "pgshift.runs").await);
    assert!(exists(&client, "pgshift.step_journal").await);
    assert!(exists(&client, "pgshift.bluegreen_phases").await);
    assert!(exists(&client, "pgshift.bluegreen_stages").await);
    assert!(exists(&client, "pgshift.backfill_progress").await);
    let row = client
        .query_one("SELECT count(*) FROM pgshift.refinery_schema_history", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3, "one row per file in migrations/");
}

/// Earlier builds created the blue-green journal at the start of a phase,
/// outside refinery. The migration that now creates it must accept those
/// tables and add the confirmation columns.
#[tokio::test]
async fn journal_tables_from_earlier_builds_are_upgraded() {
    let db = common::TestDb::new("state_bg_upgrade").await;
    db.exec(
        "CREATE SCHEMA pgshift;
         CREATE TABLE pgshift.bluegreen_phases (
             plan_name text NOT NULL, phase text NOT NULL, green text NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (plan_name, phase));
         INSERT INTO pgshift.bluegreen_phases (plan_name, phase, green)
             VALUES ('plan', 'phase', 'green');
         CREATE TABLE pgshift.bluegreen_stages (
             plan_name text NOT NULL, phase text NOT NULL, stage text NOT NULL,
             status text NOT NULL CHECK (status IN ('started', 'done', 'failed')),
             started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz,
             runs integer NOT NULL DEFAULT 1, error text,
             detail jsonb NOT NULL DEFAULT '{}',
             PRIMARY KEY (plan_name, phase, stage));",
    )
    .await;
    let mut client = db.client().await;
    state::ensure_schema(&mut client).await.unwrap();
    let row = client
        .query_one(
            "SELECT green, confirmed_at IS NULL FROM pgshift.bluegreen_phases",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "green", "rows are kept");
    assert!(row.get::<_, bool>(1), "confirmed_at is added, empty");
}

#[tokio::test]
async fn schema_exists_before_and_after() {
    let db = common::TestDb::new("state_exists").await;
    let mut client = db.client().await;
    assert!(!state::schema_exists(&client).await.unwrap());
    state::ensure_schema(&mut client).await.unwrap();
    assert!(state::schema_exists(&client).await.unwrap());
}

#[tokio::test]
async fn applied_round_trip_and_checksum_update() {
    let (_db, client) = state_db("state_applied").await;
    let run_id = state::start_run(&client, "plan").await.unwrap();
    state::record_applied(
        &client,
        &NewApplied {
            migration_id: "3",
            plan_version: "1.0",
            name: "add_index",
            checksum: "aaa",
            duration_ms: 12,
            run_id,
        },
    )
    .await
    .unwrap();

    let applied = state::applied_migrations(&client).await.unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].migration_id, "3");
    assert_eq!(applied[0].plan_version, "1.0");
    assert_eq!(applied[0].checksum, "aaa");
    assert_eq!(applied[0].duration_ms, 12);

    assert!(state::update_checksum(&client, "3", "bbb").await.unwrap());
    assert!(!state::update_checksum(&client, "4", "bbb").await.unwrap());
    let applied = state::applied_migrations(&client).await.unwrap();
    assert_eq!(applied[0].checksum, "bbb");
}

#[tokio::test]
async fn done_step_recorded_once() {
    let (_db, client) = state_db("state_done_once").await;
    let run_id = state::start_run(&client, "plan").await.unwrap();
    let key = StepKey {
        run_id,
        migration_id: "1",
        step_index: 0,
        step_checksum: "c0",
    };
    assert_eq!(state::step_done(&client, "1", 0).await.unwrap(), None);

    state::journal_insert(&client, key, StepStatus::Done, 1)
        .await
        .unwrap();
    assert_eq!(
        state::step_done(&client, "1", 0).await.unwrap().as_deref(),
        Some("c0")
    );

    // The partial unique index rejects a second done row for the step.
    let second = state::journal_insert(&client, key, StepStatus::Done, 1).await;
    assert!(second.is_err());
    // Failed rows for the same step are allowed beside it.
    state::journal_insert(&client, key, StepStatus::Failed, 2)
        .await
        .unwrap();
}

#[tokio::test]
async fn new_run_interrupts_started_rows() {
    let (_db, client) = state_db("state_interrupt").await;
    let first = state::start_run(&client, "plan").await.unwrap();
    let key = StepKey {
        run_id: first,
        migration_id: "1",
        step_index: 0,
        step_checksum: "c0",
    };
    state::journal_insert(&client, key, StepStatus::Started, 1)
        .await
        .unwrap();

    state::start_run(&client, "plan").await.unwrap();

    let journal = state::journal(&client, "1").await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, StepStatus::Interrupted);
    let row = client
        .query_one("SELECT status FROM pgshift.runs WHERE id = $1", &[&first])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "interrupted");
}
