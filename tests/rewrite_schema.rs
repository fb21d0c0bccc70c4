//! Every rewrite ends in the same schema as the statement it replaces:
//! the original and the rewritten file are applied to two fresh databases
//! and their catalogs compared. The same inputs show that `fix` is
//! idempotent, that its output plans into the same steps as its input
//! (what `fix` prints is what `apply` runs), and that the output lints
//! clean.

#[path = "rewrite_catalog.rs"]
mod catalog;

use catalog::common;

use std::collections::BTreeSet;
use std::path::Path;

use pgshift::analysis::{AnalyzeOptions, AnalyzedFile};
use pgshift::lint::{lint_file, LintOptions};
use pgshift::locks::{PgVersion, TransactionUse};
use pgshift::plan::Plan;
use pgshift::rewrite::{
    fix_file, fix_file_with_options, plan_file_with, Note, RewriteOptions, SchemaFacts, Step,
    StepKind,
};

const PG15: PgVersion = PgVersion::new(15, 0);

/// The cases under tests/cases/ whose verdict involves a rewrite.
const REWRITE_CASES: [&str; 9] = [
    "plain-create-index-rewrite",
    "unique-constraint-using-index",
    "reindex-concurrently-rewrite",
    "add-foreign-key-locks-both-tables",
    "not-valid-validate-same-transaction",
    "set-not-null-and-required-column",
    "cic-inside-explicit-transaction",
    "non-transactional-partial-failure",
    "index-on-table-created-in-same-txn",
];

/// One fixture per rewrite kind under tests/fixtures/fix/.
const REWRITE_KINDS: [&str; 11] = [
    "create-index",
    "drop-index",
    "reindex",
    "foreign-key",
    "check",
    "set-not-null",
    "unique",
    "primary-key",
    "partitioned-index",
    "detach-partition",
    "mixed-block",
];

