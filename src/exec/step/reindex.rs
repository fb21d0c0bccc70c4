//! `REINDEX CONCURRENTLY` steps and the INVALID indexes an interrupted
//! rebuild leaves behind.
//!
//! A rebuild that fails or is cancelled before its swap leaves the new copy
//! as an INVALID `<index>_ccnew`. One that stops after the swap leaves the
//! old index as an INVALID `<index>_ccold`. PostgreSQL keeps updating both
//! on every write, and `REINDEX TABLE CONCURRENTLY` skips INVALID indexes,
//! so they stay until dropped. The PostgreSQL manual's REINDEX page
//! recommends dropping either kind and running the rebuild again.

use std::time::Duration;

use super::{Failure, Outcome, Sampling, StepContext};
use crate::db;
use crate::locks::RelationName;
use crate::rewrite::{ReindexTarget, Step};

impl StepContext<'_> {
    /// Runs one attempt of a `REINDEX CONCURRENTLY` with `budget` as its
    /// `lock_timeout`, dropping the target's leftovers before it and after a
    /// failure.
    pub(super) async fn try_reindex(
        &mut self,
        step: &Step,
        target: &ReindexTarget,
        budget: Duration,
    ) -> Result<Outcome, Failure> {
        let statement = &step.statements[0];
        super::set_lock_timeout(self.client, budget).await?;

        let leftovers = self
            .reindex_leftovers(target)
            .await
            .map_err(|error| self.classify_db(error, statement.line))?;
        for leftover in &leftovers {
            tracing::info!(
                index = %super::display_name(leftover),
                "dropping INVALID index left by an earlier REINDEX CONCURRENTLY"
            );
            self.drop_index(step, leftover, statement.line).await?;
        }

        let result = self
            .execute(step, statement, Sampling::IndexBuild, true)
            .await;
        if let Err(mut failure) = result {
            if !matches!(failure, Failure::ConnectionLost { .. }) {
                let dropped = self
                    .drop_reindex_leftovers(step, target, statement.line)
                    .await;
                if let (true, Failure::Fatal(error)) = (dropped, &mut failure) {
                    super::add_duplicate_hint(error);
                }
            }
            return Err(failure);
        }
        Ok(Outcome::Ran)
    }

    async fn reindex_leftovers(
        &self,
        target: &ReindexTarget,
    ) -> Result<Vec<RelationName>, db::DbError> {
        match target {
            ReindexTarget::Index(index) => db::reindex_leftovers(self.client, index, true).await,
            ReindexTarget::Table(table) => db::reindex_leftovers(self.client, table, false).await,
        }
    }

    /// Drops what the failed attempt left and returns true when it dropped
    /// at least one leftover and failed on none. A failure here is only
    /// logged, because the next attempt or run drops the leftovers first.
    async fn drop_reindex_leftovers(
        &mut self,
        step: &Step,
        target: &ReindexTarget,
        line: usize,
    ) -> bool {
        let leftovers = match self.reindex_leftovers(target).await {
            Ok(leftovers) => leftovers,
            Err(error) => {
                tracing::warn!(%error, "cannot look up the leftovers of the failed REINDEX");
                return false;
            }
        };
        let mut failed = 0;
        for leftover in &leftovers {
            let shown = super::display_name(leftover);
            match self.drop_index(step, leftover, line).await {
                Ok(()) => {
                    tracing::info!(index = %shown, "dropped the INVALID index of the failed REINDEX");
                }
                Err(failure) => {
                    failed += 1;
                    match failure {
                        Failure::Fatal(error) => {
                            tracing::warn!(%error, index = %shown, "cannot drop the INVALID index");
                        }
                        _ => tracing::warn!(index = %shown, "cannot drop the INVALID index"),
                    }
                }
            }
        }
        !leftovers.is_empty() && failed == 0
    }
}
