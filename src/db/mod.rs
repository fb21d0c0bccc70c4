//! Connections and catalog introspection.
//!
//! The connection target comes from `--database-url`, else `DATABASE_URL`,
//! else the libpq `PG*` environment variables, which tokio-postgres does not
//! read by itself. A password missing from all of them comes from the libpq
//! password file, as in libpq. Passwords never leave this module, because
//! everything shown to a user goes through [`ConnInfo::redacted`].

pub mod catalog;
mod introspect;
mod pgpass;

pub use introspect::{
    blocking_pids, command_progress, create_index_progress, invalid_index, reindex_leftovers,
    relation_lock_holders, server_version, snapshot_holders, still_running, table_sizes,
    BlockingPid, CommandProgress, IndexProgress, IndexState, TableSize,
};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// The `application_name` pgshift sets unless the connection string sets one.
pub const APPLICATION_NAME: &str = "pgshift";

/// Port pgbouncer listens on by default.
const PGBOUNCER_PORT: u16 = 6432;

/// Errors from connecting and from introspection queries.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid connection string from {source_name}: {message}")]
    InvalidConfig {
        /// The source of the string: `--database-url`, `DATABASE_URL` or
        /// the `PG*` variables.
        source_name: &'static str,
        message: String,
    },
    // TODO: TLS is not implemented; connecting needs a TLS connector such as
    // tokio-postgres-rustls, configured per libpq's sslmode semantics.
    #[error(
        "sslmode={mode} requires TLS, which pgshift does not support yet; \
         connect over a trusted network with sslmode=disable or prefer"
    )]
    TlsUnsupported { mode: String },
    #[error("cannot connect to {target}: {source}\nhint: {}", connect_hint(source))]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error("query failed ({what}): {source}")]
    Query {
        what: &'static str,
        source: tokio_postgres::Error,
    },
}

/// Returns what to check after a failed connection, chosen by the server's
/// SQLSTATE when the server sent one.
fn connect_hint(source: &tokio_postgres::Error) -> &'static str {
    use tokio_postgres::error::SqlState;

    match source.code() {
        Some(code) if *code == SqlState::INVALID_CATALOG_NAME => {
            "the database does not exist; create it, or fix the database name in \
             --database-url, DATABASE_URL or PGDATABASE"
        }
        Some(code)
            if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INVALID_PASSWORD =>
        {
            "the server rejected the user or password; check them (in the URL, \
             PGUSER/PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf"
        }
        Some(code) if *code == SqlState::TOO_MANY_CONNECTIONS => {
            "the server has no free connection slot; pgshift opens three sessions \
             (steps, monitor and run lock)"
        }
        _ => {
            "is the server running and accepting connections there? Check \
             --database-url, DATABASE_URL or PGHOST/PGPORT"
        }
    }
}

/// A server notice (`NOTICE`, `WARNING`, ...) received on a connection.
#[derive(Debug, Clone)]
pub struct Notice {
    pub severity: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// The receiving end of a connection's notices.
pub type Notices = mpsc::UnboundedReceiver<Notice>;

/// Connection details kept beside the client.
#[derive(Debug)]
pub struct ConnInfo {
    /// The resolved configuration; used to open further sessions on the
    /// same database.
    pub config: Config,
    /// True when the target looks like a transaction-mode pooler (port 6432
    /// or a host named like pgbouncer), where session-level advisory locks
    /// and `SET` do not stick to one server session.
    pub pooler_suspected: bool,
    /// Server notices of this connection, in arrival order.
    pub notices: Notices,
}

impl ConnInfo {
    /// Returns the target as `user@host:port/dbname`, without the password.
    pub fn redacted(&self) -> String {
        redacted(&self.config)
    }
}

/// Formats a configuration as `user@host:port/dbname`, without the password.
pub fn redacted(config: &Config) -> String {
    let user = config.get_user().unwrap_or("?");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let dbname = config.get_dbname().unwrap_or(user);
    format!(
        "{user}@{}:{}/{dbname}",
        hosts.join(","),
        if ports.is_empty() {
            "5432".to_string()
        } else {
            ports.join(",")
        }
    )
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Connects to the target named by `url` (`--database-url`), else
/// `DATABASE_URL`, else the libpq `PG*` variables, and spawns the
/// connection task on the current tokio runtime.
pub async fn connect(url: Option<&str>) -> Result<(Client, ConnInfo), DbError> {
    let config = resolve_config(url)?;
    let pooler_suspected = looks_like_pooler(&config);
    let (client, notices) = connect_config(&config).await?;
    let info = ConnInfo {
        config,
        pooler_suspected,
        notices,
    };
    Ok((client, info))
}

/// Opens one more session with an already resolved configuration.
pub async fn connect_config(config: &Config) -> Result<(Client, Notices), DbError> {
    let (client, mut connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|source| DbError::Connect {
                target: redacted(config),
                source,
            })?;
    let (sender, receiver) = mpsc::unbounded_channel();

    // The connection task drives the socket. Notices arrive on it, so it
    // polls messages one by one and forwards them. The stream ends when the
    // client is dropped or the server closes the session.
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    let _ = sender.send(Notice {
                        severity: notice.severity().to_string(),
                        message: notice.message().to_string(),
                        detail: notice.detail().map(str::to_string),
                        hint: notice.hint().map(str::to_string),
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "connection closed with an error");
                    break;
                }
                None => break,
            }
        }
    });

    keep_session_open(&client).await?;
    Ok((client, receiver))
}

