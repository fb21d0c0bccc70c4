//! `apply` reports the server's progress views while a step runs: plain
//! lines from `pg_stat_progress_vacuum` and `pg_stat_progress_cluster` when
//! its output is not a terminal.
//!
//! Each command must last several of the monitor's 200 ms samples. Cost-based
//! vacuum delay (set in the migration itself) stretches `VACUUM`. `VACUUM
//! FULL` and `CLUSTER` ignore the cost delay, so an index on a function that
//! sleeps 1 ms per row stretches their index rebuilds instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn write_plan(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::create_dir_all(dir.join("v2")).unwrap();
    std::fs::write(
        dir.join("v1/V1__events.sql"),
        "CREATE FUNCTION slow_key(bigint) RETURNS bigint IMMUTABLE LANGUAGE plpgsql\n\
             AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN $1; END $$;\n\
         CREATE TABLE events (id bigint PRIMARY KEY, payload text);\n\
         INSERT INTO events SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;\n\
         DELETE FROM events WHERE id % 2 = 0;\n\
         CREATE INDEX events_slow_idx ON events (slow_key(id));\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("v2/V2__maintenance.sql"),
        "-- pgshift:no-transaction\n\
         SET vacuum_cost_delay = '10ms';\n\
         SET vacuum_cost_limit = 1;\n\
         VACUUM events;\n\
         VACUUM FULL events;\n\
         CLUSTER events USING events_pkey;\n",
    )
    .unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        "name: progress\nversions:\n  - version: \"1\"\n    path: v1\n  - version: \"2\"\n    path: v2\n\
         phases:\n  - name: all\n    to: \"2\"\n    strategy: in-place\n",
    )
    .unwrap();
    plan
}

#[tokio::test]
async fn vacuum_and_cluster_progress_shown() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let db = common::TestDb::new("exec_progress").await;

    let output = Command::new(common::pgshift_bin())
        .arg("apply")
        .arg(&plan)
        .args(["--database-url", &db.url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let output_text = format!("{stdout}{stderr}");
    assert!(
        output_text.contains("VACUUM scanning heap"),
        "no VACUUM phase line:\n{output_text}"
    );
    assert!(
        output_text.contains("VACUUM FULL rebuilding index"),
        "no VACUUM FULL phase line:\n{output_text}"
    );
    assert!(
        output_text.contains("CLUSTER rebuilding index"),
        "no CLUSTER phase line:\n{output_text}"
    );
}
