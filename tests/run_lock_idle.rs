//! The run lock survives a server-side idle_session_timeout shorter than a
//! step, so a second run cannot start while the first one works.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn run_lock_survives_idle_session_timeout() {
    let db = common::TestDb::new("lock_idle").await;
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET idle_session_timeout = '1s'",
        db.name
    ))
    .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("v1")).unwrap();
    std::fs::write(
        dir.path().join("v1/V1__slow.sql"),
        "CREATE TABLE t (id int);\nSELECT pg_sleep(4);\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "name: idle\nversions:\n  - version: \"1\"\n    path: v1\n\
         phases:\n  - name: all\n    to: \"1\"\n    strategy: in-place\n",
    )
    .unwrap();

    let mut child = Command::new(common::pgshift_bin())
        .arg("apply")
        .arg(&plan)
        .args(["--database-url", &db.url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until the slow statement runs, then past the idle timeout.
    let client = db.client().await;
    loop {
        let running: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE query LIKE 'SELECT pg_sleep(4)%' AND state = 'active'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if running > 0 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "apply ended before the slow step"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1800)).await;
    // This test's own session was idle too long as well; open a new one.
    let client = db.client().await;
    let held: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 1, "the run lock is still held after the idle timeout");

    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
