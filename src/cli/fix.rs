//! `pgshift fix`: rewrite migration files into their online forms.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use pgshift::analysis::AnalyzedFile;
use pgshift::locks::PgVersion;
use pgshift::rewrite::{fix_file_with_options, RewriteOptions, SchemaFacts};

use super::lint::parse_version;
use super::FixArgs;

/// Fixes the given files. Exits 0 on success; with `--diff`, 1 when a file
/// would change.
pub async fn run(args: &FixArgs) -> Result<ExitCode> {
    let (version, mut facts) = match &args.database_url {
        Some(url) => catalog(url).await?,
        None => (parse_version(&args.pg_version)?, SchemaFacts::default()),
    };
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output folder {}", out.display()))?;
    }

    let options = RewriteOptions {
        batch_backfills: args.batch_backfills,
        batch_size: args.backfill_batch_size,
        lock_timeout: args.lock_timeout,
    };
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let mut changed = 0;
    for path in sql_files(&args.paths)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let autocommit = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".autocommit."));
        let file = AnalyzedFile::new(&path, text, autocommit, version)
            .map_err(|e| anyhow!("{}:{e}", path.display()))?;
        let fixed = fix_file_with_options(&file, &facts, &options)?;
        for note in &fixed.notes {
            let what = if note.skipped { "skipped" } else { "unchecked" };
            eprintln!(
                "{}:{}: {what} {}: {}",
                path.display(),
                note.line,
                note.rewrite,
                note.reason
            );
        }
        for stmt in &file.parsed.statements {
            facts.learn(&stmt.node);
        }
        if fixed.changed {
            changed += 1;
        }
        if args.diff || (!args.write && args.out.is_none()) {
            if fixed.changed {
                write_diff(&mut stdout, &path, &file.text, &fixed.text)?;
            }
        } else if args.write {
            if fixed.changed {
                std::fs::write(&path, &fixed.text)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        } else if let Some(out) = &args.out {
            let target = out.join(path.file_name().unwrap_or(path.as_os_str()));
            std::fs::write(&target, &fixed.text)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
    }
    stdout.flush()?;
    Ok(if args.diff && changed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Connects and reads the server version and the catalog facts.
async fn catalog(url: &str) -> Result<(PgVersion, SchemaFacts)> {
    let (client, info) = pgshift::db::connect(Some(url)).await?;
    let version = pgshift::db::server_version(&client)
        .await
        .with_context(|| format!("cannot read the server version of {info}"))?;
    let facts = pgshift::db::catalog::schema_facts(&client)
        .await
        .with_context(|| format!("cannot read the catalog of {info}"))?;
    Ok((version, facts))
}

fn write_diff(out: &mut impl Write, path: &Path, old: &str, new: &str) -> Result<()> {
    let name = path.display().to_string();
    let diff = similar::TextDiff::from_lines(old, new);
    write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("a/{name}"), &format!("b/{name}"))
    )?;
    Ok(())
}

/// Returns the `.sql` files of `paths`, folders searched recursively,
/// `.down.sql` files skipped, each folder's files sorted.
fn sql_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect(path, &mut files)?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or folder", path.display());
        }
    }
    Ok(files)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if name.ends_with(".sql") && !name.ends_with(".down.sql") {
            files.push(entry);
        }
    }
    Ok(())
}
