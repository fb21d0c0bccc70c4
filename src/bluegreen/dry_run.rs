//! Dry-run of a blue-green phase: every stage with the SQL it runs, the
//! captured tables, the replay statements, and the tables whose writes would
//! stop the cutover.

use std::io::{self, Write};

use tokio_postgres::Client;

use super::copy::{dump_args, restore_args, EXCLUDED_DATA};
use super::{capture, BlueGreenError, Stage};
use crate::locks::PgVersion;
use crate::plan::{GreenForms, Hook, Phase, Plan, Side};

/// The dry-run of one blue-green phase.
#[derive(Debug, serde::Serialize)]
pub struct BlueGreenDryRun {
    pub phase: String,
    pub green: String,
    pub green_forms: GreenForms,
    pub stages: Vec<StagePlan>,
    pub replay: Vec<ReplayPlan>,
    /// Tables on blue outside `capture` and `allow_writes`: a write to any
    /// of them during the window stops the cutover. `None` without a
    /// connection to blue.
    pub stopping_tables: Option<Vec<String>>,
}

#[derive(Debug, serde::Serialize)]
pub struct StagePlan {
    pub stage: Stage,
    /// SQL, commands and hooks in the order they run.
    pub actions: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct ReplayPlan {
    pub table: String,
    pub op: &'static str,
    /// The statement as written in the plan.
    pub text: String,
    /// The statement as prepared, with `$n` in place of the names.
    pub sql: String,
    /// The captured value bound to each `$n`, in order.
    pub params: Vec<String>,
}

/// Builds the dry-run of `phase`; with `blue`, also lists the tables whose
/// writes would stop the cutover.
pub async fn dry_run(
    plan: &Plan,
    phase: &Phase,
    version: PgVersion,
    blue: Option<&Client>,
) -> Result<BlueGreenDryRun, BlueGreenError> {
    let spec = phase
        .blue_green
        .as_ref()
        .ok_or_else(|| BlueGreenError::MissingBlock {
            phase: phase.name.clone(),
        })?;
    let hooks = |list: &[Hook], name: &str| -> Vec<String> {
        list.iter()
            .map(|hook| match hook {
                Hook::Sql { on, sql } => {
                    let side = if *on == Side::Blue { "blue" } else { "green" };
                    format!("hook {name} (SQL on {side}): {}", sql.trim())
                }
                Hook::Shell { command } => format!("hook {name} (shell): {}", command.trim()),
            })
            .collect()
    };
    let h = &spec.hooks;
    let green = match &spec.green {
        crate::plan::GreenTarget::Database(name) => format!("database {name} on blue's server"),
        crate::plan::GreenTarget::Conninfo(_) => "the given connection string".to_string(),
    };

    let mut capture_actions = hooks(&h.before_capture, "before_capture");
    capture_actions.push(format!("on blue: {}", capture::QUEUE_DDL.trim()));
    for table in &spec.capture {
        capture_actions.push(format!(
            "on blue, with lock_timeout {}ms and up to {} retries:\n{}",
            phase.settings.lock_timeout.as_millis(),
            phase.settings.retries,
            capture::trigger_sql(&table.table, table)
        ));
    }
    capture_actions.extend(hooks(&h.after_capture, "after_capture"));

    let mut copy_actions = hooks(&h.before_copy, "before_copy");
    copy_actions.push(
        "on blue: BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
         SELECT pg_export_snapshot(), pg_current_snapshot()::text"
            .to_string(),
    );
    let blue_config = tokio_postgres::Config::new();
    copy_actions.push(format!(
        "pg_dump {} | pg_restore {}",
        dump_args(&blue_config, "<snapshot>").join(" "),
        restore_args(&blue_config).join(" ")
    ));
    copy_actions.push(format!(
        "rows of {} stay on blue; capture triggers are dropped on green",
        EXCLUDED_DATA.join(", ")
    ));
    copy_actions.extend(hooks(&h.after_copy, "after_copy"));

    let mut migrate_actions = hooks(&h.before_migrate, "before_migrate");
    migrate_actions.push(match spec.green_forms {
        GreenForms::Online => {
            "green_forms: online (the migrations run in their online forms, as in place)"
                .to_string()
        }
        GreenForms::Plain => {
            "green_forms: plain (the migrations run as written; no traffic reaches green)"
                .to_string()
        }
    });
    for version_entry in &plan.versions[phase.versions.clone()] {
        for migration in &version_entry.migrations {
            let steps = match spec.green_forms {
                GreenForms::Online => crate::rewrite::plan_migration(migration, version),
                GreenForms::Plain => crate::rewrite::plan_migration_plain(migration, version),
            }
            .map_err(crate::exec::ExecError::from)?;
            for step in steps {
                let place = if step.in_transaction() {
                    "in a transaction"
                } else {
                    "outside a transaction"
                };
                for statement in &step.statements {
                    migrate_actions.push(format!(
                        "on green ({} step {}, {place}): {}",
                        migration.path.display(),
                        step.index,
                        statement.sql.trim()
                    ));
                }
            }
        }
    }
    migrate_actions.extend(hooks(&h.after_migrate, "after_migrate"));

    let mut catch_up_actions = hooks(&h.before_catch_up, "before_catch_up");
    catch_up_actions.push(format!(
        "replay windows in batches of {} until fewer than {} events wait",
        spec.batch_size, spec.catch_up_threshold
    ));
    catch_up_actions.extend(hooks(&h.after_catch_up, "after_catch_up"));

    let mut cutover_actions =
        vec!["check pg_stat_user_tables for writes to uncaptured tables".to_string()];
    cutover_actions.extend(hooks(&h.pause_writes, "pause_writes"));
    cutover_actions.push(format!(
        "wait up to {}s for transactions open at the pause, then drain the queue",
        spec.drain_timeout.as_secs()
    ));
    cutover_actions
        .push("verify: row counts of captured tables, no writes to uncaptured tables".to_string());
    cutover_actions.extend(hooks(&h.switch_traffic, "switch_traffic"));
    cutover_actions.extend(hooks(&h.resume_writes, "resume_writes"));
    cutover_actions.extend(hooks(&h.after_cutover, "after_cutover"));

    let stages = vec![
        StagePlan {
            stage: Stage::Capture,
            actions: capture_actions,
        },
        StagePlan {
            stage: Stage::Copy,
            actions: copy_actions,
        },
        StagePlan {
            stage: Stage::Migrate,
            actions: migrate_actions,
        },
        StagePlan {
            stage: Stage::CatchUp,
            actions: catch_up_actions,
        },
        StagePlan {
            stage: Stage::Cutover,
            actions: cutover_actions,
        },
    ];

    let mut replay = Vec::new();
    for table in &spec.capture {
        for op in ["insert", "update", "delete"] {
            let statement = table.statement(op).expect("known operation");
            replay.push(ReplayPlan {
                table: table.table.clone(),
                op,
                text: statement.text.trim().to_string(),
                sql: statement.sql.trim().to_string(),
                params: statement.params.iter().map(|p| p.to_string()).collect(),
            });
        }
    }

    let stopping_tables = match blue {
        None => None,
        Some(client) => Some(stopping_tables(client, plan, phase).await?),
    };
    Ok(BlueGreenDryRun {
        phase: phase.name.clone(),
        green,
        green_forms: spec.green_forms,
        stages,
        replay,
        stopping_tables,
    })
}

async fn stopping_tables(
    blue: &Client,
    _plan: &Plan,
    phase: &Phase,
) -> Result<Vec<String>, BlueGreenError> {
    let spec = phase.blue_green.as_ref().expect("checked by the caller");
    let allowed: Vec<&String> = spec
        .capture
        .iter()
        .map(|c| &c.table)
        .chain(&spec.allow_writes)
        .collect();
    let rows = blue
        .query(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables s \
             WHERE schemaname <> 'pgshift' \
               AND NOT EXISTS (SELECT 1 FROM unnest($1::text[]) AS a(name) \
                               WHERE to_regclass(a.name) = s.relid) \
             ORDER BY 1",
            &[&allowed],
        )
        .await
        .map_err(super::query_error("list uncaptured tables", "blue"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Writes the dry-run as text.
pub fn write_dry_run(dry: &BlueGreenDryRun, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "phase {} (blue-green), green: {}",
        dry.phase, dry.green
    )?;
    for stage in &dry.stages {
        writeln!(out, "  stage {}", stage.stage)?;
        for action in &stage.actions {
            let mut lines = action.lines();
            if let Some(first) = lines.next() {
                writeln!(out, "    - {first}")?;
            }
            for rest in lines {
                writeln!(out, "      {rest}")?;
            }
        }
    }
    writeln!(out, "  captured tables and replay statements")?;
    for replay in &dry.replay {
        writeln!(out, "    {} {}:", replay.table, replay.op)?;
        for line in replay.sql.lines() {
            writeln!(out, "      {line}")?;
        }
        for (index, param) in replay.params.iter().enumerate() {
            writeln!(out, "      ${} = {param}", index + 1)?;
        }
    }
    match &dry.stopping_tables {
        None => writeln!(
            out,
            "  a write during the window to any table outside the capture list and \
             allow_writes stops the cutover (connect to blue to list them)"
        )?,
        Some(tables) if tables.is_empty() => {
            writeln!(out, "  every table on blue is captured or allowed")?
        }
        Some(tables) => writeln!(
            out,
            "  a write during the window to any of these stops the cutover: {}",
            tables.join(", ")
        )?,
    }
    Ok(())
}