fn read(rel: &str) -> String {
    let path = common::repo_path(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_optional(rel: &str) -> String {
    std::fs::read_to_string(common::repo_path(rel)).unwrap_or_default()
}

fn analyze(name: &str, text: String) -> AnalyzedFile {
    let autocommit = name.contains(".autocommit.");
    AnalyzedFile::new(Path::new(name), text, autocommit, PG15)
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// Rules whose findings `fix` rewrites away.
const FIXED_RULES: &[&str] = &[
    "index-build-without-concurrently",
    "index-drop-without-concurrently",
    "reindex-without-concurrently",
    "concurrently-in-transaction",
    "constraint-without-not-valid",
    "validate-after-not-valid-in-transaction",
    "key-constraint-without-using-index",
    "set-not-null-without-check",
    "detach-partition-without-concurrently",
];

/// Analyzes `text` the way `pgshift apply` runs it: with a lock_timeout in
/// effect from the start of the file.
fn analyze_as_applied(name: &str, text: String) -> AnalyzedFile {
    let mut options = AnalyzeOptions::new(PG15);
    options.autocommit = name.contains(".autocommit.");
    options.lock_timeout = true;
    AnalyzedFile::with_options(Path::new(name), text, &options)
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// Learns the facts a schema script establishes, as if it were an earlier
/// migration of the plan.
fn learn(facts: &mut SchemaFacts, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    for stmt in &pgshift::sql::parse(text).unwrap().statements {
        facts.learn(&stmt.node);
    }
}

/// Runs a file the way its author ran it by hand: each statement on its
/// own, in autocommit. Transaction control is left out, since a
/// CONCURRENTLY statement inside the author's block would fail there.
async fn run_original(client: &tokio_postgres::Client, file: &AnalyzedFile) {
    for (stmt, analysis, _) in file.statements() {
        if matches!(analysis.transaction, TransactionUse::Control(_)) {
            continue;
        }
        client.batch_execute(&stmt.text).await.unwrap_or_else(|e| {
            panic!(
                "original {}: {} failed: {e:?}",
                file.path.display(),
                stmt.text
            )
        });
    }
}

/// Runs steps as the executor sends them: a transactional step in one
/// transaction, the others one statement per message.
async fn run_steps(client: &tokio_postgres::Client, what: &str, steps: &[Step]) {
    for step in steps {
        let transaction = step.in_transaction();
        if transaction {
            client.batch_execute("BEGIN").await.unwrap();
        }
        for s in &step.statements {
            client.batch_execute(&s.sql).await.unwrap_or_else(|e| {
                panic!("{what}: step {} `{}` failed: {e:?}", step.index, s.sql)
            });
        }
        if transaction {
            client.batch_execute("COMMIT").await.unwrap();
        }
    }
}

/// The part of a step that the executor acts on.
fn shape(steps: &[Step]) -> Vec<(StepKind, Vec<String>)> {
    steps
        .iter()
        .map(|s| {
            (
                s.kind.clone(),
                s.statements.iter().map(|t| t.sql.clone()).collect(),
            )
        })
        .collect()
}

/// Fixes `input`, checks the output's properties and returns the steps
/// that the rewritten file runs as.
fn fix_and_check(name: &str, input: &str, facts: &SchemaFacts) -> (String, Vec<Step>) {
    let (text, steps, _) = fix_and_check_with(name, input, facts, &RewriteOptions::default());
    (text, steps)
}

/// Like [`fix_and_check`], with `fix`'s rewrite choices; also returns the
/// notes on rewrites not made.
fn fix_and_check_with(
    name: &str,
    input: &str,
    facts: &SchemaFacts,
    options: &RewriteOptions,
) -> (String, Vec<Step>, Vec<Note>) {
    let original = analyze(name, input.to_string());
    let fixed =
        fix_file_with_options(&original, facts, options).unwrap_or_else(|e| panic!("{name}: {e}"));
    let output = analyze(name, fixed.text.clone());

    // What fix prints plans into exactly the steps apply runs, with the
    // default choices too: the fixed text carries its own directives.
    let replanned = plan_file_with(&output, facts).unwrap();
    assert_eq!(
        shape(&replanned.steps),
        shape(&fixed.steps),
        "{name}: the fixed text plans differently\n{}",
        fixed.text
    );
    // Idempotent: fixing the output changes nothing.
    let again = fix_file_with_options(&output, facts, options).unwrap();
    assert_eq!(
        again.text, fixed.text,
        "{name}: fixing the output changed it"
    );
    assert!(!again.changed, "{name}");
    // The output lints clean as pgshift applies it (with the plan's
    // lock_timeout set before every step) for every rule that `fix`
    // addresses, and it has no finding the input did not have. Findings
    // with no automatic fix, such as a NOT NULL column without a default,
    // stay for the author.
    let applied = analyze_as_applied(name, fixed.text.clone());
    let before: BTreeSet<String> = lint_file(
        &analyze_as_applied(name, input.to_string()),
        &LintOptions::default(),
    )
    .into_iter()
    .map(|d| d.rule)
    .collect();
    let findings = lint_file(&applied, &LintOptions::default());
    for finding in &findings {
        assert!(
            !FIXED_RULES.contains(&finding.rule.as_str()),
            "{name}: the fixed text still has a finding that fix addresses: {finding:#?}\n{}",
            fixed.text
        );
        assert!(
            before.contains(&finding.rule),
            "{name}: fix introduced a finding: {finding:#?}\n{}",
            fixed.text
        );
        if finding.rule == "update-or-delete-without-where" {
            let stmt = applied
                .statements()
                .find(|(s, _, _)| s.line == finding.line)
                .expect("a finding points at a statement");
            assert!(
                !stmt.2.batched_backfill,
                "{name}: a batched backfill is still flagged: {finding:#?}"
            );
        }
    }
    (fixed.text, replanned.steps, fixed.notes)
}

/// Applies `schema` then the original `input` to one database and the
/// rewritten input to another, and compares their catalogs.
async fn assert_same_schema(tag: &str, schema: &str, input: &str, facts: &SchemaFacts) -> String {
    let (text, steps) = fix_and_check(tag, input, facts);
    let original_db = common::TestDb::new(&format!("{tag}_o")).await;
    let rewritten_db = common::TestDb::new(&format!("{tag}_r")).await;
    let original = original_db.client().await;
    let rewritten = rewritten_db.client().await;
    if !schema.trim().is_empty() {
        original.batch_execute(schema).await.unwrap();
        rewritten.batch_execute(schema).await.unwrap();
    }
    run_original(&original, &analyze(tag, input.to_string())).await;
    run_steps(&rewritten, tag, &steps).await;
    catalog::assert_same(
        tag,
        &catalog::snapshot(&original).await,
        &catalog::snapshot(&rewritten).await,
    );
    text
}

#[tokio::test]
async fn every_rewrite_kind_keeps_the_schema() {
    for kind in REWRITE_KINDS {
        let schema = read(&format!("tests/fixtures/fix/{kind}/schema.sql"));
        let input = read(&format!("tests/fixtures/fix/{kind}/input.sql"));
        let mut facts = SchemaFacts::default();
        learn(&mut facts, &schema);
        let text = assert_same_schema(kind, &schema, &input, &facts).await;
        assert_ne!(text, input, "{kind}: the fixture was not rewritten");
    }
}

#[tokio::test]
async fn every_rewrite_case_keeps_the_schema() {
    for case in REWRITE_CASES {
        let schema = read_optional(&format!("tests/cases/{case}/schema.sql"));
        let input = read(&format!("tests/cases/{case}/input.sql"));
        let mut facts = SchemaFacts::default();
        learn(&mut facts, &schema);
        assert_same_schema(case, &schema, &input, &facts).await;
    }
}

#[tokio::test]
async fn every_plan_migration_keeps_the_schema() {
    let plan = Plan::load(&common::repo_path("plans/oauth-1x-to-2x.yaml")).unwrap();
    let original_db = common::TestDb::new("plan_o").await;
    let rewritten_db = common::TestDb::new("plan_r").await;
    let original = original_db.client().await;
    let rewritten = rewritten_db.client().await;
    let mut facts = SchemaFacts::default();
    let mut changed = 0;

    let mut batched = 0;
    for (index, version) in plan.versions.iter().enumerate() {
        // Each migration is fixed with its phase's choices, as apply plans it.
        let phase = plan.phases.iter().find(|p| p.versions.contains(&index));
        let options = RewriteOptions::from_settings(&phase.unwrap().settings);
        for migration in &version.migrations {
            let name = migration.path.display().to_string();
            let file = analyze(&name, migration.sql.clone());
            let (text, steps, _) = fix_and_check_with(&name, &migration.sql, &facts, &options);
            batched += steps
                .iter()
                .filter(|s| matches!(s.kind, StepKind::Backfill { .. }))
                .count();
            changed += usize::from(text != migration.sql);
            run_original(&original, &file).await;
            run_steps(&rewritten, &name, &steps).await;
            catalog::assert_same(
                &name,
                &catalog::snapshot(&original).await,
                &catalog::snapshot(&rewritten).await,
            );
            learn(&mut facts, &migration.sql);
        }
    }
    assert!(changed >= 5, "only {changed} migrations were rewritten");
    assert_eq!(batched, 4, "the 2.0 phase batches V12's four backfills");
}

/// Facts read from the database's catalog give the same rewrite of a
/// partitioned table's index as facts learned from its migrations.
#[tokio::test]
async fn catalog_facts_drive_the_partitioned_index_rewrite() {
    let schema = read("tests/fixtures/fix/partitioned-index/schema.sql");
    let input = read("tests/fixtures/fix/partitioned-index/input.sql");
    let db = common::TestDb::new("part_facts").await;
    db.exec(&schema).await;
    let client = db.client().await;
    let facts = pgshift::db::catalog::schema_facts(&client).await.unwrap();
    assert!(facts.from_database);
    let (text, steps) = fix_and_check("partitioned", &input, &facts);
    assert!(text.contains("ON ONLY events"), "{text}");
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(s.kind, StepKind::ConcurrentIndex { .. }))
            .count(),
        2,
        "one concurrent build per partition: {text}"
    );
    run_steps(&client, "partitioned", &steps).await;
    let valid: bool = client
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_kind_idx'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        valid,
        "the parent index is valid once every partition is attached"
    );
}

/// An index that backs a constraint is left alone: DROP INDEX
/// CONCURRENTLY cannot drop it, and the plain drop fails the same way.
#[tokio::test]
async fn drop_of_constraint_index_is_left_alone_with_a_note() {
    let db = common::TestDb::new("drop_con_idx").await;
    db.exec("CREATE TABLE t (id bigint, code text CONSTRAINT t_code_key UNIQUE)")
        .await;
    let client = db.client().await;
    let facts = pgshift::db::catalog::schema_facts(&client).await.unwrap();
    let file = analyze("drop.sql", "DROP INDEX t_code_key;\n".to_string());
    let fixed = fix_file(&file, &facts).unwrap();
    assert!(!fixed.changed, "{}", fixed.text);
    assert!(fixed
        .notes
        .iter()
        .any(|n| n.skipped && n.reason.contains("backs a constraint")));
    // The server agrees that the concurrent form would fail.
    let err = client
        .batch_execute("DROP INDEX CONCURRENTLY t_code_key")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "2BP01", "{err:?}");

    // Learned from an earlier migration instead of the catalog.
    let mut learned = SchemaFacts::default();
    learn(
        &mut learned,
        "CREATE TABLE t (id bigint, code text CONSTRAINT t_code_key UNIQUE);",
    );
    assert!(!fix_file(&file, &learned).unwrap().changed);
}

