//! One run per database: a session-level advisory lock held on a dedicated
//! connection for the whole run.
//!
//! The lock is taken with `pg_try_advisory_lock` in a polling loop, never with
//! the blocking `pg_advisory_lock`, so pgshift can report who holds it and
//! stop waiting when asked to.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use tokio_postgres::{Client, Config};

use super::error::ExecError;
use super::reporter::Reporter;
use crate::db;

/// The advisory lock key: the ASCII bytes of `pgshift` as a bigint.
pub const RUN_LOCK_KEY: i64 = 0x0070_6773_6869_6674;

/// Behavior when another run holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockWait {
    /// Return [`ExecError::LockHeld`] at once.
    Fail,
    /// Try again every `poll` until `timeout` (without limit when `None`).
    Wait {
        poll: Duration,
        timeout: Option<Duration>,
    },
}

/// The session that holds the run lock.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    pub pid: i32,
    pub application_name: String,
    pub backend_start: Option<SystemTime>,
    pub client_addr: Option<String>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if !self.application_name.is_empty() {
            write!(f, ", application_name {}", self.application_name)?;
        }
        if let Some(addr) = &self.client_addr {
            write!(f, ", from {addr}")?;
        }
        if let Some(age) = self.backend_start.and_then(|s| s.elapsed().ok()) {
            write!(f, ", connected {}s ago", age.as_secs())?;
        }
        Ok(())
    }
}

/// A held run lock. Dropping it closes its session, which releases the
/// lock on the server too; [`RunLock::release`] also checks the release.
pub struct RunLock {
    client: Client,
    key: i64,
    target: String,
}

impl RunLock {
    /// Opens a dedicated session and takes the lock `key` on it.
    pub async fn acquire(
        config: &Config,
        key: i64,
        wait: LockWait,
        reporter: &dyn Reporter,
    ) -> Result<RunLock, ExecError> {
        let target = db::redacted(config);
        let (client, _notices) = db::connect_config(config).await?;
        let started = Instant::now();
        let mut reported = false;

        loop {
            let row = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(|source| ExecError::Session {
                    what: "pg_try_advisory_lock",
                    source,
                })?;
            if row.get::<_, bool>(0) {
                return Ok(RunLock {
                    client,
                    key,
                    target,
                });
            }

            // The holder may release between the two queries; then the
            // next try succeeds.
            let Some(holder) = lock_holder(&client, key).await? else {
                continue;
            };
            let (poll, timeout) = match wait {
                LockWait::Fail => {
                    return Err(ExecError::LockHeld {
                        target,
                        holder,
                        waited: None,
                    })
                }
                LockWait::Wait { poll, timeout } => (poll, timeout),
            };
            if timeout.is_some_and(|limit| started.elapsed() >= limit) {
                return Err(ExecError::LockHeld {
                    target,
                    holder,
                    waited: Some(started.elapsed()),
                });
            }
            if !reported {
                reporter.lock_waiting(&holder);
                reported = true;
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// The database the lock is held on, without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Releases the lock and closes its session.
    pub async fn release(self) -> Result<(), ExecError> {
        let row = self
            .client
            .query_one("SELECT pg_advisory_unlock($1)", &[&self.key])
            .await
            .map_err(|source| ExecError::Session {
                what: "pg_advisory_unlock",
                source,
            })?;
        if !row.get::<_, bool>(0) {
            return Err(ExecError::UnlockFailed {
                target: self.target,
            });
        }
        Ok(())
    }

    /// Returns the lock's session, for queries that must not take the lock
    /// away from it.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Returns the backend pid of the lock's session.
    pub async fn backend_pid(&self) -> Result<i32, ExecError> {
        let row = self
            .client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|source| ExecError::Session {
                what: "pg_backend_pid",
                source,
            })?;
        Ok(row.get(0))
    }
}

/// Finds the session holding advisory lock `key` in the current database.
/// A bigint key shows in `pg_locks` as `classid` (high 32 bits), `objid`
/// (low 32 bits) and `objsubid = 1`.
pub async fn lock_holder(client: &Client, key: i64) -> Result<Option<LockHolder>, ExecError> {
    let high = key >> 32;
    let low = key & 0xffff_ffff;
    let row = client
        .query_opt(
            "SELECT l.pid, coalesce(a.application_name, ''), a.backend_start, host(a.client_addr) \
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
             LIMIT 1",
            &[&high, &low],
        )
        .await
        .map_err(|source| ExecError::Session {
            what: "look up the run lock holder",
            source,
        })?;
    Ok(row.map(|row| LockHolder {
        pid: row.get(0),
        application_name: row.get(1),
        backend_start: row.get(2),
        client_addr: row.get(3),
    }))
}
