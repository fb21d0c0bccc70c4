//! `apply` and its dry-run plan rewrites with what earlier migrations
//! create: an index on a partitioned table is built per partition.

mod common;

use std::process::{Command, Stdio};

fn write_plan(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("v1")).unwrap();
    std::fs::create_dir_all(dir.join("v2")).unwrap();
    std::fs::write(
        dir.join("v1/V1__events.sql"),
        "CREATE TABLE events (id bigint, kind text, at date NOT NULL) PARTITION BY RANGE (at);\n\
         CREATE TABLE events_2026 PARTITION OF events\n\
             FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');\n\
         INSERT INTO events SELECT g, 'k' || g % 3, '2026-06-01' FROM generate_series(1, 1000) g;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("v2/V2__kind_index.sql"),
        "CREATE INDEX events_kind_idx ON events (kind);\n",
    )
    .unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        "name: facts\nversions:\n  - version: \"1\"\n    path: v1\n  - version: \"2\"\n    path: v2\n\
         phases:\n  - name: all\n    to: \"2\"\n    strategy: in-place\n",
    )
    .unwrap();
    plan
}

#[tokio::test]
async fn partitioned_index_from_earlier_migration() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let db = common::TestDb::new("apply_facts").await;

    let dry = Command::new(common::pgshift_bin())
        .args(["apply", "--dry-run"])
        .arg(&plan)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}");
    assert!(text.contains("ON ONLY events"), "{text}");

    let output = Command::new(common::pgshift_bin())
        .arg("apply")
        .arg(&plan)
        .args(["--database-url", &db.url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let client = db.client().await;
    let rows = client
        .query(
            "SELECT c.relname::text, i.indisvalid FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname LIKE 'events%kind%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let indexes: Vec<(String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert!(indexes.iter().all(|(_, valid)| *valid), "{indexes:?}");
    assert!(
        indexes.iter().any(|(name, _)| name == "events_kind_idx"),
        "{indexes:?}"
    );
}

#[tokio::test]
async fn connected_dry_run_uses_catalog_facts() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path());
    let db = common::TestDb::new("dry_facts").await;

    let first = Command::new(common::pgshift_bin())
        .arg("apply")
        .arg(&plan)
        .args(["--to", "1", "--database-url", &db.url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    // Version 1, which created the partitioned table, is applied, so only
    // the catalog can tell the dry-run that events is partitioned.
    let dry = Command::new(common::pgshift_bin())
        .args(["apply", "--dry-run"])
        .arg(&plan)
        .args(["--database-url", &db.url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success(), "{text}");
    assert!(text.contains("(applied, skipped)"), "{text}");
    assert!(text.contains("ON ONLY events"), "{text}");
    assert!(text.contains("ATTACH PARTITION"), "{text}");
}
