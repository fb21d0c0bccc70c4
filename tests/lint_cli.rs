//! `pgshift lint` end to end: output formats, exit codes, suppressions,
//! the configuration file and `--database-url`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn lint_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::pgshift_bin())
        .current_dir(dir)
        .arg("lint")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

const PLAIN_INDEX: &str = "SET lock_timeout = '2s';\nCREATE INDEX a_idx ON a (x);\n";

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn json_has_one_based_positions() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.sql",
        "SET lock_timeout = '2s';\n  CREATE INDEX a_idx ON a (x);\n",
    );
    let output = lint_in(dir.path(), &["--format", "json", "m.sql"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["schema_version"], 1);
    let d = &report["diagnostics"][0];
    assert_eq!(d["rule"], "index-build-without-concurrently");
    assert_eq!(d["line"], 2);
    assert_eq!(d["column"], 3);
    assert_eq!(d["end_line"], 2);
    assert_eq!(d["end_column"], 30);
    assert_eq!(d["severity"], "error");
}

#[test]
fn clean_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.sql",
        "CREATE TABLE t (id int);\nCREATE INDEX t_idx ON t (id);\n",
    );
    let output = lint_in(dir.path(), &["m.sql"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn syntax_error_does_not_stop_other_files() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.sql",
        "SELECT 1;\nALTER TABLE t ADD COLUMN;\n",
    );
    write(dir.path(), "b.sql", PLAIN_INDEX);
    let output = lint_in(dir.path(), &["--format", "json", "."]);
    assert_eq!(output.status.code(), Some(2));
    let report = json(&output);
    let error = &report["errors"][0];
    assert!(
        error["path"].as_str().unwrap().ends_with("a.sql"),
        "{error}"
    );
    assert_eq!(error["line"], 2);
    assert!(error["column"].as_u64().unwrap() > 1, "{error}");
    let rules: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["index-build-without-concurrently"]);
}

#[test]
fn sarif_is_2_1_0_with_regions() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.sql", PLAIN_INDEX);
    let output = lint_in(dir.path(), &["--format", "sarif", "m.sql"]);
    assert_eq!(output.status.code(), Some(1));
    let log = json(&output);
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pgshift");
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "index-build-without-concurrently");
    assert_eq!(result["level"], "error");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(region["startLine"], 2);
    assert_eq!(region["startColumn"], 1);
    let index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        run["tool"]["driver"]["rules"][index]["id"],
        result["ruleId"]
    );
}

#[test]
fn github_writes_workflow_commands() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.sql", PLAIN_INDEX);
    let output = lint_in(dir.path(), &["--format", "github", "m.sql"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with("::error file=m.sql,line=2,col=1,"),
        "{line}"
    );
    assert!(
        line.contains("title=pgshift index-build-without-concurrently::"),
        "{line}"
    );
    assert!(line.contains("%0Ahelp: "), "{line}");
}

#[test]
fn gitlab_writes_code_quality_report() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.sql", PLAIN_INDEX);
    let output = lint_in(dir.path(), &["--format", "gitlab", "m.sql"]);
    let issues = json(&output);
    let issue = &issues[0];
    assert_eq!(issue["check_name"], "index-build-without-concurrently");
    assert_eq!(issue["severity"], "critical");
    assert_eq!(issue["location"]["path"], "m.sql");
    assert_eq!(issue["location"]["lines"]["begin"], 2);
    assert_eq!(issue["fingerprint"].as_str().unwrap().len(), 32);
    let again = json(&lint_in(dir.path(), &["--format", "gitlab", "m.sql"]));
    assert_eq!(again[0]["fingerprint"], issue["fingerprint"]);
}

#[test]
fn ignore_comment_silences_next_statement_and_keeps_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = "SET lock_timeout = '2s';\n\
                -- pgshift:ignore index-build-without-concurrently the table has 40 rows\n\
                CREATE INDEX a_idx ON a (x);\nCREATE INDEX b_idx ON a (y);\n";
    write(dir.path(), "m.sql", text);
    let report = json(&lint_in(dir.path(), &["--format", "json", "m.sql"]));
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 2);
    assert_eq!(diagnostics[0]["line"], 3);
    assert_eq!(
        diagnostics[0]["suppressed"]["reason"],
        "the table has 40 rows"
    );
    assert_eq!(diagnostics[0]["suppressed"]["line"], 2);
    assert_eq!(diagnostics[1]["line"], 4);
    assert!(diagnostics[1].get("suppressed").is_none());
}

