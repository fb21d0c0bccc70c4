//! Each rewritten statement kind, run against a table under a steady
//! write load, with the longest wait of any single write recorded. The
//! numbers are printed (run with `--nocapture`) and kept in BENCHMARKS.md;
//! nothing here asserts on time. For contrast the plain CREATE INDEX runs
//! under the same load.

#[path = "rewrite_catalog.rs"]
mod catalog;

use catalog::common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgshift::analysis::AnalyzedFile;
use pgshift::exec::{ExecOptions, Executor, NoopReporter};
use pgshift::locks::PgVersion;
use pgshift::plan::{Migration, Settings};
use pgshift::rewrite::{fix_file_with_options, RewriteOptions, SchemaFacts, Step, StepKind};
use pgshift::state::RunStatus;

/// The lock_timeout every step runs with, as the executor sets it.
const LOCK_TIMEOUT_MS: u64 = 200;
/// Rows loaded so that scans and builds take measurable time.
const ROWS: i64 = 300_000;
const MAX_WRITES: usize = 200_000;
const MAX_LOAD: Duration = Duration::from_secs(120);

struct Kind {
    fixture: &'static str,
    /// Loads ROWS more rows that satisfy the fixture's new constraint.
    fill: &'static str,
    /// One write the application keeps doing on the table.
    write: &'static str,
}

const KINDS: [Kind; 11] = [
    Kind {
        fixture: "create-index",
        fill: "INSERT INTO items SELECT g, 'sku' || g, g FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET price = price WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "drop-index",
        fill: "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1, $ROWS) g",
        write: "UPDATE items SET sku = sku WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "reindex",
        fill: "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET sku = sku WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "foreign-key",
        fill: "INSERT INTO items SELECT g, g % 10 + 1 FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET id = id WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "check",
        fill: "INSERT INTO items SELECT g, g FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET id = id WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "set-not-null",
        fill: "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET id = id WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "unique",
        fill: "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET id = id WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "primary-key",
        fill: "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1001, $ROWS) g",
        write: "UPDATE items SET sku = sku WHERE ctid = '(0,1)'",
    },
    Kind {
        fixture: "partitioned-index",
        fill: "INSERT INTO events SELECT g, date '2024-01-01' + (g % 700), 'k' || (g % 5) \
               FROM generate_series(2001, $ROWS) g",
        write: "INSERT INTO events (id, at, kind) VALUES (0, '2025-06-01', 'w')",
    },
    Kind {
        fixture: "detach-partition",
        fill: "INSERT INTO events SELECT g, date '2024-01-01' + (g % 700) \
               FROM generate_series(1, $ROWS) g",
        write: "INSERT INTO events (id, at) VALUES (0, '2025-06-01')",
    },
    Kind {
        fixture: "add-column-default",
        fill: "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(2501, $ROWS) g",
        write: "UPDATE items SET sku = sku WHERE id = 1",
    },
];

fn read(rel: &str) -> String {
    std::fs::read_to_string(common::repo_path(rel)).unwrap()
}

/// What the writer saw.
#[derive(Debug)]
struct Load {
    writes: usize,
    max_wait: Duration,
    errors: Vec<String>,
}

