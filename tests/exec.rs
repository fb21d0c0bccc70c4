//! The executor against a real server, with hand-made steps.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgshift::db::{self, IndexState};
use pgshift::exec::{
    self, ApplyOptions, ExecError, ExecOptions, Executor, LockWait, MigrationState, Reporter,
    RetryEvent, RunLock, SkipReason, RUN_LOCK_KEY,
};
use pgshift::locks::RelationName;
use pgshift::plan::{Migration, Phase, Plan, Settings, Strategy, Version};
use pgshift::rewrite::{Step, StepKind, StepStatement};
use pgshift::state::{self, StepStatus};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

/// Records the events the tests look at.
#[derive(Default)]
struct Recorder {
    phases: Mutex<Vec<String>>,
    progress_signal: Notify,
    retries: Mutex<Vec<(u32, Vec<i32>)>>,
    skipped: Mutex<Vec<(usize, SkipReason)>>,
    notices: Mutex<Vec<String>>,
    retry_signal: Notify,
}

impl Reporter for Recorder {
    fn step_retry(&self, event: &RetryEvent<'_>) {
        let pids = event.blockers.iter().map(|b| b.pid).collect();
        self.retries.lock().unwrap().push((event.attempt, pids));
        self.retry_signal.notify_one();
    }

    fn step_skipped(&self, _migration: &Migration, step: &Step, reason: SkipReason) {
        self.skipped.lock().unwrap().push((step.index, reason));
    }

    fn index_progress(&self, progress: &db::IndexProgress) {
        self.phases.lock().unwrap().push(progress.phase.clone());
        self.progress_signal.notify_one();
    }

    fn notice(&self, notice: &db::Notice) {
        self.notices.lock().unwrap().push(notice.message.clone());
    }
}

fn migration(id: &str, name: &str, sql: &str) -> Migration {
    Migration {
        id: id.to_string(),
        name: name.to_string(),
        path: PathBuf::from(format!("migrations/V{id}__{name}.sql")),
        autocommit: false,
        checksum: hex::encode(Sha256::digest(sql.as_bytes())),
        sql: sql.to_string(),
    }
}

fn statement(sql: &str, line: usize) -> StepStatement {
    StepStatement {
        sql: sql.to_string(),
        line,
        rewritten: false,
        locks: Vec::new(),
    }
}

fn transaction(index: usize, statements: &[(&str, usize)]) -> Step {
    Step {
        index,
        kind: StepKind::Transaction,
        statements: statements.iter().map(|(s, l)| statement(s, *l)).collect(),
    }
}

fn autocommit(index: usize, sql: &str, line: usize) -> Step {
    Step {
        index,
        kind: StepKind::Autocommit,
        statements: vec![statement(sql, line)],
    }
}

fn concurrent_index(index: usize, sql: &str, name: &str, table: &str) -> Step {
    let relation = |n: &str| RelationName {
        schema: None,
        name: n.to_string(),
    };
    Step {
        index,
        kind: StepKind::ConcurrentIndex {
            index: relation(name),
            table: relation(table),
        },
        statements: vec![statement(sql, 1)],
    }
}

/// Short timeouts so lock waits end quickly.
fn settings(lock_timeout_ms: u64, retries: u32) -> Settings {
    Settings {
        lock_timeout: Duration::from_millis(lock_timeout_ms),
        retries,
        retry_backoff: Duration::from_millis(20),
        retry_backoff_max: Duration::from_millis(100),
        ..Settings::default()
    }
}

async fn executor(db: &common::TestDb, lock_wait: LockWait) -> Executor {
    let (client, info) = db::connect(Some(&db.url)).await.unwrap();
    let options = ExecOptions {
        lock_wait,
        ..ExecOptions::default()
    };
    Executor::new(client, info, options).await.unwrap()
}

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

