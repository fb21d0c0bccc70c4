//! `pgshift apply`, `pgshift status` and `pgshift repair`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use pgshift::bluegreen;
use pgshift::db;
use pgshift::exec::{
    self, ApplyOptions, ExecError, ExecOptions, Executor, Interrupt, LockWait, MigrationState,
    RunLock, RUN_LOCK_KEY,
};
use pgshift::plan::{Phase, Plan, Strategy};
use pgshift::progress::{CliReporter, OutputMode};
use pgshift::report;
use pgshift::state;

use super::lint::parse_version;
use super::{ApplyArgs, ConfirmCutoverArgs, RepairArgs, ReportFormat, StatusArgs};

/// Exit code after Ctrl-C, as shells report a process ended by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// Runs `apply`; with `--dry-run` only prints what would run.
pub async fn run(args: &ApplyArgs, quiet: bool) -> Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    for warning in plan.warnings() {
        eprintln!("warning: {warning}");
    }
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
    let interrupt = Interrupt::default();
    watch_ctrl_c(interrupt.clone());
    let options = ExecOptions {
        interrupt,
        lock_wait: if args.wait || args.wait_timeout.is_some() {
            LockWait::Wait {
                poll: Duration::from_secs(1),
                timeout: args.wait_timeout,
            }
        } else {
            LockWait::Fail
        },
        ..ExecOptions::default()
    };
    if let Some(to) = &args.to {
        warn_if_past(&plan, to, &client).await?;
    }
    let target = info.redacted();
    let mut executor = Executor::new(client, info, options).await?;
    let reporter = CliReporter::new(OutputMode::detect(quiet));
    let apply_options = ApplyOptions {
        to: args.to.clone(),
    };
    let result = match executor.apply(&plan, &apply_options, &reporter).await {
        Ok(result) => result,
        Err(error @ ExecError::Interrupted { .. }) => {
            eprintln!("interrupted: {error}");
            eprintln!(
                "resume with: pgshift apply {}{}",
                args.plan.display(),
                args.to
                    .as_ref()
                    .map(|to| format!(" --to {to}"))
                    .unwrap_or_default()
            );
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        Err(error) => return Err(error.into()),
    };

    let steps: usize = result.applied.iter().map(|m| m.steps.len()).sum();
    println!(
        "{}: applied {} migration(s) in {} step(s); {} already applied",
        target,
        result.applied.len(),
        steps,
        result.already_applied
    );
    for phase in plan_phases_up_to(&plan, args.to.as_deref()) {
        if phase.strategy != Strategy::BlueGreen {
            continue;
        }
        let status = bluegreen::phase_status(executor.client(), &plan, phase).await?;
        if let bluegreen::PhaseState::WaitingForConfirmation { .. } = status.state {
            println!(
                "phase {} cut over; capture keeps running on blue until you run \
                 `pgshift confirm-cutover {} --phase {}`",
                phase.name,
                args.plan.display(),
                phase.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Warns when migrations of versions after `to` are already applied:
/// `--to` stops a run there but never rolls a database back.
async fn warn_if_past(plan: &Plan, to: &str, client: &tokio_postgres::Client) -> Result<()> {
    let Some(limit) = plan.version_index(to) else {
        return Ok(());
    };
    let rows = exec::status(plan, client).await?;
    let later = rows.iter().rev().find(|row| {
        row.state != MigrationState::Pending
            && plan
                .version_index(&row.version)
                .is_some_and(|index| index > limit)
    });
    if let Some(row) = later {
        eprintln!(
            "warning: the database already has version {} applied, which comes after --to \
             {to}; apply does not roll back, so nothing of it is undone",
            row.version
        );
    }
    Ok(())
}

/// Requests `interrupt` on the first Ctrl-C, so the executor cancels the
/// running statement and leaves a resumable state. A second Ctrl-C exits at
/// once; the next run then finds the step `started` and resumes there.
fn watch_ctrl_c(interrupt: Interrupt) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!(
            "interrupt received: cancelling the running statement (Ctrl-C again to exit now)"
        );
        interrupt.request();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
}

/// Runs `repair`: records the checksums of applied migration files that
/// changed since they were applied, after confirmation.
pub async fn repair(args: &RepairArgs) -> Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let (client, info) = db::connect(args.connection.database_url.as_deref()).await?;
    let target = info.redacted();

    // The run lock keeps an `apply` from checking checksums while they
    // change.
    let lock = RunLock::acquire(
        &info.config,
        RUN_LOCK_KEY,
        LockWait::Fail,
        &exec::NoopReporter,
    )
    .await?;
    let rows = exec::status(&plan, &client).await?;
    let changed: Vec<_> = rows
        .iter()
        .filter(|r| r.state == MigrationState::Changed)
        .collect();
    if changed.is_empty() {
        lock.release().await?;
        println!("{target}: no applied migration file changed; nothing to repair");
        return Ok(ExitCode::SUCCESS);
    }

    println!("{target}: these applied migration files changed since they were applied:");
    for row in &changed {
        println!("  {} (migration {})", row.path.display(), row.migration_id);
    }
    let question = format!("Record the new checksums of {} file(s)?", changed.len());
    let no_terminal_error = format!(
        "repair needs confirmation, but stdin is not a terminal; pass --yes to record the \
         {} new checksum(s) without asking",
        changed.len()
    );
    if !args.yes && !ask(&question, &no_terminal_error)? {
        lock.release().await?;
        eprintln!("repair cancelled; nothing changed");
        return Ok(ExitCode::from(1));
    }

    for row in &changed {
        let migration = plan
            .versions
            .iter()
            .flat_map(|v| &v.migrations)
            .find(|m| m.id == row.migration_id)
            .expect("status rows come from the plan's migrations");
        state::update_checksum(&client, &migration.id, &migration.checksum).await?;
    }
    lock.release().await?;
    println!(
        "recorded the new checksums of {} migration file(s); the changes in them are NOT \
         applied to the database",
        changed.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on the terminal. Without a terminal on stdin there is no
/// one to ask, so it fails with `no_terminal_error`, which names `--yes`.
fn ask(question: &str, no_terminal_error: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal};

    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{no_terminal_error}");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// Runs `confirm-cutover`: removes capture from blue after a blue-green
/// phase's cutover and records the confirmation, after asking.
pub async fn confirm_cutover(args: &ConfirmCutoverArgs) -> Result<ExitCode> {
    let plan = Plan::load(&args.plan)?;
    let phase = blue_green_phase(&plan, args)?;
    let (client, info) = db::connect(args.connection.database_url.as_deref()).await?;
    let target = info.redacted();

    // The run lock keeps an `apply` of the phase from running beside the
    // removal of its triggers.
    let lock = RunLock::acquire(
        &info.config,
        RUN_LOCK_KEY,
        LockWait::Fail,
        &exec::NoopReporter,
    )
    .await?;
    let status = bluegreen::phase_status(&client, &plan, phase).await?;
    if let bluegreen::PhaseState::WaitingForConfirmation { cut_over_at } = &status.state {
        println!(
            "{target}: phase {} cut over to {} at {cut_over_at}; capture still runs on blue",
            phase.name,
            status.green.as_deref().unwrap_or("green"),
        );
        let question = "Drop the capture triggers on blue? Writes that reach blue afterwards \
                        are no longer queued";
        let no_terminal_error =
            "confirm-cutover needs confirmation, but stdin is not a terminal; pass \
                       --yes to drop the capture triggers without asking";
        if !args.yes && !ask(question, no_terminal_error)? {
            lock.release().await?;
            eprintln!("confirmation cancelled; capture keeps running on blue");
            return Ok(ExitCode::from(1));
        }
    }
    let outcome = bluegreen::confirm_cutover(&client, &plan, phase).await;
    lock.release().await?;
    match outcome? {
        bluegreen::ConfirmOutcome::Confirmed => println!(
            "{target}: confirmed the cutover of phase {}; capture triggers dropped on blue",
            phase.name
        ),
        bluegreen::ConfirmOutcome::AlreadyConfirmed(confirmation) => println!(
            "{target}: the cutover of phase {} was already confirmed at {} by {}; nothing \
             changed",
            phase.name, confirmation.at, confirmation.by
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the blue-green phase named by `--phase`, or the plan's only one.
fn blue_green_phase<'a>(plan: &'a Plan, args: &ConfirmCutoverArgs) -> Result<&'a Phase> {
    let phases: Vec<&Phase> = plan
        .phases
        .iter()
        .filter(|p| p.strategy == Strategy::BlueGreen)
        .collect();
    let names = || {
        phases
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (&args.phase, phases.as_slice()) {
        (_, []) => anyhow::bail!(
            "the plan {} has no blue-green phase; confirm-cutover ends a phase with \
             `strategy: blue-green`",
            args.plan.display()
        ),
        (None, [only]) => Ok(only),
        (None, _) => anyhow::bail!(
            "the plan {} has several blue-green phases ({}); name one with --phase",
            args.plan.display(),
            names()
        ),
        (Some(name), _) => phases
            .iter()
            .find(|p| &p.name == name)
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--phase {name}: the plan {} has no blue-green phase {name}; its \
                     blue-green phases are {}",
                    args.plan.display(),
                    names()
                )
            }),
    }
}

/// Prints what `apply` would run. With a database, applied migrations are
/// skipped and the server's own version is used.
async fn dry_run(args: &ApplyArgs, plan: &Plan) -> Result<ExitCode> {
    let database = args.connection.database_url.is_some()
        || ["DATABASE_URL", "PGHOST", "PGDATABASE"]
            .iter()
            .any(|var| std::env::var_os(var).is_some());
    let (version, applied, client) = if database {
        let (client, _info) = db::connect(args.connection.database_url.as_deref()).await?;
        let version = db::server_version(&client).await?;
        let mut applied = BTreeMap::new();
        if state::schema_exists(&client).await? {
            for a in state::applied_migrations(&client).await? {
                applied.insert(a.migration_id, a.checksum);
            }
        }
        (version, Some(applied), Some(client))
    } else {
        (parse_version(&args.pg_version)?, None, None)
    };
    let facts = match &client {
        Some(client) => db::catalog::schema_facts(client).await?,
        None => pgshift::rewrite::SchemaFacts::default(),
    };

    let report = report::build(plan, version, applied.as_ref(), args.to.as_deref(), facts)
        .context("cannot plan the migrations")?;
    let mut blue_green = Vec::new();
    for phase in plan_phases_up_to(plan, args.to.as_deref()) {
        if phase.strategy == Strategy::BlueGreen {
            blue_green.push(bluegreen::dry_run(plan, phase, version, client.as_ref()).await?);
        }
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        ReportFormat::Text => {
            report::write_text(&report, &mut out)?;
            for phase in &blue_green {
                writeln!(out)?;
                bluegreen::write_dry_run(phase, &mut out)?;
            }
        }
        ReportFormat::Json => {
            let mut json = serde_json::to_value(&report)?;
            json["blue_green"] = serde_json::to_value(&blue_green)?;
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Returns the phases that apply versions up to `to` (all when `None`).
fn plan_phases_up_to<'a>(plan: &'a Plan, to: Option<&str>) -> Vec<&'a Phase> {
    let last = to
        .and_then(|name| plan.version_index(name))
        .unwrap_or(plan.versions.len().saturating_sub(1));
    plan.phases
        .iter()
        .filter(|phase| phase.versions.start <= last)
        .collect()
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
    let mut missing = 0;
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
            MigrationState::Missing => {
                missing += 1;
                "MISSING"
            }
        };
        if row.state == MigrationState::Missing {
            println!(
                "  {state:<8} {} ({}): applied, but the plan has no file with this id",
                row.migration_id, row.name
            );
        } else if row.steps_done > 0 {
            println!(
                "  {state:<8} {} ({} step(s) done by an interrupted run; apply resumes it)",
                row.path.display(),
                row.steps_done
            );
        } else {
            println!("  {state:<8} {}", row.path.display());
        }
    }
    let applied = rows
        .iter()
        .filter(|r| r.state == MigrationState::Applied)
        .count();
    let pending = rows
        .iter()
        .filter(|r| r.state == MigrationState::Pending)
        .count();
    println!(
        "{applied} applied, {pending} pending, {changed} changed since applied, \
         {missing} applied but missing from the plan"
    );
    for phase in plan
        .phases
        .iter()
        .filter(|p| p.strategy == Strategy::BlueGreen)
    {
        print_phase_status(&client, &plan, phase, &args.plan).await?;
    }
    if changed > 0 {
        eprintln!(
            "error: {changed} applied migration file(s) changed since they were applied; \
             restore the files, or record the new checksums with `pgshift repair {}`",
            args.plan.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the state of a blue-green phase, and what the operator does next
/// when it waits for confirmation.
async fn print_phase_status(
    client: &tokio_postgres::Client,
    plan: &Plan,
    phase: &Phase,
    plan_path: &std::path::Path,
) -> Result<()> {
    let status = bluegreen::phase_status(client, plan, phase).await?;
    let green = status
        .green
        .as_deref()
        .map(|g| format!(", green {g}"))
        .unwrap_or_default();
    println!(
        "phase {} (blue-green{green}): {}",
        phase.name,
        status.state.describe()
    );
    if let bluegreen::PhaseState::WaitingForConfirmation { .. } = status.state {
        println!(
            "  capture still runs on blue. Once green serves correctly, run \
             `pgshift confirm-cutover {} --phase {}`; to roll back, switch traffic back \
             to blue (see docs/blue-green.md)",
            plan_path.display(),
            phase.name
        );
    }
    Ok(())
}

fn version_names(plan: &Plan) -> String {
    plan.versions
        .iter()
        .map(|v| v.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
