//! Migration discovery: reads a version folder, recognises the file name
//! layouts that migration tools write, and orders the files by their
//! numeric id.
//!
//! Two layouts are accepted:
//! - `V<version>__<name>.sql`, as Flyway and refinery write it, where
//!   `<version>` is digits with `.` or `_` between parts (`V3`, `V1.2`,
//!   `V1_2`).
//! - `<number>_<name>[.postgres][.autocommit][.up].sql`, as golang-migrate,
//!   sqlx and diesel-style tools write it, where `<number>` is a sequence
//!   (`0001`) or a timestamp (`20240105120000`).
//!
//! Files that do not end in `.sql` and files ending in `.down.sql` are
//! skipped. Any other `.sql` file must match a layout.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Migration;

/// The accepted layouts, for error messages.
pub(super) const LAYOUTS: &str = "`V<version>__<name>.sql` (e.g. `V3__add_index.sql`, \
     `V1.2__x.sql`) or `<number>_<name>[.postgres][.autocommit][.up].sql` \
     (e.g. `0001_init.up.sql`, `20240105120000_add_index.autocommit.up.sql`); \
     `.down.sql` files and files not ending in `.sql` are skipped";

/// The id, name and markers parsed from a migration file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParsedName {
    /// The version as written, e.g. `1.2` or `0001`.
    pub id: String,
    pub name: String,
    pub autocommit: bool,
}

/// The classification of a file in a version folder.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FileKind {
    Migration(ParsedName),
    /// Not a migration: no `.sql` suffix, or a `.down.sql` file.
    Skipped,
    /// A `.sql` file whose name matches no layout.
    Unrecognised,
}

/// Classifies a file name.
pub(super) fn classify(file_name: &str) -> FileKind {
    let Some(stem) = file_name.strip_suffix(".sql") else {
        return FileKind::Skipped;
    };
    if stem.ends_with(".down") {
        return FileKind::Skipped;
    }
    match parse_versioned(stem).or_else(|| parse_numbered(stem)) {
        Some(parsed) => FileKind::Migration(parsed),
        None => FileKind::Unrecognised,
    }
}

/// Parses `V<version>__<name>` (the stem without `.sql`).
fn parse_versioned(stem: &str) -> Option<ParsedName> {
    let rest = stem.strip_prefix('V')?;
    let (version, name) = rest.split_once("__")?;
    if !is_dotted_number(version) || name.is_empty() {
        return None;
    }
    Some(ParsedName {
        id: version.to_string(),
        name: name.to_string(),
        autocommit: false,
    })
}

/// Parses `<number>_<name>[.postgres][.autocommit][.up]` (the stem without
/// `.sql`). The name is restricted to letters, digits, `_` and `-` so that
/// a marker in the wrong order, or a misspelt one, is reported instead of
/// being read as part of the name.
fn parse_numbered(stem: &str) -> Option<ParsedName> {
    let stem = stem.strip_suffix(".up").unwrap_or(stem);
    let (stem, autocommit) = match stem.strip_suffix(".autocommit") {
        Some(rest) => (rest, true),
        None => (stem, false),
    };
    let stem = stem.strip_suffix(".postgres").unwrap_or(stem);

    let (number, name) = stem.split_once('_')?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) || !name_ok {
        return None;
    }
    Some(ParsedName {
        id: number.to_string(),
        name: name.to_string(),
        autocommit,
    })
}

/// True for digits with single `.` or `_` separators between them.
fn is_dotted_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .split(['.', '_'])
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

/// The numeric value of an id, for ordering and duplicate checks: parts
/// without leading zeros, trailing zero parts dropped. So `1.0`, `1` and
/// `0001` are the same id, as they are to Flyway, and `1.10` sorts after
/// `1.9`. Parts are compared as digit strings, so timestamps cannot
/// overflow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct NumericId(Vec<String>);

impl NumericId {
    /// The id written without leading zeros, trailing zero parts and with
    /// `.` between parts: `0001` is `1`, `1_10` is `1.10`, `2.0` is `2`.
    pub fn canonical(&self) -> String {
        self.0.join(".")
    }

    pub fn parse(id: &str) -> NumericId {
        let mut parts: Vec<String> = id
            .split(['.', '_'])
            .map(|part| {
                let trimmed = part.trim_start_matches('0');
                if trimmed.is_empty() { "0" } else { trimmed }.to_string()
            })
            .collect();
        while parts.len() > 1 && parts.last().is_some_and(|p| p == "0") {
            parts.pop();
        }
        NumericId(parts)
    }
}