fn plan(versions: Vec<Version>) -> Plan {
    let count = versions.len();
    Plan {
        path: PathBuf::from("plan.yaml"),
        name: "test".to_string(),
        description: None,
        settings: Settings::default(),
        versions,
        phases: vec![Phase {
            name: "all".to_string(),
            from: None,
            to: "1.0".to_string(),
            strategy: Strategy::InPlace,
            versions: 0..count,
            settings: Settings::default(),
            blue_green: None,
        }],
    }
}

#[tokio::test]
async fn run_lock_names_holder() {
    let db = common::TestDb::new("exec_run_lock").await;
    let mut first = executor(&db, LockWait::Fail).await;
    let mut second = executor(&db, LockWait::Fail).await;
    first.begin_run("one", &exec::NoopReporter).await.unwrap();

    let client = db.client().await;
    let holder_pid: i32 = client
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let error = second
        .begin_run("two", &exec::NoopReporter)
        .await
        .unwrap_err();
    let ExecError::LockHeld { holder, waited, .. } = &error else {
        panic!("expected LockHeld, got {error}");
    };
    assert_eq!(holder.pid, holder_pid);
    assert_eq!(holder.application_name, "pgshift");
    assert!(holder.backend_start.is_some());
    assert_eq!(*waited, None);
    assert!(
        error.to_string().contains(&format!("pid {holder_pid}")),
        "{error}"
    );

    // Waiting with a limit ends with the same error, which reports the wait.
    let mut patient = executor(
        &db,
        LockWait::Wait {
            poll: Duration::from_millis(20),
            timeout: Some(Duration::from_millis(100)),
        },
    )
    .await;
    let error = patient
        .begin_run("three", &exec::NoopReporter)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ExecError::LockHeld {
                waited: Some(_),
                ..
            }
        ),
        "{error}"
    );

    first.end_run(state::RunStatus::Succeeded).await.unwrap();
    second.begin_run("two", &exec::NoopReporter).await.unwrap();
}

#[tokio::test]
async fn statement_timeout_set_explicitly() {
    let db = common::TestDb::new("exec_statement_timeout").await;
    db.exec(&format!(
        "ALTER DATABASE \"{}\" SET statement_timeout = '5s'",
        db.name
    ))
    .await;
    let mut executor = executor(&db, LockWait::Fail).await;

    let unlimited = migration("1", "zero", "");
    let step = transaction(
        0,
        &[(
            "CREATE TABLE seen AS SELECT current_setting('statement_timeout') AS value",
            1,
        )],
    );
    executor
        .run_migration(
            &unlimited,
            "1.0",
            &[step],
            &Settings::default(),
            &exec::NoopReporter,
        )
        .await
        .unwrap();

    let limited = migration("2", "limited", "");
    let step = transaction(
        0,
        &[(
            "INSERT INTO seen SELECT current_setting('statement_timeout')",
            1,
        )],
    );
    let with_limit = Settings {
        statement_timeout: Duration::from_millis(1500),
        ..Settings::default()
    };
    executor
        .run_migration(&limited, "1.0", &[step], &with_limit, &exec::NoopReporter)
        .await
        .unwrap();

    let client = db.client().await;
    let rows = client
        .query("SELECT value FROM seen ORDER BY ctid", &[])
        .await
        .unwrap();
    let values: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(values, ["0", "1500ms"]);
}

#[tokio::test]
async fn transaction_retried_after_lock_timeout() {
    let db = common::TestDb::new("exec_retry").await;
    db.exec("CREATE TABLE t (id int)").await;
    let blocker = db.client().await;
    let blocker_pid = backend_pid(&blocker).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    // The blocker commits once the executor reports its first retry.
    let recorder = Arc::new(Recorder::default());
    let signal = Arc::clone(&recorder);
    let release = tokio::spawn(async move {
        signal.retry_signal.notified().await;
        blocker.batch_execute("COMMIT").await.unwrap();
    });

    let mut executor = executor(&db, LockWait::Fail).await;
    let migration = migration("1", "add_column", "");
    let step = transaction(0, &[("ALTER TABLE t ADD COLUMN note text", 3)]);
    let report = executor
        .run_migration(
            &migration,
            "1.0",
            &[step],
            &settings(1000, 10),
            recorder.as_ref(),
        )
        .await
        .unwrap();
    release.await.unwrap();

    assert!(report.steps[0].attempts > 1, "{report:?}");
    let retries = recorder.retries.lock().unwrap().clone();
    assert!(!retries.is_empty());
    assert!(retries[0].1.contains(&blocker_pid), "{retries:?}");

    let client = db.client().await;
    let columns = count(
        &client,
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 't' AND column_name = 'note'",
    )
    .await;
    assert_eq!(columns, 1);
    let journal = state::journal(&client, "1").await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, StepStatus::Done);
    assert!(journal[0].attempts > 1, "{journal:?}");
    let applied = state::applied_migrations(&client).await.unwrap();
    assert_eq!(applied.len(), 1);
}

