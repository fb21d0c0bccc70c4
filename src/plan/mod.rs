//! The migration plan: versions, their migration files, and the phases that
//! move a database between versions.
//!
//! A plan is a YAML file. Paths in it are relative to the plan file. Unknown
//! keys, missing folders and duplicate versions are rejected with the key,
//! file or version named. `docs/plan-format.md` describes the format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod bluegreen;
mod discover;
mod raw;

pub use bluegreen::{
    parse_replay, BlueGreen, CaptureTable, GreenForms, GreenTarget, Hook, Hooks, ReplayStatement,
    RowImage, RowValue, Side,
};

use discover::NumericId;

/// Parses a duration as the plan file writes it: `"500ms"`, `"2s"`,
/// `"1m30s"` or `0`. The error names the text and the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    raw::parse_duration(text)
}
use raw::{RawPhase, RawPlan, RawSettings, RawVersion};

/// A loaded and validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The plan file as given.
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    /// The plan-wide `settings` over the built-in defaults; each phase's
    /// own settings start from these.
    pub settings: Settings,
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

/// The way a phase is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
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
    /// The `blue_green` block; set only on `blue-green` phases. A
    /// blue-green phase without it loads, but cannot run.
    pub blue_green: Option<BlueGreen>,
}

/// Safety settings of a phase; each key falls back to the plan's
/// `settings`, then to the built-in default.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Settings {
    /// `lock_timeout` set before every step that takes a lock.
    #[serde(rename = "lock_timeout_ms", serialize_with = "serialize_millis")]
    pub lock_timeout: Duration,
    /// `statement_timeout` set on pgshift's session; zero means none.
    #[serde(rename = "statement_timeout_ms", serialize_with = "serialize_millis")]
    pub statement_timeout: Duration,
    /// `lock_timeout` for `CONCURRENTLY` statements, which wait for older
    /// transactions by design; zero means wait without limit.
    #[serde(
        rename = "concurrent_lock_timeout_ms",
        serialize_with = "serialize_millis"
    )]
    pub concurrent_lock_timeout: Duration,
    /// How many times a step that failed with SQLSTATE 55P03 is retried.
    pub retries: u32,
    /// Delay before the first retry; doubled on each later one.
    #[serde(rename = "retry_backoff_ms", serialize_with = "serialize_millis")]
    pub retry_backoff: Duration,
    /// Upper bound of the retry delay.
    #[serde(rename = "retry_backoff_max_ms", serialize_with = "serialize_millis")]
    pub retry_backoff_max: Duration,
    /// The way a full-table `UPDATE` (a backfill) runs.
    pub backfill: Backfill,
    /// Rows per batch of a batched backfill.
    pub backfill_batch_size: u32,
}

/// The way a backfill (a top-level `UPDATE` of a table the migration did
/// not create) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backfill {
    /// As written, in its migration's transaction: all rows or none.
    Atomic,
    /// In primary key ranges, one short transaction per batch. A failure
    /// leaves the batches before it committed, so this gives up
    /// all-or-nothing.
    Batched,
}

/// The default `backfill_batch_size`.
pub const DEFAULT_BATCH_SIZE: u32 = 1000;

/// The largest `backfill_batch_size` a plan may set. A batch keeps a row
/// lock on each row it changes until it commits, so larger batches make
/// writers wait longer.
pub const MAX_BATCH_SIZE: u32 = 1_000_000;

