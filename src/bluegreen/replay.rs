//! Replay of captured events on green, window by window.
//!
//! A window is the pair of blue snapshots `(low, high)`. It contains the events
//! whose transaction is visible in `high` and not in `low`: those that
//! committed between the two snapshots. Snapshots only grow, so each
//! committed transaction falls into exactly one window, and the first
//! window's `low` is the copy snapshot. Inside a window the event set is
//! fixed, so it is replayed in `seq` order, batch by batch, and the last
//! replayed `seq` is a safe resume point. A plain `seq > last` cursor across
//! windows would skip events of a transaction that took a low `seq` and
//! committed late.
//!
//! Each batch runs in one transaction on green together with the update of
//! `pgshift.bluegreen_replay`, so a killed run never replays an event twice.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use pg_query::protobuf::Token;
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::{
    connect_green, kill_point, query_error, BlueGreenError, BlueGreenReport, Context, KillPoint,
};
use crate::plan::{ReplayStatement, RowImage};

const POSITION_DDL: &str = "
CREATE SCHEMA IF NOT EXISTS pgshift;
CREATE TABLE IF NOT EXISTS pgshift.bluegreen_replay (
    plan_name     text NOT NULL,
    phase         text NOT NULL,
    low_snapshot  text NOT NULL,
    high_snapshot text,
    last_seq      bigint NOT NULL DEFAULT 0,
    replayed      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (plan_name, phase)
);
";

/// Events of one window after `last_seq`, oldest first.
const WINDOW_EVENTS: &str = "
SELECT seq, table_name, op, old_row::text, new_row::text
FROM pgshift.capture_queue
WHERE txid >= pg_snapshot_xmin($1::text::pg_snapshot)
  AND txid < pg_snapshot_xmax($2::text::pg_snapshot)
  AND pg_visible_in_snapshot(txid, $2::text::pg_snapshot)
  AND NOT pg_visible_in_snapshot(txid, $1::text::pg_snapshot)
  AND seq > $3
ORDER BY seq
LIMIT $4";

/// Committed events not yet replayed: not visible in the window's `low`.
const BACKLOG: &str = "
SELECT count(*) FROM pgshift.capture_queue
WHERE txid >= pg_snapshot_xmin($1::text::pg_snapshot)
  AND NOT pg_visible_in_snapshot(txid, $1::text::pg_snapshot)";

/// Stores the copy snapshot as the start of replay.
pub async fn init_position(
    context: &Context<'_>,
    green: &Client,
    snapshot: &str,
) -> Result<(), BlueGreenError> {
    green
        .batch_execute(POSITION_DDL)
        .await
        .map_err(query_error("create the replay position", "green"))?;
    green
        .execute(
            "INSERT INTO pgshift.bluegreen_replay (plan_name, phase, low_snapshot) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (plan_name, phase) DO UPDATE SET low_snapshot = $3, \
                 high_snapshot = NULL, last_seq = 0, replayed = 0",
            &[&context.plan.name, &context.phase.name, &snapshot],
        )
        .await
        .map_err(query_error("store the replay position", "green"))?;
    Ok(())
}

/// Runs the catch-up stage: replays windows until fewer than
/// `catch_up_threshold` events wait.
pub async fn catch_up(
    context: &Context<'_>,
    report: &mut BlueGreenReport,
) -> Result<Value, BlueGreenError> {
    let mut replayer = Replayer::open(context).await?;
    loop {
        replayer.replay_window(report).await?;
        let backlog = replayer.backlog().await?;
        context.reporter.backlog(backlog, report.replay_rate());
        if backlog < context.spec.catch_up_threshold {
            return Ok(serde_json::json!({ "backlog": backlog }));
        }
    }
}

/// A replay position on green, read from `pgshift.bluegreen_replay`.
struct Position {
    low: String,
    high: Option<String>,
    last_seq: i64,
}

/// Replays events from blue's queue on green.
pub struct Replayer<'c, 'a> {
    context: &'c Context<'a>,
    green: Client,
    /// Prepared statements by (table, op).
    statements: HashMap<(String, String), Prepared>,
}

struct Prepared {
    statement: Statement,
    replay: ReplayStatement,
}

impl<'c, 'a> Replayer<'c, 'a> {
    pub async fn open(context: &'c Context<'a>) -> Result<Replayer<'c, 'a>, BlueGreenError> {
        let green = connect_green(context).await?;
        Ok(Replayer {
            context,
            green,
            statements: HashMap::new(),
        })
    }

