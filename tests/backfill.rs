//! Batched backfills in the executor: a stopped run resumes after the last
//! committed batch without repeating one, and a writer under a batched
//! backfill waits for one batch at most.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgshift::analysis::AnalyzedFile;
use pgshift::exec::{BackfillEvent, ExecError, ExecOptions, Executor, Interrupt, Reporter};
use pgshift::locks::PgVersion;
use pgshift::plan::{Migration, Settings};
use pgshift::rewrite::{plan_file_with_options, RewriteOptions, Step, StepKind};
use pgshift::state::RunStatus;

const PG15: PgVersion = PgVersion::new(15, 0);

/// Requests an interrupt once a backfill has committed `after` batches.
struct StopAfter {
    after: i64,
    interrupt: Interrupt,
    batches_seen: AtomicI64,
}

impl Reporter for StopAfter {
    fn backfill_progress(&self, event: &BackfillEvent<'_>) {
        self.batches_seen
            .store(event.progress.batches, Ordering::SeqCst);
        if event.progress.batches >= self.after {
            self.interrupt.request();
        }
    }
}

fn migration(sql: &str) -> Migration {
    Migration {
        id: "1".to_string(),
        name: "backfill".to_string(),
        path: "V1__backfill.sql".into(),
        autocommit: false,
        checksum: "fixed".to_string(),
        sql: sql.to_string(),
    }
}

/// Plans `sql` with batched backfills of `batch_size` rows, with the facts
/// of the database behind `client`.
async fn plan(client: &tokio_postgres::Client, sql: &str, batch_size: u32) -> Vec<Step> {
    let facts = pgshift::db::catalog::schema_facts(client).await.unwrap();
    let file =
        AnalyzedFile::new(Path::new("V1__backfill.sql"), sql.to_string(), false, PG15).unwrap();
    let options = RewriteOptions {
        batch_backfills: true,
        batch_size,
        ..RewriteOptions::default()
    };
    plan_file_with_options(&file, &facts, &options)
        .unwrap()
        .steps
}

async fn executor(db: &common::TestDb, interrupt: Interrupt) -> Executor {
    let (client, info) = pgshift::db::connect(Some(&db.url)).await.unwrap();
    let options = ExecOptions {
        interrupt,
        ..ExecOptions::default()
    };
    Executor::new(client, info, options).await.unwrap()
}

