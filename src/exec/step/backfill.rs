//! Running a batched backfill: one short transaction per primary key
//! range, with the range's end recorded in `pgshift.backfill_progress` in
//! the same transaction.
//!
//! Because a batch and its progress row commit together, a run that dies
//! at any point resumes after the last committed batch: a batch is either
//! committed and recorded, or neither. A batch that fails with
//! `lock_not_available` is rolled back and retried with backoff, up to the
//! phase's `retries` for that batch.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use super::{backoff, error_message, first_line, quoted_name, Failure, Outcome, StepContext};
use crate::exec::error::ExecError;
use crate::exec::reporter::{BackfillEvent, RetryEvent};
use crate::locks::RelationName;
use crate::rewrite::{
    batch_end_sql, batch_rest_sql, batch_update_sql, set_columns, KeyColumn, Step,
};
use crate::state::{self, BackfillProgress};

const PRIMARY_KEY: &str = "
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
  FROM pg_constraint con
  CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
 WHERE con.conrelid = $1::text::regclass AND con.contype = 'p'
 ORDER BY k.ord";

impl StepContext<'_> {
    /// Runs the batches of a backfill step that the journal does not
    /// record as committed.
    pub(super) async fn try_backfill(
        &mut self,
        step: &Step,
        checksum: &str,
        table: &RelationName,
        qualifier: &str,
        batch_size: u32,
    ) -> Result<Outcome, Failure> {
        let line = first_line(step);
        let statement = &step.statements[0];
        let key = self.primary_key(step, table).await?;
        let mut progress = state::backfill_progress(self.client, &self.migration.id, step.index)
            .await?
            .unwrap_or_default();
        if progress.batches > 0 && progress.step_checksum != checksum {
            return Err(Failure::Fatal(ExecError::StepChanged {
                path: self.migration.path.clone(),
                step_index: step.index,
            }));
        }
        progress.step_checksum = checksum.to_string();
        let estimated_rows = self.estimated_rows(table).await;
        let report = |progress: &BackfillProgress| {
            self.reporter.backfill_progress(&BackfillEvent {
                migration: self.migration,
                step,
                table,
                progress,
                estimated_rows,
            })
        };
        report(&progress);

        while !progress.finished {
            if self.interrupt.is_requested() {
                return Err(Failure::Interrupted { line });
            }
            progress = self
                .batch_with_retries(
                    step,
                    &statement.sql,
                    qualifier,
                    table,
                    &key,
                    batch_size,
                    &progress,
                )
                .await?;
            report(&progress);
        }
        Ok(Outcome::Ran)
    }

    /// Runs the next batch, retrying it after `lock_not_available`.
    #[allow(clippy::too_many_arguments)]
    async fn batch_with_retries(
        &mut self,
        step: &Step,
        sql: &str,
        qualifier: &str,
        table: &RelationName,
        key: &[KeyColumn],
        batch_size: u32,
        progress: &BackfillProgress,
    ) -> Result<BackfillProgress, Failure> {
        let max_attempts = self.settings.retries + 1;
        let mut attempt = 1;
        loop {
            let result = self
                .run_batch(step, sql, qualifier, table, key, batch_size, progress)
                .await;
            let (error, line) = match result {
                Ok(next) => return Ok(next),
                Err(Failure::LockNotAvailable { error, line, .. }) => (error, line),
                Err(other) => return Err(other),
            };
            if attempt >= max_attempts {
                return Err(Failure::Fatal(ExecError::RetriesExhausted {
                    path: self.migration.path.clone(),
                    line,
                    step_index: step.index,
                    attempts: attempt,
                    message: error_message(&error),
                    blockers: Vec::new(),
                }));
            }
            let backoff = backoff(self.settings, attempt);
            self.reporter.step_retry(&RetryEvent {
                migration: self.migration,
                step,
                attempt,
                max_attempts,
                error: error_message(&error),
                backoff,
                blockers: &[],
            });
            tracing::info!(
                migration = %self.migration.id,
                step = step.index + 1,
                batch = progress.batches + 1,
                attempt,
                max_attempts,
                backoff_ms = backoff.as_millis() as u64,
                "{}; retrying the batch",
                error_message(&error)
            );
            if !self.sleep_or_interrupt(backoff).await {
                return Err(Failure::Interrupted { line });
            }
            attempt += 1;
        }
    }

    /// Runs one batch in a transaction of its own: finds the key
    /// `batch_size` rows past the last recorded one, updates the rows in
    /// between, and records the new progress before the commit. Returns
    /// that progress.
    #[allow(clippy::too_many_arguments)]
    async fn run_batch(
        &mut self,
        step: &Step,
        sql: &str,
        qualifier: &str,
        table: &RelationName,
        key: &[KeyColumn],
        batch_size: u32,
        progress: &BackfillProgress,
    ) -> Result<BackfillProgress, Failure> {
        let client = self.client;
        let line = first_line(step);
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'",
                self.settings.lock_timeout.as_millis()
            ))
            .await
            .map_err(|error| self.classify(error, line, Vec::new()))?;

        let result = async {
            let after = progress.last_key.as_deref();
            let end_query = batch_end_sql(table, key, after.is_some(), batch_size);
            let after_values: Vec<&(dyn ToSql + Sync)> = after
                .unwrap_or_default()
                .iter()
                .map(|v| v as &(dyn ToSql + Sync))
                .collect();
            let end: Option<Vec<String>> = self
                .cancellable(line, client.query_opt(&end_query, &after_values))
                .await?
                .map(|row| (0..key.len()).map(|i| row.get::<_, String>(i)).collect());

            let update = batch_update_sql(sql, qualifier, key, after.is_some(), end.is_some())
                .ok_or_else(|| {
                    Failure::Fatal(self.backfill_error(
                        line,
                        table,
                        "the PostgreSQL scanner rejects the statement text".to_string(),
                    ))
                })?;
            let mut values = after_values.clone();
            if let Some(end) = &end {
                values.extend(end.iter().map(|v| v as &(dyn ToSql + Sync)));
            }
            let updated = self
                .cancellable(line, client.execute(&update, &values))
                .await?;
            let scanned = match &end {
                Some(_) => i64::from(batch_size),
                None => {
                    let rest = batch_rest_sql(table, key, after.is_some());
                    self.cancellable(line, client.query_one(&rest, &after_values))
                        .await?
                        .get::<_, i64>(0)
                }
            };

            let next = BackfillProgress {
                step_checksum: progress.step_checksum.clone(),
                last_key: end.clone().or_else(|| progress.last_key.clone()),
                rows_scanned: progress.rows_scanned + scanned,
                rows_updated: progress.rows_updated + updated as i64,
                batches: progress.batches + 1,
                finished: end.is_none(),
            };
            state::record_backfill_progress(client, &self.migration.id, step.index, &next).await?;
            client
                .batch_execute("COMMIT")
                .await
                .map_err(|error| self.classify(error, line, Vec::new()))?;
            Ok(next)
        }
        .await;

        if result.is_err() {
            // After a failed COMMIT the transaction is already gone, and
            // ROLLBACK only warns.
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }

    /// Awaits a query of a batch; an interrupt request sends a cancel for
    /// it to the server.
    async fn cancellable<T>(
        &self,
        line: usize,
        query: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Failure> {
        tokio::pin!(query);
        let mut cancel_sent = false;
        let result = loop {
            tokio::select! {
                result = &mut query => break result,
                _ = self.interrupt.requested(), if !cancel_sent => {
                    cancel_sent = true;
                    tracing::info!(line, "interrupted; cancelling the running batch");
                    if let Err(error) = self.client.cancel_token().cancel_query(NoTls).await {
                        tracing::warn!(%error, "cannot send the cancel request");
                    }
                }
            }
        };
        match result {
            Ok(value) => Ok(value),
            Err(error) if cancel_sent && error.code() == Some(&SqlState::QUERY_CANCELED) => {
                Err(Failure::Interrupted { line })
            }
            Err(error) => Err(self.classify(error, line, Vec::new())),
        }
    }

    /// Reads the table's primary key from the catalog, and checks that the
    /// statement does not assign a key column.
    async fn primary_key(
        &self,
        step: &Step,
        table: &RelationName,
    ) -> Result<Vec<KeyColumn>, Failure> {
        let line = first_line(step);
        let rows = self
            .client
            .query(PRIMARY_KEY, &[&quoted_name(table)])
            .await
            .map_err(|error| self.classify(error, line, Vec::new()))?;
        let key: Vec<KeyColumn> = rows
            .iter()
            .map(|row| KeyColumn {
                name: row.get(0),
                sql_type: row.get(1),
            })
            .collect();
        if key.is_empty() {
            return Err(Failure::Fatal(
                self.backfill_error(
                    line,
                    table,
                    "the table has no primary key to batch by; add one in an earlier migration, \
                 or remove the `-- pgshift:backfill` directive or set `backfill: atomic`"
                        .to_string(),
                ),
            ));
        }
        let assigned = match crate::sql::first_node(&step.statements[0].sql) {
            Some(pg_query::NodeEnum::UpdateStmt(update)) => set_columns(&update),
            _ => Vec::new(),
        };
        if let Some(column) = assigned.iter().find(|c| key.iter().any(|k| &k.name == *c)) {
            return Err(Failure::Fatal(self.backfill_error(
                line,
                table,
                format!(
                    "it sets primary key column {column}, so rows would move between \
                     batches; run it atomically (`backfill: atomic`, no directive)"
                ),
            )));
        }
        Ok(key)
    }

    /// Returns the planner's row estimate of the table, if it has one.
    async fn estimated_rows(&self, table: &RelationName) -> Option<i64> {
        let row = self
            .monitor
            .query_one(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = $1::text::regclass",
                &[&quoted_name(table)],
            )
            .await
            .ok()?;
        // -1 (PG 14+) or 0 (earlier) when never vacuumed or analyzed.
        let estimate: i64 = row.get(0);
        (estimate > 0).then_some(estimate)
    }

    fn backfill_error(&self, line: usize, table: &RelationName, reason: String) -> ExecError {
        ExecError::Backfill {
            path: self.migration.path.clone(),
            line,
            table: super::display_name(table),
            reason,
        }
    }
}
