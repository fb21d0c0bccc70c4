//! `pgshift lint`, `pgshift rules` and `pgshift explain`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _, Result};
use pgshift::config::{self, Config};
use pgshift::diagnostics::{self, Format};
use pgshift::lint::{lint_paths, LintCatalog, LintOptions};
use pgshift::locks::PgVersion;
use pgshift::rules;

use super::{ExplainArgs, LintArgs, LintFormat, RulesArgs};

/// Lints the given paths; exits 0 when clean, 1 on an error-level finding,
/// 2 when a file could not be read or parsed.
pub async fn run(args: &LintArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(path) => config::load(path)?,
        None => {
            let cwd = std::env::current_dir().context("cannot read the working directory")?;
            match config::find(&cwd) {
                Some(path) => config::load(&path)?,
                None => Config::default(),
            }
        }
    };

    let mut options = LintOptions {
        disabled: config.disabled.clone(),
        severities: config.severities.clone(),
        lock_timeout: config.lock_timeout.unwrap_or(false),
        no_wrap: config.wrap == Some(false),
        ..LintOptions::default()
    };
    let mut version = config.pg_version;
    if let Some(url) = &args.database_url {
        let (client, _) = pgshift::db::connect(Some(url))
            .await
            .context("cannot connect for --database-url")?;
        let server = pgshift::db::server_version(&client).await?;
        version = Some(server);
        let catalog = Arc::new(LintCatalog::load(&client, server).await?);
        options.column_types = Some(catalog.clone());
        options.catalog = Some(catalog);
    }
    if let Some(text) = &args.pg_version {
        version = Some(parse_version(text)?);
    }
    if let Some(text) = &args.lock_timeout {
        options.lock_timeout =
            config::parse_timeout(text).map_err(|m| anyhow!("invalid --lock-timeout: {m}"))?;
    }
    if args.no_wrap {
        options.no_wrap = true;
    }
    options.pg_version = version.unwrap_or(PgVersion::new(15, 0));
    options.config = Some(config);

    let format = match args.format {
        LintFormat::Human => Format::Human,
        LintFormat::Json => Format::Json,
        LintFormat::Sarif => Format::Sarif,
        LintFormat::Github => Format::Github,
        LintFormat::Gitlab => Format::Gitlab,
    };
    options.render = Some(format);
    let report = lint_paths(&args.paths, &options);
    let sources = |path: &std::path::Path| std::fs::read_to_string(path).ok();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    diagnostics::render(&report, &sources, options.pg_version, format, &mut out)?;
    out.flush()?;

    // A CI job pointed at the wrong folder, or an `exclude` that matches
    // everything, must not pass as clean.
    if report.files == 0 && report.errors.is_empty() {
        let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "error: no .sql file to lint under {}; check the paths, and the `exclude` \
             patterns of pgshift.toml",
            paths.join(", ")
        );
        return Ok(ExitCode::from(2));
    }

    Ok(if !report.errors.is_empty() {
        ExitCode::from(2)
    } else if report.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Parses a `--pg-version` value.
pub fn parse_version(text: &str) -> Result<PgVersion> {
    PgVersion::parse(text).ok_or_else(|| {
        anyhow!(
            "invalid PostgreSQL version `{text}`: expected 9.0 or newer, written like 15 or 14.3"
        )
    })
}

/// Lists every rule, or prints all of their docs with `--markdown`.
pub fn list(args: &RulesArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.markdown {
        write!(out, "{}", rules::docs::markdown())?;
    } else {
        for rule in rules::RULES {
            writeln!(
                out,
                "{:<50} {:<8} {}",
                rule.id,
                rule.severity.name(),
                rule.summary
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the documentation of one rule.
pub fn explain(args: &ExplainArgs) -> Result<ExitCode> {
    let Some(rule) = rules::find(&args.rule) else {
        bail!("`{}` is not a rule; `pgshift rules` lists them", args.rule);
    };
    print!("{}", rules::docs::explain(rule));
    Ok(ExitCode::SUCCESS)
}