async fn scalar(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// A run stopped after some batches leaves exactly those batches' rows
/// changed; the rerun finishes the rest, and no row is changed twice.
#[tokio::test]
async fn stopped_backfill_resumes_without_repeating() {
    let db = common::TestDb::new("bf_resume").await;
    db.exec(
        "CREATE TABLE counters (region text, id int, hits int NOT NULL DEFAULT 0, \
             PRIMARY KEY (region, id));
         INSERT INTO counters (region, id) \
             SELECT 'r' || (g % 4), g FROM generate_series(1, 5000) g;",
    )
    .await;
    let client = db.client().await;
    let sql = "UPDATE counters SET hits = hits + 1;\n";
    let steps = plan(&client, sql, 400).await;
    assert_eq!(steps.len(), 1);
    assert!(matches!(steps[0].kind, StepKind::Backfill { .. }));
    let migration = migration(sql);
    let settings = Settings::default();

    let interrupt = Interrupt::default();
    let stopper = StopAfter {
        after: 3,
        interrupt: interrupt.clone(),
        batches_seen: AtomicI64::new(0),
    };
    let mut first = executor(&db, interrupt).await;
    let error = first
        .run_migration(&migration, "1.0", &steps, &settings, &stopper)
        .await
        .unwrap_err();
    assert!(matches!(error, ExecError::Interrupted { .. }), "{error:?}");
    first.end_run(RunStatus::Interrupted).await.unwrap();
    drop(first);

    let batches = scalar(&client, "SELECT batches FROM pgshift.backfill_progress").await;
    assert_eq!(batches, 3, "the run stopped after the third batch");
    let changed = scalar(&client, "SELECT count(*) FROM counters WHERE hits = 1").await;
    assert_eq!(changed, 3 * 400, "exactly three batches of rows changed");
    let twice = scalar(&client, "SELECT count(*) FROM counters WHERE hits > 1").await;
    assert_eq!(twice, 0);

    let mut second = executor(&db, Interrupt::default()).await;
    let seen = StopAfter {
        after: i64::MAX,
        interrupt: Interrupt::default(),
        batches_seen: AtomicI64::new(0),
    };
    second
        .run_migration(&migration, "1.0", &steps, &settings, &seen)
        .await
        .unwrap();
    second.end_run(RunStatus::Succeeded).await.unwrap();

    let once = scalar(&client, "SELECT count(*) FROM counters WHERE hits = 1").await;
    assert_eq!(once, 5000, "every row changed once");
    let other = scalar(&client, "SELECT count(*) FROM counters WHERE hits <> 1").await;
    assert_eq!(other, 0, "no row changed twice or missed");
    // 5000 rows in batches of 400: 12 full batches and a last one.
    assert_eq!(seen.batches_seen.load(Ordering::SeqCst), 13);
    let done = scalar(
        &client,
        "SELECT count(*) FROM pgshift.step_journal WHERE status = 'done'",
    )
    .await;
    assert_eq!(done, 1, "the step is journaled done once");
}

/// A backfill whose session is terminated mid-run resumes the same way:
/// the batch in flight rolled back, the committed ones kept.
#[tokio::test]
async fn terminated_backfill_resumes_without_repeating() {
    let db = common::TestDb::new("bf_terminate").await;
    db.exec(
        "CREATE TABLE counters (id bigint PRIMARY KEY, hits int NOT NULL DEFAULT 0);
         INSERT INTO counters (id) SELECT g FROM generate_series(1, 20000) g;",
    )
    .await;
    let client = db.client().await;
    let sql = "UPDATE counters SET hits = hits + 1 WHERE id % 3 <> 0;\n";
    let steps = plan(&client, sql, 100).await;
    let migration = migration(sql);
    let settings = Settings::default();

    // Terminates the executor's session from the reporter after a few
    // batches; the next query of the run then finds the connection gone.
    struct Terminate {
        url: String,
        pid: i32,
        fired: AtomicBool,
    }
    impl Reporter for Terminate {
        fn backfill_progress(&self, event: &BackfillEvent<'_>) {
            if event.progress.batches >= 5 && !self.fired.swap(true, Ordering::SeqCst) {
                let url = self.url.clone();
                let pid = self.pid;
                std::thread::spawn(move || {
                    let mut admin = postgres_sync(&url);
                    admin(&format!("SELECT pg_terminate_backend({pid})"));
                })
                .join()
                .unwrap();
            }
        }
    }

    let mut first = executor(&db, Interrupt::default()).await;
    let terminate = Terminate {
        url: db.url.clone(),
        pid: first.backend_pid(),
        fired: AtomicBool::new(false),
    };
    let error = first
        .run_migration(&migration, "1.0", &steps, &settings, &terminate)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExecError::ConnectionLost { .. }),
        "{error:?}"
    );
    let _ = first.end_run(RunStatus::Failed).await;
    drop(first);

    let mut second = executor(&db, Interrupt::default()).await;
    second
        .run_migration(&migration, "1.0", &steps, &settings, &terminate)
        .await
        .unwrap();
    second.end_run(RunStatus::Succeeded).await.unwrap();
    let once = scalar(
        &client,
        "SELECT count(*) FROM counters WHERE hits = 1 AND id % 3 <> 0",
    )
    .await;
    assert_eq!(once, 20000 - 20000 / 3);
    let wrong = scalar(
        &client,
        "SELECT count(*) FROM counters WHERE hits <> (CASE WHEN id % 3 = 0 THEN 0 ELSE 1 END)",
    )
    .await;
    assert_eq!(wrong, 0, "rows changed twice, missed, or outside the WHERE");
}

/// Returns a function that runs one statement on a new blocking session.
fn postgres_sync(url: &str) -> impl FnMut(&str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(common::connect(url));
    move |sql: &str| {
        runtime.block_on(client.batch_execute(sql)).unwrap();
    }
}

/// The lock_timeout of the load test, as the plan sets it.
const LOCK_TIMEOUT: Duration = Duration::from_millis(200);
const LOAD_ROWS: i64 = 200_000;

/// Updates random rows of `items` until `stop` is set, recording the
/// longest single write.
async fn writer(url: String, stop: Arc<AtomicBool>) -> (usize, Duration, Vec<String>) {
    let client = common::connect(&url).await;
    let mut writes = 0;
    let mut max_wait = Duration::ZERO;
    let mut errors = Vec::new();
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
        let id = (writes as i64 * 7919) % LOAD_ROWS + 1;
        let t = Instant::now();
        if let Err(e) = client
            .execute("UPDATE items SET price = price + 1 WHERE id = $1", &[&id])
            .await
        {
            errors.push(format!("{e:?}"));
        }
        max_wait = max_wait.max(t.elapsed());
        writes += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (writes, max_wait, errors)
}

