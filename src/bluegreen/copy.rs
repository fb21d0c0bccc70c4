//! Copy: blue into green at a snapshot exported after capture is active.
//!
//! A REPEATABLE READ transaction on blue exports its snapshot and stays open
//! while `pg_dump --snapshot` reads blue, so the archive contains exactly the
//! transactions visible in that snapshot. The snapshot's text form
//! (`pg_current_snapshot()`) is stored on green as the low end of the first
//! replay window. The archive streams from `pg_dump` into `pg_restore`
//! through pgshift, which counts the bytes for the progress display.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

use super::{
    connect_green, kill_point, query_error, replay, BlueGreenError, BlueGreenReport, Context,
    KillPoint,
};
use crate::db;
use crate::plan::GreenTarget;

/// Tables of pgshift's schema whose rows stay on blue.
pub const EXCLUDED_DATA: [&str; 3] = [
    "pgshift.capture_queue",
    "pgshift.bluegreen_stages",
    "pgshift.bluegreen_phases",
];

/// Copies blue into green. `resumed` is true when an earlier copy started
/// and did not finish, so its partial green is cleared first.
pub async fn run(
    context: &Context<'_>,
    resumed: bool,
    report: &mut BlueGreenReport,
) -> Result<serde_json::Value, BlueGreenError> {
    prepare_green(context, resumed).await?;
    let baseline = write_stats(&context.blue).await?;

    let (mut exporter, _notices) = db::connect_config(&context.blue_config).await?;
    let transaction = exporter
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(query_error("open the snapshot transaction", "blue"))?;
    let row = transaction
        .query_one(
            "SELECT pg_export_snapshot(), pg_current_snapshot()::text",
            &[],
        )
        .await
        .map_err(query_error("export the copy snapshot", "blue"))?;
    let snapshot_id: String = row.get(0);
    let snapshot: String = row.get(1);
    context.reporter.copy_started(&snapshot);

    let started = Instant::now();
    let bytes = stream_dump(context, &snapshot_id).await?;
    transaction
        .commit()
        .await
        .map_err(query_error("close the snapshot transaction", "blue"))?;
    let copy_time = started.elapsed();

    let green = connect_green(context).await?;
    finish_green(context, &green, &snapshot).await?;
    report.copy_time = Some(copy_time);
    report.copy_bytes = bytes;
    context.reporter.copy_finished(bytes, copy_time);
    Ok(serde_json::json!({
        "snapshot": snapshot,
        "bytes": bytes,
        "copy_ms": copy_time.as_millis() as u64,
        "write_stats": baseline,
    }))
}

/// Makes sure green exists and is empty. A database target is created when
/// missing. A green left half-filled by an interrupted copy is cleared.
async fn prepare_green(context: &Context<'_>, resumed: bool) -> Result<(), BlueGreenError> {
    if let GreenTarget::Database(name) = &context.spec.green {
        let exists = context
            .blue
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[name])
            .await
            .map_err(query_error("look up the green database", "blue"))?
            .is_some();
        if !exists {
            let sql = format!("CREATE DATABASE {}", quote_ident(name));
            context
                .blue
                .batch_execute(&sql)
                .await
                .map_err(query_error(format!("create database {name}"), "blue"))?;
        }
    }

    let green = connect_green(context).await?;
    let objects: i64 = green
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'",
            &[],
        )
        .await
        .map_err(query_error("check that green is empty", "green"))?
        .get(0);
    if objects == 0 {
        return Ok(());
    }
    if !resumed {
        return Err(BlueGreenError::Invalid {
            phase: context.phase.name.clone(),
            message: format!(
                "the green database {} is not empty ({objects} relations); give an empty \
                 or new database as `green`, so nothing on it is overwritten",
                db::redacted(&context.green_config)
            ),
        });
    }
    context.reporter.copy_restarted();
    clear(&green).await
}

