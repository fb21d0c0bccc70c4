//! Test harness: a fresh database per test on a real PostgreSQL server.
//!
//! The server comes from `PGSHIFT_TEST_URL` (a libpq key=value string or URL
//! pointing at a database the tests may use to create others), else from
//! `host=127.0.0.1 port=5432 user=postgres`. When neither answers, or when
//! `PGSHIFT_TEST_CLUSTER=1` is set, the harness starts a throwaway cluster
//! with `initdb` and `pg_ctl` on port 54329 and leaves it running for later
//! tests. Run as root, it runs those tools as the `postgres` user, because
//! initdb refuses to run as root, and keeps the cluster under the system's
//! temporary folder, where that user can reach it.
//! Test databases are named `pgshift_t_<tag>_<pid>_<n>`;
//! `PGSHIFT_TEST_DB_PREFIX` replaces `pgshift_t`, so runs that share a
//! server can keep their databases apart.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use tokio_postgres::{Client, NoTls};

const DEFAULT_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
const FALLBACK_PORT: u16 = 54329;

static ADMIN: OnceLock<String> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database that exists for the lifetime of one test.
pub struct TestDb {
    pub name: String,
    /// libpq key=value connection string for this database.
    pub url: String,
    admin: String,
}

impl TestDb {
    /// Creates an empty database with a name unique to this process and test.
    pub async fn new(tag: &str) -> TestDb {
        let admin = admin_conninfo().to_string();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag: String = tag
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(30)
            .collect();
        let prefix = std::env::var("PGSHIFT_TEST_DB_PREFIX").unwrap_or_else(|_| "pgshift_t".into());
        let name = format!("{prefix}_{}_{}_{}", tag, std::process::id(), n);
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = with_dbname(&admin, &name);
        TestDb { name, url, admin }
    }

    /// Opens a new session on this database.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Runs a script with the simple query protocol.
    pub async fn exec(&self, sql: &str) {
        self.client()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("script failed on {}: {e:?}\n{sql}", self.name));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside any runtime, so a short-lived one is used here.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Connects and spawns the connection task.
pub async fn connect(conninfo: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {conninfo}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Returns the admin connection string, starting a throwaway cluster when no
/// server answers.
pub fn admin_conninfo() -> &'static str {
    ADMIN.get_or_init(|| {
        if let Ok(url) = std::env::var("PGSHIFT_TEST_URL") {
            return url;
        }
        if std::env::var_os("PGSHIFT_TEST_CLUSTER").is_some() {
            return start_throwaway_cluster();
        }
        if server_answers(DEFAULT_ADMIN) {
            return DEFAULT_ADMIN.to_string();
        }
        start_throwaway_cluster()
    })
}

/// Replaces or adds the database name of a key=value connection string.
pub fn with_dbname(conninfo: &str, dbname: &str) -> String {
    let mut parts: Vec<String> = conninfo
        .split_whitespace()
        .filter(|p| !p.starts_with("dbname="))
        .map(str::to_string)
        .collect();
    parts.push(format!("dbname={dbname}"));
    parts.join(" ")
}

fn server_answers(conninfo: &str) -> bool {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let attempt = tokio_postgres::connect(conninfo, NoTls);
                matches!(
                    tokio::time::timeout(std::time::Duration::from_secs(3), attempt).await,
                    Ok(Ok(_))
                )
            })
        })
        .join()
        .unwrap()
    })
}

fn start_throwaway_cluster() -> String {
    let conninfo = format!("host=127.0.0.1 port={FALLBACK_PORT} user=postgres dbname=postgres");
    if server_answers(&conninfo) {
        return conninfo;
    }
    let root = is_root();
    let dir = if root {
        std::env::temp_dir().join("pgshift-test-cluster")
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pgshift-test-cluster")
    };
    let data = dir.join("data");
    if !data.join("PG_VERSION").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        if root {
            let status = Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "running as root, the throwaway cluster needs a `postgres` user to own {}; \
                 create that user, run the tests as another user, or set PGSHIFT_TEST_URL",
                dir.display()
            );
        }
        run_tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
    }
    let log = dir.join("server.log");
    let options = format!(
        "-p {FALLBACK_PORT} -c listen_addresses=127.0.0.1 -k {}",
        dir.display()
    );
    run_tool(
        "pg_ctl",
        &[
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
            "start",
        ],
    );
    if !server_answers(&conninfo) {
        panic!(
            "started a throwaway cluster in {} but it does not answer; see {}",
            data.display(),
            log.display()
        );
    }
    conninfo
}

/// Returns true when the tests run as root (effective user id 0).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run_tool(tool: &str, args: &[&str]) {
    let path = find_tool(tool);
    let mut command = if is_root() {
        let mut runuser = Command::new("runuser");
        runuser.args(["-u", "postgres", "--"]).arg(&path);
        runuser
    } else {
        Command::new(&path)
    };
    let status = command.args(args).status().unwrap_or_else(|e| {
        panic!(
            "no PostgreSQL server answers on 127.0.0.1:5432 and {tool} could not run ({e}). \
             Start a server (e.g. `pg_ctlcluster 15 main start`) or set PGSHIFT_TEST_URL \
             to a libpq connection string of a server the tests may create databases on."
        )
    });
    assert!(status.success(), "{tool} {args:?} failed with {status}");
}

fn find_tool(tool: &str) -> PathBuf {
    for dir in [
        "/usr/lib/postgresql/17/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/lib/postgresql/15/bin",
    ] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(tool)
}

/// Path of the built `pgshift` binary.
pub fn pgshift_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pgshift"))
}

/// Path of a file in the crate, from a path relative to its root.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}