/// A writer updates rows of the table a batched backfill runs on, then of
/// the same table under the same UPDATE run atomically. Both longest waits
/// are printed (run with `--nocapture`) and recorded in BENCHMARKS.md. The
/// test asserts no time, only that every write and every row went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_under_batched_backfill() {
    let db = common::TestDb::new("bf_load").await;
    db.exec(&format!(
        "CREATE TABLE items (id bigint PRIMARY KEY, price int NOT NULL DEFAULT 0, \
             label text);
         INSERT INTO items (id) SELECT g FROM generate_series(1, {LOAD_ROWS}) g;"
    ))
    .await;
    db.exec("VACUUM ANALYZE items").await;
    let client = db.client().await;
    let sql = "UPDATE items SET label = 'item ' || id || repeat('x', 50);\n";
    let steps = plan(&client, sql, 1000).await;
    assert!(matches!(steps[0].kind, StepKind::Backfill { .. }));
    let settings = Settings {
        lock_timeout: LOCK_TIMEOUT,
        ..Settings::default()
    };

    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(writer(db.url.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut executor = executor(&db, Interrupt::default()).await;
    let started = Instant::now();
    executor
        .run_migration(
            &migration(sql),
            "1.0",
            &steps,
            &settings,
            &pgshift::exec::NoopReporter,
        )
        .await
        .unwrap();
    let batched_took = started.elapsed();
    executor.end_run(RunStatus::Succeeded).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let (writes, batched_wait, errors) = load.await.unwrap();
    assert!(errors.is_empty(), "writes failed: {errors:?}");
    assert!(writes > 0, "the writer never wrote");
    let labelled = scalar(
        &client,
        "SELECT count(*) FROM items WHERE label IS NOT NULL",
    )
    .await;
    assert_eq!(labelled, LOAD_ROWS);

    // The contrast: the same UPDATE in one statement.
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(writer(db.url.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    client
        .batch_execute("UPDATE items SET label = 'again ' || id || repeat('y', 50)")
        .await
        .unwrap();
    let atomic_took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let (_, atomic_wait, _) = load.await.unwrap();

    println!(
        "batched: {writes} writes, max wait {} ms, backfill {} ms; atomic: max wait {} ms, \
         UPDATE {} ms",
        batched_wait.as_millis(),
        batched_took.as_millis(),
        atomic_wait.as_millis(),
        atomic_took.as_millis()
    );
}

/// `pgshift apply` on a plan with `backfill: batched` runs the UPDATE in
/// batches and prints their progress as plain lines when stderr is not a
/// terminal.
#[tokio::test]
async fn apply_prints_backfill_progress() {
    let db = common::TestDb::new("bf_cli").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("v1")).unwrap();
    std::fs::create_dir(dir.path().join("v2")).unwrap();
    std::fs::write(
        dir.path().join("v1/V1__items.sql"),
        "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("v2/V2__backfill.sql"),
        "UPDATE items SET n = n + 1;\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "name: bf\nversions:\n  - version: \"1\"\n    path: v1\n  - version: \"2\"\n    path: v2\n\
         phases:\n  - name: one\n    to: \"1\"\n    strategy: in-place\n\
         \x20 - name: two\n    to: \"2\"\n    strategy: in-place\n    settings:\n\
         \x20     backfill: batched\n      backfill_batch_size: 300\n",
    )
    .unwrap();
    let apply = |to: &str| {
        std::process::Command::new(common::pgshift_bin())
            .args([
                "apply",
                "--to",
                to,
                plan.to_str().unwrap(),
                "--database-url",
                &db.url,
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let first = apply("1");
    assert!(first.status.success(), "{first:?}");
    db.exec("INSERT INTO items (id) SELECT g FROM generate_series(1, 1000) g; ANALYZE items")
        .await;

    let second = apply("2");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("(batched backfill): UPDATE items"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Backfill items done: 1000 rows scanned of ~1000, 1000 updated, 4 batches"),
        "{stderr}"
    );
    let client = db.client().await;
    let once = scalar(&client, "SELECT count(*) FROM items WHERE n = 1").await;
    assert_eq!(once, 1000);
}

/// `pgshift apply` warns about an UPDATE it leaves as written although the
/// phase asks for batched backfills.
#[tokio::test]
async fn apply_warns_about_unbatched_update() {
    let db = common::TestDb::new("bf_warn").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("v1")).unwrap();
    std::fs::write(
        dir.path().join("v1/V1__log.sql"),
        "CREATE TABLE log (note text);\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("v2")).unwrap();
    std::fs::write(
        dir.path().join("v2/V2__upper.sql"),
        "UPDATE log SET note = upper(note);\n",
    )
    .unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "name: bf\nsettings:\n  backfill: batched\nversions:\n  - version: \"1\"\n    path: v1\n\
         \x20 - version: \"2\"\n    path: v2\nphases:\n  - name: all\n    to: \"2\"\n\
         \x20   strategy: in-place\n",
    )
    .unwrap();
    let output = std::process::Command::new(common::pgshift_bin())
        .args([
            "apply",
            "--to",
            "1",
            plan.to_str().unwrap(),
            "--database-url",
            &db.url,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let output = std::process::Command::new(common::pgshift_bin())
        .args(["apply", plan.to_str().unwrap(), "--database-url", &db.url])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("V2__upper.sql:1: not batched, runs in its migration's transaction"),
        "{stderr}"
    );
    assert!(stderr.contains("table log has no primary key"), "{stderr}");
}