/// Turns off `idle_session_timeout` (PostgreSQL 14+) on the session.
/// pgshift's sessions sit idle between steps and while another session
/// works (the run lock, the monitor), and the server must not close them,
/// because the run lock would go with its session.
async fn keep_session_open(client: &Client) -> Result<(), DbError> {
    client
        .batch_execute(
            "SELECT set_config('idle_session_timeout', '0', false) \
             WHERE current_setting('server_version_num')::int >= 140000",
        )
        .await
        .map_err(|source| DbError::Query {
            what: "SET idle_session_timeout",
            source,
        })
}

/// Brings the session's settings back to their defaults with `RESET ALL`,
/// so a `SET` of one migration does not carry over into the next, as with
/// `psql -f` run once per file. `idle_session_timeout` stays off.
pub async fn reset_session(client: &Client) -> Result<(), DbError> {
    client
        .batch_execute("RESET ALL")
        .await
        .map_err(|source| DbError::Query {
            what: "RESET ALL",
            source,
        })?;
    keep_session_open(client).await
}

/// Builds the configuration from the argument, `DATABASE_URL` or `PG*`.
pub fn resolve_config(url: Option<&str>) -> Result<Config, DbError> {
    let env_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let mut config = match (url, env_url) {
        (Some(url), _) => parse_conninfo(url, "--database-url")?,
        (None, Some(url)) => parse_conninfo(&url, "DATABASE_URL")?,
        (None, None) => config_from_env(|name| std::env::var(name).ok())?,
    };
    if config.get_application_name().is_none() {
        config.application_name(APPLICATION_NAME);
    }
    if config.get_user().is_none() {
        if let Ok(user) = std::env::var("USER") {
            config.user(&user);
        }
    }
    if config.get_hosts().is_empty() {
        // NOTE: libpq defaults to a Unix socket whose folder depends on the
        // build; pgshift defaults to TCP on localhost instead.
        config.host("localhost");
    }
    if let Some(path) = pgpass::default_path(|name| std::env::var(name).ok()) {
        pgpass::fill_password(&mut config, &path);
    }
    Ok(config)
}

/// Parses a URL or a key=value string, rejecting sslmodes that need TLS.
fn parse_conninfo(text: &str, source_name: &'static str) -> Result<Config, DbError> {
    let text = match sslmode_of(text) {
        Some(mode) => {
            check_sslmode(mode)?;
            // tokio-postgres does not know `allow`; without TLS it behaves
            // as `prefer` does here.
            text.replace("sslmode=allow", "sslmode=prefer")
        }
        None => text.to_string(),
    };
    Config::from_str(&text).map_err(|error| DbError::InvalidConfig {
        source_name,
        message: error.to_string(),
    })
}