/// Runs `steps`, planned from `sql`, through the executor, so batched
/// backfills run batch by batch.
async fn run_with_executor(db: &common::TestDb, sql: &str, steps: &[Step]) {
    let migration = pgshift::plan::Migration {
        id: "1".to_string(),
        name: "backfill".to_string(),
        path: "V1__backfill.sql".into(),
        autocommit: false,
        checksum: "test".to_string(),
        sql: sql.to_string(),
    };
    let (client, info) = pgshift::db::connect(Some(&db.url)).await.unwrap();
    let mut executor = pgshift::exec::Executor::new(client, info, Default::default())
        .await
        .unwrap();
    let settings = pgshift::plan::Settings::default();
    executor
        .run_migration(
            &migration,
            "1.0",
            steps,
            &settings,
            &pgshift::exec::NoopReporter,
        )
        .await
        .unwrap();
    executor
        .end_run(pgshift::state::RunStatus::Succeeded)
        .await
        .unwrap();
}

/// A batched backfill ends in the same schema and the same rows as the
/// UPDATEs it replaces, run through the executor batch by batch; the
/// UPDATEs it cannot batch stay as written, each with its reason.
#[tokio::test]
async fn batched_backfill_keeps_schema_and_rows() {
    let schema = read("tests/fixtures/fix/backfill/schema.sql");
    let input = read("tests/fixtures/fix/backfill/input.sql");
    let mut facts = SchemaFacts::default();
    learn(&mut facts, &schema);
    let options = RewriteOptions {
        batch_backfills: true,
        batch_size: 300,
        ..RewriteOptions::default()
    };
    let (text, steps, notes) = fix_and_check_with("backfill", &input, &facts, &options);

    let batched = steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Backfill { .. }))
        .count();
    assert_eq!(batched, 3, "{text}");
    assert_eq!(
        text.matches("-- pgshift:backfill batch-size=300\n").count(),
        3,
        "{text}"
    );
    for reason in [
        "not known whether table audit has a primary key",
        "RETURNING",
        "WITH clause",
        "sets primary key column sku",
    ] {
        assert!(
            notes
                .iter()
                .any(|n| n.skipped && n.rewrite == "batched-backfill" && n.reason.contains(reason)),
            "no skipped note containing {reason:?}: {notes:#?}"
        );
    }
    // Without the plan's choice the same input is left as written.
    let plain = fix_file(&analyze("backfill", input.clone()), &facts).unwrap();
    assert!(!plain.text.contains("pgshift:backfill"), "{}", plain.text);

    let original_db = common::TestDb::new("bf_rows_o").await;
    let rewritten_db = common::TestDb::new("bf_rows_r").await;
    let original = original_db.client().await;
    let rewritten = rewritten_db.client().await;
    original.batch_execute(&schema).await.unwrap();
    rewritten.batch_execute(&schema).await.unwrap();
    // The catalog tells that audit has no primary key.
    let catalog_facts = pgshift::db::catalog::schema_facts(&rewritten)
        .await
        .unwrap();
    let (_, _, notes) = fix_and_check_with("backfill", &input, &catalog_facts, &options);
    assert!(
        notes
            .iter()
            .any(|n| n.skipped && n.reason.contains("table audit has no primary key")),
        "{notes:#?}"
    );
    run_original(&original, &analyze("backfill", input.clone())).await;

    run_with_executor(&rewritten_db, &text, &steps).await;

    catalog::assert_same(
        "backfill",
        &catalog::snapshot(&original).await,
        &catalog::snapshot(&rewritten).await,
    );
    for table in ["items", "stock", "audit", "fresh", "tenants"] {
        let query = format!(
            "SELECT coalesce(string_agg(t::text, ';' ORDER BY t::text), '') FROM {table} t"
        );
        let expected: String = original.query_one(&query, &[]).await.unwrap().get(0);
        let actual: String = rewritten.query_one(&query, &[]).await.unwrap().get(0);
        assert!(!expected.is_empty() || table == "fresh", "{table} has rows");
        assert!(
            expected == actual,
            "{table}: the rows differ after the batched backfill"
        );
    }
    // Each backfill ran in more than one batch.
    let batches: Vec<i64> = rewritten
        .query(
            "SELECT batches FROM pgshift.backfill_progress WHERE finished ORDER BY step_index",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(batches.len(), 3, "{batches:?}");
    assert!(batches.iter().all(|&b| b > 1), "{batches:?}");
}