fn serialize_millis<S: serde::Serializer>(
    value: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
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
            backfill: Backfill::Atomic,
            backfill_batch_size: DEFAULT_BATCH_SIZE,
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
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Plan::from_yaml(path, &text)
    }

    /// Validates the plan text `text` as if read from `path`, and discovers
    /// its migrations in folders relative to `path`'s folder.
    pub fn from_yaml(path: &Path, text: &str) -> Result<Plan, PlanError> {
        let invalid = |message: String| PlanError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // Editors on Windows may start the file with a byte order mark,
        // which YAML would read as part of the first key.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#') || line == "~" || line == "---"
        }) {
            return Err(invalid(
                "the plan is empty; it needs at least `name`, `versions` and `phases` \
                 (see docs/plan-format.md)"
                    .to_string(),
            ));
        }
        let raw: RawPlan = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.name.trim().is_empty() {
            return Err(invalid("`name` is empty; give the plan a name".to_string()));
        }

        let base = path.parent().unwrap_or(Path::new(""));
        let settings =
            resolve_settings(&raw.settings, &Settings::default(), "settings").map_err(invalid)?;
        let versions = load_versions(base, &raw.versions).map_err(invalid)?;
        let phases = build_phases(&raw.phases, &versions, &settings).map_err(invalid)?;

        Ok(Plan {
            path: path.to_path_buf(),
            name: raw.name,
            description: raw.description,
            settings,
            versions,
            phases,
        })
    }

    /// Lists settings that load but remove a safety. A phase with
    /// `lock_timeout: 0` lets a strong lock wait without limit, and every
    /// later query on the table queues behind it.
    pub fn warnings(&self) -> Vec<String> {
        self.phases
            .iter()
            .filter(|phase| phase.settings.lock_timeout.is_zero())
            .map(|phase| {
                format!(
                    "{}: phase {} sets lock_timeout to 0, so its strong locks wait without \
                     limit and every later query on their tables queues behind them; set \
                     lock_timeout to a few seconds and let retries handle busy tables",
                    self.path.display(),
                    phase.name
                )
            })
            .collect()
    }

    /// Returns the index of the version named `name`.
    pub fn version_index(&self, name: &str) -> Option<usize> {
        self.versions.iter().position(|v| v.name == name)
    }
}

/// PostgreSQL's upper bound for `lock_timeout` and `statement_timeout`, in
/// milliseconds (an `int` GUC).
const MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

/// Applies `raw` over `base` and checks the result; `key` names the
/// settings block in messages.
/// The largest `retries` a plan may set; a bound far above any useful count
/// that keeps attempt counters from overflowing.
const MAX_RETRIES: u32 = 10_000;

fn resolve_settings(raw: &RawSettings, base: &Settings, key: &str) -> Result<Settings, String> {
    let settings = raw.apply_to(base);
    let timeouts = [
        ("lock_timeout", settings.lock_timeout),
        ("statement_timeout", settings.statement_timeout),
        ("concurrent_lock_timeout", settings.concurrent_lock_timeout),
    ];
    for (name, value) in timeouts {
        if value.as_millis() > MAX_TIMEOUT_MS {
            return Err(format!(
                "{key}.{name} is {}ms, above PostgreSQL's limit of {MAX_TIMEOUT_MS}ms; \
                 use a smaller value or 0 for none",
                value.as_millis()
            ));
        }
    }
    if settings.retries > MAX_RETRIES {
        return Err(format!(
            "{key}.retries is {}, above the limit of {MAX_RETRIES}; use a smaller count \
             and a longer retry_backoff_max to wait longer",
            settings.retries
        ));
    }
    if settings.backfill_batch_size == 0 || settings.backfill_batch_size > MAX_BATCH_SIZE {
        return Err(format!(
            "{key}.backfill_batch_size is {}; use a count of rows from 1 to {MAX_BATCH_SIZE}",
            settings.backfill_batch_size
        ));
    }
    if settings.retry_backoff_max < settings.retry_backoff {
        return Err(format!(
            "{key}: retry_backoff_max ({:?}) is below retry_backoff ({:?}); \
             raise retry_backoff_max or lower retry_backoff",
            settings.retry_backoff_max, settings.retry_backoff
        ));
    }
    Ok(settings)
}

/// Resolves the version folders, discovers their migrations and checks that
/// version names and migration ids are unique across the plan.
fn load_versions(base: &Path, raw: &[RawVersion]) -> Result<Vec<Version>, String> {
    if raw.is_empty() {
        return Err("`versions` is empty; list at least one version with its \
                    `version` and `path`"
            .to_string());
    }

    let mut versions: Vec<Version> = Vec::with_capacity(raw.len());
    // Numeric id -> (version name, file) of the first migration seen with it.
    let mut ids: HashMap<NumericId, (String, PathBuf)> = HashMap::new();
    for (index, entry) in raw.iter().enumerate() {
        let name = &entry.version.0;
        if let Some(earlier) = versions.iter().position(|v| &v.name == name) {
            return Err(format!(
                "versions[{index}]: version \"{name}\" is listed twice \
                 (also versions[{earlier}]); give each version a unique name"
            ));
        }

        let folder = base.join(&entry.path);
        if !folder.is_dir() {
            let what = if folder.exists() {
                "is not a folder"
            } else {
                "does not exist"
            };
            return Err(format!(
                "versions[{index}]: folder {} of version \"{name}\" {what} \
                 (`path: {}` is relative to the plan file's folder)",
                folder.display(),
                entry.path
            ));
        }

        let migrations = discover::discover(&folder)
            .map_err(|e| format!("versions[{index}] (version \"{name}\"): {e}"))?;
        if migrations.is_empty() {
            return Err(format!(
                "versions[{index}]: folder {} of version \"{name}\" contains no \
                 migrations; add files named {}",
                folder.display(),
                discover::LAYOUTS
            ));
        }

        for migration in &migrations {
            let key = NumericId::parse(&migration.id);
            if let Some((other_version, other_path)) = ids.get(&key) {
                return Err(format!(
                    "migration id {} of {} (version \"{name}\") is already used by {} \
                     (version \"{other_version}\"); ids must be unique across the plan, \
                     where 1, 1.0 and 0001 count as the same id",
                    migration.id,
                    migration.path.display(),
                    other_path.display()
                ));
            }
            ids.insert(key, (name.clone(), migration.path.clone()));
        }

        versions.push(Version {
            name: name.clone(),
            folder,
            migrations,
        });
    }
    Ok(versions)
}