    async fn position(&self) -> Result<Position, BlueGreenError> {
        let row = self
            .green
            .query_opt(
                "SELECT low_snapshot, high_snapshot, last_seq FROM pgshift.bluegreen_replay \
                 WHERE plan_name = $1 AND phase = $2",
                &[&self.context.plan.name, &self.context.phase.name],
            )
            .await
            .map_err(query_error("read the replay position", "green"))?;
        let Some(row) = row else {
            return Err(BlueGreenError::Invalid {
                phase: self.context.phase.name.clone(),
                message: "green has no replay position, so it was not copied by this phase; \
                          delete the phase's rows from pgshift.bluegreen_stages on blue to \
                          copy again"
                    .to_string(),
            });
        };
        Ok(Position {
            low: row.get(0),
            high: row.get(1),
            last_seq: row.get(2),
        })
    }

    /// Returns how many committed events wait for replay.
    pub async fn backlog(&self) -> Result<u64, BlueGreenError> {
        let position = self.position().await?;
        let row = self
            .context
            .blue
            .query_one(BACKLOG, &[&position.low])
            .await
            .map_err(query_error("count the backlog", "blue"))?;
        let count: i64 = row.get(0);
        Ok(count as u64)
    }

    /// Replays one window, from the stored position to a snapshot of blue
    /// taken now (or the one stored by an interrupted run). Returns the
    /// number of events replayed.
    pub async fn replay_window(
        &mut self,
        report: &mut BlueGreenReport,
    ) -> Result<u64, BlueGreenError> {
        let mut position = self.position().await?;
        let high = match position.high.clone() {
            Some(high) => high,
            None => {
                let high: String = self
                    .context
                    .blue
                    .query_one("SELECT pg_current_snapshot()::text", &[])
                    .await
                    .map_err(query_error("take a replay snapshot", "blue"))?
                    .get(0);
                self.green
                    .execute(
                        "UPDATE pgshift.bluegreen_replay SET high_snapshot = $3 \
                         WHERE plan_name = $1 AND phase = $2",
                        &[&self.context.plan.name, &self.context.phase.name, &high],
                    )
                    .await
                    .map_err(query_error("store the replay snapshot", "green"))?;
                high
            }
        };

        let batch_size = i64::from(self.context.spec.batch_size);
        let mut replayed = 0u64;
        loop {
            let events = self
                .context
                .blue
                .query(
                    WINDOW_EVENTS,
                    &[&position.low, &high, &position.last_seq, &batch_size],
                )
                .await
                .map_err(query_error("read the capture queue", "blue"))?;
            if events.is_empty() {
                break;
            }
            let started = Instant::now();
            let last = self.apply_batch(&events).await?;
            report.replay_time += started.elapsed();
            report.replayed += events.len() as u64;
            replayed += events.len() as u64;
            position.last_seq = last;
            self.context
                .reporter
                .replayed(report.replayed, report.replay_rate());
        }

        self.green
            .execute(
                "UPDATE pgshift.bluegreen_replay \
                 SET low_snapshot = high_snapshot, high_snapshot = NULL, last_seq = 0 \
                 WHERE plan_name = $1 AND phase = $2",
                &[&self.context.plan.name, &self.context.phase.name],
            )
            .await
            .map_err(query_error("advance the replay position", "green"))?;
        Ok(replayed)
    }

