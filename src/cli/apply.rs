//! `pgshift apply` and `pgshift status`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use pgshift::plan::Plan;
use pgshift::report;

use super::lint::parse_version;
use super::{ApplyArgs, ReportFormat, StatusArgs};

/// Runs `apply`; with `--dry-run` only prints what would run.
pub async fn run(args: &ApplyArgs) -> Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    if let Some(to) = &args.to {
        if plan.version_index(to).is_none() {
            anyhow::bail!(
                "--to {to}: the plan {} has no version {to}; its versions are {}",
                args.plan.display(),
                plan.versions
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if args.dry_run {
        return dry_run(args, &plan).await;
    }
    // TODO: connect and run the executor.
    anyhow::bail!("apply without --dry-run is not wired up yet")
}

async fn dry_run(args: &ApplyArgs, plan: &Plan) -> Result<ExitCode> {
    let version = parse_version(&args.pg_version)?;
    let report = report::build(plan, version, None, args.to.as_deref())
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

/// Runs `status`.
pub async fn status(args: &StatusArgs) -> Result<ExitCode> {
    let _plan = Plan::load(&args.plan)?;
    anyhow::bail!("status is not wired up yet")
}
