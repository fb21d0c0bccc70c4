//! Files marked `-- pgshift:no-transaction`: each statement commits on its
//! own, an explicit `BEGIN ... COMMIT` block stays one transaction, and a
//! statement that PostgreSQL accepts in a transaction block commits with its
//! journal row, so a killed run never applies it twice.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pgshift::kill_point::{KillPoint, KILL_POINT_ENV};
use pgshift::locks::PgVersion;
use pgshift::plan::Migration;
use pgshift::rewrite::{plan_migration, StepKind};

const FILE: &str = "-- pgshift:no-transaction\n\
                    INSERT INTO t VALUES (1);\n\
                    BEGIN;\n\
                    INSERT INTO t VALUES (2);\n\
                    UPDATE t SET id = 3 WHERE id = 2;\n\
                    COMMIT;\n\
                    VACUUM t;\n";

#[test]
fn explicit_block_stays_one_step() {
    let migration = Migration {
        id: "2".to_string(),
        name: "dml".to_string(),
        path: PathBuf::from("V2__dml.sql"),
        autocommit: false,
        checksum: String::new(),
        sql: FILE.to_string(),
    };
    let steps = plan_migration(&migration, PgVersion::new(15, 0)).unwrap();

    let shape: Vec<(StepKind, Vec<usize>)> = steps
        .iter()
        .map(|s| {
            (
                s.kind.clone(),
                s.statements.iter().map(|st| st.line).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (StepKind::Autocommit, vec![2]),
            (StepKind::Transaction, vec![4, 5]),
            (StepKind::Autocommit, vec![7]),
        ]
    );
}

fn write_plan(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::create_dir_all(dir.join("v2")).unwrap();
    std::fs::write(dir.join("v1/V1__t.sql"), "CREATE TABLE t (id int);\n").unwrap();
    std::fs::write(
        dir.join("v2/V2__insert.sql"),
        "-- pgshift:no-transaction\nINSERT INTO t VALUES (1);\nVACUUM t;\n",
    )
    .unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        "name: nt\nversions:\n  - version: \"1\"\n    path: v1\n  - version: \"2\"\n    path: v2\n\
         phases:\n  - name: all\n    to: \"2\"\n    strategy: in-place\n",
    )
    .unwrap();
    plan
}

fn apply(
    plan: &Path,
    url: &str,
    args: &[&str],
    kill_at: Option<KillPoint>,
) -> std::process::Output {
    let mut command = Command::new(common::pgshift_bin());
    command
        .arg("apply")
        .arg(plan)
        .args(args)
        .args(["--database-url", url])
        .env_remove(KILL_POINT_ENV)
        .stdin(Stdio::null());
    if let Some(point) = kill_at {
        command.env(KILL_POINT_ENV, point.as_str());
    }
    command.output().unwrap()
}

#[tokio::test]
async fn killed_insert_not_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let db = common::TestDb::new("no_transaction_kill").await;
    let first = apply(&plan, &db.url, &["--to", "1"], None);
    assert!(first.status.success(), "{first:?}");

    // The run dies right after the INSERT ran, before the journal records
    // it. Sent on its own, the INSERT would have committed, and the rerun
    // would insert a second row.
    let killed = apply(&plan, &db.url, &[], Some(KillPoint::StepStatementRan));
    assert_eq!(killed.status.signal(), Some(9), "{killed:?}");

    let rerun = apply(&plan, &db.url, &["--wait"], None);
    assert!(rerun.status.success(), "{rerun:?}");
    let client = db.client().await;
    let rows: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}
