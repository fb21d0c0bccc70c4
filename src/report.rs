//! Dry-run reports: every step of a plan in order, with its final SQL,
//! whether it runs in a transaction, and the locks it takes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::diagnostics::{hold_name, LockSummary};
use crate::locks::PgVersion;
use crate::plan::{Plan, Settings, Strategy};
use crate::rewrite::{self, ReindexTarget, RewriteError, Step, StepKind};

/// What a dry-run knows of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    Pending,
    Applied,
    /// Applied, but the file changed since.
    Changed,
}

/// The dry-run of a plan.
#[derive(Debug, serde::Serialize)]
pub struct DryRun {
    pub plan: String,
    pub pg_version: String,
    /// True when applied migrations were read from a database.
    pub connected: bool,
    pub phases: Vec<PhaseReport>,
}

#[derive(Debug, serde::Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub strategy: Strategy,
    pub from: Option<String>,
    pub to: String,
    pub settings: Settings,
    pub versions: Vec<VersionReport>,
}

#[derive(Debug, serde::Serialize)]
pub struct VersionReport {
    pub version: String,
    pub migrations: Vec<MigrationReport>,
}

#[derive(Debug, serde::Serialize)]
pub struct MigrationReport {
    pub id: String,
    pub name: String,
    pub path: String,
    pub state: MigrationState,
    /// The steps that would run; empty for an applied migration.
    pub steps: Vec<Step>,
    /// Rewrites left out or made without a fact they need, as `fix` lists
    /// them.
    pub notes: Vec<rewrite::Note>,
}

/// Builds the dry-run of `plan` up to version `to` (the last version when
/// `None`). `applied` maps the ids of applied migrations to their recorded
/// checksums, when a database was given.
pub fn build(
    plan: &Plan,
    version: PgVersion,
    applied: Option<&BTreeMap<String, String>>,
    to: Option<&str>,
    facts: rewrite::SchemaFacts,
) -> Result<DryRun, RewriteError> {
    let last = match to {
        Some(name) => plan.version_index(name).unwrap_or(plan.versions.len() - 1),
        None => plan.versions.len() - 1,
    };
    let mut phases = Vec::new();
    // `facts` describe the database (empty without one); each pending
    // migration then adds what it creates for the ones after it. Applied
    // migrations are already in the catalog.
    let mut facts = facts;

    for phase in &plan.phases {
        if phase.versions.start > last {
            break;
        }
        let mut versions = Vec::new();
        for v in &plan.versions[phase.versions.start..phase.versions.end.min(last + 1)] {
            let mut migrations = Vec::new();
            for m in &v.migrations {
                let state = match applied.and_then(|a| a.get(&m.id)) {
                    None => MigrationState::Pending,
                    Some(sum) if *sum == m.checksum => MigrationState::Applied,
                    Some(_) => MigrationState::Changed,
                };
                let (steps, notes) = if state == MigrationState::Pending {
                    let options = rewrite::RewriteOptions::from_settings(&phase.settings);
                    let plan = rewrite::plan_migration_with(m, version, &facts, &options)?;
                    facts.learn_sql(&m.sql);
                    (plan.steps, plan.notes)
                } else {
                    (Vec::new(), Vec::new())
                };
                migrations.push(MigrationReport {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    path: m.path.display().to_string(),
                    state,
                    steps,
                    notes,
                });
            }
            versions.push(VersionReport {
                version: v.name.clone(),
                migrations,
            });
        }
        phases.push(PhaseReport {
            name: phase.name.clone(),
            strategy: phase.strategy,
            from: phase.from.clone(),
            to: phase.to.clone(),
            settings: phase.settings.clone(),
            versions,
        });
    }
    Ok(DryRun {
        plan: plan.name.clone(),
        pg_version: format!("{}.{}", version.major, version.minor),
        connected: applied.is_some(),
        phases,
    })
}