/// Writes in a loop until `stop` is set, or the count or time bound is
/// reached, recording the longest single write.
async fn writer(url: String, write: &'static str, stop: Arc<AtomicBool>) -> Load {
    let client = common::connect(&url).await;
    let started = Instant::now();
    let mut load = Load {
        writes: 0,
        max_wait: Duration::ZERO,
        errors: Vec::new(),
    };
    while !stop.load(Ordering::Relaxed) && load.writes < MAX_WRITES && started.elapsed() < MAX_LOAD
    {
        let t = Instant::now();
        if let Err(e) = client.batch_execute(write).await {
            load.errors.push(format!("{e:?}"));
        }
        load.max_wait = load.max_wait.max(t.elapsed());
        load.writes += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    load
}

/// Runs steps like the executor: lock_timeout on the session, each
/// transactional step in one transaction, a step that hits the lock
/// timeout retried.
async fn run_steps(client: &tokio_postgres::Client, steps: &[Step]) -> usize {
    client
        .batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
        .await
        .unwrap();
    let mut retries = 0;
    for step in steps {
        for attempt in 1.. {
            let body: Vec<&str> = step.statements.iter().map(|s| s.sql.as_str()).collect();
            let result = if step.in_transaction() {
                let sql = format!("BEGIN; {}; COMMIT", body.join("; "));
                client.batch_execute(&sql).await
            } else {
                client.batch_execute(body[0]).await
            };
            match result {
                Ok(()) => break,
                Err(e) if e.code().is_some_and(|c| c.code() == "55P03") && attempt < 50 => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("step {} failed: {e:?}", step.index),
            }
        }
    }
    retries
}

/// Runs steps with pgshift's executor, for kinds whose steps need it (a
/// batched backfill runs batch by batch, which `run_steps` cannot do).
async fn run_with_executor(db: &common::TestDb, steps: &[Step]) -> usize {
    let (client, info) = pgshift::db::connect(Some(&db.url)).await.unwrap();
    let mut executor = Executor::new(client, info, ExecOptions::default())
        .await
        .unwrap();
    let migration = Migration {
        id: "1".to_string(),
        name: "load".to_string(),
        path: "V1__load.sql".into(),
        autocommit: false,
        checksum: "fixed".to_string(),
        sql: String::new(),
    };
    let settings = Settings {
        lock_timeout: Duration::from_millis(LOCK_TIMEOUT_MS),
        ..Settings::default()
    };
    let report = executor
        .run_migration(&migration, "1.0", steps, &settings, &NoopReporter)
        .await
        .unwrap();
    executor.end_run(RunStatus::Succeeded).await.unwrap();
    report
        .steps
        .iter()
        .map(|s| (s.attempts as usize).saturating_sub(1))
        .sum()
}

/// Loads a fixture, starts the writer, runs `steps` and returns the load
/// and the time the steps took.
async fn under_load(kind: &Kind, steps: &[Step]) -> (Load, Duration, usize) {
    let db = common::TestDb::new(&format!("load_{}", kind.fixture)).await;
    db.exec(&read(&format!(
        "tests/fixtures/fix/{}/schema.sql",
        kind.fixture
    )))
    .await;
    db.exec(&kind.fill.replace("$ROWS", &ROWS.to_string()))
        .await;
    db.exec("VACUUM ANALYZE").await;

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(writer(db.url.clone(), kind.write, stop.clone()));
    // Let the writer reach its steady state first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = db.client().await;
    let started = Instant::now();
    let retries = if steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::Backfill { .. }))
    {
        run_with_executor(&db, steps).await
    } else {
        run_steps(&client, steps).await
    };
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    (load.await.unwrap(), took, retries)
}

fn fixed_steps(kind: &Kind) -> Vec<Step> {
    let schema = read(&format!("tests/fixtures/fix/{}/schema.sql", kind.fixture));
    let mut facts = SchemaFacts::default();
    for stmt in &pgshift::sql::parse(&schema).unwrap().statements {
        facts.learn(&stmt.node);
    }
    let input = read(&format!("tests/fixtures/fix/{}/input.sql", kind.fixture));
    let file =
        AnalyzedFile::new(Path::new(kind.fixture), input, false, PgVersion::new(15, 0)).unwrap();
    let options = RewriteOptions {
        batch_backfills: true,
        ..RewriteOptions::default()
    };
    fix_file_with_options(&file, &facts, &options)
        .unwrap()
        .steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_statements_under_write_load() {
    println!("lock_timeout {LOCK_TIMEOUT_MS} ms, {ROWS} rows");
    println!(
        "{:<20} {:>8} {:>12} {:>10} {:>8}",
        "kind", "writes", "max wait ms", "took ms", "retries"
    );
    for kind in &KINDS {
        let steps = fixed_steps(kind);
        assert!(steps
            .iter()
            .any(|s| s.statements.iter().any(|t| t.rewritten)));
        let (load, took, retries) = under_load(kind, &steps).await;
        println!(
            "{:<20} {:>8} {:>12} {:>10} {:>8}",
            kind.fixture,
            load.writes,
            load.max_wait.as_millis(),
            took.as_millis(),
            retries
        );
        assert!(
            load.errors.is_empty(),
            "{}: writes failed: {:?}",
            kind.fixture,
            load.errors
        );
        assert!(load.writes > 0, "{}: the writer never wrote", kind.fixture);
    }

    // The contrast: the plain build under the same load.
    let kind = &KINDS[0];
    let plain = AnalyzedFile::new(
        Path::new("plain"),
        read("tests/fixtures/fix/create-index/input.sql"),
        true,
        PgVersion::new(15, 0),
    )
    .unwrap();
    let steps: Vec<Step> = plain
        .parsed
        .statements
        .iter()
        .enumerate()
        .map(|(index, s)| Step {
            index,
            kind: pgshift::rewrite::StepKind::Autocommit,
            statements: vec![pgshift::rewrite::StepStatement {
                sql: s.text.clone(),
                line: s.line,
                rewritten: false,
                locks: Vec::new(),
            }],
        })
        .collect();
    let (load, took, _) = under_load(kind, &steps).await;
    println!(
        "{:<20} {:>8} {:>12} {:>10} {:>8}",
        "plain create-index",
        load.writes,
        load.max_wait.as_millis(),
        took.as_millis(),
        "-"
    );
    assert!(load.errors.is_empty());
}
