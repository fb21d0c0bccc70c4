//! Blue-green phases on the real server: the example plan's 2.0 phase under
//! a steady token load, a write to an uncaptured table during the window,
//! runs stopped after each stage, `pgshift apply` killed with SIGKILL inside
//! each stage, the operator's confirmation, and plain forms on green.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pgshift::bluegreen::{
    self, BlueGreenError, KillPoint, NoopBlueGreenReporter, RunOptions, Stage,
};
use pgshift::db::{self, ConnInfo};
use pgshift::exec::{ApplyOptions, ExecOptions, Executor, NoopReporter};
use pgshift::locks::PgVersion;
use pgshift::plan::{GreenForms, GreenTarget, Plan};
use tokio_postgres::Client;

const SEED_TOKENS: usize = 300;

/// The captured table whose replay shows a lost or doubled event: replay
/// adds the difference between the old and the new `hits`, so an update
/// replayed twice adds twice and a lost one not at all.
const COUNTER_TABLE: &str = "
    CREATE TABLE bg_counter (id int PRIMARY KEY, hits bigint NOT NULL);
    INSERT INTO bg_counter VALUES (1, 0);";

/// Blue at 1.3 with seed rows, an empty green, an application role, and
/// the example plan, written to a file, pointed at green with hooks the
/// test can observe and `bg_counter` captured.
struct Setup {
    blue: common::TestDb,
    green: common::TestDb,
    plan: Plan,
    /// The plan file that `plan` was loaded from, for the binary.
    plan_path: PathBuf,
    role: String,
    /// Created by the `switch_traffic` hook.
    switch_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(tag: &str) -> Setup {
        Setup::with_options(tag, |_| {}).await
    }

    /// Like `new`; `edit` changes the phase's `blue_green` block of the
    /// YAML plan before it is written.
    async fn with_options(tag: &str, edit: impl FnOnce(&mut serde_yaml::Mapping)) -> Setup {
        let blue = common::TestDb::new(&format!("{tag}_blue")).await;
        let green = common::TestDb::new(&format!("{tag}_green")).await;
        let dir = tempfile::tempdir().unwrap();
        let switch_file = dir.path().join("switched");
        let role = format!("{}_app", blue.name);

        let plan_path = dir.path().join("plan.yaml");
        let yaml = plan_yaml(&green.url, &role, &switch_file, edit);
        std::fs::write(&plan_path, yaml).unwrap();
        let plan = Plan::load(&plan_path).unwrap();

        let mut executor = executor(&blue.url).await;
        let options = ApplyOptions {
            to: Some("1.3".to_string()),
        };
        executor
            .apply(&plan, &options, &NoopReporter)
            .await
            .unwrap();
        blue.exec(&format!(
            "{COUNTER_TABLE}
             DROP ROLE IF EXISTS \"{role}\";
             CREATE ROLE \"{role}\" LOGIN;
             GRANT USAGE ON SCHEMA public TO \"{role}\";
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\";
             INSERT INTO clients (id) VALUES ('c1'), ('c2');
             INSERT INTO access_tokens (signature, request_id, client_id, subject, expires_at,
                                        requested_scopes)
             SELECT 'seed' || i, 'r' || i, 'c' || (i % 2 + 1), 's' || i,
                    now() + interval '1 hour', '{{openid,\"with space\"}}'
             FROM generate_series(1, {SEED_TOKENS}) AS i;
             INSERT INTO refresh_tokens (signature, request_id, client_id, subject,
                                         access_token_signature)
             SELECT 'rseed' || i, 'r' || i, 'c1', 's' || i, 'seed' || i
             FROM generate_series(1, {SEED_TOKENS}) AS i;"
        ))
        .await;
        Setup {
            blue,
            green,
            plan,
            plan_path,
            role,
            switch_file,
            _dir: dir,
        }
    }