    /// Replays `events` in one green transaction and returns the last seq.
    async fn apply_batch(&mut self, events: &[tokio_postgres::Row]) -> Result<i64, BlueGreenError> {
        for event in events {
            let table: String = event.get(1);
            let op: String = event.get(2);
            self.prepare(&table, &op).await?;
        }

        // Bind every event's values before anything is sent, so a captured
        // row that does not fit its statement fails the batch up front.
        let mut bound = Vec::with_capacity(events.len());
        for event in events {
            let seq: i64 = event.get(0);
            let table: String = event.get(1);
            let op: String = event.get(2);
            let old_row: Option<String> = event.get(3);
            let new_row: Option<String> = event.get(4);
            let prepared = &self.statements[&(table.clone(), op.clone())];
            match bind_values(&prepared.replay, old_row.as_deref(), new_row.as_deref()) {
                Ok(values) => bound.push((seq, table, op, values)),
                Err(message) => {
                    return Err(BlueGreenError::Replay {
                        seq,
                        table,
                        op,
                        message,
                    })
                }
            }
        }

        let transaction = self
            .green
            .transaction()
            .await
            .map_err(query_error("begin a replay batch", "green"))?;
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = bound
            .iter()
            .map(|(_, _, _, values)| values.iter().map(|v| v as &(dyn ToSql + Sync)).collect())
            .collect();
        let statements = &self.statements;
        let executions = bound
            .iter()
            .zip(&params)
            .map(|((_, table, op, _), params)| {
                let prepared = &statements[&(table.clone(), op.clone())];
                transaction.execute(&prepared.statement, params)
            })
            .collect();
        let results = execute_in_order(executions).await;
        // After the first failure the transaction is aborted and every later
        // statement fails with 25P02, so the first error in seq order is
        // the one to report.
        for ((seq, table, op, _), result) in bound.iter().zip(results) {
            if let Err(error) = result {
                return Err(BlueGreenError::Replay {
                    seq: *seq,
                    table: table.clone(),
                    op: op.clone(),
                    message: db_message(&error),
                });
            }
        }
        let last = bound.last().map_or(0, |(seq, _, _, _)| *seq);
        kill_point(KillPoint::ReplayBatchOpen);
        let count = events.len() as i64;
        transaction
            .execute(
                "UPDATE pgshift.bluegreen_replay SET last_seq = $3, replayed = replayed + $4 \
                 WHERE plan_name = $1 AND phase = $2",
                &[
                    &self.context.plan.name,
                    &self.context.phase.name,
                    &last,
                    &count,
                ],
            )
            .await
            .map_err(query_error("record the replay position", "green"))?;
        transaction
            .commit()
            .await
            .map_err(query_error("commit a replay batch", "green"))?;
        kill_point(KillPoint::ReplayBatchCommitted);
        Ok(last)
    }

    /// Prepares the replay statement of `table` and `op` on green once.
    ///
    /// Every value travels as text and is cast on the server to the type
    /// PostgreSQL infers for its position, so `:new.revoked_at` reaches a
    /// `timestamptz` column through timestamptz's own input function. The
    /// types come from a first prepare of the statement with untyped
    /// parameters.
    async fn prepare(&mut self, table: &str, op: &str) -> Result<(), BlueGreenError> {
        let key = (table.to_string(), op.to_string());
        if self.statements.contains_key(&key) {
            return Ok(());
        }
        let fail = |message: String| BlueGreenError::Replay {
            seq: 0,
            table: table.to_string(),
            op: op.to_string(),
            message,
        };
        let Some(capture) = self.context.spec.capture.iter().find(|c| c.table == table) else {
            return Err(fail(
                "the queue holds an event of a table the plan no longer captures; add it \
                 back to `capture`"
                    .to_string(),
            ));
        };
        let replay = capture
            .statement(op)
            .ok_or_else(|| fail(format!("unknown operation {op}")))?
            .clone();

        let untyped = self
            .green
            .prepare(&replay.sql)
            .await
            .map_err(|e| fail(format!("cannot prepare: {}", db_message(&e))))?;
        let mut casts = Vec::with_capacity(untyped.params().len());
        for param in untyped.params() {
            let name: String = self
                .green
                .query_one("SELECT format_type($1, NULL)", &[&param.oid()])
                .await
                .map_err(query_error("name a parameter type", "green"))?
                .get(0);
            casts.push(name);
        }
        let sql = cast_params(&replay.sql, &casts).map_err(fail)?;
        let statement = self
            .green
            .prepare_typed(&sql, &vec![Type::TEXT; casts.len()])
            .await
            .map_err(|e| fail(format!("cannot prepare: {}", db_message(&e))))?;
        self.statements.insert(key, Prepared { statement, replay });
        Ok(())
    }
}

