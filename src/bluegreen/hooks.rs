//! Hooks around the stages: SQL on blue or green, or a shell command.

use std::process::Command;

use super::{connect_green, BlueGreenError, Context, Stage};
use crate::plan::{BlueGreen, Hook, Side};

/// Returns the hooks that run before `stage`.
pub fn before(spec: &BlueGreen, stage: Stage) -> &[Hook] {
    let hooks = &spec.hooks;
    match stage {
        Stage::Capture => &hooks.before_capture,
        Stage::Copy => &hooks.before_copy,
        Stage::Migrate => &hooks.before_migrate,
        Stage::CatchUp => &hooks.before_catch_up,
        Stage::Cutover => &[],
    }
}

/// Returns the hooks that run after `stage`.
pub fn after(spec: &BlueGreen, stage: Stage) -> &[Hook] {
    let hooks = &spec.hooks;
    match stage {
        Stage::Capture => &hooks.after_capture,
        Stage::Copy => &hooks.after_copy,
        Stage::Migrate => &hooks.after_migrate,
        Stage::CatchUp => &hooks.after_catch_up,
        Stage::Cutover => &hooks.after_cutover,
    }
}

/// Runs `hooks` in order; `name` is the plan key they come from. A shell
/// hook gets `PGSHIFT_PLAN`, `PGSHIFT_PHASE`, `PGSHIFT_HOOK` and
/// `PGSHIFT_GREEN_DATABASE` in its environment.
pub async fn run(context: &Context<'_>, hooks: &[Hook], name: &str) -> Result<(), BlueGreenError> {
    for (index, hook) in hooks.iter().enumerate() {
        let at = format!("hooks.{name}[{index}]");
        context.reporter.hook(&at);
        match hook {
            Hook::Sql {
                on: Side::Blue,
                sql,
            } => {
                context
                    .blue
                    .batch_execute(sql)
                    .await
                    .map_err(|e| hook_error(&at, &e))?;
            }
            Hook::Sql {
                on: Side::Green,
                sql,
            } => {
                let green = connect_green(context).await?;
                green
                    .batch_execute(sql)
                    .await
                    .map_err(|e| hook_error(&at, &e))?;
            }
            Hook::Shell { command } => {
                let mut process = Command::new("sh");
                process
                    .arg("-c")
                    .arg(command)
                    .env("PGSHIFT_PLAN", &context.plan.name)
                    .env("PGSHIFT_PHASE", &context.phase.name)
                    .env("PGSHIFT_HOOK", name)
                    .env(
                        "PGSHIFT_GREEN_DATABASE",
                        context.green_config.get_dbname().unwrap_or_default(),
                    );
                let output = tokio::task::spawn_blocking(move || process.output())
                    .await
                    .map_err(|e| BlueGreenError::Hook {
                        at: at.clone(),
                        message: e.to_string(),
                    })?
                    .map_err(|e| BlueGreenError::Hook {
                        at: at.clone(),
                        message: format!("cannot run sh: {e}"),
                    })?;
                if !output.status.success() {
                    return Err(BlueGreenError::Hook {
                        at,
                        message: format!(
                            "`{command}` exited with {}: {}",
                            output.status,
                            String::from_utf8_lossy(&output.stderr).trim()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

fn hook_error(at: &str, error: &tokio_postgres::Error) -> BlueGreenError {
    let message = match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => error.to_string(),
    };
    BlueGreenError::Hook {
        at: at.to_string(),
        message,
    }
}
