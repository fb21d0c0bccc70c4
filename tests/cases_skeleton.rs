//! The real-world cases the walking skeleton must get right, with their
//! verdicts as assertions: lint findings per line, and the steps the
//! rewrite produces, run on the real server.

mod common;

use std::path::Path;

use pgshift::analysis::AnalyzedFile;
use pgshift::lint::{lint_file, LintOptions};
use pgshift::locks::{LockMode, PgVersion};
use pgshift::rewrite::{plan_file, Step, StepKind};

const PG15: PgVersion = PgVersion::new(15, 0);

fn case_text(id: &str, file: &str) -> String {
    let path = common::repo_path(&format!("tests/cases/{id}/{file}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn analyze_case(id: &str) -> AnalyzedFile {
    AnalyzedFile::new(
        Path::new("input.sql"),
        case_text(id, "input.sql"),
        false,
        PG15,
    )
    .expect("case input parses")
}

/// Returns the lines `rule` flags in the case's input.
fn flagged(id: &str, rule: &str) -> Vec<usize> {
    let file = analyze_case(id);
    lint_file(&file, &LintOptions::default())
        .into_iter()
        .filter(|d| d.rule == rule)
        .map(|d| d.line)
        .collect()
}

/// Runs the steps of a rewritten file the way the executor sends them:
/// transactional steps in BEGIN/COMMIT, the others one statement at a time.
async fn run_steps(db: &common::TestDb, steps: &[Step]) {
    let client = db.client().await;
    for step in steps {
        if step.in_transaction() {
            client.batch_execute("BEGIN").await.unwrap();
            for s in &step.statements {
                client.batch_execute(&s.sql).await.unwrap();
            }
            client.batch_execute("COMMIT").await.unwrap();
        } else {
            for s in &step.statements {
                client
                    .batch_execute(&s.sql)
                    .await
                    .unwrap_or_else(|e| panic!("{} failed: {e:?}", s.sql));
            }
        }
    }
}

/// Returns `indexname -> (indexdef, valid)` for the public schema.
async fn indexes(db: &common::TestDb) -> Vec<(String, String, bool)> {
    let client = db.client().await;
    client
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), i.indisvalid
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[test]
fn plain_create_index_rewrite_flags_every_line() {
    let id = "plain-create-index-rewrite";
    assert_eq!(flagged(id, "index-build-without-concurrently"), vec![2, 3]);
    assert_eq!(flagged(id, "index-drop-without-concurrently"), vec![4]);
}

#[test]
fn plain_create_index_rewrite_reports_locks() {
    let file = analyze_case("plain-create-index-rewrite");
    let diagnostics = lint_file(&file, &LintOptions::default());
    let build = diagnostics.iter().find(|d| d.line == 2).unwrap();
    assert_eq!(build.locks.len(), 1);
    assert_eq!(build.locks[0].relation, "orders");
    assert_eq!(build.locks[0].mode, LockMode::Share.sql_name());
    assert!(build.locks[0].blocks_writes);
    assert!(!build.locks[0].blocks_reads);
    let drop = diagnostics.iter().find(|d| d.line == 4).unwrap();
    assert!(drop.locks.iter().any(|l| l.mode == "ACCESS EXCLUSIVE"));
}

#[test]
fn plain_create_index_rewrite_steps() {
    let file = analyze_case("plain-create-index-rewrite");
    let steps = plan_file(&file).unwrap();
    let sql: Vec<&str> = steps.iter().map(|s| s.statements[0].sql.as_str()).collect();
    assert_eq!(
        sql,
        vec![
            "CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status)",
            "CREATE UNIQUE INDEX CONCURRENTLY tokens_live_digest_key ON tokens USING btree \
             (digest) WHERE revoked_at IS NULL",
            "DROP INDEX CONCURRENTLY IF EXISTS orders_legacy_idx",
        ]
    );
    assert!(steps.iter().all(|s| !s.in_transaction()));
    assert!(matches!(steps[0].kind, StepKind::ConcurrentIndex { .. }));
    assert!(matches!(steps[1].kind, StepKind::ConcurrentIndex { .. }));
    assert_eq!(steps[2].kind, StepKind::Autocommit);
}

#[tokio::test]
async fn plain_create_index_rewrite_same_indexes_on_server() {
    let id = "plain-create-index-rewrite";
    let original = common::TestDb::new("plain_idx_orig").await;
    let rewritten = common::TestDb::new("plain_idx_rewr").await;
    for db in [&original, &rewritten] {
        db.exec(&case_text(id, "schema.sql")).await;
    }
    original.exec(&case_text(id, "input.sql")).await;
    run_steps(&rewritten, &plan_file(&analyze_case(id)).unwrap()).await;

    let expected = indexes(&original).await;
    assert_eq!(indexes(&rewritten).await, expected);
    assert!(expected.iter().all(|(_, _, valid)| *valid));
    assert!(expected
        .iter()
        .any(|(name, _, _)| name == "tokens_live_digest_key"));
    assert!(!expected
        .iter()
        .any(|(name, _, _)| name == "orders_legacy_idx"));
}

#[test]
fn index_on_table_created_in_same_txn_not_flagged() {
    let id = "index-on-table-created-in-same-txn";
    assert!(flagged(id, "index-build-without-concurrently").is_empty());
}

#[test]
fn index_on_table_created_in_same_txn_not_rewritten() {
    let file = analyze_case("index-on-table-created-in-same-txn");
    let steps = plan_file(&file).unwrap();
    assert_eq!(steps.len(), 1, "one transaction: {steps:#?}");
    assert!(steps[0].in_transaction());
    assert_eq!(steps[0].statements.len(), 3);
    assert!(steps[0].statements.iter().all(|s| !s.rewritten));
}

#[test]
fn index_on_table_from_earlier_migration_is_flagged() {
    // The contrast of the case: the table exists before this migration.
    let text = case_text("index-on-table-created-in-same-txn", "input.sql");
    let later: String = text
        .lines()
        .filter(|l| l.starts_with("CREATE INDEX") || l.starts_with("CREATE UNIQUE"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = AnalyzedFile::new(Path::new("later.sql"), later, false, PG15).unwrap();
    let lines: Vec<usize> = lint_file(&file, &LintOptions::default())
        .into_iter()
        .filter(|d| d.rule == "index-build-without-concurrently")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, vec![1, 2]);
    let steps = plan_file(&file).unwrap();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.statements[0].rewritten));
}

#[tokio::test]
async fn index_on_table_created_in_same_txn_runs() {
    let db = common::TestDb::new("same_txn").await;
    run_steps(
        &db,
        &plan_file(&analyze_case("index-on-table-created-in-same-txn")).unwrap(),
    )
    .await;
    let idx = indexes(&db).await;
    assert_eq!(idx.len(), 3);
    assert!(idx.iter().all(|(_, _, valid)| *valid));
}

#[test]
fn cic_inside_explicit_transaction_flagged() {
    let id = "cic-inside-explicit-transaction";
    assert_eq!(flagged(id, "concurrently-in-transaction"), vec![3]);
    assert!(flagged(id, "index-build-without-concurrently").is_empty());
}

#[tokio::test]
async fn cic_inside_explicit_transaction_split_and_run() {
    let id = "cic-inside-explicit-transaction";
    let steps = plan_file(&analyze_case(id)).unwrap();
    assert_eq!(steps.len(), 2, "{steps:#?}");
    assert!(steps[0].in_transaction());
    assert_eq!(steps[0].statements[0].line, 2);
    assert!(!steps[1].in_transaction());
    assert_eq!(steps[1].statements[0].line, 3);

    // The file as written fails on the real server with SQLSTATE 25001.
    let plain = common::TestDb::new("cic_txn_plain").await;
    plain.exec(&case_text(id, "schema.sql")).await;
    let err = plain
        .client()
        .await
        .batch_execute(&case_text(id, "input.sql"))
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25001");

    let db = common::TestDb::new("cic_txn_split").await;
    db.exec(&case_text(id, "schema.sql")).await;
    run_steps(&db, &steps).await;
    let idx = indexes(&db).await;
    assert!(idx
        .iter()
        .any(|(n, _, valid)| n == "accounts_referrer_id_idx" && *valid));
}

#[test]
fn dollar_quoted_bodies_split_into_three_steps() {
    let file = analyze_case("dollar-quoted-bodies-splitter");
    assert_eq!(file.parsed.statements.len(), 3);
    let lines: Vec<usize> = file.parsed.statements.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![1, 10, 18]);
    let diagnostics = lint_file(&file, &LintOptions::default());
    assert!(
        diagnostics.iter().all(|d| [1, 10, 18].contains(&d.line)),
        "no finding inside a body: {diagnostics:#?}"
    );
}

#[tokio::test]
async fn dollar_quoted_bodies_run_on_server() {
    let id = "dollar-quoted-bodies-splitter";
    let db = common::TestDb::new("dollar").await;
    db.exec(&case_text(id, "schema.sql")).await;
    run_steps(&db, &plan_file(&analyze_case(id)).unwrap()).await;
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'orders_touch'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[test]
fn psql_meta_commands_reported_and_rejected() {
    let id = "psql-meta-commands";
    let file = analyze_case(id);
    assert_eq!(flagged(id, "psql-meta-command"), vec![1, 2, 5]);
    let lines: Vec<usize> = file.parsed.statements.iter().map(|s| s.line).collect();
    assert_eq!(lines, vec![3, 4, 6]);
    let err = plan_file(&file).unwrap_err().to_string();
    assert!(err.contains("input.sql:1"), "{err}");
    assert!(err.contains("meta-command"), "{err}");
}