#[test]
fn trailing_ignore_silences_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "SET lock_timeout = '2s';\n\
                CREATE INDEX a_idx ON a (x); -- pgshift:ignore index-build-without-concurrently\n\
                CREATE INDEX b_idx ON a (y);\n";
    write(dir.path(), "m.sql", text);
    let report = json(&lint_in(dir.path(), &["--format", "json", "m.sql"]));
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 2);
    assert_eq!(diagnostics[0]["line"], 2);
    assert_eq!(diagnostics[0]["suppressed"]["line"], 2);
    assert_eq!(diagnostics[1]["line"], 3);
    assert!(diagnostics[1].get("suppressed").is_none());
}

#[test]
fn ignore_list_may_space_after_commas() {
    let dir = tempfile::tempdir().unwrap();
    let text = "-- pgshift:ignore index-build-without-concurrently, \
                strong-lock-without-lock-timeout tiny table\n\
                CREATE INDEX a_idx ON a (x);\n";
    write(dir.path(), "m.sql", text);
    let report = json(&lint_in(dir.path(), &["--format", "json", "m.sql"]));
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert!(!diagnostics.is_empty());
    for d in diagnostics {
        assert_eq!(d["suppressed"]["reason"], "tiny table", "{d}");
    }
}

#[test]
fn ignore_without_rule_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.sql",
        "-- pgshift:ignore\nCREATE INDEX a_idx ON a (x);\n",
    );
    let output = lint_in(dir.path(), &["m.sql"]);
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("m.sql:1:1: error: pgshift:ignore names no rule"),
        "{stdout}"
    );
}

#[test]
fn ignore_file_silences_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = "-- pgshift:ignore-file index-build-without-concurrently,strong-lock-without-lock-timeout seed data\n\
                CREATE INDEX a_idx ON a (x);\nCREATE INDEX b_idx ON b (x);\n";
    write(dir.path(), "m.sql", text);
    let output = lint_in(dir.path(), &["m.sql"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("4 silenced"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn ignore_of_unknown_rule_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.sql",
        "-- pgshift:ignore index-bild reason\nSELECT 1;\n",
    );
    let output = lint_in(dir.path(), &["m.sql"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).contains("m.sql:1:1: error: pgshift:ignore names `index-bild`"));
}

#[test]
fn config_file_found_in_parent_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = "pg_version = \"10\"\nlock_timeout = \"2s\"\nexclude = [\"**/legacy/**\"]\n\
                  [rules]\nindex-build-without-concurrently = \"warning\"\n\
                  add-column-with-rewrite = \"off\"\nresult-type-change = \"off\"\n";
    write(dir.path(), "pgshift.toml", config);
    write(
        dir.path(),
        "db/m.sql",
        "CREATE INDEX a_idx ON a (x);\nALTER TABLE a ADD c int DEFAULT 1;\n",
    );
    write(dir.path(), "db/legacy/old.sql", "TRUNCATE a;\n");
    let nested = dir.path().join("db");

    let report = json(&lint_in(&nested, &["--format", "json", "."]));
    assert_eq!(report["pg_version"], "10.0");
    assert_eq!(report["files"], 1, "legacy/ is excluded");
    let rules: Vec<(&str, &str)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(rules, vec![("index-build-without-concurrently", "warning")]);

    let report = json(&lint_in(
        &nested,
        &["--format", "json", "--pg-version", "15", "."],
    ));
    assert_eq!(report["pg_version"], "15.0");
}

#[test]
fn invalid_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pgshift.toml",
        "[rules]\nno-such-rule = \"off\"\n",
    );
    write(dir.path(), "m.sql", "SELECT 1;\n");
    let output = lint_in(dir.path(), &["m.sql"]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stderr).unwrap();
    assert!(
        text.contains("pgshift.toml") && text.contains("no-such-rule"),
        "{text}"
    );
}

#[test]
fn lock_timeout_flag_counts_as_set() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "m.sql", "ALTER TABLE a ADD c int;\n");
    let without = json(&lint_in(dir.path(), &["--format", "json", "m.sql"]));
    assert_eq!(
        without["diagnostics"][0]["rule"],
        "strong-lock-without-lock-timeout"
    );
    let with = json(&lint_in(
        dir.path(),
        &["--format", "json", "--lock-timeout", "2s", "m.sql"],
    ));
    let rules: Vec<&str> = with["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        vec!["result-type-change"],
        "only the info note is left"
    );
}