#[tokio::test]
async fn retries_exhausted_names_blocker() {
    let db = common::TestDb::new("exec_exhausted").await;
    db.exec("CREATE TABLE t (id int)").await;
    let blocker = db.client().await;
    let blocker_pid = backend_pid(&blocker).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let mut executor = executor(&db, LockWait::Fail).await;
    let migration = migration("1", "add_column", "");
    let step = transaction(0, &[("ALTER TABLE t ADD COLUMN note text", 7)]);
    let error = executor
        .run_migration(
            &migration,
            "1.0",
            &[step],
            &settings(400, 2),
            &exec::NoopReporter,
        )
        .await
        .unwrap_err();

    let ExecError::RetriesExhausted {
        path,
        line,
        attempts,
        blockers,
        ..
    } = &error
    else {
        panic!("expected RetriesExhausted, got {error}");
    };
    assert_eq!(path, &PathBuf::from("migrations/V1__add_column.sql"));
    assert_eq!(*line, 7);
    assert_eq!(*attempts, 3);
    assert!(
        blockers.iter().any(|b| b.pid == blocker_pid),
        "{blockers:?}"
    );
    assert!(
        error.to_string().contains(&format!("pid {blocker_pid}")),
        "{error}"
    );

    blocker.batch_execute("ROLLBACK").await.unwrap();
    let client = db.client().await;
    let journal = state::journal(&client, "1").await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, StepStatus::Failed);
    assert!(state::applied_migrations(&client).await.unwrap().is_empty());
}

#[tokio::test]
async fn short_lock_timeout_names_blocker() {
    // A lock_timeout shorter than the monitor's sampling interval ends the
    // wait before any sample; the blocker is then found from pg_locks.
    let db = common::TestDb::new("exec_short_timeout").await;
    db.exec("CREATE TABLE t (id int)").await;
    let blocker = db.client().await;
    let blocker_pid = backend_pid(&blocker).await;
    blocker
        .batch_execute("BEGIN; SELECT * FROM t")
        .await
        .unwrap();

    let mut executor = executor(&db, LockWait::Fail).await;
    let sql = "ALTER TABLE t ADD COLUMN note text;\n";
    let migration = migration("1", "add_column", sql);
    let steps = pgshift::rewrite::plan_migration(&migration, pgshift::locks::PgVersion::new(15, 0))
        .unwrap();
    let error = executor
        .run_migration(
            &migration,
            "1.0",
            &steps,
            &settings(20, 0),
            &exec::NoopReporter,
        )
        .await
        .unwrap_err();
    blocker.batch_execute("ROLLBACK").await.unwrap();

    let ExecError::RetriesExhausted { blockers, .. } = &error else {
        panic!("expected RetriesExhausted, got {error}");
    };
    let pids: Vec<i32> = blockers.iter().map(|b| b.pid).collect();
    assert_eq!(pids, vec![blocker_pid], "{blockers:?}");
    assert!(
        error.to_string().contains(&format!("pid {blocker_pid}")),
        "{error}"
    );
}