/// Returns the value of the `sslmode` option of a URL or key=value string.
fn sslmode_of(text: &str) -> Option<&str> {
    let start = text.find("sslmode=")? + "sslmode=".len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn check_sslmode(mode: &str) -> Result<SslMode, DbError> {
    match mode {
        "disable" => Ok(SslMode::Disable),
        "allow" | "prefer" => Ok(SslMode::Prefer),
        _ => Err(DbError::TlsUnsupported {
            mode: mode.to_string(),
        }),
    }
}

/// Builds a configuration from the libpq environment variables, read
/// through `var` so tests can pass their own values.
pub fn config_from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, DbError> {
    let invalid = |message: String| DbError::InvalidConfig {
        source_name: "the PG* environment variables",
        message,
    };
    let var = |name: &str| var(name).filter(|value| !value.is_empty());
    let mut config = Config::new();

    if let Some(hosts) = var("PGHOST") {
        for host in hosts.split(',') {
            config.host(host.trim());
        }
    }
    if let Some(ports) = var("PGPORT") {
        for port in ports.split(',') {
            let port = port
                .trim()
                .parse::<u16>()
                .map_err(|_| invalid(format!("PGPORT={port} is not a port number")))?;
            config.port(port);
        }
    }
    if let Some(user) = var("PGUSER") {
        config.user(&user);
    }
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    if let Some(dbname) = var("PGDATABASE") {
        config.dbname(&dbname);
    }
    if let Some(name) = var("PGAPPNAME") {
        config.application_name(&name);
    }
    if let Some(mode) = var("PGSSLMODE") {
        config.ssl_mode(check_sslmode(&mode)?);
    }
    if let Some(seconds) = var("PGCONNECT_TIMEOUT") {
        let seconds = seconds.parse::<u64>().map_err(|_| {
            invalid(format!(
                "PGCONNECT_TIMEOUT={seconds} is not a whole number of seconds"
            ))
        })?;
        if seconds > 0 {
            config.connect_timeout(Duration::from_secs(seconds));
        }
    }
    Ok(config)
}

/// Returns true when the target is probably a pgbouncer-style pooler.
fn looks_like_pooler(config: &Config) -> bool {
    let pooler_port = config.get_ports().contains(&PGBOUNCER_PORT);
    let pooler_host = config.get_hosts().iter().any(|host| match host {
        Host::Tcp(name) => name.to_ascii_lowercase().contains("pgbouncer"),
        #[cfg(unix)]
        Host::Unix(path) => path
            .to_string_lossy()
            .to_ascii_lowercase()
            .contains("pgbouncer"),
    });
    pooler_port || pooler_host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn env_variables_build_config() {
        let config = config_from_env(env(&[
            ("PGHOST", "db.internal"),
            ("PGPORT", "5433"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "s3cret"),
            ("PGDATABASE", "shop"),
            ("PGCONNECT_TIMEOUT", "7"),
        ]))
        .unwrap();
        assert_eq!(redacted(&config), "app@db.internal:5433/shop");
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
    }

    #[test]
    fn bad_pgport_is_named() {
        let error = config_from_env(env(&[("PGPORT", "fivefour")])).unwrap_err();
        assert!(error.to_string().contains("PGPORT=fivefour"), "{error}");
    }

    #[test]
    fn redacted_hides_password() {
        let config = parse_conninfo("postgres://app:hunter2@h1:6000/shop", "test").unwrap();
        let shown = redacted(&config);
        assert_eq!(shown, "app@h1:6000/shop");
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn tls_modes_are_rejected() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let url = format!("host=h sslmode={mode}");
            let error = parse_conninfo(&url, "test").unwrap_err();
            assert!(matches!(error, DbError::TlsUnsupported { .. }), "{mode}");
            assert!(error.to_string().contains(mode), "{error}");
        }
        let error = config_from_env(env(&[("PGSSLMODE", "require")])).unwrap_err();
        assert!(matches!(error, DbError::TlsUnsupported { .. }));
    }

    #[test]
    fn plain_modes_are_accepted() {
        for mode in ["disable", "allow", "prefer"] {
            let url = format!("postgresql://u@h/d?sslmode={mode}");
            assert!(parse_conninfo(&url, "test").is_ok(), "{mode}");
        }
    }

    #[test]
    fn pooler_is_suspected() {
        let bouncer = parse_conninfo("host=h port=6432 user=u", "test").unwrap();
        assert!(looks_like_pooler(&bouncer));
        let named = parse_conninfo("postgres://u@pgbouncer.internal/d", "test").unwrap();
        assert!(looks_like_pooler(&named));
        let direct = parse_conninfo("host=h port=5432 user=u", "test").unwrap();
        assert!(!looks_like_pooler(&direct));
    }
}
