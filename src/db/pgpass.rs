//! Passwords from the libpq password file (`~/.pgpass`, or the file named
//! by `PGPASSFILE`), which tokio-postgres does not read by itself.
//!
//! The format and matching follow the libpq manual's page "The Password
//! File": one `hostname:port:database:username:password` entry per line,
//! `*` matching
//! any value in the first four fields, `\` escaping `:` and `\`, `#`
//! starting a comment line, and the first matching line winning. A file
//! that the group or others may read is ignored, as libpq does.

use std::path::{Path, PathBuf};

use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// Returns the password file libpq would read: `PGPASSFILE`, else
/// `$HOME/.pgpass`.
pub fn default_path(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(path) = var("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    var("HOME").map(|home| Path::new(&home).join(".pgpass"))
}

/// Sets the password of `config` from the file at `path` when the
/// configuration has none and an entry matches its first host and port,
/// its database and its user. A missing file is not an error.
pub fn fill_password(config: &mut Config, path: &Path) {
    if config.get_password().is_some() {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    if !private_enough(path) {
        tracing::warn!(
            path = %path.display(),
            "password file ignored: it has group or world access; run chmod 0600 on it"
        );
        return;
    }
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        // libpq matches a Unix-domain socket in the default folder as
        // `localhost`.
        #[cfg(unix)]
        Some(Host::Unix(_)) => "localhost".to_string(),
        None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    let dbname = config.get_dbname().unwrap_or(&user).to_string();
    if let Some(password) = find_password(&text, &host, &port, &dbname, &user) {
        config.password(password);
    }
}

#[cfg(unix)]
fn private_enough(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;

    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private_enough(_path: &Path) -> bool {
    true
}

/// Returns the password of the first entry of `text` that matches.
pub fn find_password(
    text: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(split_entry)
        .find(|fields| {
            [host, port, dbname, user]
                .iter()
                .zip(fields.iter())
                .all(|(value, pattern)| pattern == "*" || pattern == value)
        })
        .map(|mut fields| fields.pop().unwrap_or_default())
}

/// Splits one line into its five fields, unescaping `\:` and `\\`.
/// Returns `None` for a line with fewer than five fields. Colons after the
/// fourth are part of the password.
fn split_entry(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut()?.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment line
db.example:5433:app:alice:first
*:*:app:bob:pa\\:ss\\\\word
localhost:5432:*:*:fallback:with:colons
";

    #[test]
    fn exact_entry_matches() {
        let found = find_password(FILE, "db.example", "5433", "app", "alice");
        assert_eq!(found.as_deref(), Some("first"));
    }

    #[test]
    fn wildcards_and_escapes() {
        let found = find_password(FILE, "anywhere", "1", "app", "bob");
        assert_eq!(found.as_deref(), Some("pa:ss\\word"));
    }

    #[test]
    fn colons_after_fourth_field_kept() {
        let found = find_password(FILE, "localhost", "5432", "other", "carol");
        assert_eq!(found.as_deref(), Some("fallback:with:colons"));
    }

    #[test]
    fn no_entry_matches() {
        assert_eq!(
            find_password(FILE, "db.example", "5432", "app", "alice"),
            None
        );
        assert_eq!(find_password("short:line", "short", "line", "x", "y"), None);
    }

    #[test]
    fn fill_password_reads_private_file() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "127.0.0.1:5432:test:postgres:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut config: Config = "postgres://postgres@127.0.0.1:5432/test".parse().unwrap();
        fill_password(&mut config, &path);
        assert_eq!(config.get_password(), Some(&b"secret"[..]));

        // A password given in the URL wins over the file.
        let mut config: Config = "postgres://postgres:given@127.0.0.1/test".parse().unwrap();
        fill_password(&mut config, &path);
        assert_eq!(config.get_password(), Some(&b"given"[..]));

        // libpq ignores a file that others may read.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut config: Config = "postgres://postgres@127.0.0.1:5432/test".parse().unwrap();
        fill_password(&mut config, &path);
        assert_eq!(config.get_password(), None);
    }

    #[test]
    fn passfile_variable_wins_over_home() {
        let path = default_path(|name| match name {
            "PGPASSFILE" => Some("/srv/pass".to_string()),
            "HOME" => Some("/home/dba".to_string()),
            _ => None,
        });
        assert_eq!(path, Some(PathBuf::from("/srv/pass")));
        let path = default_path(|name| (name == "HOME").then(|| "/home/dba".to_string()));
        assert_eq!(path, Some(PathBuf::from("/home/dba/.pgpass")));
    }
}
