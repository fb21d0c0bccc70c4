//! Command-line arguments. Argument handling only: each command is a short
//! list of calls into the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod apply;
pub mod fix;
pub mod lint;

/// Schema changes for live PostgreSQL databases without downtime.
#[derive(Debug, Parser)]
#[command(name = "pgshift", version, about)]
pub struct Cli {
    /// More output: -v logs pgshift's own debug events, -vv traces,
    /// -vvv everything. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print only errors and the final result.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report statements that take locks blocking reads or writes.
    Lint(LintArgs),
    /// Apply a plan to a database, or show what would run with --dry-run.
    Apply(ApplyArgs),
    /// Show which migrations of a plan are applied, pending or changed.
    Status(StatusArgs),
    /// Rewrite migration files into their online forms.
    Fix(FixArgs),
    /// List the lint rules with their severity and summary.
    Rules(RulesArgs),
    /// Print the documentation of one lint rule.
    Explain(ExplainArgs),
    /// Record the new checksums of applied migration files that were edited
    /// on purpose, after confirmation. The edits are not applied.
    Repair(RepairArgs),
    /// End a blue-green phase after its cutover: drop the capture triggers on
    /// blue (the database of --database-url) and record the confirmation.
    /// Writes that reach blue afterwards are no longer queued.
    ConfirmCutover(ConfirmCutoverArgs),
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// Print the full documentation of every rule as Markdown.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Rule id, e.g. index-build-without-concurrently.
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Human,
    Json,
    Sarif,
    Github,
    Gitlab,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Migration files or folders (searched recursively for .sql files;
    /// .down.sql files are skipped).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: LintFormat,

    /// PostgreSQL version that verdicts assume, e.g. 11 or 14.3 (11 and
    /// 11.0 are the same). Defaults to the config file's pg_version, then
    /// the server's version with --database-url, then 15.
    #[arg(long, value_name = "VERSION")]
    pub pg_version: Option<String>,

    /// Lint as if this lock_timeout were set before every file, as pgshift
    /// apply does with the plan's lock_timeout (e.g. 2s, 500ms).
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,

    /// Lint as if every statement outside BEGIN ... COMMIT ran in its own
    /// transaction, as with a runner that does not wrap migration files.
    #[arg(long)]
    pub no_wrap: bool,

    /// Configuration file; by default pgshift.toml is searched from the
    /// working directory upwards.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read the server version and column types from this database.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Database to connect to, as a postgres:// URL or a libpq key=value
    /// string. Defaults to DATABASE_URL, then the libpq PG* variables.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file (YAML).
    pub plan: PathBuf,

    /// Print every step with its final SQL and locks instead of running it.
    /// Needs no database; with one, applied migrations are skipped.
    #[arg(long)]
    pub dry_run: bool,

    /// Stop after this version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,

    /// Dry-run output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,

    /// PostgreSQL version a dry-run without a database assumes.
    #[arg(long, value_name = "VERSION", default_value = "15")]
    pub pg_version: String,

    /// Wait for another pgshift run on the same database to finish instead
    /// of exiting at once.
    #[arg(long)]
    pub wait: bool,

    /// Like --wait, but give up after this long (e.g. 30s, 5m, 1h30m).
    #[arg(long, value_name = "DURATION", value_parser = parse_wait_timeout)]
    pub wait_timeout: Option<Duration>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

fn parse_wait_timeout(text: &str) -> Result<Duration, String> {
    let duration = pgshift::plan::parse_duration(text).map_err(|_| {
        format!(
            "invalid duration {text:?}: write a number and a unit (ms, s, m or h), \
             e.g. \"30s\" or \"5m\""
        )
    })?;
    if duration.is_zero() {
        return Err("must be longer than zero; leave out --wait-timeout to exit at once".into());
    }
    Ok(duration)
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The plan file (YAML).
    pub plan: PathBuf,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// Migration files or folders (searched recursively for .sql files;
    /// .down.sql files are skipped). Files are fixed in sorted order, and
    /// what earlier files create is known to later ones.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// Print a unified diff of each file that would change, and exit 1
    /// when one would.
    #[arg(long, conflicts_with_all = ["write", "out"])]
    pub diff: bool,

    /// Rewrite the files in place.
    #[arg(long, conflicts_with = "out")]
    pub write: bool,

    /// Write the rewritten files into DIR under their file names.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// PostgreSQL version the rewrites target, e.g. 11 or 14.3. With
    /// --database-url the server's own version is used.
    #[arg(long, value_name = "VERSION", default_value = "15")]
    pub pg_version: String,

    /// Database whose catalog tells which tables are partitioned and which
    /// indexes back constraints. Without it, rewrites that need those facts
    /// are listed as skipped or unchecked.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Rewrite each full-table UPDATE (a backfill) of a table with a
    /// primary key into batches by key range, each batch its own
    /// transaction, as a plan's `backfill: batched` does. The UPDATE gets a
    /// `-- pgshift:backfill batch-size=N` line. Batches give up
    /// all-or-nothing: a failure leaves the earlier batches committed.
    #[arg(long)]
    pub batch_backfills: bool,

    /// Rows per batch for --batch-backfills.
    #[arg(
        long,
        value_name = "ROWS",
        default_value_t = pgshift::plan::DEFAULT_BATCH_SIZE,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(pgshift::plan::MAX_BATCH_SIZE))
    )]
    pub backfill_batch_size: u32,

    /// Write `SET LOCAL lock_timeout` at the start of each transaction that
    /// takes a lock that blocks writes on an existing table, where no
    /// lock_timeout is in effect yet (SET and RESET around such a statement
    /// outside a transaction). A duration such as 2s or 500ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_lock_timeout)]
    pub lock_timeout: Option<std::time::Duration>,
}

/// Parses `--lock-timeout`: a duration other than 0.
fn parse_lock_timeout(text: &str) -> Result<std::time::Duration, String> {
    let timeout = pgshift::plan::parse_duration(text)?;
    if timeout.is_zero() {
        return Err("0 turns the timeout off; give a duration such as 2s".to_string());
    }
    Ok(timeout)
}

#[derive(Debug, Args)]
pub struct ConfirmCutoverArgs {
    /// The plan file (YAML).
    pub plan: PathBuf,

    /// The blue-green phase to confirm; needed only when the plan has more
    /// than one.
    #[arg(long, value_name = "NAME")]
    pub phase: Option<String>,

    /// Confirm without asking. Needed when stdin is not a terminal.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The plan file (YAML).
    pub plan: PathBuf,

    /// Record the new checksums without asking. Needed when stdin is not a
    /// terminal.
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}