/// Checks that the phases are consecutive and cover every version, and
/// resolves each phase's settings over the plan's.
fn build_phases(
    raw: &[RawPhase],
    versions: &[Version],
    plan_settings: &Settings,
) -> Result<Vec<Phase>, String> {
    let version_names = || {
        versions
            .iter()
            .map(|v| format!("\"{}\"", v.name))
            .collect::<Vec<_>>()
            .join(", ")
    };

    let mut phases: Vec<Phase> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let name = &entry.name;
        let at = format!("phases[{index}] (phase \"{name}\")");
        if name.trim().is_empty() {
            return Err(format!(
                "phases[{index}]: `name` is empty; give the phase a name"
            ));
        }
        if phases.iter().any(|p| &p.name == name) {
            return Err(format!(
                "{at}: the name is used by an earlier phase; rename one"
            ));
        }

        let to = &entry.to.0;
        let Some(end) = versions.iter().position(|v| &v.name == to) else {
            return Err(format!(
                "{at}: `to: \"{to}\"` names no version of the plan; \
                 the versions are {}",
                version_names()
            ));
        };

        let previous = phases.last();
        let start = previous.map_or(0, |p| p.versions.end);
        if end < start {
            let previous = previous.expect("start > 0 implies an earlier phase");
            return Err(format!(
                "{at}: `to: \"{to}\"` is not after \"{}\", where the previous phase \
                 \"{}\" ends; list phases in version order, each reaching a later version",
                previous.to, previous.name
            ));
        }

        let from = previous.map(|p| p.to.clone());
        match (&entry.from, &from) {
            (None, _) => {}
            (Some(given), Some(expected)) if &given.0 == expected => {}
            (Some(given), Some(expected)) => {
                return Err(format!(
                    "{at}: `from: \"{}\"` must equal the previous phase's `to`, \
                     \"{expected}\"; fix it or remove `from`",
                    given.0
                ))
            }
            (Some(given), None) => {
                return Err(format!(
                    "{at}: `from: \"{}\"` is set on the first phase, which starts \
                     from an empty database; remove `from`",
                    given.0
                ))
            }
        }

        let settings = resolve_settings(
            &entry.settings,
            plan_settings,
            &format!("phases[{index}].settings"),
        )?;
        let strategy: Strategy = entry.strategy.into();
        let blue_green = match (&entry.blue_green, strategy) {
            (None, _) => None,
            (Some(raw), Strategy::BlueGreen) => Some(bluegreen::resolve(
                raw,
                &format!("phases[{index}].blue_green"),
            )?),
            (Some(_), Strategy::InPlace) => {
                return Err(format!(
                    "{at}: `blue_green` is set on an in-place phase; set \
                     `strategy: blue-green` or remove the block"
                ))
            }
        };
        phases.push(Phase {
            name: name.clone(),
            from,
            to: to.clone(),
            strategy,
            versions: start..end + 1,
            settings,
            blue_green,
        });
    }

    let covered = phases.last().map_or(0, |p| p.versions.end);
    if covered < versions.len() {
        let missing: Vec<String> = versions[covered..]
            .iter()
            .map(|v| format!("\"{}\"", v.name))
            .collect();
        let noun = if missing.len() == 1 {
            "version"
        } else {
            "versions"
        };
        return Err(format!(
            "{noun} {} {} not covered by any phase; add a phase with `to: \"{}\"` \
             or extend the last phase to it",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            versions[versions.len() - 1].name
        ));
    }
    Ok(phases)
}
