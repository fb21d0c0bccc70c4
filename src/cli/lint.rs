//! `pgshift lint`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use pgshift::diagnostics::{self, Format};
use pgshift::lint::{lint_paths, LintOptions};
use pgshift::locks::PgVersion;

use super::{LintArgs, LintFormat};

/// Lints the given paths; exits 0 when clean, 1 on an error-level finding,
/// 2 when a file could not be read or parsed.
pub fn run(args: &LintArgs) -> Result<ExitCode> {
    let version = parse_version(&args.pg_version)?;
    let options = LintOptions {
        pg_version: version,
    };
    let report = lint_paths(&args.paths, &options);
    let format = match args.format {
        LintFormat::Human => Format::Human,
        LintFormat::Json => Format::Json,
    };
    let sources = |path: &std::path::Path| std::fs::read_to_string(path).ok();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    diagnostics::render(&report, &sources, version, format, &mut out)?;
    out.flush()?;

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
        anyhow!("invalid PostgreSQL version `{text}`: expected a number such as 15 or 14.3")
    })
}
