//! The runtime cases: each runs the case's migration through the executor on
//! the real server, recreates the failure the case describes and asserts
//! the recovery.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgshift::db::{self, BlockingPid};
use pgshift::exec::{ExecError, ExecOptions, Executor, LockHolder, LockWait, Reporter, RetryEvent};
use pgshift::exec::{Interrupt, SkipReason};
use pgshift::locks::PgVersion;
use pgshift::plan::{Migration, Settings};
use pgshift::rewrite::{plan_migration, Step};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

const PG15: PgVersion = PgVersion::new(15, 0);

#[derive(Default)]
struct Recorder {
    retries: Mutex<Vec<RetrySeen>>,
    retry_signal: Notify,
    skipped: Mutex<Vec<(usize, SkipReason)>>,
    blocked: Mutex<Vec<BlockingPid>>,
    lock_waiting: Notify,
}

#[derive(Debug, Clone)]
struct RetrySeen {
    attempt: u32,
    blockers: Vec<BlockingPid>,
}

impl Reporter for Recorder {
    fn lock_waiting(&self, _holder: &LockHolder) {
        self.lock_waiting.notify_one();
    }

    fn step_retry(&self, event: &RetryEvent<'_>) {
        self.retries.lock().unwrap().push(RetrySeen {
            attempt: event.attempt,
            blockers: event.blockers.to_vec(),
        });
        self.retry_signal.notify_one();
    }

    fn step_skipped(&self, _migration: &Migration, step: &Step, reason: SkipReason) {
        self.skipped.lock().unwrap().push((step.index, reason));
    }

    fn blocked(&self, _migration: &Migration, _step: &Step, blockers: &[BlockingPid]) {
        self.blocked.lock().unwrap().extend_from_slice(blockers);
    }
}