/// Builds `users_email` concurrently over duplicate emails, which fails and
/// leaves the index INVALID.
async fn make_invalid_index(db: &common::TestDb) -> tokio_postgres::Client {
    db.exec(
        "CREATE TABLE users (id int, email text); \
         INSERT INTO users VALUES (1, 'a@x'), (2, 'a@x'), (3, 'b@x');",
    )
    .await;
    let client = db.client().await;
    let error = client
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email)")
        .await
        .unwrap_err();
    assert_eq!(error.code().unwrap().code(), "23505");
    assert_eq!(
        db::invalid_index(&client, None, "users_email")
            .await
            .unwrap(),
        IndexState::Invalid
    );
    client
}

const BUILD_USERS_EMAIL: &str = "CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email)";

#[tokio::test]
async fn invalid_leftover_rebuilt() {
    let db = common::TestDb::new("exec_invalid_rebuild").await;
    let client = make_invalid_index(&db).await;
    client
        .batch_execute("DELETE FROM users WHERE id = 2")
        .await
        .unwrap();

    let mut executor = executor(&db, LockWait::Fail).await;
    let step = concurrent_index(0, BUILD_USERS_EMAIL, "users_email", "users");
    let first = migration("1", "users_email", BUILD_USERS_EMAIL);
    let report = executor
        .run_migration(
            &first,
            "1.0",
            std::slice::from_ref(&step),
            &settings(1000, 3),
            &exec::NoopReporter,
        )
        .await
        .unwrap();
    assert_eq!(report.steps[0].skipped, None);
    let state = db::invalid_index(&client, None, "users_email")
        .await
        .unwrap();
    assert!(matches!(state, IndexState::Valid { .. }), "{state:?}");

    // The same build again finds the valid index and keeps it.
    let recorder = Recorder::default();
    let again = migration("2", "users_email_again", BUILD_USERS_EMAIL);
    let report = executor
        .run_migration(&again, "1.0", &[step], &settings(1000, 3), &recorder)
        .await
        .unwrap();
    assert_eq!(report.steps[0].skipped, Some(SkipReason::IndexExists));
}

