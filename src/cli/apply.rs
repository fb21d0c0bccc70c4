//! `pgshift apply` and `pgshift status`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use pgshift::db;
use pgshift::exec::{self, ApplyOptions, ExecOptions, Executor, LockWait, MigrationState};
use pgshift::plan::Plan;
use pgshift::progress::{CliReporter, OutputMode};
use pgshift::report;
use pgshift::state;

use super::lint::parse_version;
use super::{ApplyArgs, ReportFormat, StatusArgs};

/// Runs `apply`; with `--dry-run` only prints what would run.
pub async fn run(args: &ApplyArgs, quiet: bool) -> Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    if let Some(to) = &args.to {
        if plan.version_index(to).is_none() {
            anyhow::bail!(
                "--to {to}: the plan {} has no version {to}; its versions are {}",
                args.plan.display(),
                version_names(&plan)
            );
        }
    }
    if args.dry_run {
        return dry_run(args, &plan).await;
    }

    let (client, info) = db::connect(args.connection.database_url.as_deref()).await?;
    let options = ExecOptions {
        lock_wait: if args.wait {
            LockWait::Wait {
                poll: Duration::from_secs(1),
                timeout: None,
            }
        } else {
            LockWait::Fail
        },
        ..ExecOptions::default()
    };
    let target = info.redacted();
    let mut executor = Executor::new(client, info, options).await?;
    let reporter = CliReporter::new(OutputMode::detect(quiet));
    let apply_options = ApplyOptions {
        to: args.to.clone(),
    };
    let result = executor.apply(&plan, &apply_options, &reporter).await?;

    let steps: usize = result.applied.iter().map(|m| m.steps.len()).sum();
    println!(
        "{}: applied {} migration(s) in {} step(s); {} already applied",
        target,
        result.applied.len(),
        steps,
        result.already_applied
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints what `apply` would run. With a database, applied migrations are
/// skipped and the server's own version is used.
async fn dry_run(args: &ApplyArgs, plan: &Plan) -> Result<ExitCode> {
    let database =
        args.connection.database_url.is_some() || std::env::var_os("DATABASE_URL").is_some();
    let (version, applied) = if database {
        let (client, _info) = db::connect(args.connection.database_url.as_deref()).await?;
        let version = db::server_version(&client).await?;
        let mut applied = BTreeMap::new();
        if state::schema_exists(&client).await? {
            for a in state::applied_migrations(&client).await? {
                applied.insert(a.migration_id, a.checksum);
            }
        }
        (version, Some(applied))
    } else {
        (parse_version(&args.pg_version)?, None)
    };

    let report = report::build(plan, version, applied.as_ref(), args.to.as_deref())
        .context("cannot plan the migrations")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        ReportFormat::Text => report::write_text(&report, &mut out)?,
        ReportFormat::Json => report::write_json(&report, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `status`: exits 0 when nothing changed since it was applied, 1 when
/// a file changed.
pub async fn status(args: &StatusArgs) -> Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let (client, info) = db::connect(args.connection.database_url.as_deref()).await?;
    let rows = exec::status(&plan, &client).await?;

    println!("{} on {}", plan.name, info.redacted());
    let mut version = None;
    let mut changed = 0;
    for row in &rows {
        if version != Some(&row.version) {
            println!("version {}", row.version);
            version = Some(&row.version);
        }
        let state = match row.state {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Changed => {
                changed += 1;
                "CHANGED"
            }
        };
        println!("  {state:<8} {}", row.path.display());
    }
    let applied = rows
        .iter()
        .filter(|r| r.state == MigrationState::Applied)
        .count();
    let pending = rows
        .iter()
        .filter(|r| r.state == MigrationState::Pending)
        .count();
    println!("{applied} applied, {pending} pending, {changed} changed since applied");
    if changed > 0 {
        eprintln!(
            "error: {changed} applied migration file(s) changed since they were applied; \
             restore the files or record the new checksums"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn version_names(plan: &Plan) -> String {
    plan.versions
        .iter()
        .map(|v| v.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