/// ADD COLUMN with a volatile default becomes a plain ADD COLUMN, SET
/// DEFAULT, a batched backfill and the safe SET NOT NULL, and ends in the
/// same schema with every existing row filled.
#[tokio::test]
async fn volatile_default_column_keeps_the_schema() {
    let schema = read("tests/fixtures/fix/add-column-default/schema.sql");
    let input = read("tests/fixtures/fix/add-column-default/input.sql");
    let mut facts = SchemaFacts::default();
    learn(&mut facts, &schema);
    let options = RewriteOptions {
        batch_backfills: true,
        batch_size: 400,
        ..RewriteOptions::default()
    };
    let (text, steps, notes) = fix_and_check_with("add_column", &input, &facts, &options);
    let batched = steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Backfill { .. }))
        .count();
    assert_eq!(batched, 2, "{text}");
    assert!(text.contains("SET DEFAULT gen_random_uuid()"), "{text}");
    assert!(
        text.contains("CHECK (token IS NOT NULL) NOT VALID"),
        "{text}"
    );
    assert!(
        text.contains("ALTER TABLE items ADD COLUMN created_at timestamptz DEFAULT now();"),
        "the stable default stays as written: {text}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.skipped && n.rewrite == "add-column-batched-default"),
        "{notes:#?}"
    );
    // Without batching allowed the statements stay as written.
    let plain = fix_file(&analyze("add_column", input.clone()), &facts).unwrap();
    assert!(!plain.changed, "{}", plain.text);

    let original_db = common::TestDb::new("bf_addcol_o").await;
    let rewritten_db = common::TestDb::new("bf_addcol_r").await;
    let original = original_db.client().await;
    let rewritten = rewritten_db.client().await;
    original.batch_execute(&schema).await.unwrap();
    rewritten.batch_execute(&schema).await.unwrap();
    run_original(&original, &analyze("add_column", input.clone())).await;
    run_with_executor(&rewritten_db, &text, &steps).await;

    catalog::assert_same(
        "add_column",
        &catalog::snapshot(&original).await,
        &catalog::snapshot(&rewritten).await,
    );
    let filled: i64 = rewritten
        .query_one(
            "SELECT count(DISTINCT token) FROM items WHERE seen_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(filled, 2500, "every existing row got its own value");
}