    fn app_url(&self) -> String {
        self.blue
            .url
            .split_whitespace()
            .filter(|p| !p.starts_with("user="))
            .chain(std::iter::once(format!("user={}", self.role).as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    async fn run(
        &self,
        stop_after: Option<Stage>,
    ) -> Result<bluegreen::BlueGreenReport, BlueGreenError> {
        let mut executor = executor(&self.blue.url).await;
        let config = db::resolve_config(Some(&self.blue.url)).unwrap();
        let options = RunOptions {
            stop_after,
            ..RunOptions::default()
        };
        bluegreen::run_phase(
            &mut executor,
            &config,
            &self.plan,
            self.plan.phases.last().unwrap(),
            &options,
            &NoopBlueGreenReporter,
        )
        .await
    }

    async fn drop_role(&self) {
        for db in [&self.blue, &self.green] {
            let _ = db
                .client()
                .await
                .batch_execute(&format!("DROP OWNED BY \"{}\"", self.role))
                .await;
        }
        let _ = self
            .blue
            .client()
            .await
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.role))
            .await;
    }
}

/// Returns the example plan as YAML with absolute version paths, green at
/// `green_url` and small batches. Its hooks revoke the role's writes on
/// blue, touch `switch_file` and grant the role writes on green, and one
/// hook writes an event before catch-up. `bg_counter` is captured too.
fn plan_yaml(
    green_url: &str,
    role: &str,
    switch_file: &std::path::Path,
    edit: impl FnOnce(&mut serde_yaml::Mapping),
) -> String {
    use serde_yaml::{Mapping, Value};

    let example = common::repo_path("plans/oauth-bluegreen.yaml");
    let mut plan: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&example).unwrap()).unwrap();
    let plans = common::repo_path("plans");
    for version in plan["versions"].as_sequence_mut().unwrap() {
        let path = plans.join(version["path"].as_str().unwrap());
        version["path"] = Value::from(path.display().to_string());
    }
    let phase = plan["phases"]
        .as_sequence_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    let spec = phase["blue_green"].as_mapping_mut().unwrap();
    let hook = |pairs: &[(&str, &str)]| -> Value {
        let mut map = Mapping::new();
        for (key, value) in pairs {
            map.insert(Value::from(*key), Value::from(*value));
        }
        Value::Sequence(vec![Value::Mapping(map)])
    };
    spec.insert("green".into(), green_url.into());
    spec.insert("catch_up_threshold".into(), 50.into());
    spec.insert("batch_size".into(), 200.into());
    let hooks = spec
        .get_mut("hooks")
        .and_then(Value::as_mapping_mut)
        .unwrap();
    hooks.insert(
        "pause_writes".into(),
        hook(&[
            ("on", "blue"),
            (
                "sql",
                &format!(
                    "REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public FROM \"{role}\""
                ),
            ),
        ]),
    );
    hooks.insert(
        "switch_traffic".into(),
        hook(&[("shell", &format!("touch '{}'", switch_file.display()))]),
    );
    hooks.insert(
        "resume_writes".into(),
        hook(&[
            ("on", "green"),
            (
                "sql",
                &format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public \
                     TO \"{role}\""
                ),
            ),
        ]),
    );
    hooks.insert(
        "before_catch_up".into(),
        hook(&[
            ("on", "blue"),
            ("sql", "UPDATE bg_counter SET hits = hits + 1 WHERE id = 1"),
        ]),
    );
    let counter: Value = serde_yaml::from_str(
        "table: bg_counter
insert: INSERT INTO bg_counter (id, hits) VALUES (:new.id, :new.hits)
update: UPDATE bg_counter SET hits = hits + (:new.hits::bigint - :old.hits::bigint) WHERE id = :old.id
delete: DELETE FROM bg_counter WHERE id = :old.id",
    )
    .unwrap();
    spec.get_mut("capture")
        .and_then(Value::as_sequence_mut)
        .unwrap()
        .push(counter);
    edit(spec);
    serde_yaml::to_string(&plan).unwrap()
}

async fn executor(url: &str) -> Executor {
    let (client, info): (Client, ConnInfo) = db::connect(Some(url)).await.unwrap();
    Executor::new(client, info, ExecOptions::default())
        .await
        .unwrap()
}

/// What the load committed on blue.
#[derive(Default)]
struct LoadLog {
    inserted: Vec<String>,
    /// Signature to `revoked_at` as text.
    revoked: BTreeMap<String, String>,
    deleted: Vec<String>,
    /// Writes rejected while writes were paused.
    rejected: usize,
}

/// Inserts tokens, revokes existing ones and deletes some, as the
/// application role, until `stop` is set, the switch file appears, or
/// `max_iterations` pass.
fn start_load(
    url: String,
    switch_file: PathBuf,
    stop: Arc<AtomicBool>,
    max_iterations: usize,
) -> (tokio::task::JoinHandle<bool>, Arc<Mutex<LoadLog>>) {
    let log = Arc::new(Mutex::new(LoadLog::default()));
    let task_log = Arc::clone(&log);
    let handle = tokio::spawn(async move {
        let client = common::connect(&url).await;
        let mut known: Vec<String> = (1..=SEED_TOKENS).map(|i| format!("seed{i}")).collect();
        let mut saw_switch = false;
        for i in 0..max_iterations {
            if switch_file.exists() {
                saw_switch = true;
                break;
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let signature = format!("load{i}");
            let inserted = client
                .batch_execute(&format!(
                    "BEGIN;
                     INSERT INTO access_tokens (signature, request_id, client_id, subject,
                         expires_at, granted_scopes)
                     VALUES ('{signature}', 'lr{i}', 'c{c}', 'subject {i}',
                         now() + interval '1 hour', '{{openid,\"it''s\"}}');
                     INSERT INTO refresh_tokens (signature, request_id, client_id, subject,
                         access_token_signature)
                     VALUES ('r{signature}', 'lr{i}', 'c1', 'subject {i}', '{signature}');
                     UPDATE bg_counter SET hits = hits + 1 WHERE id = 1;
                     COMMIT;",
                    c = i % 2 + 1
                ))
                .await;
            match inserted {
                Ok(()) => {
                    task_log.lock().unwrap().inserted.push(signature.clone());
                    known.push(signature);
                }
                Err(_) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    task_log.lock().unwrap().rejected += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    continue;
                }
            }

            let target = known[(i * 7919) % known.len()].clone();
            let revoked = client
                .query_opt(
                    "UPDATE access_tokens SET active = false, revoked_at = clock_timestamp() \
                     WHERE signature = $1 AND revoked_at IS NULL RETURNING revoked_at::text",
                    &[&target],
                )
                .await;
            match revoked {
                Ok(Some(row)) => {
                    task_log.lock().unwrap().revoked.insert(target, row.get(0));
                }
                Ok(None) => {}
                Err(_) => task_log.lock().unwrap().rejected += 1,
            }

            if i % 10 == 9 {
                let victim = known.remove((i * 31) % known.len());
                let deleted = client
                    .batch_execute(&format!(
                        "BEGIN; DELETE FROM refresh_tokens WHERE access_token_signature = '{victim}';
                         DELETE FROM access_tokens WHERE signature = '{victim}'; COMMIT;"
                    ))
                    .await;
                match deleted {
                    Ok(()) => task_log.lock().unwrap().deleted.push(victim),
                    Err(_) => {
                        let _ = client.batch_execute("ROLLBACK").await;
                        task_log.lock().unwrap().rejected += 1;
                        known.push(victim);
                    }
                }
            }
        }
        saw_switch
    });
    (handle, log)
}

