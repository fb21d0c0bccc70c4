//! Session settings across migrations and across a resumed run: each
//! migration starts from the session's defaults, and a resumed run replays
//! the `SET`s of the steps an earlier run did.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use pgshift::db;
use pgshift::exec::{ExecError, ExecOptions, Executor, NoopReporter};
use pgshift::locks::PgVersion;
use pgshift::plan::{Migration, Settings};
use pgshift::rewrite::{plan_migration, StepKind};
use sha2::{Digest, Sha256};

fn migration(id: &str, sql: &str) -> Migration {
    Migration {
        id: id.to_string(),
        name: format!("m{id}"),
        path: PathBuf::from(format!("migrations/V{id}__m{id}.sql")),
        autocommit: false,
        checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        sql: sql.to_string(),
    }
}

async fn executor(db: &common::TestDb) -> Executor {
    let (client, info) = db::connect(Some(&db.url)).await.unwrap();
    Executor::new(client, info, ExecOptions::default())
        .await
        .unwrap()
}

async fn table_of_index(client: &tokio_postgres::Client, index: &str) -> String {
    client
        .query_one(
            "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = $1::text::regclass",
            &[&index],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn set_does_not_leak_into_next_migration() {
    let db = common::TestDb::new("session_reset").await;
    db.exec("CREATE SCHEMA app").await;
    let mut executor = executor(&db).await;
    let first = migration("1", "SET search_path = app;\nCREATE TABLE a (id int);\n");
    let second = migration("2", "CREATE TABLE b (id int);\n");
    for m in [&first, &second] {
        let steps = plan_migration(m, PgVersion::new(15, 0)).unwrap();
        executor
            .run_migration(m, "1.0", &steps, &Settings::default(), &NoopReporter)
            .await
            .unwrap();
    }

    let client = db.client().await;
    let schemas: Vec<String> = client
        .query(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables \
             WHERE table_name IN ('a', 'b') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(schemas, vec!["app.a".to_string(), "public.b".to_string()]);
}

#[tokio::test]
async fn resumed_run_replays_session_set() {
    let db = common::TestDb::new("session_replay").await;
    db.exec("CREATE SCHEMA app; CREATE TABLE app.t (a int); CREATE TABLE public.t (a int)")
        .await;
    let sql = "SET search_path = app;\n\
               ALTER TABLE t ADD COLUMN c int;\n\
               CREATE INDEX t_a ON t (a);\n";
    let migration = migration("1", sql);
    let steps = plan_migration(&migration, PgVersion::new(15, 0)).unwrap();
    let kinds: Vec<&StepKind> = steps.iter().map(|s| &s.kind).collect();
    assert!(matches!(
        kinds[..],
        [StepKind::Transaction, StepKind::ConcurrentIndex { .. }]
    ));

    // An open snapshot makes the concurrent build wait; with a short
    // budget and no retry, the first run stops after step 1 committed.
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    let settings = Settings {
        concurrent_lock_timeout: Duration::from_millis(100),
        retries: 0,
        ..Settings::default()
    };
    let error = executor(&db)
        .await
        .run_migration(&migration, "1.0", &steps, &settings, &NoopReporter)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExecError::RetriesExhausted { .. }),
        "{error}"
    );
    holder.batch_execute("COMMIT").await.unwrap();

    // The rerun is a new session: without the replayed SET, the index
    // would go to public.t.
    executor(&db)
        .await
        .run_migration(&migration, "1.0", &steps, &settings, &NoopReporter)
        .await
        .unwrap();

    let client = db.client().await;
    assert_eq!(table_of_index(&client, "app.t_a").await, "app.t");
    let public_columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 't'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(public_columns, 1, "public.t keeps its one column");
}