/// `fix --lock-timeout` writes `SET LOCAL lock_timeout` before the first
/// strong lock of each transaction, so its output raises no lock-timeout
/// finding, keeps concurrent builds free of it, and stays idempotent.
#[test]
fn lock_timeout_is_set_before_strong_locks() {
    let options = RewriteOptions {
        lock_timeout: Some(std::time::Duration::from_secs(2)),
        ..RewriteOptions::default()
    };
    let mut with_timeout = 0;
    for kind in REWRITE_KINDS {
        let schema = read(&format!("tests/fixtures/fix/{kind}/schema.sql"));
        let input = read(&format!("tests/fixtures/fix/{kind}/input.sql"));
        let mut facts = SchemaFacts::default();
        learn(&mut facts, &schema);
        let (text, _, _) = fix_and_check_with(kind, &input, &facts, &options);
        with_timeout += usize::from(text.contains("SET LOCAL lock_timeout = '2000ms';"));
        let output = analyze(kind, text.clone());
        let findings: Vec<String> = lint_file(&output, &LintOptions::default())
            .into_iter()
            .filter(|d| d.rule == "strong-lock-without-lock-timeout")
            // Concurrent statements are left without one on purpose: they
            // wait for older transactions by design.
            .filter(|d| {
                let stmt = output.parsed.statements.iter().find(|s| s.line == d.line);
                !stmt.is_some_and(|s| s.text.contains("CONCURRENTLY"))
            })
            .map(|d| format!("line {}: {}", d.line, d.message))
            .collect();
        assert!(findings.is_empty(), "{kind}: {findings:#?}\n{text}");
    }
    // Concurrent builds take no strong lock; the other kinds all do.
    assert_eq!(with_timeout, 8, "kinds with a lock_timeout written");
}