/// Writes the dry-run as JSON.
pub fn write_json(report: &DryRun, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

/// Writes the dry-run for a terminal.
pub fn write_text(report: &DryRun, out: &mut dyn Write) -> io::Result<()> {
    let total: usize = report
        .phases
        .iter()
        .flat_map(|p| &p.versions)
        .flat_map(|v| &v.migrations)
        .map(|m| m.steps.len())
        .sum();
    writeln!(
        out,
        "Dry run of plan {}: {} step(s) would run, assuming PostgreSQL {}{}",
        report.plan,
        total,
        report.pg_version,
        if report.connected {
            ""
        } else {
            " (no database given: every migration is shown as pending)"
        }
    )?;

    for phase in &report.phases {
        writeln!(out)?;
        writeln!(
            out,
            "== phase {} ({}): {} -> {}",
            phase.name,
            strategy_name(phase.strategy),
            phase.from.as_deref().unwrap_or("the start"),
            phase.to
        )?;
        writeln!(out, "   {}", describe_settings(&phase.settings))?;
        for version in &phase.versions {
            writeln!(out)?;
            writeln!(out, "-- version {}", version.version)?;
            for m in &version.migrations {
                write_migration(m, out)?;
            }
        }
    }
    Ok(())
}

fn write_migration(m: &MigrationReport, out: &mut dyn Write) -> io::Result<()> {
    match m.state {
        MigrationState::Applied => return writeln!(out, "   {} (applied, skipped)", m.path),
        MigrationState::Changed => {
            return writeln!(
                out,
                "   {} (CHANGED since it was applied: apply stops here)",
                m.path
            )
        }
        MigrationState::Pending => {}
    }
    writeln!(out, "   {} ({} step(s))", m.path, m.steps.len())?;
    for note in &m.notes {
        let what = if note.skipped { "skipped" } else { "unchecked" };
        writeln!(
            out,
            "   line {}: {what} {}: {}",
            note.line, note.rewrite, note.reason
        )?;
    }
    for step in &m.steps {
        writeln!(
            out,
            "   step {}/{}: {}",
            step.index + 1,
            m.steps.len(),
            describe_kind(&step.kind)
        )?;
        for statement in &step.statements {
            let marker = if statement.rewritten {
                " (rewritten)"
            } else {
                ""
            };
            writeln!(out, "     line {}{}:", statement.line, marker)?;
            for line in statement.sql.lines() {
                writeln!(out, "       {line}")?;
            }
            if statement.locks.is_empty() {
                writeln!(out, "       locks: none on existing tables")?;
            }
            for lock in &statement.locks {
                let summary = LockSummary::from(lock);
                writeln!(
                    out,
                    "       lock: {} on {} ({}){}",
                    summary.mode,
                    summary.relation,
                    hold_name(lock.hold),
                    blocked_suffix(&summary)
                )?;
            }
            if let Some(change) = contract_change(&statement.sql) {
                writeln!(
                    out,
                    "       contract: {change} that clients of the previous release may still \
                     use; run it only after every client runs the new release"
                )?;
            }
        }
    }
    Ok(())
}

/// Names the removal or rename a statement makes, for statements that
/// belong in the contract phase of an expand and contract change: running
/// code of the previous release fails on them (SQLSTATE 42703 or 42P01).
fn contract_change(sql: &str) -> Option<&'static str> {
    use pg_query::protobuf::{AlterTableType, ObjectType};
    use pg_query::NodeEnum;

    match crate::sql::first_node(sql)? {
        NodeEnum::AlterTableStmt(alter) => {
            let drops_column = alter.cmds.iter().any(|cmd| {
                matches!(&cmd.node, Some(NodeEnum::AlterTableCmd(cmd))
                    if cmd.subtype == AlterTableType::AtDropColumn as i32)
            });
            drops_column.then_some("drops a column")
        }
        NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectTable as i32 => {
            Some("drops a table")
        }
        NodeEnum::DropStmt(drop) if drop.remove_type == ObjectType::ObjectView as i32 => {
            Some("drops a view")
        }
        NodeEnum::RenameStmt(rename) if rename.rename_type == ObjectType::ObjectColumn as i32 => {
            Some("renames a column")
        }
        NodeEnum::RenameStmt(rename) if rename.rename_type == ObjectType::ObjectTable as i32 => {
            Some("renames a table")
        }
        _ => None,
    }
}

fn blocked_suffix(lock: &LockSummary) -> &'static str {
    match (lock.blocks_reads, lock.blocks_writes) {
        (true, _) => ", blocks reads and writes",
        (false, true) => ", blocks writes",
        (false, false) => "",
    }
}

fn describe_kind(kind: &StepKind) -> String {
    match kind {
        StepKind::Transaction => "in one transaction".to_string(),
        StepKind::Autocommit => "outside a transaction".to_string(),
        StepKind::ConcurrentIndex { index, .. } => format!(
            "outside a transaction, concurrent build of {} (an INVALID leftover is dropped first)",
            crate::rules::qualified(index)
        ),
        StepKind::ConcurrentReindex { target } => {
            let (object, name) = match target {
                ReindexTarget::Index(name) => ("index", name),
                ReindexTarget::Table(name) => ("table", name),
            };
            format!(
                "outside a transaction, concurrent rebuild of {object} {} (INVALID _ccnew and \
                 _ccold leftovers of an earlier rebuild are dropped first)",
                crate::rules::qualified(name)
            )
        }
        StepKind::Backfill {
            table, batch_size, ..
        } => format!(
            "batched backfill of {} by primary key, {batch_size} rows per transaction, \
             resumable after the last finished batch",
            crate::rules::qualified(table)
        ),
    }
}

fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::InPlace => "in-place",
        Strategy::BlueGreen => "blue-green",
    }
}

/// Describes phase settings on one line.
pub fn describe_settings(settings: &Settings) -> String {
    format!(
        "lock_timeout {}, statement_timeout {}, concurrent builds lock_timeout {}, \
         {} retries with backoff {} up to {}",
        duration(settings.lock_timeout),
        duration(settings.statement_timeout),
        duration(settings.concurrent_lock_timeout),
        settings.retries,
        duration(settings.retry_backoff),
        duration(settings.retry_backoff_max)
    )
}

fn duration(d: std::time::Duration) -> String {
    if d.is_zero() {
        "none".to_string()
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