#[tokio::test]
async fn database_url_supplies_version_and_column_types() {
    let db = common::TestDb::new("lint_catalog").await;
    let client = db.client().await;
    client
        .batch_execute("CREATE TABLE t (v varchar(20), n int)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.sql",
        "SET lock_timeout = '2s';\nALTER TABLE t ALTER COLUMN v TYPE varchar(40);\n\
         ALTER TABLE t ALTER COLUMN n TYPE bigint;\n",
    );
    let offline = json(&lint_in(dir.path(), &["--format", "json", "m.sql"]));
    let lines = |r: &serde_json::Value| -> Vec<u64> {
        r["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["rule"] == "column-type-change-rewrites")
            .map(|d| d["line"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(lines(&offline), vec![2, 3]);

    let online = json(&lint_in(
        dir.path(),
        &["--format", "json", "--database-url", &db.url, "m.sql"],
    ));
    assert_eq!(lines(&online), vec![3]);
    assert!(
        online["pg_version"].as_str().unwrap().starts_with("15."),
        "{online}"
    );
}

#[test]
fn no_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let output = lint_in(dir.path(), &["empty"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no .sql file to lint under empty"),
        "{stderr}"
    );

    write(dir.path(), "pgshift.toml", "exclude = [\"*.sql\"]\n");
    write(dir.path(), "a.sql", "SELECT 1;\n");
    let output = lint_in(dir.path(), &["a.sql"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an excluded file is not linted"
    );
}

#[test]
fn deeply_nested_expressions_parse() {
    // PostgreSQL parses these. A 60-term chain is past the protobuf
    // decoder's default recursion limit of 100 nested messages, and a
    // 4,000-term chain needs more stack than a default thread has. The
    // server with its default max_stack_depth of 2 MB runs 4,000 terms and
    // fails at 4,500.
    let dir = tempfile::tempdir().unwrap();
    for terms in [60, 4_000] {
        let chain = vec!["1"; terms].join(" + ");
        write(
            dir.path(),
            "deep.sql",
            &format!("SELECT {chain};\nCREATE INDEX deep_idx ON deep (a);\n"),
        );
        let output = lint_in(dir.path(), &["--format", "json", "deep.sql"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        // 1: the index build is an error-level finding, and nothing was
        // unreadable (that would be 2).
        assert_eq!(output.status.code(), Some(1), "{terms} terms: {stdout}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let rules: Vec<&str> = report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["rule"].as_str().unwrap())
            .collect();
        assert!(
            rules.contains(&"index-build-without-concurrently"),
            "{terms} terms: the statement after the chain is linted: {rules:?}"
        );
    }
}

#[test]
fn statements_past_the_nesting_limit_are_named() {
    // libpg_query hands over at most 10,000 nested messages: a chain of
    // 5,000 `+` terms is past it. The file cannot be linted (exit 2), the
    // error names the statement's line and the fix, and other
    // files are still linted.
    let dir = tempfile::tempdir().unwrap();
    let chain = vec!["1"; 5_000].join(" + ");
    write(
        dir.path(),
        "a.sql",
        &format!("SELECT 1;\n\nSELECT {chain};\n"),
    );
    write(dir.path(), "b.sql", "CREATE INDEX i ON t (a);\n");
    let output = lint_in(dir.path(), &["a.sql", "b.sql"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("a.sql:3:1: error: this statement nests more than 10000 levels deep"),
        "{stdout}"
    );
    assert!(stdout.contains("Split the expression"), "{stdout}");
    assert!(
        stdout.contains("error[index-build-without-concurrently]"),
        "b.sql is linted: {stdout}"
    );
}

/// With `--database-url`, lint reads partitioning, constraint-backed
/// indexes and table sizes from the catalog. ON ONLY of a plain table is
/// then a build, and dropping an index that backs a constraint fails.
/// Findings are ranked by the size of the largest table they lock.
#[tokio::test]
async fn database_url_ranks_by_locked_size() {
    let db = common::TestDb::new("lint_rank").await;
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE small (id int);
             INSERT INTO small VALUES (1);
             CREATE TABLE large (id int, note text);
             INSERT INTO large SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
             CREATE TABLE accounts (id int, handle text);
             ALTER TABLE accounts ADD CONSTRAINT accounts_handle_key UNIQUE (handle);
             CREATE TABLE events (id int, k int) PARTITION BY RANGE (k);
             CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (100000);
             INSERT INTO events SELECT g, g FROM generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
    let size = |table: &'static str| {
        let client = &client;
        async move {
            // A partitioned table has no storage of its own: its size is
            // the sum over its partitions.
            let query = format!(
                "SELECT CASE WHEN relkind = 'p' THEN \
                   (SELECT sum(pg_total_relation_size(relid))::int8 \
                      FROM pg_partition_tree('{table}')) \
                 ELSE pg_total_relation_size(oid) END \
                 FROM pg_class WHERE oid = '{table}'::regclass"
            );
            client
                .query_one(&query, &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let (small, large, events) = (
        size("small").await,
        size("large").await,
        size("events").await,
    );
    assert!(large > events, "large {large}, events {events}");
    assert!(events > small, "events {events}, small {small}");

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.sql",
        "SET lock_timeout = '2s';\n\
         CREATE INDEX small_id_idx ON small (id);\n\
         CREATE INDEX events_k_idx ON ONLY events (k);\n\
         CREATE INDEX small_only_idx ON ONLY small (id);\n\
         CREATE INDEX events_id_idx ON events (id);\n\
         CREATE INDEX large_id_idx ON large (id);\n\
         DROP INDEX CONCURRENTLY accounts_handle_key;\n",
    );
    let offline = json(&lint_in(dir.path(), &["--format", "json", "m.sql"]));
    let online = json(&lint_in(
        dir.path(),
        &["--format", "json", "--database-url", &db.url, "m.sql"],
    ));
    let findings = |report: &serde_json::Value, rule: &str| -> Vec<(u64, Option<i64>)> {
        report["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["rule"] == rule)
            .map(|d| (d["line"].as_u64().unwrap(), d["locked_bytes"].as_i64()))
            .collect()
    };

    // Offline, ON ONLY counts as a partitioned parent (no build), no size
    // is known, and the constraint's index is not known.
    let builds = "index-build-without-concurrently";
    let offline_lines: Vec<u64> = findings(&offline, builds).iter().map(|f| f.0).collect();
    assert_eq!(offline_lines, vec![2, 5, 6]);
    assert!(findings(&offline, builds).iter().all(|f| f.1.is_none()));
    assert!(findings(&offline, "drop-index-backing-constraint").is_empty());

    // Online, ON ONLY of the plain table is a build, and the builds come
    // largest table first, with the size the server reports.
    assert_eq!(
        findings(&online, builds),
        vec![
            (6, Some(large)),
            (5, Some(events)),
            (2, Some(small)),
            (4, Some(small)),
        ]
    );
    let drops = findings(&online, "drop-index-backing-constraint");
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].0, 7);

    // SARIF carries the size as a property, and human output prints it
    // under the locks of the largest table's finding.
    let sarif = json(&lint_in(
        dir.path(),
        &["--format", "sarif", "--database-url", &db.url, "m.sql"],
    ));
    let first = &sarif["runs"][0]["results"][0];
    assert_eq!(
        first["locations"][0]["physicalLocation"]["region"]["startLine"],
        6
    );
    assert_eq!(first["properties"]["lockedBytes"].as_i64(), Some(large));
    let human = lint_in(dir.path(), &["--database-url", &db.url, "m.sql"]);
    let human = String::from_utf8_lossy(&human.stdout);
    let size_line = format!(
        "  = size: {} in the largest table it locks",
        indicatif::BinaryBytes(u64::try_from(large).unwrap())
    );
    let after_large = human
        .split("--> m.sql:6:1")
        .nth(1)
        .expect("line 6 is reported");
    assert!(
        after_large
            .split("\n\n")
            .next()
            .unwrap()
            .contains(&size_line),
        "{human}"
    );
    let offline_human = lint_in(dir.path(), &["m.sql"]);
    assert!(!String::from_utf8_lossy(&offline_human.stdout).contains("  = size:"));
}

#[cfg(unix)]
#[test]
fn names_that_are_not_utf8_are_linted() {
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xffname.sql");
    std::fs::create_dir_all(dir.path().join("m")).unwrap();
    std::fs::write(dir.path().join("m").join(name), PLAIN_INDEX).unwrap();
    let output = lint_in(dir.path(), &["--format", "json", "m"]);
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert_eq!(report["files"], 1, "the folder walk finds the file");
    let path = report["diagnostics"][0]["path"].as_str().unwrap();
    assert_eq!(path, "m/bad\u{fffd}name.sql");
}

#[cfg(unix)]
#[test]
fn pipes_are_not_called_missing() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("mkfifo")
        .arg(dir.path().join("fifo.sql"))
        .status()
        .unwrap();
    assert!(status.success());
    let output = lint_in(dir.path(), &["fifo.sql", "gone.sql"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("fifo.sql: error: not a regular file or folder"),
        "{text}"
    );
    assert!(
        text.contains("gone.sql: error: no such file or folder"),
        "{text}"
    );

    let gitlab = json(&lint_in(dir.path(), &["--format", "gitlab", "gone.sql"]));
    assert_eq!(gitlab[0]["check_name"], "read-error");
}

#[test]
fn sarif_uris_are_percent_encoded() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "d/V7 with space%2C,ü.sql", PLAIN_INDEX);
    write(dir.path(), "a:b.sql", PLAIN_INDEX);
    let sarif = json(&lint_in(dir.path(), &["--format", "sarif", "d", "a:b.sql"]));
    let uris: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        uris.contains(&"d/V7%20with%20space%252C,%C3%BC.sql"),
        "{uris:?}"
    );
    assert!(
        uris.contains(&"./a:b.sql"),
        "a first segment with `:` is not a scheme: {uris:?}"
    );

    // GitHub annotations name the file as it is.
    let github = stdout(&lint_in(dir.path(), &["--format", "github", "d"]));
    assert!(
        github.contains("file=d/V7 with space%252C%2Cü.sql"),
        "{github}"
    );
}