fn case_input(id: &str) -> String {
    let path = common::repo_path(&format!("tests/cases/{id}/input.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn case_schema(id: &str) -> String {
    let path = common::repo_path(&format!("tests/cases/{id}/schema.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A migration from `sql`; `autocommit` runs every statement on its own, as
/// the cases' `-- phase: no-transaction` means.
fn migration(id: &str, sql: &str, autocommit: bool) -> Migration {
    Migration {
        id: id.to_string(),
        name: format!("case_{id}"),
        path: PathBuf::from(format!("migrations/V{id}__case.sql")),
        autocommit,
        checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        sql: sql.to_string(),
    }
}

fn settings(lock_timeout_ms: u64, concurrent_ms: u64, retries: u32) -> Settings {
    Settings {
        lock_timeout: Duration::from_millis(lock_timeout_ms),
        concurrent_lock_timeout: Duration::from_millis(concurrent_ms),
        retries,
        retry_backoff: Duration::from_millis(20),
        retry_backoff_max: Duration::from_secs(60),
        ..Settings::default()
    }
}

async fn executor(db: &common::TestDb, options: ExecOptions) -> Executor {
    let (client, info) = db::connect(Some(&db.url)).await.unwrap();
    Executor::new(client, info, options).await.unwrap()
}

async fn run(
    executor: &mut Executor,
    migration: &Migration,
    settings: &Settings,
    reporter: &dyn Reporter,
) -> Result<(), ExecError> {
    let steps = plan_migration(migration, PG15).unwrap();
    executor
        .run_migration(migration, "1.0", &steps, settings, reporter)
        .await?;
    Ok(())
}

async fn scalar(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Opens a REPEATABLE READ transaction holding a snapshot; concurrent
/// builds started later wait for it to end.
async fn hold_snapshot(db: &common::TestDb) -> tokio_postgres::Client {
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    holder
}

async fn index_valid(client: &tokio_postgres::Client, name: &str) -> Option<bool> {
    client
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = $1",
            &[&name],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

#[tokio::test]
async fn cic_invalid_index_rerun() {
    let id = "cic-invalid-index-rerun";
    let db = common::TestDb::new("rt_invalid_rerun").await;
    db.exec(&case_schema(id)).await;
    db.exec("INSERT INTO tokens VALUES (1, 'a'), (2, 'a'), (3, 'b')")
        .await;
    let client = db.client().await;

    // The failure: a unique build over duplicates leaves an INVALID index,
    // and the case's IF NOT EXISTS rerun succeeds while it stays invalid.
    let failed = client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY tokens_digest_key ON tokens (digest)")
        .await
        .unwrap_err();
    assert_eq!(failed.code().unwrap().code(), "23505");
    client
        .batch_execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tokens_digest_key ON tokens (digest)",
        )
        .await
        .unwrap();
    assert_eq!(index_valid(&client, "tokens_digest_key").await, Some(false));

    // With the duplicates still there, pgshift stops, names them and drops
    // the leftover, so nothing keeps rejecting writes.
    let recorder = Recorder::default();
    let case = migration("1", &case_input(id), true);
    let mut exec = executor(&db, ExecOptions::default()).await;
    let error = run(&mut exec, &case, &settings(1000, 0, 3), &recorder)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("23505"), "{text}");
    assert!(text.contains("Key (digest)"), "{text}");
    assert!(
        recorder.retries.lock().unwrap().is_empty(),
        "23505 is not retried"
    );
    assert_eq!(index_valid(&client, "tokens_digest_key").await, None);

    // The same leftover again, then the duplicate removed: the rerun drops
    // the INVALID index and builds a valid one.
    let _ = client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY tokens_digest_key ON tokens (digest)")
        .await
        .unwrap_err();
    assert_eq!(index_valid(&client, "tokens_digest_key").await, Some(false));
    client
        .batch_execute("DELETE FROM tokens WHERE id = 2")
        .await
        .unwrap();
    run(&mut exec, &case, &settings(1000, 0, 3), &recorder)
        .await
        .unwrap();
    assert_eq!(index_valid(&client, "tokens_digest_key").await, Some(true));
    let duplicate = client
        .batch_execute("INSERT INTO tokens VALUES (4, 'a')")
        .await
        .unwrap_err();
    assert_eq!(duplicate.code().unwrap().code(), "23505");
}

#[tokio::test]
async fn lock_queue_retries_then_succeeds() {
    let id = "lock-queue-needs-lock-timeout";
    let db = common::TestDb::new("rt_lock_queue").await;
    db.exec(&case_schema(id)).await;

    // A long reader holds ACCESS SHARE on orders until the first retry.
    let reader = db.client().await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM orders")
        .await
        .unwrap();
    let reader_pid = backend_pid(&reader).await;
    let recorder = Arc::new(Recorder::default());
    let signal = Arc::clone(&recorder);
    let release = tokio::spawn(async move {
        signal.retry_signal.notified().await;
        reader.batch_execute("COMMIT").await.unwrap();
    });

    let case = migration("1", &case_input(id), false);
    let mut exec = executor(&db, ExecOptions::default()).await;
    run(&mut exec, &case, &settings(500, 0, 5), recorder.as_ref())
        .await
        .unwrap();
    release.await.unwrap();

    let retries = recorder.retries.lock().unwrap().clone();
    assert!(!retries.is_empty());
    assert_eq!(retries[0].attempt, 1);
    let blockers: Vec<i32> = retries[0].blockers.iter().map(|b| b.pid).collect();
    assert_eq!(blockers, vec![reader_pid], "the retry names the reader");
    let client = db.client().await;
    let column = scalar(
        &client,
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 'orders' AND column_name = 'shipped_at'",
    )
    .await;
    assert_eq!(column, 1);
}

#[tokio::test]
async fn statement_timeout_not_inherited() {
    let id = "statement-timeout-kills-cic";
    let db = common::TestDb::new("rt_statement_timeout").await;
    db.exec(&case_schema(id)).await;
    // A database default that cancels anything slower than 50 ms; sessions
    // opened from now on inherit it.
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET statement_timeout = '50ms'",
        db.name
    ))
    .await;
    let probe = db.client().await;
    let inherited = probe
        .batch_execute("SELECT pg_sleep(0.3)")
        .await
        .unwrap_err();
    assert_eq!(inherited.code().unwrap().code(), "57014");

    // The case's file ends with RESET statement_timeout, which brings the
    // database default back on that session; the next migration's slow
    // statement still runs because pgshift sets the timeout per step.
    let mut exec = executor(&db, ExecOptions::default()).await;
    let case = migration("1", &case_input(id), true);
    run(
        &mut exec,
        &case,
        &settings(1000, 0, 0),
        &Recorder::default(),
    )
    .await
    .unwrap();
    let slow = migration("2", "SELECT pg_sleep(0.3);\n", false);
    run(
        &mut exec,
        &slow,
        &settings(1000, 0, 0),
        &Recorder::default(),
    )
    .await
    .unwrap();

    let shown: String = exec
        .client()
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(shown, "0", "pgshift's session runs without the default");
    assert_eq!(index_valid(&probe, "orders_lookup_idx").await, Some(true));
}

#[tokio::test]
async fn cic_snapshot_wait_retried_after_holder_ends() {
    let id = "cic-lock-timeout-snapshot-wait";
    let db = common::TestDb::new("rt_snapshot_wait").await;
    db.exec(&case_schema(id)).await;
    db.exec("INSERT INTO events SELECT i, i % 7 FROM generate_series(1, 1000) i")
        .await;

    // A transaction with an old snapshot on no table in particular makes
    // the build wait; the short budget ends the wait with 55P03. The holder
    // ends once the first retry is reported.
    let holder = hold_snapshot(&db).await;
    let holder_pid = backend_pid(&holder).await;
    let recorder = Arc::new(Recorder::default());
    let signal = Arc::clone(&recorder);
    let release = tokio::spawn(async move {
        signal.retry_signal.notified().await;
        holder.batch_execute("COMMIT").await.unwrap();
    });

    // The case sets lock_timeout = 3s in the file; pgshift's own budget for
    // concurrent builds comes from the settings and is shorter here.
    let sql = "CREATE INDEX CONCURRENTLY events_account_id_idx ON events (account_id);\n";
    let case = migration("1", sql, true);
    let mut exec = executor(&db, ExecOptions::default()).await;
    run(&mut exec, &case, &settings(1000, 300, 5), recorder.as_ref())
        .await
        .unwrap();
    release.await.unwrap();

    let retries = recorder.retries.lock().unwrap().clone();
    assert_eq!(
        retries.len(),
        1,
        "the retry waits for the old transaction instead of failing again: {retries:?}"
    );
    let first = &retries[0];
    assert!(
        first
            .blockers
            .iter()
            .any(|b| b.pid == holder_pid && b.wait == "snapshot"),
        "{first:?}"
    );
    let client = db.client().await;
    assert_eq!(
        index_valid(&client, "events_account_id_idx").await,
        Some(true)
    );
    let invalid = scalar(
        &client,
        "SELECT count(*) FROM pg_index WHERE NOT indisvalid",
    )
    .await;
    assert_eq!(invalid, 0);
}

#[tokio::test]
async fn blocking_advisory_wait_stalls_build() {
    // The hazard the run lock avoids: a session blocked in
    // pg_advisory_lock runs a statement with a snapshot, so a concurrent
    // build elsewhere waits for it, while its lock holder waits for the
    // build.
    let db = common::TestDb::new("rt_advisory_hazard").await;
    db.exec("CREATE TABLE accounts (id bigint PRIMARY KEY)")
        .await;
    let holder = db.client().await;
    holder
        .batch_execute("SELECT pg_advisory_lock(42)")
        .await
        .unwrap();
    let waiter = db.client().await;
    let waiter_pid = backend_pid(&waiter).await;
    let blocked_call = tokio::spawn(async move {
        let _ = waiter.batch_execute("SELECT pg_advisory_lock(42)").await;
        waiter
    });
    let monitor = db.client().await;
    wait_for(
        &monitor,
        &format!(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = {waiter_pid} \
         AND locktype = 'advisory' AND NOT granted)"
        ),
    )
    .await;

    let builder = db.client().await;
    let builder_pid = backend_pid(&builder).await;
    let build = tokio::spawn(async move {
        builder
            .batch_execute("CREATE INDEX CONCURRENTLY accounts_id_idx ON accounts (id)")
            .await
    });
    wait_for(
        &monitor,
        &format!(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = {builder_pid} \
         AND locktype = 'virtualxid' AND NOT granted)"
        ),
    )
    .await;
    let blockers = db::blocking_pids(&monitor, builder_pid).await.unwrap();
    assert!(
        blockers
            .iter()
            .any(|b| b.pid == waiter_pid && b.wait == "snapshot"),
        "{blockers:?}"
    );

    // Releasing the advisory lock ends the stall.
    holder
        .batch_execute("SELECT pg_advisory_unlock(42)")
        .await
        .unwrap();
    let waiter = blocked_call.await.unwrap();
    drop(waiter);
    build.await.unwrap().unwrap();
}

#[tokio::test]
async fn run_lock_does_not_stall_build() {
    let id = "advisory-lock-pgbouncer-transaction-pooling";
    let db = common::TestDb::new("rt_advisory_run_lock").await;
    db.exec(&case_schema(id)).await;
    db.exec("ALTER TABLE accounts ADD COLUMN email text").await;

    // The first run holds the run lock and builds an index that waits for
    // an old snapshot until the second run polls for the run lock.
    let holder = hold_snapshot(&db).await;
    let build = migration(
        "1",
        "CREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);\n",
        true,
    );
    let mut first = executor(&db, ExecOptions::default()).await;
    let first_run = tokio::spawn(async move {
        let result = run(
            &mut first,
            &build,
            &settings(1000, 0, 0),
            &Recorder::default(),
        )
        .await;
        first
            .end_run(pgshift::state::RunStatus::Succeeded)
            .await
            .unwrap();
        result
    });
    let monitor = db.client().await;
    wait_for(
        &monitor,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index \
         WHERE datname = current_database() AND phase = 'waiting for old snapshots')",
    )
    .await;

    let recorder = Arc::new(Recorder::default());
    let waiting = Arc::clone(&recorder);
    let second_options = ExecOptions {
        lock_wait: LockWait::Wait {
            poll: Duration::from_millis(50),
            timeout: None,
        },
        ..ExecOptions::default()
    };
    let mut second = executor(&db, second_options).await;
    let case = migration("2", &case_input(id), false);
    let second_run = tokio::spawn(async move {
        run(&mut second, &case, &settings(1000, 0, 0), waiting.as_ref()).await
    });
    recorder.lock_waiting.notified().await;
    holder.batch_execute("COMMIT").await.unwrap();

    first_run.await.unwrap().unwrap();
    second_run.await.unwrap().unwrap();
    assert_eq!(
        index_valid(&monitor, "accounts_email_idx").await,
        Some(true)
    );
    let column = scalar(
        &monitor,
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 'accounts' AND column_name = 'timezone'",
    )
    .await;
    assert_eq!(column, 1);
}