/// Rows of a token table as text, keyed by signature, with the columns
/// both schemas share.
async fn token_rows(client: &Client, table: &str, columns: &str) -> BTreeMap<String, String> {
    client
        .query(
            &format!("SELECT signature, concat_ws('|', {columns}) FROM {table}"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

const ACCESS_COLUMNS: &str = "request_id, client_id, subject, requested_scopes::text, \
     granted_scopes::text, session_data, active, requested_at, expires_at, revoked_at";
const REFRESH_COLUMNS: &str = "request_id, client_id, subject, active, revoked_at, \
     access_token_signature, used_times";

async fn counter_hits(client: &Client) -> i64 {
    client
        .query_one("SELECT hits FROM bg_counter WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0)
}

/// Checks green against blue and the load log, row by row.
async fn check_green(setup: &Setup, log: &LoadLog) {
    let blue = setup.blue.client().await;
    let green = setup.green.client().await;

    let blue_access = token_rows(&blue, "access_tokens", ACCESS_COLUMNS).await;
    let green_access = token_rows(&green, "access_tokens", ACCESS_COLUMNS).await;
    for signature in &log.inserted {
        if log.deleted.contains(signature) {
            continue;
        }
        assert!(
            green_access.contains_key(signature),
            "token {signature} inserted on blue is missing on green"
        );
    }
    for (signature, revoked_at) in &log.revoked {
        if log.deleted.contains(signature) {
            continue;
        }
        let row = green
            .query_opt(
                "SELECT active, revoked_at::text FROM access_tokens WHERE signature = $1",
                &[signature],
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("revoked token {signature} is missing on green"));
        let active: bool = row.get(0);
        let green_revoked: Option<String> = row.get(1);
        assert!(
            !active,
            "token {signature} revoked on blue is active on green"
        );
        assert_eq!(
            green_revoked.as_deref(),
            Some(revoked_at.as_str()),
            "revoked_at of {signature}"
        );
    }
    for signature in &log.deleted {
        assert!(
            !green_access.contains_key(signature),
            "token {signature} deleted on blue is still on green"
        );
    }
    assert_eq!(
        blue_access.len(),
        green_access.len(),
        "access_tokens row count"
    );
    for (signature, row) in &blue_access {
        assert_eq!(
            green_access.get(signature),
            Some(row),
            "access_tokens row {signature}"
        );
    }

    let blue_hits = counter_hits(&blue).await;
    assert!(blue_hits > 0, "the load and the hook counted on blue");
    assert_eq!(
        counter_hits(&green).await,
        blue_hits,
        "bg_counter on green: an update was replayed twice or not at all"
    );

    let blue_refresh = token_rows(&blue, "refresh_tokens", REFRESH_COLUMNS).await;
    let green_refresh = token_rows(&green, "refresh_tokens", REFRESH_COLUMNS).await;
    assert_eq!(blue_refresh, green_refresh, "refresh_tokens rows");

    let tenants: i64 = green
        .query_one(
            "SELECT count(*) FROM access_tokens WHERE tenant_id IS DISTINCT FROM 'default'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        tenants, 0,
        "every replayed token has the default tenant on green"
    );
    let applied: i64 = green
        .query_one(
            "SELECT count(*) FROM pgshift.applied_migrations WHERE plan_version = '2.0'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 6, "green has every 2.0 migration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reaches_green_row_by_row() {
    let setup = Setup::new("bg_load").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(
        setup.app_url(),
        setup.switch_file.clone(),
        stop.clone(),
        200_000,
    );

    let report = setup.run(None).await;
    stop.store(true, Ordering::Relaxed);
    let saw_switch = load.await.unwrap();
    let report = report.unwrap();

    assert!(saw_switch, "the load ran until traffic was switched");
    assert_eq!(report.ran, Stage::ALL.to_vec());
    assert!(
        report.replayed > 0,
        "writes after the copy snapshot were replayed"
    );
    assert!(report.write_pause.is_some());
    assert!(report.copy_bytes > 0);

    let log = std::mem::take(&mut *log.lock().unwrap());
    assert!(!log.inserted.is_empty());
    assert!(!log.revoked.is_empty());
    assert!(!log.deleted.is_empty());
    check_green(&setup, &log).await;

    // Blue stays intact and capture keeps running until confirmed.
    let blue = setup.blue.client().await;
    let triggers: i64 = blue
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'pgshift_capture'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 7, "capture triggers stay on blue until confirmed");
    let tenant_column: Option<String> = blue
        .query_one(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = 'access_tokens' AND column_name = 'tenant_id'",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .ok();
    assert_eq!(tenant_column, None, "blue keeps the 1.3 schema");
    setup.drop_role().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncaptured_write_stops_cutover() {
    let setup = Setup::new("bg_uncaptured").await;
    let report = setup.run(Some(Stage::CatchUp)).await.unwrap();
    assert_eq!(report.stopped_after, Some(Stage::CatchUp));

    // `clients` is not captured. The session ends after the write, which
    // flushes its statistics.
    let writer = setup.blue.client().await;
    writer
        .batch_execute("UPDATE clients SET client_name = 'renamed' WHERE id = 'c1'")
        .await
        .unwrap();
    drop(writer);
    let observer = setup.blue.client().await;
    loop {
        let updates: i64 = observer
            .query_one(
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'clients'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if updates > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let error = setup.run(None).await.unwrap_err();
    assert!(
        matches!(&error, BlueGreenError::UncapturedWrites { tables } if tables == &["public.clients".to_string()]),
        "{error}"
    );
    assert!(error.to_string().contains("public.clients"), "{error}");
    assert!(!setup.switch_file.exists(), "traffic was not switched");
    let status: String = observer
        .query_one(
            "SELECT status FROM pgshift.bluegreen_stages WHERE stage = 'cutover'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "failed");
    setup.drop_role().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_runs_resume_at_each_stage() {
    let setup = Setup::new("bg_resume").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(
        setup.app_url(),
        setup.switch_file.clone(),
        stop.clone(),
        200_000,
    );

    let stages = [Stage::Capture, Stage::Copy, Stage::Migrate, Stage::CatchUp];
    let mut copies = 0;
    for (position, stage) in stages.iter().enumerate() {
        let report = setup.run(Some(*stage)).await.unwrap();
        assert_eq!(report.stopped_after, Some(*stage));
        assert_eq!(
            report.ran,
            vec![*stage],
            "run {position} ran only its stage"
        );
        assert_eq!(report.skipped, stages[..position].to_vec());
        if report.copy_time.is_some() {
            copies += 1;
        }
    }
    let report = setup.run(None).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let report = report.unwrap();
    assert_eq!(report.ran, vec![Stage::Cutover]);
    assert_eq!(report.copy_time, None, "the finished copy is not repeated");
    assert_eq!(copies, 1, "blue was copied once");

    let log = std::mem::take(&mut *log.lock().unwrap());
    check_green(&setup, &log).await;

    // A run after the cutover changes nothing.
    let again = setup.run(None).await.unwrap();
    assert!(again.ran.is_empty());
    assert_eq!(again.skipped, Stage::ALL.to_vec());
    setup.drop_role().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_copy_is_redone() {
    let setup = Setup::new("bg_recopy").await;
    setup.run(Some(Stage::Capture)).await.unwrap();
    // A copy that died half-way: journaled started, green partly filled.
    setup
        .blue
        .exec(
            "INSERT INTO pgshift.bluegreen_stages (plan_name, phase, stage, status) \
             VALUES ('oauth-bluegreen', 'upgrade-2.0', 'copy', 'started')",
        )
        .await;
    setup
        .green
        .exec("CREATE TABLE clients (id text); CREATE SCHEMA partial;")
        .await;

    let report = setup.run(Some(Stage::Copy)).await.unwrap();
    assert!(report.copy_time.is_some());
    let green = setup.green.client().await;
    let clients: i64 = green
        .query_one("SELECT count(*) FROM clients", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(clients, 2);
    let partial: Option<String> = green
        .query_one(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = 'partial'",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .ok();
    assert_eq!(partial, None, "the interrupted copy's leftovers are gone");
    setup.drop_role().await;
}

#[tokio::test]
async fn non_empty_green_is_rejected() {
    let setup = Setup::new("bg_nonempty").await;
    setup.green.exec("CREATE TABLE keep_me (id int)").await;
    let error = setup.run(None).await.unwrap_err();
    assert!(error.to_string().contains("is not empty"), "{error}");
    let green = setup.green.client().await;
    let kept: i64 = green
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'keep_me'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1);
    setup.drop_role().await;
}

async fn signatures(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT signature FROM access_tokens WHERE signature IN ('before', 'straddling') \
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Each event is in the copy or replayed, never both: events of a
/// transaction still open at the copy snapshot are replayed, events of one
/// committed before it are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transaction_at_snapshot_is_replayed() {
    let setup = Setup::new("bg_boundary").await;
    setup.run(Some(Stage::Capture)).await.unwrap();

    let committed = setup.blue.client().await;
    committed
        .batch_execute(
            "INSERT INTO access_tokens (signature, request_id, client_id, subject, expires_at) \
             VALUES ('before', 'r', 'c1', 's', now())",
        )
        .await
        .unwrap();
    // Open across the copy snapshot: pg_dump's ACCESS SHARE locks do not
    // wait for its ROW EXCLUSIVE lock, so the copy finishes while it is open.
    let open = setup.blue.client().await;
    open.batch_execute(
        "BEGIN; INSERT INTO access_tokens (signature, request_id, client_id, subject, expires_at) \
         VALUES ('straddling', 'r', 'c1', 's', now())",
    )
    .await
    .unwrap();
    setup.run(Some(Stage::Copy)).await.unwrap();
    open.batch_execute("COMMIT").await.unwrap();

    let green = setup.green.client().await;
    let copied: Vec<String> = signatures(&green).await;
    assert_eq!(
        copied,
        vec!["before".to_string()],
        "the copy holds the earlier commit only"
    );

    setup.run(Some(Stage::CatchUp)).await.unwrap();
    let replayed: Vec<String> = signatures(&green).await;
    assert_eq!(
        replayed,
        vec!["before".to_string(), "straddling".to_string()]
    );
    setup.drop_role().await;
}

/// `Executor::apply` runs the in-place phase on blue, then hands the
/// blue-green phase to `bluegreen`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executor_apply_runs_blue_green_phase() {
    let blue = common::TestDb::new("bg_apply_blue").await;
    let green = common::TestDb::new("bg_apply_green").await;
    let mut plan = Plan::load(&common::repo_path("plans/oauth-bluegreen.yaml")).unwrap();
    let spec = plan.phases[1].blue_green.as_mut().unwrap();
    spec.green = GreenTarget::Conninfo(green.url.clone());

    let mut executor = executor(&blue.url).await;
    executor
        .apply(&plan, &ApplyOptions::default(), &NoopReporter)
        .await
        .unwrap();

    let count = |client: Client, version: &'static str| async move {
        client
            .query_one(
                "SELECT count(*) FROM pgshift.applied_migrations WHERE plan_version = $1",
                &[&version],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count(blue.client().await, "1.3").await, 3);
    assert_eq!(
        count(blue.client().await, "2.0").await,
        0,
        "blue stays at 1.3"
    );
    assert_eq!(
        count(green.client().await, "2.0").await,
        6,
        "green reaches 2.0"
    );
    let stages: i64 = blue
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pgshift.bluegreen_stages WHERE status = 'done'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stages, 5);
}

/// Measures a blue-green phase with `PGSHIFT_BENCH_ROWS` rows (default
/// 1,000,000) split between access and refresh tokens, under the test load.
/// Run by `scripts/bench-bluegreen.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run scripts/bench-bluegreen.sh"]
async fn bench_blue_green_phase() {
    let rows: usize = std::env::var("PGSHIFT_BENCH_ROWS")
        .ok()
        .map(|v| v.parse().expect("PGSHIFT_BENCH_ROWS is a number"))
        .unwrap_or(1_000_000);
    let setup = Setup::new("bg_bench").await;
    let half = rows / 2;
    setup
        .blue
        .exec(&format!(
            "INSERT INTO access_tokens (signature, request_id, client_id, subject, expires_at)
             SELECT 'bench' || i, 'br' || i, 'c' || (i % 2 + 1), 'subject ' || i,
                    now() + interval '1 hour'
             FROM generate_series(1, {half}) AS i;
             INSERT INTO refresh_tokens (signature, request_id, client_id, subject,
                                         access_token_signature)
             SELECT 'rbench' || i, 'br' || i, 'c1', 'subject ' || i, 'bench' || i
             FROM generate_series(1, {half}) AS i;
             ANALYZE access_tokens; ANALYZE refresh_tokens;"
        ))
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(
        setup.app_url(),
        setup.switch_file.clone(),
        stop.clone(),
        usize::MAX,
    );
    let started = std::time::Instant::now();
    let report = setup.run(None).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let report = report.unwrap();
    let total = started.elapsed();

    let log = std::mem::take(&mut *log.lock().unwrap());
    check_green(&setup, &log).await;
    println!(
        "BENCH rows={} copy_s={:.1} copy_mb={:.1} replayed={} replay_rate={:.0} \
         backlog_at_cutover={} write_pause_ms={:.0} phase_s={:.1} load_inserts={} \
         load_revocations={} load_deletes={} rejected_during_pause={} lost=0",
        SEED_TOKENS * 2 + half * 2,
        report.copy_time.unwrap().as_secs_f64(),
        report.copy_bytes as f64 / 1e6,
        report.replayed,
        report.replay_rate().unwrap_or(0.0),
        report.backlog_at_cutover.unwrap(),
        report.write_pause.unwrap().as_secs_f64() * 1000.0,
        total.as_secs_f64(),
        log.inserted.len(),
        log.revoked.len(),
        log.deleted.len(),
        log.rejected,
    );
    setup.drop_role().await;
}

/// Runs `pgshift apply` on the setup's plan file and waits for it to end.
/// With `kill_point`, the process sends itself SIGKILL at that point.
async fn apply_binary(setup: &Setup, kill_point: Option<KillPoint>) -> std::process::Output {
    let mut command = std::process::Command::new(common::pgshift_bin());
    command
        .args(["apply", "--quiet", "--wait"])
        .arg(&setup.plan_path)
        .args(["--database-url", &setup.blue.url])
        .env_remove(bluegreen::KILL_POINT_ENV)
        .stdin(std::process::Stdio::null());
    if let Some(point) = kill_point {
        command.env(bluegreen::KILL_POINT_ENV, point.as_str());
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn describe(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Waits until the load has committed `count` more inserts than `after`.
async fn wait_for_inserts(log: &Mutex<LoadLog>, after: usize, count: usize) {
    loop {
        if log.lock().unwrap().inserted.len() >= after + count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn stage_runs(blue: &Client, stage: &str) -> i32 {
    blue.query_one(
        "SELECT runs FROM pgshift.bluegreen_stages WHERE stage = $1",
        &[&stage],
    )
    .await
    .unwrap()
    .get(0)
}

/// Kills `pgshift apply` with SIGKILL at `point` while the load writes to
/// blue, lets the load write on, then checks that a rerun finishes with
/// every write on green once and a finished copy not repeated.
async fn killed_run_resumes(tag: &str, point: KillPoint) {
    use std::os::unix::process::ExitStatusExt;

    let setup = Setup::new(tag).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(
        setup.app_url(),
        setup.switch_file.clone(),
        stop.clone(),
        usize::MAX,
    );
    wait_for_inserts(&log, 0, 5).await;

    let killed = apply_binary(&setup, Some(point)).await;
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "{point:?}: the run did not die by SIGKILL\n{}",
        describe(&killed)
    );
    // The kill landed inside its stage: the journal shows it started and
    // not done, and every earlier stage done.
    let stage = match point {
        KillPoint::CaptureTableInstalled => "capture",
        KillPoint::CopyStreaming => "copy",
        KillPoint::MigrationApplied => "migrate",
        KillPoint::ReplayBatchOpen | KillPoint::ReplayBatchCommitted => "catch-up",
        KillPoint::CutoverDrained | KillPoint::CutoverSwitched => "cutover",
        KillPoint::StepStatementRan => panic!("{point:?} is not inside a blue-green stage"),
    };
    let journal: Vec<(String, String)> = setup
        .blue
        .client()
        .await
        .query("SELECT stage, status FROM pgshift.bluegreen_stages", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let position = Stage::ALL.iter().position(|s| s.as_str() == stage).unwrap();
    for earlier in &Stage::ALL[..position] {
        assert!(
            journal.contains(&(earlier.as_str().to_string(), "done".to_string())),
            "{point:?}: stage {earlier} done before the kill: {journal:?}"
        );
    }
    assert!(
        journal.contains(&(stage.to_string(), "started".to_string())),
        "{point:?}: stage {stage} started and unfinished at the kill: {journal:?}"
    );
    assert_eq!(journal.len(), position + 1, "{point:?}: {journal:?}");

    // The cutover points kill after `pause_writes` revoked the role's
    // writes on blue, so only the other points see writes after the kill.
    let paused = matches!(
        point,
        KillPoint::CutoverDrained | KillPoint::CutoverSwitched
    );
    if !paused {
        let before = log.lock().unwrap().inserted.len();
        wait_for_inserts(&log, before, 5).await;
    }

    let rerun = apply_binary(&setup, None).await;
    stop.store(true, Ordering::Relaxed);
    let saw_switch = load.await.unwrap();
    assert!(
        rerun.status.success(),
        "{point:?}: the rerun failed\n{}",
        describe(&rerun)
    );
    assert!(saw_switch || paused, "{point:?}: traffic was switched");
    assert!(setup.switch_file.exists(), "{point:?}: switch hook ran");

    let log = std::mem::take(&mut *log.lock().unwrap());
    check_green(&setup, &log).await;

    let blue = setup.blue.client().await;
    let done: i64 = blue
        .query_one(
            "SELECT count(*) FROM pgshift.bluegreen_stages WHERE status = 'done'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(done, 5, "{point:?}: every stage is done");
    let copies = stage_runs(&blue, "copy").await;
    let expected_copies = if point == KillPoint::CopyStreaming {
        2
    } else {
        1
    };
    assert_eq!(
        copies, expected_copies,
        "{point:?}: copy runs (a finished copy must not be repeated)"
    );
    setup.drop_role().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_in_capture_resumes() {
    killed_run_resumes("bg_kill_capture", KillPoint::CaptureTableInstalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_in_copy_resumes() {
    killed_run_resumes("bg_kill_copy", KillPoint::CopyStreaming).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_in_migrate_resumes() {
    killed_run_resumes("bg_kill_migrate", KillPoint::MigrationApplied).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_in_open_replay_batch_resumes() {
    killed_run_resumes("bg_kill_batch_open", KillPoint::ReplayBatchOpen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_replay_batch_resumes() {
    killed_run_resumes("bg_kill_batch_done", KillPoint::ReplayBatchCommitted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_in_cutover_drain_resumes() {
    killed_run_resumes("bg_kill_drained", KillPoint::CutoverDrained).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_after_switch_hook_resumes() {
    killed_run_resumes("bg_kill_switched", KillPoint::CutoverSwitched).await;
}

fn pgshift(args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::pgshift_bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

async fn capture_triggers(blue: &Client) -> i64 {
    blue.query_one(
        "SELECT count(*) FROM pg_trigger WHERE tgname IN ('pgshift_capture', \
         'pgshift_capture_truncate')",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

async fn queued_events(blue: &Client) -> i64 {
    blue.query_one("SELECT count(*) FROM pgshift.capture_queue", &[])
        .await
        .unwrap()
        .get(0)
}

/// `status` shows where a phase is, and `confirm-cutover` rejects a phase
/// that has not cut over and needs `--yes` without a terminal. After the
/// confirmation capture is gone from blue and reruns change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_cutover_ends_capture() {
    let setup = Setup::new("bg_confirm").await;
    let plan = setup.plan_path.display().to_string();
    let url = setup.blue.url.as_str();
    let status = || pgshift(&["status", &plan, "--database-url", url]);

    let before = status();
    assert!(before.status.success(), "{}", describe(&before));
    let text = String::from_utf8_lossy(&before.stdout).into_owned();
    assert!(
        text.contains("phase upgrade-2.0 (blue-green): not started"),
        "{text}"
    );

    setup.run(Some(Stage::CatchUp)).await.unwrap();
    let early = pgshift(&["confirm-cutover", &plan, "--yes", "--database-url", url]);
    assert_eq!(early.status.code(), Some(2), "{}", describe(&early));
    let message = String::from_utf8_lossy(&early.stderr).into_owned();
    assert!(message.contains("cannot be confirmed"), "{message}");
    assert!(
        message.contains("stage cutover not started yet"),
        "{message}"
    );
    let text = String::from_utf8_lossy(&status().stdout).into_owned();
    assert!(text.contains("stage cutover not started yet"), "{text}");

    let applied = apply_binary(&setup, None).await;
    assert!(applied.status.success(), "{}", describe(&applied));
    let text = String::from_utf8_lossy(&applied.stdout).into_owned();
    assert!(
        text.contains("capture keeps running on blue until you run `pgshift confirm-cutover"),
        "{text}"
    );
    let waiting = status();
    assert!(waiting.status.success(), "{}", describe(&waiting));
    let text = String::from_utf8_lossy(&waiting.stdout).into_owned();
    assert!(text.contains("waiting for confirmation"), "{text}");
    assert!(text.contains("pgshift confirm-cutover"), "{text}");

    // Until the confirmation blue keeps capturing, so switching back to
    // blue keeps every write queued.
    let blue = setup.blue.client().await;
    assert_eq!(
        capture_triggers(&blue).await,
        14,
        "7 tables, 2 triggers each"
    );
    let queued = queued_events(&blue).await;
    blue.batch_execute("UPDATE bg_counter SET hits = hits + 1")
        .await
        .unwrap();
    assert_eq!(
        queued_events(&blue).await,
        queued + 1,
        "blue still captures"
    );

    let unasked = pgshift(&["confirm-cutover", &plan, "--database-url", url]);
    assert_eq!(unasked.status.code(), Some(2), "{}", describe(&unasked));
    let message = String::from_utf8_lossy(&unasked.stderr).into_owned();
    assert!(message.contains("--yes"), "{message}");
    assert_eq!(capture_triggers(&blue).await, 14, "nothing dropped unasked");

    let confirmed = pgshift(&["confirm-cutover", &plan, "--yes", "--database-url", url]);
    assert!(confirmed.status.success(), "{}", describe(&confirmed));
    assert_eq!(
        capture_triggers(&blue).await,
        0,
        "capture is gone from blue"
    );
    let queued = queued_events(&blue).await;
    blue.batch_execute("UPDATE bg_counter SET hits = hits + 1")
        .await
        .unwrap();
    assert_eq!(
        queued_events(&blue).await,
        queued,
        "blue no longer captures"
    );
    let by: Option<String> = blue
        .query_one(
            "SELECT confirmed_by FROM pgshift.bluegreen_phases WHERE phase = 'upgrade-2.0'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(by.as_deref(), Some("postgres"));
    let text = String::from_utf8_lossy(&status().stdout).into_owned();
    assert!(text.contains("cut over and confirmed at"), "{text}");

    let again = pgshift(&["confirm-cutover", &plan, "--yes", "--database-url", url]);
    assert!(again.status.success(), "{}", describe(&again));
    let text = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(text.contains("already confirmed"), "{text}");

    // A rerun of the phase neither checks nor reinstalls capture.
    let report = setup.run(None).await.unwrap();
    assert!(report.ran.is_empty());
    assert_eq!(report.skipped, Stage::ALL.to_vec());
    assert_eq!(capture_triggers(&blue).await, 0);
    setup.drop_role().await;
}

/// Steps of the phase's migrations journaled done on green, by migration.
async fn green_steps(green: &Client) -> BTreeMap<String, i64> {
    green
        .query(
            "SELECT migration_id, count(*) FROM pgshift.step_journal \
             WHERE status = 'done' GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// With `green_forms: plain` green runs the 2.0 migrations as written: the
/// four index builds of V13 run in one transaction instead of four
/// concurrent builds, and the result on green is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_forms_run_on_green() {
    let setup = Setup::with_options("bg_plain", |spec| {
        spec.insert("green_forms".into(), "plain".into());
    })
    .await;
    let phase = setup.plan.phases.last().unwrap();
    assert_eq!(
        phase.blue_green.as_ref().unwrap().green_forms,
        GreenForms::Plain
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(
        setup.app_url(),
        setup.switch_file.clone(),
        stop.clone(),
        usize::MAX,
    );
    let report = setup.run(None).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let report = report.unwrap();
    assert_eq!(report.ran, Stage::ALL.to_vec());
    let log = std::mem::take(&mut *log.lock().unwrap());
    check_green(&setup, &log).await;

    let green = setup.green.client().await;
    let steps = green_steps(&green).await;
    let v13 = setup.plan.versions[4]
        .migrations
        .iter()
        .find(|m| m.name.contains("token_indexes"))
        .unwrap();
    let plain = pgshift::rewrite::plan_migration_plain(v13, PgVersion::new(15, 0)).unwrap();
    let online = pgshift::rewrite::plan_migration(v13, PgVersion::new(15, 0)).unwrap();
    assert_eq!(plain.len(), 1, "V13 as written is one transaction");
    assert!(online.len() > 1, "V13 online is one step per index build");
    assert_eq!(steps.get(&v13.id), Some(&1), "green journal: {steps:?}");
    let invalid: i64 = green
        .query_one("SELECT count(*) FROM pg_index WHERE NOT indisvalid", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(invalid, 0);
    let indexes: i64 = green
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%tenant_expires_at_idx'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(indexes, 3, "V13's tenant indexes exist on green");
    setup.drop_role().await;
}

/// A replay statement that fails on one event of a pipelined batch stops
/// the phase with that event's error, not with the "transaction is aborted"
/// error of the events sent after it, and replays none of the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_error_names_failing_event() {
    let setup = Setup::with_options("bg_replay_error", |spec| {
        let capture = spec
            .get_mut("capture")
            .and_then(serde_yaml::Value::as_sequence_mut)
            .unwrap();
        let counter = capture.last_mut().unwrap();
        counter["update"] = "UPDATE bg_counter SET hits = hits + 1 / \
             (CASE WHEN :new.hits::bigint = 3 THEN 0 ELSE 1 END) WHERE id = :old.id"
            .into();
    })
    .await;
    setup.run(Some(Stage::Migrate)).await.unwrap();
    let blue = setup.blue.client().await;
    for _ in 0..5 {
        blue.batch_execute("UPDATE bg_counter SET hits = hits + 1 WHERE id = 1")
            .await
            .unwrap();
    }
    let failing: i64 = blue
        .query_one(
            "SELECT seq FROM pgshift.capture_queue \
             WHERE table_name = 'bg_counter' AND new_row ->> 'hits' = '3'",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    let error = setup.run(None).await.unwrap_err();
    match &error {
        BlueGreenError::Replay {
            seq,
            table,
            op,
            message,
        } => {
            assert_eq!(*seq, failing, "{error}");
            assert_eq!(table, "bg_counter");
            assert_eq!(op, "update");
            assert!(message.contains("division by zero"), "{error}");
        }
        other => panic!("expected a replay error, got {other}"),
    }
    let green = setup.green.client().await;
    assert_eq!(
        counter_hits(&green).await,
        0,
        "the failed batch left nothing on green"
    );
    setup.drop_role().await;
}
