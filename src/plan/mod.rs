//! The migration plan: versions, their migration files, and the phases that
//! move a database between versions.
//!
//! A plan is a YAML file. Paths in it are relative to the plan file. Unknown
//! keys, missing folders and duplicate versions are rejected with the key,
//! file or version named.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loaded and validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The plan file as given.
    pub path: PathBuf,
    pub name: String,
    /// Versions in the order they are applied.
    pub versions: Vec<Version>,
    /// Phases in order; together they cover every version exactly once.
    pub phases: Vec<Phase>,
}

/// One release of the schema and the migrations that lead to it from the
/// previous version (from an empty database for the first one).
#[derive(Debug, Clone)]
pub struct Version {
    /// The release name, e.g. `1.4` or `2.0`.
    pub name: String,
    /// The migration folder, resolved against the plan file's folder.
    pub folder: PathBuf,
    /// Migrations in apply order.
    pub migrations: Vec<Migration>,
}

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The migration's own version from its file name: `3` for
    /// `V3__add_index.sql`, `20240105120000` for a timestamped file.
    /// Unique within the plan.
    pub id: String,
    /// The description part of the file name, e.g. `add_index`.
    pub name: String,
    pub path: PathBuf,
    /// True when the file name carries the `.autocommit` marker: every
    /// statement runs on its own, outside a transaction block.
    pub autocommit: bool,
    /// Hex SHA-256 of the file's bytes.
    pub checksum: String,
    /// The file's text.
    pub sql: String,
}

/// How a phase is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Strategy {
    /// Run the rewritten migrations against the live database.
    InPlace,
    /// Copy the database, migrate the copy, then cut over.
    BlueGreen,
}

/// A group of consecutive versions applied with one set of settings.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    /// The version before the phase, `None` for a phase starting from an
    /// empty database.
    pub from: Option<String>,
    /// The last version the phase reaches.
    pub to: String,
    pub strategy: Strategy,
    /// Indexes into [`Plan::versions`] of the versions this phase applies.
    pub versions: std::ops::Range<usize>,
    pub settings: Settings,
}

/// Safety settings of a phase; each key falls back to the plan's
/// `settings`, then to the built-in default.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// `lock_timeout` set before every step that takes a lock.
    pub lock_timeout: Duration,
    /// `statement_timeout` set on pgshift's session; zero means none.
    pub statement_timeout: Duration,
    /// `lock_timeout` for `CONCURRENTLY` statements, which wait for older
    /// transactions by design; zero means wait without limit.
    pub concurrent_lock_timeout: Duration,
    /// How many times a step that failed with SQLSTATE 55P03 is retried.
    pub retries: u32,
    /// Delay before the first retry; doubled on each later one.
    pub retry_backoff: Duration,
    /// Upper bound of the retry delay.
    pub retry_backoff_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::ZERO,
            concurrent_lock_timeout: Duration::ZERO,
            retries: 10,
            retry_backoff: Duration::from_millis(250),
            retry_backoff_max: Duration::from_secs(10),
        }
    }
}

/// Errors from loading a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Malformed YAML, an unknown key or a value of the wrong type; the
    /// message names the key and its line.
    #[error("invalid plan {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Plan {
    /// Reads, validates and discovers the migrations of the plan at `path`.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let _ = path;
        todo!()
    }

    /// Returns the index of the version named `name`.
    pub fn version_index(&self, name: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.name == name)
    }
}
