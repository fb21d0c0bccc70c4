//! Cutover: pause writes, drain the queue, verify, switch, resume.
//!
//! After the `pause_writes` hooks, pgshift takes a snapshot of blue and waits
//! until every transaction of blue's database in progress in it has ended.
//! The hooks stop new writes, so from then on the queue only shrinks. The
//! drain replays windows until one is empty. Then the captured tables' row
//! counts are compared and `pg_stat_user_tables` is checked for writes to
//! tables outside the capture list since the copy snapshot. A failed check
//! resumes writes on blue and switches nothing.
//!
//! NOTE: in PostgreSQL 15 a session reports its table statistics at most
//! once a second, and an idle session only after about ten seconds, so a
//! write in the last seconds before the check may not show in
//! `pg_stat_user_tables` yet. The check also runs before the pause, where it
//! costs no write time.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::copy::write_stats;
use super::replay::Replayer;
use super::{
    hooks, journal, kill_point, query_error, BlueGreenError, BlueGreenReport, Context, KillPoint,
    Stage,
};

/// Transactions of blue's database that were in progress in snapshot `$1`
/// and still are. Transaction ids are cluster-wide, so the snapshot also
/// lists transactions of other databases, which cannot write to blue.
const OPEN_TRANSACTIONS: &str = "
SELECT x::text FROM pg_snapshot_xip($1::text::pg_snapshot) AS x
WHERE pg_xact_status(x) = 'in progress'
  AND (EXISTS (SELECT 1 FROM pg_stat_activity a
               WHERE a.backend_xid = xid(x) AND a.datname = current_database())
       OR EXISTS (SELECT 1 FROM pg_prepared_xacts p
                  WHERE p.transaction = xid(x) AND p.database = current_database()))";

/// How often the drain checks for open transactions.
const DRAIN_POLL: Duration = Duration::from_millis(20);

pub async fn run(
    context: &Context<'_>,
    previous: &Value,
    report: &mut BlueGreenReport,
) -> Result<Value, BlueGreenError> {
    let spec = context.spec;
    if previous.get("switched") == Some(&Value::Bool(true)) {
        // An earlier run switched traffic and died before resuming writes.
        hooks::run(context, &spec.hooks.resume_writes, "resume_writes").await?;
        return Ok(previous.clone());
    }

    let baseline = copy_baseline(context).await?;
    check_uncaptured_writes(context, &baseline).await?;
    let mut replayer = Replayer::open(context).await?;

    let paused = Instant::now();
    context.reporter.writes_paused();
    hooks::run(context, &spec.hooks.pause_writes, "pause_writes").await?;
    let drained = drain(context, &mut replayer, report).await;
    let verified = match drained {
        Ok(backlog) => {
            kill_point(KillPoint::CutoverDrained);
            verify(context, &baseline).await.map(|()| backlog)
        }
        Err(error) => Err(error),
    };
    let backlog = match verified {
        Ok(backlog) => backlog,
        Err(error) => {
            // Nothing switched: blue takes writes again.
            hooks::run(context, &spec.hooks.resume_writes, "resume_writes").await?;
            return Err(error);
        }
    };

    hooks::run(context, &spec.hooks.switch_traffic, "switch_traffic").await?;
    kill_point(KillPoint::CutoverSwitched);
    let switched = serde_json::json!({ "switched": true, "backlog": backlog });
    journal::record_progress(
        &context.blue,
        context.plan,
        context.phase,
        Stage::Cutover,
        &switched,
    )
    .await?;
    hooks::run(context, &spec.hooks.resume_writes, "resume_writes").await?;
    let pause = paused.elapsed();
    context.reporter.writes_resumed(pause, backlog);

    report.backlog_at_cutover = Some(backlog);
    report.write_pause = Some(pause);
    Ok(serde_json::json!({
        "switched": true,
        "backlog": backlog,
        "write_pause_ms": pause.as_secs_f64() * 1000.0,
    }))
}

