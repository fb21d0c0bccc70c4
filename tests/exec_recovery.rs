//! A run whose session ends under it (dropped connection, server restart)
//! stops with a clear error, and the next run resumes.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use pgshift::db;
use pgshift::exec::{ExecError, ExecOptions, Executor, Reporter};
use pgshift::locks::PgVersion;
use pgshift::plan::{Migration, Settings};
use pgshift::rewrite::{plan_migration, Step};
use pgshift::state::{self, StepStatus};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// Signals the first report of a blocked step.
#[derive(Default)]
struct BlockedSignal {
    blocked: Notify,
}

impl Reporter for BlockedSignal {
    fn blocked(&self, _migration: &Migration, _step: &Step, blockers: &[db::BlockingPid]) {
        if !blockers.is_empty() {
            self.blocked.notify_one();
        }
    }
}

fn migration(sql: &str) -> Migration {
    Migration {
        id: "1".to_string(),
        name: "split".to_string(),
        path: PathBuf::from("migrations/V1__split.sql"),
        autocommit: true,
        checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        sql: sql.to_string(),
    }
}

#[tokio::test]
async fn terminated_session_resumes() {
    let db = common::TestDb::new("exec_recovery").await;
    db.exec("CREATE TABLE t (id int); CREATE TABLE flags (name text)")
        .await;
    let sql = "ALTER TABLE t ADD COLUMN note text;\n\
               CREATE INDEX CONCURRENTLY t_note_idx ON t (note);\n\
               INSERT INTO flags VALUES ('done');\n";
    let migration = migration(sql);
    let steps = plan_migration(&migration, PgVersion::new(15, 0)).unwrap();
    assert_eq!(steps.len(), 3);

    // A transaction holding an old snapshot makes the build (step 2) wait;
    // while it waits, pgshift's session is terminated as a server shutdown
    // would do.
    let writer = db.client().await;
    writer
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    let (client, info) = db::connect(Some(&db.url)).await.unwrap();
    let mut executor = Executor::new(client, info, ExecOptions::default())
        .await
        .unwrap();
    let pid = executor.backend_pid();
    let reporter = Arc::new(BlockedSignal::default());
    let signal = Arc::clone(&reporter);
    let admin = db.client().await;
    let terminate = tokio::spawn(async move {
        signal.blocked.notified().await;
        admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap();
        admin
    });
    let error = executor
        .run_migration(
            &migration,
            "1.0",
            &steps,
            &Settings::default(),
            reporter.as_ref(),
        )
        .await
        .unwrap_err();
    let admin = terminate.await.unwrap();
    drop(executor);
    writer.batch_execute("COMMIT").await.unwrap();

    assert!(
        matches!(
            error,
            ExecError::ConnectionLost {
                line: 2,
                step_index: 1,
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("lost the connection"), "{text}");
    assert!(text.contains("run the same command"), "{text}");
    let journal = state::journal(&admin, "1").await.unwrap();
    let statuses: Vec<(i32, StepStatus)> =
        journal.iter().map(|e| (e.step_index, e.status)).collect();
    assert_eq!(
        statuses,
        vec![(0, StepStatus::Done), (1, StepStatus::Started)]
    );

    // A new run marks the dead run's step interrupted, skips step 1 and
    // finishes from step 2.
    let (client, info) = db::connect(Some(&db.url)).await.unwrap();
    let mut executor = Executor::new(client, info, ExecOptions::default())
        .await
        .unwrap();
    let report = executor
        .run_migration(
            &migration,
            "1.0",
            &steps,
            &Settings::default(),
            &pgshift::exec::NoopReporter,
        )
        .await
        .unwrap();
    assert_eq!(report.steps[0].attempts, 0, "step 1 is not run again");
    let journal = state::journal(&admin, "1").await.unwrap();
    let statuses: Vec<(i32, StepStatus)> =
        journal.iter().map(|e| (e.step_index, e.status)).collect();
    assert_eq!(
        statuses,
        vec![
            (0, StepStatus::Done),
            (1, StepStatus::Interrupted),
            (1, StepStatus::Done),
            (2, StepStatus::Done)
        ]
    );
    let invalid: i64 = admin
        .query_one("SELECT count(*) FROM pg_index WHERE NOT indisvalid", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(invalid, 0);
}