/// Drops every schema of green that a restore creates, after an interrupted
/// copy that this phase started.
async fn clear(green: &Client) -> Result<(), BlueGreenError> {
    let schemas: Vec<String> = green
        .query(
            "SELECT quote_ident(nspname) FROM pg_namespace \
             WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') \
               AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%'",
            &[],
        )
        .await
        .map_err(query_error("list schemas", "green"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut sql = String::new();
    for schema in schemas {
        sql.push_str(&format!("DROP SCHEMA {schema} CASCADE;\n"));
    }
    sql.push_str(
        "DROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n\
         ALTER SCHEMA public OWNER TO pg_database_owner;\n\
         GRANT USAGE ON SCHEMA public TO PUBLIC;",
    );
    green
        .batch_execute(&sql)
        .await
        .map_err(query_error("clear the interrupted copy", "green"))
}

/// Returns `n_tup_ins + n_tup_upd + n_tup_del` of every table outside
/// pgshift's schema, keyed by quoted qualified name.
pub async fn write_stats(
    blue: &Client,
) -> Result<serde_json::Map<String, serde_json::Value>, BlueGreenError> {
    let rows = blue
        .query(
            "SELECT format('%I.%I', schemaname, relname), \
                    (n_tup_ins + n_tup_upd + n_tup_del)::bigint \
             FROM pg_stat_user_tables WHERE schemaname <> 'pgshift'",
            &[],
        )
        .await
        .map_err(query_error("read pg_stat_user_tables", "blue"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let name: String = r.get(0);
            let writes: i64 = r.get(1);
            (name, serde_json::Value::from(writes))
        })
        .collect())
}

/// Runs `pg_dump | pg_restore` and returns the archive size in bytes.
async fn stream_dump(context: &Context<'_>, snapshot_id: &str) -> Result<u64, BlueGreenError> {
    let dump_args = dump_args(&context.blue_config, snapshot_id);
    let restore_args = restore_args(&context.green_config);
    let dump = tool(context, "pg_dump");
    let restore = tool(context, "pg_restore");
    let blue_password = password(&context.blue_config);
    let green_password = password(&context.green_config);

    let counter = Arc::new(AtomicU64::new(0));
    let worker_counter = Arc::clone(&counter);
    let mut worker = tokio::task::spawn_blocking(move || {
        run_pipe(
            (dump, dump_args, blue_password),
            (restore, restore_args, green_password),
            &worker_counter,
        )
    });

    let started = Instant::now();
    let result = loop {
        match tokio::time::timeout(Duration::from_millis(500), &mut worker).await {
            Ok(joined) => break joined,
            Err(_) => context
                .reporter
                .copy_progress(counter.load(Ordering::Relaxed), started.elapsed()),
        }
    };
    let result = result.map_err(|e| BlueGreenError::Copy(format!("copy task failed: {e}")))?;
    result.map_err(BlueGreenError::Copy)
}

type Tool = (PathBuf, Vec<String>, Option<String>);

fn run_pipe(dump: Tool, restore: Tool, counter: &AtomicU64) -> Result<u64, String> {
    let spawn = |(program, args, password): &Tool, stdin: Stdio, stdout: Stdio| {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped());
        if let Some(password) = password {
            command.env("PGPASSWORD", password);
        }
        command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))
    };
    let mut dumper = spawn(&dump, Stdio::null(), Stdio::piped())?;
    let mut restorer = spawn(&restore, Stdio::piped(), Stdio::null())?;

    let mut source = dumper.stdout.take().expect("piped stdout");
    let mut sink = restorer.stdin.take().expect("piped stdin");
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let mut pipe_error = None;
    loop {
        match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if let Err(e) = sink.write_all(&buffer[..n]) {
                    pipe_error = Some(format!("writing to pg_restore failed: {e}"));
                    break;
                }
                total += n as u64;
                counter.store(total, Ordering::Relaxed);
                kill_point(KillPoint::CopyStreaming);
            }
            Err(e) => {
                pipe_error = Some(format!("reading from pg_dump failed: {e}"));
                break;
            }
        }
    }
    drop(sink);
    drop(source);

    let dumped = dumper.wait_with_output().map_err(|e| e.to_string())?;
    let restored = restorer.wait_with_output().map_err(|e| e.to_string())?;
    if !dumped.status.success() {
        return Err(format!(
            "pg_dump failed ({}): {}",
            dumped.status,
            String::from_utf8_lossy(&dumped.stderr).trim()
        ));
    }
    if !restored.status.success() {
        return Err(format!(
            "pg_restore failed ({}): {}",
            restored.status,
            String::from_utf8_lossy(&restored.stderr).trim()
        ));
    }
    if let Some(error) = pipe_error {
        return Err(error);
    }
    Ok(total)
}

fn tool(context: &Context<'_>, name: &str) -> PathBuf {
    match &context.options.pg_bin {
        Some(folder) => folder.join(name),
        None => PathBuf::from(name),
    }
}

/// Arguments of `pg_dump`: custom format without compression, because the
/// archive only crosses a pipe.
pub fn dump_args(blue: &Config, snapshot_id: &str) -> Vec<String> {
    let mut args = vec![
        "--format=custom".to_string(),
        "--compress=0".to_string(),
        format!("--snapshot={snapshot_id}"),
    ];
    for table in EXCLUDED_DATA {
        args.push(format!("--exclude-table-data={table}"));
    }
    args.push(format!("--dbname={}", conninfo(blue)));
    args
}

pub fn restore_args(green: &Config) -> Vec<String> {
    vec![
        "--exit-on-error".to_string(),
        "--no-owner".to_string(),
        format!("--dbname={}", conninfo(green)),
    ]
}

/// Builds a libpq key=value string without the password, which goes into
/// `PGPASSWORD` so it never shows in a process list.
fn conninfo(config: &Config) -> String {
    let mut parts = Vec::new();
    if let Some(Host::Tcp(host)) = config.get_hosts().first() {
        parts.push(format!("host={}", quote_value(host)));
    }
    #[cfg(unix)]
    if let Some(Host::Unix(path)) = config.get_hosts().first() {
        parts.push(format!("host={}", quote_value(&path.display().to_string())));
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote_value(user)));
    }
    if let Some(dbname) = config.get_dbname() {
        parts.push(format!("dbname={}", quote_value(dbname)));
    }
    parts.push("application_name=pgshift".to_string());
    parts.join(" ")
}

fn quote_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn password(config: &Config) -> Option<String> {
    config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Removes capture from green, which receives no application writes, and
/// records the copy snapshot as the start of replay.
async fn finish_green(
    context: &Context<'_>,
    green: &Client,
    snapshot: &str,
) -> Result<(), BlueGreenError> {
    green
        .batch_execute(
            "DROP FUNCTION IF EXISTS pgshift.capture_row() CASCADE; \
             DROP FUNCTION IF EXISTS pgshift.capture_reject_truncate() CASCADE;",
        )
        .await
        .map_err(query_error("remove capture triggers from green", "green"))?;
    replay::init_position(context, green, snapshot).await
}
