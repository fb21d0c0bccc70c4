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
use pgshift::rewrite::{fix_file, plan_file_with, SchemaFacts, Step, StepKind};

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
    let original = analyze(name, input.to_string());
    let fixed = fix_file(&original, facts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let output = analyze(name, fixed.text.clone());

    // What fix prints plans into exactly the steps apply runs.
    let replanned = plan_file_with(&output, facts).unwrap();
    assert_eq!(
        shape(&replanned.steps),
        shape(&fixed.steps),
        "{name}: the fixed text plans differently\n{}",
        fixed.text
    );
    // Idempotent: fixing the output changes nothing.
    let again = fix_file(&output, facts).unwrap();
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
    }
    (fixed.text, replanned.steps)
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

    for version in &plan.versions {
        for migration in &version.migrations {
            let name = migration.path.display().to_string();
            let file = analyze(&name, migration.sql.clone());
            let (text, steps) = fix_and_check(&name, &migration.sql, &facts);
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
