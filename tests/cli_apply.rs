//! `pgshift apply`, `status` and `repair` as a user runs them: the built
//! binary against a fresh database per test, with the example plan.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = "plans/oauth-1x-to-2x.yaml";

/// Migrations in the example plan, and those up to version 1.3.
const ALL_MIGRATIONS: i64 = 16;
const MIGRATIONS_TO_1_3: i64 = 10;

/// Runs `pgshift ARGS --database-url URL` to completion with stdin closed.
fn pgshift(url: &str, args: &[&str]) -> Output {
    Command::new(common::pgshift_bin())
        .args(args)
        .args(["--database-url", url])
        .stdin(Stdio::null())
        .output()
        .expect("the pgshift binary runs")
}

/// Starts `pgshift ARGS --database-url URL` without waiting for it.
fn spawn_pgshift(url: &str, args: &[&str]) -> Child {
    Command::new(common::pgshift_bin())
        .args(args)
        .args(["--database-url", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pgshift binary starts")
}

/// Counts the steps a dry-run on an empty database plans for `plan`.
fn planned_steps(plan: &str) -> i64 {
    let output = Command::new(common::pgshift_bin())
        .args(["apply", "--dry-run", "--format", "json", plan])
        .env_remove("DATABASE_URL")
        .output()
        .expect("the pgshift binary runs");
    assert!(output.status.success(), "{}", describe(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut steps = 0;
    for phase in report["phases"].as_array().unwrap() {
        for version in phase["versions"].as_array().unwrap() {
            for migration in version["migrations"].as_array().unwrap() {
                steps += migration["steps"].as_array().unwrap().len() as i64;
            }
        }
    }
    steps
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

fn plan_path() -> String {
    common::repo_path(PLAN).display().to_string()
}

/// Copies the example plan and its migration folders into `dir`, so a test
/// may edit a migration file.
fn copy_plan(dir: &Path) -> PathBuf {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    copy_dir(&common::repo_path("plans/oauth"), &dir.join("oauth"));
    let plan = dir.join("oauth-1x-to-2x.yaml");
    std::fs::copy(common::repo_path(PLAN), &plan).unwrap();
    plan
}

async fn scalar(db: &common::TestDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Polls `sql` until it returns true; panics after a minute, which only a
/// hung run takes.
async fn wait_until(db: &common::TestDb, what: &str, sql: &str) {
    let client = db.client().await;
    let started = Instant::now();
    loop {
        let done: bool = client.query_one(sql, &[]).await.unwrap().get(0);
        if done {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn apply_reaches_latest_then_noop() {
    let db = common::TestDb::new("cli_apply_latest").await;
    let plan = plan_path();

    let first = pgshift(&db.url, &["apply", &plan]);
    assert!(first.status.success(), "{}", describe(&first));
    assert!(
        text(&first.stdout).contains("applied 16 migration(s)"),
        "{}",
        describe(&first)
    );
    let applied = scalar(&db, "SELECT count(*) FROM pgshift.applied_migrations").await;
    assert_eq!(applied, ALL_MIGRATIONS);
    let at_2_0 = scalar(
        &db,
        "SELECT count(*) FROM pgshift.applied_migrations WHERE plan_version = '2.0'",
    )
    .await;
    assert_eq!(at_2_0, 6);
    let tenant_column = scalar(
        &db,
        "SELECT count(*) FROM information_schema.columns \
         WHERE table_name = 'access_tokens' AND column_name = 'tenant_id'",
    )
    .await;
    assert_eq!(tenant_column, 1);

    let status = pgshift(&db.url, &["status", &plan]);
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    assert!(
        text(&status.stdout).contains("16 applied, 0 pending, 0 changed"),
        "{}",
        describe(&status)
    );

    let second = pgshift(&db.url, &["apply", &plan]);
    assert!(second.status.success(), "{}", describe(&second));
    assert!(
        text(&second.stdout).contains("applied 0 migration(s) in 0 step(s); 16 already applied"),
        "{}",
        describe(&second)
    );
    let done_rows = scalar(
        &db,
        "SELECT count(*) FROM pgshift.step_journal WHERE status = 'done'",
    )
    .await;
    let planned = planned_steps(&plan);
    assert!(planned > 16, "the example plans more steps than migrations");
    assert_eq!(done_rows, planned, "each planned step ran exactly once");
}

#[tokio::test]
async fn edited_migration_reported_then_repaired() {
    let db = common::TestDb::new("cli_apply_drift").await;
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_plan(dir.path());
    let plan = plan.to_str().unwrap();

    let first = pgshift(&db.url, &["apply", plan]);
    assert!(first.status.success(), "{}", describe(&first));

    let edited = dir.path().join("oauth/1.2/V6__pkce.sql");
    let mut sql = std::fs::read_to_string(&edited).unwrap();
    sql.push_str("\n-- reviewed after release\n");
    std::fs::write(&edited, sql).unwrap();

    let status = pgshift(&db.url, &["status", plan]);
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    let listing = text(&status.stdout);
    let changed_line = listing
        .lines()
        .find(|l| l.contains("CHANGED"))
        .unwrap_or_else(|| panic!("{}", describe(&status)));
    assert!(changed_line.contains("V6__pkce.sql"), "{changed_line}");
    assert!(
        listing.contains("15 applied, 0 pending, 1 changed"),
        "{listing}"
    );

    let apply = pgshift(&db.url, &["apply", plan]);
    assert_eq!(apply.status.code(), Some(2), "{}", describe(&apply));
    assert!(
        text(&apply.stderr).contains("V6__pkce.sql"),
        "{}",
        describe(&apply)
    );

    let unconfirmed = pgshift(&db.url, &["repair", plan]);
    assert_eq!(
        unconfirmed.status.code(),
        Some(2),
        "{}",
        describe(&unconfirmed)
    );
    assert!(
        text(&unconfirmed.stderr).contains("--yes"),
        "{}",
        describe(&unconfirmed)
    );
    let still_changed = pgshift(&db.url, &["status", plan]);
    assert_eq!(still_changed.status.code(), Some(1));

    let repair = pgshift(&db.url, &["repair", "--yes", plan]);
    assert_eq!(repair.status.code(), Some(0), "{}", describe(&repair));
    assert!(
        text(&repair.stdout).contains("V6__pkce.sql"),
        "{}",
        describe(&repair)
    );

    let status = pgshift(&db.url, &["status", plan]);
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    let apply = pgshift(&db.url, &["apply", plan]);
    assert_eq!(apply.status.code(), Some(0), "{}", describe(&apply));
}

#[tokio::test]
async fn to_version_stops_there() {
    let db = common::TestDb::new("cli_apply_to").await;
    let plan = plan_path();

    let output = pgshift(&db.url, &["apply", "--to", "1.3", &plan]);
    assert!(output.status.success(), "{}", describe(&output));
    let applied = scalar(&db, "SELECT count(*) FROM pgshift.applied_migrations").await;
    assert_eq!(applied, MIGRATIONS_TO_1_3);
    let beyond = scalar(
        &db,
        "SELECT count(*) FROM pgshift.applied_migrations WHERE plan_version = '2.0'",
    )
    .await;
    assert_eq!(beyond, 0);

    let status = pgshift(&db.url, &["status", &plan]);
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    assert!(
        text(&status.stdout).contains("10 applied, 6 pending, 0 changed"),
        "{}",
        describe(&status)
    );
    assert!(
        !text(&output.stderr).contains("already has version"),
        "{}",
        describe(&output)
    );

    // --to an earlier version after a later one was applied does nothing,
    // and warns that nothing is rolled back.
    let earlier = pgshift(&db.url, &["apply", "--to", "1.0", &plan]);
    assert!(earlier.status.success(), "{}", describe(&earlier));
    assert!(
        text(&earlier.stderr).contains("already has version 1.3 applied"),
        "{}",
        describe(&earlier)
    );
}

#[tokio::test]
async fn unknown_to_version_named() {
    let db = common::TestDb::new("cli_apply_bad_to").await;
    let output = pgshift(&db.url, &["apply", "--to", "9.9", &plan_path()]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--to 9.9"), "{stderr}");
    assert!(stderr.contains("1.0, 1.1, 1.2, 1.3, 2.0"), "{stderr}");
    let schema = scalar(
        &db,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift'",
    )
    .await;
    assert_eq!(schema, 0, "a rejected --to must not touch the database");
}

#[test]
fn unreachable_database_named() {
    // Port 1 on loopback has no PostgreSQL server.
    let output = pgshift(
        "host=127.0.0.1 port=1 user=app dbname=shop connect_timeout=5",
        &["apply", &plan_path()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot connect to app@127.0.0.1:1/shop"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[tokio::test]
async fn missing_database_hint_names_it() {
    let db = common::TestDb::new("cli_apply_missing_db").await;
    let url = common::with_dbname(&db.url, "pgshift_no_such_database");
    let output = pgshift(&url, &["apply", &plan_path()]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("hint: the database does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("is the server running"), "{stderr}");
    assert_eq!(
        stderr.matches("does not exist").count(),
        2,
        "the server's message once, and the hint:\n{stderr}"
    );
}

/// Opens a REPEATABLE READ transaction that holds a snapshot. A concurrent
/// index build started after it waits for it to end (phase `waiting for old
/// snapshots`) without any lock timeout, so the waiting run logs no error.
async fn hold_snapshot(db: &common::TestDb) -> tokio_postgres::Client {
    let holder = db.client().await;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1")
        .await
        .unwrap();
    holder
}

const BUILD_WAITS: &str = "SELECT EXISTS (SELECT 1 FROM pg_stat_progress_create_index \
     WHERE datname = current_database() AND phase = 'waiting for old snapshots')";

#[tokio::test]
async fn ctrl_c_cancels_build_and_resumes() {
    let db = common::TestDb::new("cli_apply_ctrl_c").await;
    let plan = plan_path();
    let first = pgshift(&db.url, &["apply", "--to", "1.0", &plan]);
    assert!(first.status.success(), "{}", describe(&first));

    let log_start = std::fs::metadata(SERVER_LOG).map(|m| m.len()).ok();
    let holder = hold_snapshot(&db).await;
    let child = spawn_pgshift(&db.url, &["apply", &plan]);
    wait_until(&db, "the build of V5 to wait", BUILD_WAITS).await;
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("V5__access_tokens_subject_index.sql"),
        "{stderr}"
    );
    assert!(stderr.contains("resume with: pgshift apply"), "{stderr}");
    let invalid = scalar(&db, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").await;
    assert_eq!(invalid, 0, "the cancelled build's INVALID index is dropped");
    let leftover = scalar(
        &db,
        "SELECT count(*) FROM pg_class WHERE relname = 'access_tokens_subject_idx'",
    )
    .await;
    assert_eq!(leftover, 0);
    let interrupted = scalar(
        &db,
        "SELECT count(*) FROM pgshift.step_journal \
         WHERE migration_id = '5' AND status = 'interrupted'",
    )
    .await;
    assert_eq!(interrupted, 1);
    let run_status = scalar(
        &db,
        "SELECT count(*) FROM pgshift.runs WHERE status = 'interrupted'",
    )
    .await;
    assert_eq!(run_status, 1);
    // The cancel request reached the server. This also shows that the
    // server log check of `concurrent_applies_one_runs` can find errors.
    if let Some(log) = log_start.and_then(|start| server_log_since(Path::new(SERVER_LOG), start)) {
        let cancelled = format!(
            "{}  canceling statement due to user request",
            log_marker(&db, "ERROR")
        );
        assert!(
            log.contains(&cancelled),
            "no `{cancelled}` in the server log"
        );
    }

    holder.batch_execute("COMMIT").await.unwrap();
    let rerun = pgshift(&db.url, &["apply", &plan]);
    assert!(rerun.status.success(), "{}", describe(&rerun));
    let applied = scalar(&db, "SELECT count(*) FROM pgshift.applied_migrations").await;
    assert_eq!(applied, ALL_MIGRATIONS);
}

/// Reads the server log from byte `from`, or `None` when this user cannot
/// read it.
fn server_log_since(path: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};

    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

const SERVER_LOG: &str = "/var/log/postgresql/postgresql-15-main.log";

#[tokio::test]
async fn concurrent_applies_one_runs() {
    let db = common::TestDb::new("cli_apply_concurrent").await;
    let plan = plan_path();
    let first = pgshift(&db.url, &["apply", "--to", "1.0", &plan]);
    assert!(first.status.success(), "{}", describe(&first));
    let log_start = std::fs::metadata(SERVER_LOG).map(|m| m.len()).ok();

    // The first run stops in the build of V5 while it holds the run lock.
    let holder = hold_snapshot(&db).await;
    let running = spawn_pgshift(&db.url, &["apply", &plan]);
    wait_until(&db, "the first run's build to wait", BUILD_WAITS).await;
    let monitor = db.client().await;
    let lock_pid: i32 = monitor
        .query_one(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // A second run without --wait exits at once and names the holder.
    let rejected = pgshift(&db.url, &["apply", &plan]);
    assert_eq!(rejected.status.code(), Some(2), "{}", describe(&rejected));
    let stderr = text(&rejected.stderr);
    assert!(stderr.contains("holds the run lock"), "{stderr}");
    assert!(stderr.contains(&format!("pid {lock_pid}")), "{stderr}");

    // A run with --wait-timeout polls, gives up after the timeout and prints
    // how long it waited.
    let timed_out = pgshift(&db.url, &["apply", "--wait-timeout", "1s", &plan]);
    assert_eq!(timed_out.status.code(), Some(2), "{}", describe(&timed_out));
    let stderr = text(&timed_out.stderr);
    assert!(stderr.contains("holds the run lock"), "{stderr}");
    assert!(stderr.contains("(waited "), "{stderr}");

    // A third run with --wait polls for the lock. Its polling session is
    // idle between tries, so the first run's build does not wait for it.
    let waiting = spawn_pgshift(&db.url, &["apply", "--wait", &plan]);
    wait_until(
        &db,
        "the waiting run to connect",
        "SELECT count(*) >= 6 FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'pgshift'",
    )
    .await;
    holder.batch_execute("COMMIT").await.unwrap();

    let first_output = running.wait_with_output().unwrap();
    assert_eq!(
        first_output.status.code(),
        Some(0),
        "{}",
        describe(&first_output)
    );
    let waited_output = waiting.wait_with_output().unwrap();
    assert_eq!(
        waited_output.status.code(),
        Some(0),
        "{}",
        describe(&waited_output)
    );
    assert!(
        text(&waited_output.stderr).contains("waiting for another pgshift run"),
        "{}",
        describe(&waited_output)
    );
    assert!(
        text(&waited_output.stdout).contains("applied 0 migration(s)"),
        "{}",
        describe(&waited_output)
    );
    let done_twice = scalar(
        &db,
        "SELECT count(*) FROM (SELECT migration_id, step_index FROM pgshift.step_journal \
         WHERE status = 'done' GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(done_twice, 0);

    // The server log has no ERROR from any session on this database.
    let Some(log) = log_start.and_then(|start| server_log_since(Path::new(SERVER_LOG), start))
    else {
        eprintln!("NOTE: {SERVER_LOG} is not readable; the server log was not checked");
        return;
    };
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&log_marker(&db, "ERROR")))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// Returns the text that starts a log line of `severity` from a session on
/// `db`, for the server's `log_line_prefix` of `%m [%p] %q%u@%d `.
fn log_marker(db: &common::TestDb, severity: &str) -> String {
    format!("@{} {severity}:", db.name)
}

#[test]
fn wait_timeout_rejects_bad_values() {
    for bad in ["0", "soon", "5"] {
        let output = Command::new(common::pgshift_bin())
            .args(["apply", "--wait-timeout", bad, &plan_path()])
            .stdin(Stdio::null())
            .output()
            .expect("the pgshift binary runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad}: {}",
            describe(&output)
        );
        let stderr = text(&output.stderr);
        assert!(stderr.contains("--wait-timeout"), "{bad}: {stderr}");
    }
}
