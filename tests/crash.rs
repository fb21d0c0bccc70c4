//! Kills `pgshift apply` with SIGKILL at random points of the example plan
//! and checks that a rerun finishes with the schema of an uninterrupted run.
//!
//! Each kill point gets a fresh database at version 1.0 with rows in the
//! token tables, so the backfill and the index builds of later versions take
//! long enough for kills to land inside them. A kill point either waits a
//! random time up to the length of an uninterrupted run, or waits until a
//! random number of journal rows exist. `PGSHIFT_CRASH_POINTS` sets the
//! number of kill points (default 5) and `PGSHIFT_CRASH_SEED` the seed of
//! the random choices (default 20261204).

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PLAN: &str = "plans/oauth-1x-to-2x.yaml";

/// Rows seeded into each token table.
const SEED_ROWS: i64 = 20_000;

fn pgshift(url: &str, args: &[&str]) -> Output {
    Command::new(common::pgshift_bin())
        .args(args)
        .args(["--database-url", url])
        .stdin(Stdio::null())
        .output()
        .expect("the pgshift binary runs")
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a whole number")),
        Err(_) => default,
    }
}

/// Brings a fresh database to version 1.0 and fills the token tables.
async fn prepare(tag: &str) -> common::TestDb {
    let db = common::TestDb::new(tag).await;
    let plan = common::repo_path(PLAN).display().to_string();
    let output = pgshift(&db.url, &["apply", "--quiet", "--to", "1.0", &plan]);
    assert!(output.status.success(), "{}", describe(&output));
    db.exec(&format!(
        "INSERT INTO clients (id) SELECT 'client-' || i FROM generate_series(1, 10) i;
         INSERT INTO authorization_codes (signature, request_id, client_id, subject,
                                          redirect_uri, expires_at)
             SELECT 'ac-' || i, 'r-' || i, 'client-' || (i % 10 + 1), 'user-' || (i % 500),
                    'https://app.example/cb', now() + interval '10 minutes'
             FROM generate_series(1, {SEED_ROWS}) i;
         INSERT INTO access_tokens (signature, request_id, client_id, subject, expires_at)
             SELECT 'at-' || i, 'r-' || i, 'client-' || (i % 10 + 1), 'user-' || (i % 500),
                    now() + interval '1 hour'
             FROM generate_series(1, {SEED_ROWS}) i;
         INSERT INTO refresh_tokens (signature, request_id, client_id, subject, active)
             SELECT 'rt-' || i, 'r-' || i, 'client-' || (i % 10 + 1), 'user-' || (i % 500),
                    i % 3 = 0
             FROM generate_series(1, {SEED_ROWS}) i;"
    ))
    .await;
    db
}

/// Describes the application's schema from the catalog: columns with type,
/// default and NOT NULL; indexes with definition and validity; constraints
/// with definition. One sorted line per object.
async fn schema_of(db: &common::TestDb) -> Vec<String> {
    let client = db.client().await;
    let queries = [
        "SELECT format('column %s.%s %s default=%s not_null=%s', c.relname, a.attname, \
                format_type(a.atttypid, a.atttypmod), \
                coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), a.attnotnull) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 \
               AND NOT a.attisdropped",
        "SELECT format('index %s valid=%s ready=%s', pg_get_indexdef(i.indexrelid), \
                i.indisvalid, i.indisready) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
        "SELECT format('constraint %s.%s %s validated=%s', c.relname, k.conname, \
                pg_get_constraintdef(k.oid), k.convalidated) \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
        "SELECT format('table %s', c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')",
    ];
    let mut lines = Vec::new();
    for query in queries {
        for row in client.query(query, &[]).await.unwrap() {
            lines.push(row.get::<_, String>(0));
        }
    }
    lines.sort();
    lines
}

async fn scalar(db: &common::TestDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.unwrap().get(0)
}

/// Where a run is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// After this long.
    Delay(Duration),
    /// Once the journal holds this many rows.
    JournalRows(i64),
}