/// Runs the replay statements of a batch pipelined: every request is sent
/// before the first response is read, so a batch costs about one round trip
/// instead of one per event.
///
/// tokio-postgres queues a request on the connection when its future is
/// first polled, and the server runs the requests of one connection in the
/// order they arrive. The first pass therefore polls every future once, in
/// index order, which keeps blue's `seq` order on green. Responses arrive in
/// the same order, so later passes resume at the first unfinished future.
async fn execute_in_order<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future,
{
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut sent = 0;
    let mut next = 0;
    std::future::poll_fn(|cx| {
        while sent < futures.len() {
            if let Poll::Ready(output) = futures[sent].as_mut().poll(cx) {
                outputs[sent] = Some(output);
            }
            sent += 1;
        }
        while next < futures.len() {
            if outputs[next].is_none() {
                match futures[next].as_mut().poll(cx) {
                    Poll::Ready(output) => outputs[next] = Some(output),
                    Poll::Pending => return Poll::Pending,
                }
            }
            next += 1;
        }
        Poll::Ready(())
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every future finished"))
        .collect()
}

/// Replaces each `$n` of `sql` with `($n::text::<type n>)`.
fn cast_params(sql: &str, types: &[String]) -> Result<String, String> {
    let scan = pg_query::scan(sql).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(sql.len() + 16 * types.len());
    let mut copied = 0;
    for token in &scan.tokens {
        if token.token != Token::Param as i32 {
            continue;
        }
        let (start, end) = (token.start as usize, token.end as usize);
        let number: usize = sql[start + 1..end]
            .parse()
            .map_err(|_| format!("bad parameter {}", &sql[start..end]))?;
        let type_name = types
            .get(number - 1)
            .ok_or_else(|| format!("parameter ${number} has no type"))?;
        out.push_str(&sql[copied..start]);
        out.push_str(&format!("(${number}::text::{type_name})"));
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// Returns the text value of every parameter of `replay` from the captured
/// rows (JSON objects from `to_jsonb`).
fn bind_values(
    replay: &ReplayStatement,
    old_row: Option<&str>,
    new_row: Option<&str>,
) -> Result<Vec<Option<String>>, String> {
    let parse = |text: Option<&str>| -> Result<Option<Value>, String> {
        text.map(|t| serde_json::from_str(t).map_err(|e| format!("bad captured row: {e}")))
            .transpose()
    };
    let old_row = parse(old_row)?;
    let new_row = parse(new_row)?;
    let mut values = Vec::with_capacity(replay.params.len());
    for param in &replay.params {
        let (row, name) = match param.row {
            RowImage::Old => (&old_row, "old"),
            RowImage::New => (&new_row, "new"),
        };
        let Some(row) = row else {
            return Err(format!(
                "{param} is used, but this event has no {name} row (insert events have no \
                 old row, delete events no new row)"
            ));
        };
        let value = match &param.column {
            None => Some(row.to_string()),
            Some(column) => match row.get(column) {
                Some(value) => pg_text(value),
                None => {
                    return Err(format!(
                        "{param} is used, but the captured row has no column {column}"
                    ))
                }
            },
        };
        values.push(value);
    }
    Ok(values)
}

/// Returns PostgreSQL's text input form of a JSON value from `to_jsonb`:
/// NULL for null, arrays as array literals, objects as JSON.
fn pg_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(array_literal(items)),
        other => Some(other.to_string()),
    }
}

fn array_literal(items: &[Value]) -> String {
    let elements: Vec<String> = items
        .iter()
        .map(|item| match item {
            Value::Null => "NULL".to_string(),
            Value::Array(inner) => array_literal(inner),
            Value::String(s) => quote_element(s),
            other => quote_element(&other.to_string()),
        })
        .collect();
    format!("{{{}}}", elements.join(","))
}

fn quote_element(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Returns a server error's message with its detail, or the client error.
fn db_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::parse_replay;

    #[test]
    fn casts_wrap_each_parameter() {
        let sql = cast_params(
            "UPDATE t SET a = $1 WHERE b = $2 AND c = $1",
            &["timestamp with time zone".into(), "text[]".into()],
        )
        .unwrap();
        assert_eq!(
            sql,
            "UPDATE t SET a = ($1::text::timestamp with time zone) \
             WHERE b = ($2::text::text[]) AND c = ($1::text::timestamp with time zone)"
        );
    }

    #[test]
    fn values_come_from_rows() {
        let replay =
            parse_replay("UPDATE t SET s = :new.scopes, r = :new.revoked WHERE id = :old.id")
                .unwrap();
        let values = bind_values(
            &replay,
            Some(r#"{"id": 7, "scopes": ["a"], "revoked": null}"#),
            Some(r#"{"id": 7, "scopes": ["a", "b \"c\"", null], "revoked": "2024-01-01T00:00:00+00:00"}"#),
        )
        .unwrap();
        assert_eq!(values[0].as_deref(), Some(r#"{"a","b \"c\"",NULL}"#));
        assert_eq!(values[1].as_deref(), Some("2024-01-01T00:00:00+00:00"));
        assert_eq!(values[2].as_deref(), Some("7"));
    }

    #[test]
    fn missing_row_or_column_is_named() {
        let replay = parse_replay("DELETE FROM t WHERE id = :old.id").unwrap();
        let error = bind_values(&replay, None, Some("{}")).unwrap_err();
        assert!(error.contains("no old row"), "{error}");
        let error = bind_values(&replay, Some(r#"{"key": 1}"#), None).unwrap_err();
        assert!(error.contains("no column id"), "{error}");
    }
}
