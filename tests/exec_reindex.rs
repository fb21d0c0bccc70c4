//! `REINDEX CONCURRENTLY` steps drop the INVALID `_ccnew` and `_ccold`
//! indexes that an interrupted or failed rebuild left, before they run and
//! after they fail.
//!
//! A unique index on an IMMUTABLE function whose body is then changed to
//! return duplicates makes a real `REINDEX CONCURRENTLY` fail on the server
//! with a unique violation after it created its `_ccnew` copy.

mod common;

use std::path::PathBuf;

use pgshift::db;
use pgshift::exec::{ExecError, ExecOptions, Executor, NoopReporter};
use pgshift::locks::{PgVersion, RelationName};
use pgshift::plan::{Migration, Settings};
use pgshift::rewrite::{plan_migration, ReindexTarget, Step, StepKind};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

const SETUP: &str = "
    CREATE FUNCTION f(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
    CREATE TABLE t (x int);
    INSERT INTO t SELECT generate_series(1, 1000);
    CREATE UNIQUE INDEX t_f_idx ON t (f(x));
    CREATE INDEX t_g_idx ON t (x);
";

/// Makes `f` return duplicates, so a rebuild of `t_f_idx` fails.
const BREAK_F: &str =
    "CREATE OR REPLACE FUNCTION f(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 % 10'";
const RESTORE_F: &str =
    "CREATE OR REPLACE FUNCTION f(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1'";

fn migration(sql: &str) -> Migration {
    Migration {
        id: "1".to_string(),
        name: "reindex".to_string(),
        path: PathBuf::from("migrations/V1__reindex.sql"),
        autocommit: false,
        checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        sql: sql.to_string(),
    }
}

fn steps(migration: &Migration) -> Vec<Step> {
    plan_migration(migration, PgVersion::new(15, 0)).unwrap()
}

async fn run(db: &common::TestDb, migration: &Migration) -> Result<(), ExecError> {
    let (client, info) = db::connect(Some(&db.url)).await.unwrap();
    let mut executor = Executor::new(client, info, ExecOptions::default())
        .await
        .unwrap();
    executor
        .run_migration(
            migration,
            "1.0",
            &steps(migration),
            &Settings::default(),
            &NoopReporter,
        )
        .await
        .map(|_| ())
}

/// Names of the INVALID indexes in the database, sorted.
async fn invalid_indexes(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE NOT i.indisvalid ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Leaves an INVALID `t_f_idx_ccnew` by a rebuild that fails on the
/// server, the way an interrupted run of an older tool would.
async fn leave_ccnew(client: &Client) {
    client.batch_execute(BREAK_F).await.unwrap();
    let error = client
        .batch_execute("REINDEX INDEX CONCURRENTLY t_f_idx")
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
        "{error}"
    );
    client.batch_execute(RESTORE_F).await.unwrap();
}

#[test]
fn reindex_planned_as_concurrent_step() {
    let cases = [
        (
            "REINDEX INDEX app.t_idx;\n",
            ReindexTarget::Index(RelationName {
                schema: Some("app".to_string()),
                name: "t_idx".to_string(),
            }),
        ),
        (
            "REINDEX TABLE CONCURRENTLY t;\n",
            ReindexTarget::Table(RelationName {
                schema: None,
                name: "t".to_string(),
            }),
        ),
    ];
    for (sql, target) in cases {
        let steps = steps(&migration(sql));
        assert_eq!(steps.len(), 1, "{sql}");
        assert_eq!(
            steps[0].kind,
            StepKind::ConcurrentReindex { target },
            "{sql}"
        );
        assert!(steps[0].statements[0].sql.contains("CONCURRENTLY"), "{sql}");
    }
}

#[tokio::test]
async fn index_reindex_drops_its_leftover() {
    let db = common::TestDb::new("reindex_leftover").await;
    db.exec(SETUP).await;
    let admin = db.client().await;
    leave_ccnew(&admin).await;
    // An INVALID index whose name looks like another index's leftover.
    let error = admin
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY other_ccnew ON t ((x % 2))")
        .await
        .unwrap_err();
    assert!(error.code().is_some(), "{error}");
    assert_eq!(
        invalid_indexes(&admin).await,
        vec!["other_ccnew".to_string(), "t_f_idx_ccnew".to_string()]
    );

    run(&db, &migration("REINDEX INDEX t_f_idx;\n"))
        .await
        .unwrap();

    assert_eq!(
        invalid_indexes(&admin).await,
        vec!["other_ccnew".to_string()],
        "only the rebuilt index's leftover is dropped"
    );
    let valid: bool = admin
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_f_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
}

#[tokio::test]
async fn table_reindex_drops_all_leftovers() {
    let db = common::TestDb::new("reindex_table_leftover").await;
    db.exec(SETUP).await;
    let admin = db.client().await;
    leave_ccnew(&admin).await;
    // An INVALID index named like the old index that a rebuild swapped out.
    admin
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_g_idx_ccold ON t ((x % 3))")
        .await
        .unwrap_err();
    assert_eq!(
        invalid_indexes(&admin).await,
        vec!["t_f_idx_ccnew".to_string(), "t_g_idx_ccold".to_string()]
    );

    run(&db, &migration("REINDEX TABLE t;\n")).await.unwrap();

    assert_eq!(invalid_indexes(&admin).await, Vec::<String>::new());
}

#[tokio::test]
async fn failed_reindex_leaves_nothing_invalid() {
    let db = common::TestDb::new("reindex_failed").await;
    db.exec(SETUP).await;
    let admin = db.client().await;
    admin.batch_execute(BREAK_F).await.unwrap();

    let error = run(&db, &migration("REINDEX INDEX t_f_idx;\n"))
        .await
        .unwrap_err();

    let text = error.to_string();
    assert!(text.contains("is duplicated"), "{text}");
    assert!(text.contains("dropped the INVALID index"), "{text}");
    assert_eq!(invalid_indexes(&admin).await, Vec::<String>::new());
}