/// Starts an apply and kills it with SIGKILL at `point`. The run may finish
/// first, which the rerun then finds as nothing to do.
async fn apply_and_kill(db: &common::TestDb, point: KillPoint) -> bool {
    let plan = common::repo_path(PLAN).display().to_string();
    let mut child = Command::new(common::pgshift_bin())
        .args(["apply", "--quiet", &plan, "--database-url", &db.url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    match point {
        KillPoint::Delay(delay) => tokio::time::sleep(delay).await,
        KillPoint::JournalRows(rows) => {
            let client = db.client().await;
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                let seen = client
                    .query_one(
                        "SELECT CASE WHEN to_regclass('pgshift.step_journal') IS NULL THEN 0 \
                         ELSE (SELECT count(*) FROM pgshift.step_journal) END",
                        &[],
                    )
                    .await
                    .map(|row| row.get::<_, i64>(0))
                    .unwrap_or(0);
                if seen >= rows {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let finished_first = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    child.wait().unwrap();
    !finished_first
}

/// Checks the journal: at most one `done` row per step, and no row for a
/// step after its `done` row, which would mean the step ran again.
async fn assert_no_step_twice(db: &common::TestDb, point: usize) {
    let done_twice = scalar(
        db,
        "SELECT count(*) FROM (SELECT migration_id, step_index FROM pgshift.step_journal \
         WHERE status = 'done' GROUP BY 1, 2 HAVING count(*) > 1) d",
    )
    .await;
    assert_eq!(done_twice, 0, "kill point {point}: a step is done twice");
    let after_done = scalar(
        db,
        "SELECT count(*) FROM pgshift.step_journal later \
         JOIN pgshift.step_journal done ON done.migration_id = later.migration_id \
              AND done.step_index = later.step_index AND done.status = 'done' \
         WHERE later.id > done.id",
    )
    .await;
    assert_eq!(after_done, 0, "kill point {point}: a done step ran again");
}

#[tokio::test]
async fn killed_apply_resumes_to_same_schema() {
    let points = env_number("PGSHIFT_CRASH_POINTS", 5);
    let seed = env_number("PGSHIFT_CRASH_SEED", 20_261_204);
    let plan = common::repo_path(PLAN).display().to_string();

    let reference = prepare("crash_reference").await;
    let prepared_rows = scalar(&reference, "SELECT count(*) FROM pgshift.step_journal").await;
    let started = Instant::now();
    let output = pgshift(&reference.url, &["apply", "--quiet", &plan]);
    let full_run = started.elapsed();
    assert!(output.status.success(), "{}", describe(&output));
    let expected = schema_of(&reference).await;
    let journal_rows = scalar(&reference, "SELECT count(*) FROM pgshift.step_journal").await;
    drop(reference);

    let mut rng = StdRng::seed_from_u64(seed);
    let mut killed_runs = 0;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for point in 0..points as usize {
        let kill = if rng.gen_bool(0.5) {
            *kinds.entry("delay").or_default() += 1;
            KillPoint::Delay(full_run.mul_f64(rng.gen_range(0.0..1.0)))
        } else {
            *kinds.entry("journal rows").or_default() += 1;
            KillPoint::JournalRows(rng.gen_range(prepared_rows + 1..=journal_rows))
        };
        let db = prepare(&format!("crash_{point}")).await;
        if apply_and_kill(&db, kill).await {
            killed_runs += 1;
        }

        // The killed run's sessions end when the server notices the closed
        // socket, so the rerun waits for the run lock instead of failing.
        let rerun = pgshift(&db.url, &["apply", "--quiet", "--wait", &plan]);
        assert!(
            rerun.status.success(),
            "kill point {point} ({kill:?}, seed {seed}): rerun failed\n{}",
            describe(&rerun)
        );
        let schema = schema_of(&db).await;
        assert_eq!(
            schema, expected,
            "kill point {point} ({kill:?}, seed {seed}): schema differs"
        );
        let invalid = scalar(&db, "SELECT count(*) FROM pg_index WHERE NOT indisvalid").await;
        assert_eq!(
            invalid, 0,
            "kill point {point} ({kill:?}): INVALID index left"
        );
        assert_no_step_twice(&db, point).await;
        // V12's last backfill, batched in the 2.0 phase, reached every row.
        let missed = scalar(
            &db,
            "SELECT count(*) FROM refresh_tokens \
             WHERE NOT active AND first_used_at IS DISTINCT FROM requested_at",
        )
        .await;
        assert_eq!(
            missed, 0,
            "kill point {point} ({kill:?}): rows the backfill missed"
        );
    }
    eprintln!(
        "crash test: {points} kill points (seed {seed}, {kinds:?}), {killed_runs} runs killed \
         before they finished; uninterrupted run {:.2}s",
        full_run.as_secs_f64()
    );
}