#[tokio::test]
async fn different_index_definition_stops() {
    let db = common::TestDb::new("exec_index_differs").await;
    db.exec("CREATE TABLE users (id int, email text); CREATE INDEX users_email ON users (id)")
        .await;
    let mut executor = executor(&db, LockWait::Fail).await;
    let step = concurrent_index(0, BUILD_USERS_EMAIL, "users_email", "users");
    let error = executor
        .run_migration(
            &migration("1", "users_email", BUILD_USERS_EMAIL),
            "1.0",
            &[step],
            &settings(1000, 3),
            &exec::NoopReporter,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExecError::IndexDefinitionDiffers { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn unique_build_duplicates_leave_nothing() {
    let db = common::TestDb::new("exec_unique_dup").await;
    let client = make_invalid_index(&db).await;

    let mut executor = executor(&db, LockWait::Fail).await;
    let step = concurrent_index(0, BUILD_USERS_EMAIL, "users_email", "users");
    let error = executor
        .run_migration(
            &migration("1", "users_email", BUILD_USERS_EMAIL),
            "1.0",
            &[step],
            &settings(1000, 3),
            &exec::NoopReporter,
        )
        .await
        .unwrap_err();

    let ExecError::Statement {
        sqlstate,
        detail,
        hint,
        ..
    } = &error
    else {
        panic!("expected a statement error, got {error}");
    };
    assert_eq!(sqlstate, "23505");
    assert!(
        hint.as_deref().unwrap_or("").contains("duplicate"),
        "{hint:?}"
    );
    assert!(
        detail.as_deref().unwrap_or("").contains("a@x"),
        "{detail:?}"
    );
    assert_eq!(
        db::invalid_index(&client, None, "users_email")
            .await
            .unwrap(),
        IndexState::Absent
    );
    let journal = state::journal(&client, "1").await.unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].status, StepStatus::Failed);
}

#[tokio::test]
async fn concurrent_statements_need_own_steps() {
    let db = common::TestDb::new("exec_two_concurrent").await;
    db.exec("CREATE TABLE t (a int, b int)").await;
    let client = db.client().await;

    // Sent as one string, the two statements form an implicit transaction
    // block, which CONCURRENTLY rejects.
    let error = client
        .batch_execute(
            "CREATE INDEX CONCURRENTLY t_a ON t (a); CREATE INDEX CONCURRENTLY t_b ON t (b);",
        )
        .await
        .unwrap_err();
    assert_eq!(error.code().unwrap().code(), "25001");

    let mut executor = executor(&db, LockWait::Fail).await;
    let steps = [
        concurrent_index(0, "CREATE INDEX CONCURRENTLY t_a ON t (a)", "t_a", "t"),
        concurrent_index(1, "CREATE INDEX CONCURRENTLY t_b ON t (b)", "t_b", "t"),
    ];
    executor
        .run_migration(
            &migration("1", "two_indexes", ""),
            "1.0",
            &steps,
            &settings(1000, 3),
            &exec::NoopReporter,
        )
        .await
        .unwrap();
    for name in ["t_a", "t_b"] {
        let state = db::invalid_index(&client, None, name).await.unwrap();
        assert!(
            matches!(state, IndexState::Valid { .. }),
            "{name}: {state:?}"
        );
    }
}

#[tokio::test]
async fn resume_skips_done_steps() {
    let db = common::TestDb::new("exec_resume").await;
    db.exec("CREATE TABLE counter (step int)").await;
    let steps = [
        transaction(0, &[("INSERT INTO counter VALUES (0)", 1)]),
        autocommit(1, "INSERT INTO counter VALUES (1)", 2),
        transaction(
            2,
            &[
                ("INSERT INTO counter VALUES (2)", 3),
                ("INSERT INTO later VALUES (2)", 4),
            ],
        ),
    ];
    let migration = migration("1", "fill", "");

    let mut first = executor(&db, LockWait::Fail).await;
    let error = first
        .run_migration(
            &migration,
            "1.0",
            &steps,
            &settings(1000, 3),
            &exec::NoopReporter,
        )
        .await
        .unwrap_err();
    let ExecError::Statement {
        path,
        line,
        sqlstate,
        ..
    } = &error
    else {
        panic!("expected a statement error, got {error}");
    };
    assert_eq!(path, &PathBuf::from("migrations/V1__fill.sql"));
    assert_eq!(*line, 4);
    assert_eq!(sqlstate, "42P01");
    drop(first);

    db.exec("CREATE TABLE later (step int)").await;
    let recorder = Recorder::default();
    let mut second = executor(&db, LockWait::Fail).await;
    let report = second
        .run_migration(&migration, "1.0", &steps, &settings(1000, 3), &recorder)
        .await
        .unwrap();
    assert_eq!(report.steps[0].skipped, Some(SkipReason::AlreadyDone));
    assert_eq!(report.steps[1].skipped, Some(SkipReason::AlreadyDone));
    assert_eq!(report.steps[2].skipped, None);

    let client = db.client().await;
    let rows = client
        .query("SELECT step FROM counter ORDER BY step", &[])
        .await
        .unwrap();
    let seen: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(seen, [0, 1, 2]);

    let journal = state::journal(&client, "1").await.unwrap();
    for index in 0..3 {
        let done = journal
            .iter()
            .filter(|e| e.step_index == index && e.status == StepStatus::Done)
            .count();
        assert_eq!(done, 1, "step {index}: {journal:?}");
    }
    assert_eq!(state::applied_migrations(&client).await.unwrap().len(), 1);
}

#[tokio::test]
async fn server_notices_reach_reporter() {
    let db = common::TestDb::new("exec_notices").await;
    let mut executor = executor(&db, LockWait::Fail).await;
    let recorder = Recorder::default();
    let step = transaction(
        0,
        &[("DO $$ BEGIN RAISE NOTICE 'hello from step'; END $$", 1)],
    );
    executor
        .run_migration(
            &migration("1", "notice", ""),
            "1.0",
            &[step],
            &Settings::default(),
            &recorder,
        )
        .await
        .unwrap();
    let notices = recorder.notices.lock().unwrap().clone();
    assert!(
        notices.iter().any(|n| n == "hello from step"),
        "{notices:?}"
    );
}

#[tokio::test]
async fn drift_names_file() {
    let db = common::TestDb::new("exec_drift").await;
    let mut executor = executor(&db, LockWait::Fail).await;
    let applied = migration("1", "create_t", "CREATE TABLE t (id int);");
    let step = transaction(0, &[("CREATE TABLE t (id int)", 1)]);
    executor
        .run_migration(
            &applied,
            "1.0",
            &[step],
            &Settings::default(),
            &exec::NoopReporter,
        )
        .await
        .unwrap();
    executor.end_run(state::RunStatus::Succeeded).await.unwrap();

    // Unchanged, the migration counts as applied.
    let same = plan(vec![Version {
        name: "1.0".to_string(),
        folder: PathBuf::from("migrations"),
        migrations: vec![applied.clone()],
    }]);
    let report = executor
        .apply(&same, &ApplyOptions::default(), &exec::NoopReporter)
        .await
        .unwrap();
    assert_eq!(report.already_applied, 1);
    assert!(report.applied.is_empty());

    let edited = migration("1", "create_t", "CREATE TABLE t (id bigint);");
    let changed = plan(vec![Version {
        name: "1.0".to_string(),
        folder: PathBuf::from("migrations"),
        migrations: vec![edited],
    }]);
    let error = executor
        .apply(&changed, &ApplyOptions::default(), &exec::NoopReporter)
        .await
        .unwrap_err();
    assert!(matches!(error, ExecError::Drift { .. }), "{error}");
    assert!(
        error.to_string().contains("migrations/V1__create_t.sql"),
        "{error}"
    );

    let unknown = ApplyOptions {
        to: Some("9.9".to_string()),
    };
    let error = executor
        .apply(&same, &unknown, &exec::NoopReporter)
        .await
        .unwrap_err();
    assert!(matches!(error, ExecError::UnknownVersion { .. }), "{error}");
}

#[tokio::test]
async fn status_reports_each_state() {
    let db = common::TestDb::new("exec_status").await;
    let first = migration("1", "one", "SELECT 1;");
    let second = migration("2", "two", "SELECT 2;");
    let third = migration("3", "three", "SELECT 3;");

    let client = db.client().await;
    let plan_all = plan(vec![Version {
        name: "1.0".to_string(),
        folder: PathBuf::from("migrations"),
        migrations: vec![first.clone(), second.clone(), third.clone()],
    }]);
    // Before pgshift ever ran, everything is pending and nothing is created.
    let lines = exec::status(&plan_all, &client).await.unwrap();
    assert!(lines.iter().all(|l| l.state == MigrationState::Pending));
    assert!(!state::schema_exists(&client).await.unwrap());

    let mut executor = executor(&db, LockWait::Fail).await;
    for applied in [&first, &second] {
        executor
            .run_migration(
                applied,
                "1.0",
                &[],
                &Settings::default(),
                &exec::NoopReporter,
            )
            .await
            .unwrap();
    }
    let edited = migration("2", "two", "SELECT 22;");
    let plan_now = plan(vec![Version {
        name: "1.0".to_string(),
        folder: PathBuf::from("migrations"),
        migrations: vec![first, edited, third],
    }]);
    let lines = exec::status(&plan_now, &client).await.unwrap();
    let states: Vec<(&str, MigrationState)> = lines
        .iter()
        .map(|l| (l.migration_id.as_str(), l.state))
        .collect();
    assert_eq!(
        states,
        [
            ("1", MigrationState::Applied),
            ("2", MigrationState::Changed),
            ("3", MigrationState::Pending),
        ]
    );
    assert_eq!(lines[1].path, PathBuf::from("migrations/V2__two.sql"));

    // A plan whose file of migration 2 is gone still shows it, as missing.
    let first = migration("1", "one", "SELECT 1;");
    let plan_without = plan(vec![Version {
        name: "1.0".to_string(),
        folder: PathBuf::from("migrations"),
        migrations: vec![first],
    }]);
    let lines = exec::status(&plan_without, &client).await.unwrap();
    let states: Vec<(&str, MigrationState)> = lines
        .iter()
        .map(|l| (l.migration_id.as_str(), l.state))
        .collect();
    assert_eq!(
        states,
        [
            ("1", MigrationState::Applied),
            ("2", MigrationState::Missing)
        ]
    );
}

#[tokio::test]
async fn unlock_false_is_error() {
    let db = common::TestDb::new("exec_unlock_false").await;
    let (_client, info) = db::connect(Some(&db.url)).await.unwrap();
    let lock = RunLock::acquire(
        &info.config,
        RUN_LOCK_KEY,
        LockWait::Fail,
        &exec::NoopReporter,
    )
    .await
    .unwrap();
    // Behind a transaction pooler the unlock can reach a session that never
    // took the lock. Releasing it early here has the same effect.
    lock.client()
        .query_one("SELECT pg_advisory_unlock($1)", &[&RUN_LOCK_KEY])
        .await
        .unwrap();
    let error = lock.release().await.unwrap_err();
    assert!(matches!(error, ExecError::UnlockFailed { .. }), "{error}");
    assert!(error.to_string().contains("pooler"), "{error}");
}

#[tokio::test]
async fn index_build_progress_reported() {
    let db = common::TestDb::new("exec_index_progress").await;
    db.exec("CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 1000)")
        .await;

    // An open write transaction on the table makes the concurrent build wait
    // in its first phase. It commits once the reporter saw a progress sample.
    let writer = db.client().await;
    writer
        .batch_execute("BEGIN; INSERT INTO t VALUES (0)")
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let signal = Arc::clone(&recorder);
    let release = tokio::spawn(async move {
        signal.progress_signal.notified().await;
        writer.batch_execute("COMMIT").await.unwrap();
    });

    let mut executor = executor(&db, LockWait::Fail).await;
    let step = concurrent_index(0, "CREATE INDEX CONCURRENTLY t_a ON t (a)", "t_a", "t");
    executor
        .run_migration(
            &migration("1", "t_a", ""),
            "1.0",
            &[step],
            &Settings::default(),
            recorder.as_ref(),
        )
        .await
        .unwrap();
    release.await.unwrap();

    let phases = recorder.phases.lock().unwrap().clone();
    assert!(
        phases.iter().any(|p| p.starts_with("waiting for writers")),
        "{phases:?}"
    );
}

#[tokio::test]
async fn unreachable_server_error_redacted() {
    // Port 1 on loopback has no PostgreSQL server.
    let url = "postgres://app:hunter2@127.0.0.1:1/shop?connect_timeout=5";
    let error = db::connect(Some(url)).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("app@127.0.0.1:1/shop"), "{text}");
    assert!(text.contains("PGHOST"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn status_counts_steps_of_interrupted_run() {
    let db = common::TestDb::new("exec_status_partial").await;
    db.exec("CREATE TABLE free (id int); CREATE TABLE held (id int)")
        .await;
    let sql = "ALTER TABLE free ADD COLUMN a int;\nALTER TABLE held ADD COLUMN b int;\n";
    let partial = migration("1", "partial", sql);
    let steps = [
        transaction(0, &[("ALTER TABLE free ADD COLUMN a int", 1)]),
        transaction(1, &[("ALTER TABLE held ADD COLUMN b int", 2)]),
    ];
    // Step 2 waits for the blocker's lock and gives up; step 1 stays done.
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE held IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let mut executor = executor(&db, LockWait::Fail).await;
    executor
        .run_migration(
            &partial,
            "1.0",
            &steps,
            &settings(100, 0),
            &exec::NoopReporter,
        )
        .await
        .unwrap_err();
    blocker.batch_execute("ROLLBACK").await.unwrap();

    let plan = plan(vec![Version {
        name: "1.0".to_string(),
        folder: PathBuf::from("migrations"),
        migrations: vec![partial],
    }]);
    let client = db.client().await;
    let lines = exec::status(&plan, &client).await.unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].state, MigrationState::Pending);
    assert_eq!(lines[0].steps_done, 1);
}