#[tokio::test]
async fn partial_failure_resumes_at_failed_statement() {
    let id = "non-transactional-partial-failure";
    let db = common::TestDb::new("rt_partial_failure").await;
    db.exec(&case_schema(id)).await;
    db.exec("INSERT INTO schema_flags VALUES ('fulfilment', 'off')")
        .await;
    let case = migration("1", &case_input(id), true);
    let steps = plan_migration(&case, PG15).unwrap();
    assert_eq!(steps.len(), 3, "one step per statement");

    // The build (line 3) is interrupted while it waits for an old snapshot.
    let holder = hold_snapshot(&db).await;
    let interrupt = Interrupt::default();
    let mut exec = executor(
        &db,
        ExecOptions {
            interrupt: interrupt.clone(),
            ..ExecOptions::default()
        },
    )
    .await;
    let first = tokio::spawn(async move {
        let result = run(
            &mut exec,
            &case,
            &settings(1000, 0, 0),
            &Recorder::default(),
        )
        .await;
        let _ = exec.end_run(pgshift::state::RunStatus::Interrupted).await;
        result
    });
    let monitor = db.client().await;
    wait_for(
        &monitor,
        "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index \
         WHERE datname = current_database() AND phase = 'waiting for old snapshots')",
    )
    .await;
    interrupt.request();
    let error = first.await.unwrap().unwrap_err();
    assert!(
        matches!(error, ExecError::Interrupted { line: 3, .. }),
        "{error}"
    );
    assert_eq!(index_valid(&monitor, "orders_fulfilled_at_idx").await, None);
    holder.batch_execute("COMMIT").await.unwrap();

    // The rerun skips line 2, whose ADD COLUMN would fail if sent again.
    let recorder = Recorder::default();
    let case = migration("1", &case_input(id), true);
    let mut exec = executor(&db, ExecOptions::default()).await;
    run(&mut exec, &case, &settings(1000, 0, 0), &recorder)
        .await
        .unwrap();
    let skipped = recorder.skipped.lock().unwrap().clone();
    assert_eq!(skipped, vec![(0, SkipReason::AlreadyDone)]);
    assert_eq!(
        index_valid(&monitor, "orders_fulfilled_at_idx").await,
        Some(true)
    );
    let flag: String = monitor
        .query_one(
            "SELECT value FROM schema_flags WHERE name = 'fulfilment'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(flag, "on");
    let journal = pgshift::state::journal(&monitor, "1").await.unwrap();
    let statuses: Vec<(i32, &str)> = journal
        .iter()
        .map(|e| (e.step_index, e.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![(0, "done"), (1, "interrupted"), (1, "done"), (2, "done")]
    );
}

/// Polls `sql` until it returns true; panics after a minute.
async fn wait_for(client: &tokio_postgres::Client, sql: &str) {
    let started = std::time::Instant::now();
    loop {
        let done: bool = client.query_one(sql, &[]).await.unwrap().get(0);
        if done {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting for: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