/// Waits for transactions open at the pause to end, then replays windows
/// until one is empty. Returns the events replayed after the pause.
async fn drain(
    context: &Context<'_>,
    replayer: &mut Replayer<'_, '_>,
    report: &mut BlueGreenReport,
) -> Result<u64, BlueGreenError> {
    let snapshot: String = context
        .blue
        .query_one("SELECT pg_current_snapshot()::text", &[])
        .await
        .map_err(query_error("take the pause snapshot", "blue"))?
        .get(0);
    let deadline = Instant::now() + context.spec.drain_timeout;
    loop {
        let open: Vec<String> = context
            .blue
            .query(OPEN_TRANSACTIONS, &[&snapshot])
            .await
            .map_err(query_error("look for open transactions", "blue"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if open.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(BlueGreenError::DrainTimeout {
                timeout: context.spec.drain_timeout,
                xids: open,
            });
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }

    let mut total = 0;
    loop {
        let replayed = replayer.replay_window(report).await?;
        total += replayed;
        if replayed == 0 {
            return Ok(total);
        }
    }
}

/// Reads the write counters recorded when the copy snapshot was taken.
async fn copy_baseline(
    context: &Context<'_>,
) -> Result<serde_json::Map<String, Value>, BlueGreenError> {
    let copy =
        journal::stage_state(&context.blue, context.plan, context.phase, Stage::Copy).await?;
    match copy.detail.get("write_stats") {
        Some(Value::Object(map)) => Ok(map.clone()),
        _ => Err(BlueGreenError::Invalid {
            phase: context.phase.name.clone(),
            message: "the copy stage recorded no write counters; copy again".to_string(),
        }),
    }
}

async fn verify(
    context: &Context<'_>,
    baseline: &serde_json::Map<String, Value>,
) -> Result<(), BlueGreenError> {
    check_uncaptured_writes(context, baseline).await?;
    check_counts(context).await
}

/// Stops when a table outside `capture` and `allow_writes` was written on
/// blue since the copy snapshot.
async fn check_uncaptured_writes(
    context: &Context<'_>,
    baseline: &serde_json::Map<String, Value>,
) -> Result<(), BlueGreenError> {
    let mut allowed = Vec::new();
    for name in context
        .spec
        .capture
        .iter()
        .map(|c| &c.table)
        .chain(&context.spec.allow_writes)
    {
        let row = context
            .blue
            .query_one(
                "SELECT (SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1))",
                &[name],
            )
            .await
            .map_err(query_error("resolve a table name", "blue"))?;
        if let Some(qualified) = row.get::<_, Option<String>>(0) {
            allowed.push(qualified);
        }
    }

    let now = write_stats(&context.blue).await?;
    let mut written: Vec<String> = now
        .iter()
        .filter(|(name, _)| !allowed.contains(name))
        .filter(|(name, count)| {
            let before = baseline.get(*name).and_then(Value::as_i64).unwrap_or(0);
            count.as_i64().unwrap_or(0) != before
        })
        .map(|(name, _)| name.clone())
        .collect();
    written.sort();
    if written.is_empty() {
        Ok(())
    } else {
        Err(BlueGreenError::UncapturedWrites { tables: written })
    }
}

/// Compares row counts of captured tables on blue and green.
async fn check_counts(context: &Context<'_>) -> Result<(), BlueGreenError> {
    let green = super::connect_green(context).await?;
    let mut mismatches = Vec::new();
    for table in context.spec.capture.iter().filter(|c| c.verify_count) {
        let sql = format!("SELECT count(*) FROM {}", table.table);
        let blue: i64 = context
            .blue
            .query_one(&sql, &[])
            .await
            .map_err(query_error(format!("count {}", table.table), "blue"))?
            .get(0);
        let green: i64 = green
            .query_one(&sql, &[])
            .await
            .map_err(query_error(format!("count {}", table.table), "green"))?
            .get(0);
        if blue != green {
            mismatches.push(format!("{}: {blue} on blue, {green} on green", table.table));
        }
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(BlueGreenError::CountMismatch { mismatches })
    }
}
