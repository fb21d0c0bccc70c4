//! The lint configuration file, `pgshift.toml`.
//!
//! The file is found by walking up from the working directory, like
//! `.gitignore` or `rustfmt.toml`. Its settings are defaults: command-line
//! flags given explicitly win over them.
//!
//! ```toml
//! pg_version = "14.3"
//! lock_timeout = "2s"
//! wrap = true
//! exclude = ["migrations/legacy/**"]
//!
//! [rules]
//! drop-column = "off"
//! strong-lock-without-lock-timeout = "error"
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::locks::PgVersion;
use crate::rules::{self, Severity};

/// The name of the configuration file.
pub const FILE_NAME: &str = "pgshift.toml";

/// What a configuration file sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The file the settings were read from.
    pub path: Option<PathBuf>,
    pub pg_version: Option<PgVersion>,
    /// True when the file sets a `lock_timeout` other than 0.
    pub lock_timeout: Option<bool>,
    /// False when the runner does not wrap files in a transaction.
    pub wrap: Option<bool>,
    /// Glob patterns, relative to the file's folder, of paths not to lint.
    pub exclude: Vec<String>,
    /// Rules switched off.
    pub disabled: Vec<String>,
    /// Severity overrides.
    pub severities: HashMap<String, Severity>,
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    pg_version: Option<toml::Value>,
    lock_timeout: Option<String>,
    wrap: Option<bool>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    rules: HashMap<String, String>,
}

/// Returns the first `pgshift.toml` in `start` or one of its parents.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses the text of a configuration file read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;

    let pg_version = match raw.pg_version {
        None => None,
        Some(value) => {
            let text = match &value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => other.to_string(),
            };
            Some(PgVersion::parse(&text).ok_or_else(|| {
                invalid(format!(
                    "key `pg_version`: `{text}` is not a PostgreSQL version of 9.0 or newer; \
                     write it as \"15\" or \"14.3\""
                ))
            })?)
        }
    };
    let lock_timeout = match raw.lock_timeout {
        None => None,
        Some(text) => {
            Some(parse_timeout(&text).map_err(|m| invalid(format!("key `lock_timeout`: {m}")))?)
        }
    };

    let mut disabled = Vec::new();
    let mut severities = HashMap::new();
    let mut ids: Vec<&String> = raw.rules.keys().collect();
    ids.sort();
    for id in ids {
        let value = &raw.rules[id];
        if rules::find(id).is_none() {
            return Err(invalid(format!(
                "[rules] `{id}` is not a rule; `pgshift rules` lists them"
            )));
        }
        match value.as_str() {
            "off" => disabled.push(id.clone()),
            "on" => {}
            other => match Severity::parse(other) {
                Some(severity) => {
                    severities.insert(id.clone(), severity);
                }
                None => {
                    return Err(invalid(format!(
                        "[rules] `{id}` = \"{other}\": expected \"off\", \"on\", \"info\", \
                         \"warning\" or \"error\""
                    )))
                }
            },
        }
    }

    Ok(Config {
        path: Some(path.to_path_buf()),
        pg_version,
        lock_timeout,
        wrap: raw.wrap,
        exclude: raw.exclude,
        disabled,
        severities,
    })
}

/// Reads a duration such as `2s`, `500ms`, `1min` or `0` and returns true
/// when it is not zero.
pub fn parse_timeout(text: &str) -> Result<bool, String> {
    let trimmed = text.trim();
    let digits: String = trimmed
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let unit = trimmed[digits.len()..].trim();
    let number: f64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 2s or 500ms"))?;
    if !matches!(unit, "" | "us" | "ms" | "s" | "min" | "h" | "d") {
        return Err(format!(
            "`{text}` has an unknown unit; use us, ms, s, min, h or d"
        ));
    }
    Ok(number > 0.0)
}

impl Config {
    /// Returns true when `path` matches one of the `exclude` patterns. The
    /// patterns are relative to the folder of the configuration file.
    pub fn excludes(&self, path: &Path) -> bool {
        if self.exclude.is_empty() {
            return false;
        }
        let base = self
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = std::path::absolute(&base).unwrap_or(base);
        let relative = absolute.strip_prefix(&base).unwrap_or(&absolute);
        let relative = relative.to_string_lossy().replace('\\', "/");
        self.exclude.iter().any(|p| glob_match(p, &relative))
    }
}

/// Matches `text` against a glob where `*` matches within one path
/// segment, `**` matches any number of segments and `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=t.len()).any(|i| go(rest, &t[i..]))
            }
            Some(b'*') => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != b'/')
                .any(|i| go(&p[1..], &t[i..])),
            Some(b'?') => !t.is_empty() && t[0] != b'/' && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_setting() {
        let text = "pg_version = 11\nlock_timeout = \"2s\"\nwrap = false\n\
                    exclude = [\"legacy/**\"]\n[rules]\ndrop-column = \"off\"\n\
                    truncate-table = \"warning\"\n";
        let config = parse(Path::new("pgshift.toml"), text).unwrap();
        assert_eq!(config.pg_version, Some(PgVersion::new(11, 0)));
        assert_eq!(config.lock_timeout, Some(true));
        assert_eq!(config.wrap, Some(false));
        assert_eq!(config.disabled, vec!["drop-column".to_string()]);
        assert_eq!(config.severities["truncate-table"], Severity::Warning);
    }

    #[test]
    fn version_as_string_and_number_agree() {
        let a = parse(Path::new("a"), "pg_version = \"11.0\"").unwrap();
        let b = parse(Path::new("b"), "pg_version = 11").unwrap();
        assert_eq!(a.pg_version, b.pg_version);
    }

    #[test]
    fn rejects_unknown_rule_and_key() {
        let err = parse(Path::new("p.toml"), "[rules]\nno-such-rule = \"off\"").unwrap_err();
        assert!(err.to_string().contains("no-such-rule"), "{err}");
        assert!(err.to_string().contains("p.toml"), "{err}");
        let err = parse(Path::new("p.toml"), "pg_versoin = 11").unwrap_err();
        assert!(err.to_string().contains("pg_versoin"), "{err}");
        let err = parse(Path::new("p.toml"), "[rules]\ndrop-column = \"loud\"").unwrap_err();
        assert!(err.to_string().contains("loud"), "{err}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("legacy/**", "legacy/a/b.sql"));
        assert!(glob_match("**/*.down.sql", "m/1/x.down.sql"));
        assert!(!glob_match("legacy/*", "legacy/a/b.sql"));
        assert!(glob_match("V1__?.sql", "V1__a.sql"));
    }

    #[test]
    fn finds_file_in_parent() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap();
        assert_eq!(find(&nested), Some(dir.path().join(FILE_NAME)));
    }
}