impl Ord for NumericId {
    fn cmp(&self, other: &Self) -> Ordering {
        let width = self.0.len().max(other.0.len());
        for i in 0..width {
            let a = self.0.get(i).map_or("0", String::as_str);
            let b = other.0.get(i).map_or("0", String::as_str);
            let order = a.len().cmp(&b.len()).then_with(|| a.cmp(b));
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for NumericId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Reads every migration in `folder`, ordered by numeric id. Errors are
/// messages for [`super::PlanError::Invalid`], naming the file.
pub(super) fn discover(folder: &Path) -> Result<Vec<Migration>, String> {
    let entries = std::fs::read_dir(folder)
        .map_err(|e| format!("cannot list migration folder {}: {e}", folder.display()))?;

    let mut found: Vec<(NumericId, Migration)> = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("cannot list migration folder {}: {e}", folder.display()))?;
        let path = entry.path();
        // `metadata` follows symlinks, so a linked file counts as a file.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            if path.extension().is_some_and(|e| e == "sql") {
                return Err(format!(
                    "migration file {} has a name that is not valid UTF-8; rename it",
                    path.display()
                ));
            }
            continue;
        };

        let parsed = match classify(file_name) {
            FileKind::Migration(parsed) => parsed,
            FileKind::Skipped => continue,
            FileKind::Unrecognised => {
                return Err(format!(
                    "migration file {} matches no known file name layout; \
                     rename it to {LAYOUTS}",
                    path.display()
                ))
            }
        };
        let migration = read_migration(&path, parsed)?;
        found.push((NumericId::parse(&migration.id), migration));
    }

    // Sort by id, then by path so that the order of two equal ids (which
    // the caller reports) does not depend on the directory listing.
    found.sort_by(|(a, ma), (b, mb)| a.cmp(b).then_with(|| ma.path.cmp(&mb.path)));
    Ok(found.into_iter().map(|(_, m)| m).collect())
}

fn read_migration(path: &Path, parsed: ParsedName) -> Result<Migration, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read migration file {}: {e}", path.display()))?;
    let checksum = hex::encode(Sha256::digest(&bytes));
    let sql = String::from_utf8(bytes).map_err(|e| {
        format!(
            "migration file {} is not valid UTF-8 ({e}); save it as UTF-8",
            path.display()
        )
    })?;
    Ok(Migration {
        // The state schema keys applied migrations by this id, so a file
        // renamed from V1 to V01 is still the migration that was applied.
        id: NumericId::parse(&parsed.id).canonical(),
        name: parsed.name,
        path: PathBuf::from(path),
        autocommit: parsed.autocommit,
        checksum,
        sql,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(id: &str, name: &str, autocommit: bool) -> FileKind {
        FileKind::Migration(ParsedName {
            id: id.to_string(),
            name: name.to_string(),
            autocommit,
        })
    }

    #[test]
    fn versioned_names() {
        assert_eq!(classify("V1__init.sql"), migration("1", "init", false));
        assert_eq!(classify("V1.2__x.sql"), migration("1.2", "x", false));
        assert_eq!(classify("V1_2__x_y.sql"), migration("1_2", "x_y", false));
        assert_eq!(classify("V010__a.b.sql"), migration("010", "a.b", false));
    }

    #[test]
    fn numbered_names() {
        assert_eq!(
            classify("0001_init.up.sql"),
            migration("0001", "init", false)
        );
        assert_eq!(classify("0001_init.sql"), migration("0001", "init", false));
        assert_eq!(
            classify("20240105120000_add_idx.postgres.autocommit.up.sql"),
            migration("20240105120000", "add_idx", true)
        );
        assert_eq!(classify("7_x.postgres.up.sql"), migration("7", "x", false));
        assert_eq!(classify("7_x.autocommit.sql"), migration("7", "x", true));
    }

    #[test]
    fn skipped_names() {
        for name in [
            "README.md",
            "0001_init.down.sql",
            "V1__x.down.sql",
            "notes.txt",
        ] {
            assert_eq!(classify(name), FileKind::Skipped, "{name}");
        }
    }

    #[test]
    fn unrecognised_names() {
        for name in [
            "init.sql",
            "V__x.sql",
            "V1_x.sql",
            "V1__.sql",
            "V1..2__x.sql",
            "v1__x.sql",
            "R__views.sql",
            "0001_.up.sql",
            "0001.up.sql",
            "0001_x.autocommit.postgres.up.sql",
            "0001_x.autocomit.up.sql",
            "1a_x.sql",
        ] {
            assert_eq!(classify(name), FileKind::Unrecognised, "{name}");
        }
    }

    #[test]
    fn numeric_id_order() {
        let sorted = ["1", "1.1", "1.9", "1.10", "2", "0010", "20240105120000"];
        for pair in sorted.windows(2) {
            assert!(
                NumericId::parse(pair[0]) < NumericId::parse(pair[1]),
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(NumericId::parse("1.0"), NumericId::parse("1"));
        assert_eq!(NumericId::parse("0001"), NumericId::parse("1"));
        assert_eq!(NumericId::parse("1_2"), NumericId::parse("1.2"));
        assert_eq!(NumericId::parse("0"), NumericId::parse("0.0"));
    }
}
