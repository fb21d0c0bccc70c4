//! Plan loading: the bundled example, both file name layouts, and every
//! validation error, plus applying the example on a real server.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pgshift::plan::{Plan, PlanError, Strategy};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const EXAMPLE: &str = "plans/oauth-1x-to-2x.yaml";

/// Writes `files` (relative path, contents) into a new temp dir.
fn write_tree(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, contents) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
    dir
}

/// A plan with one version `1` in folder `v1` and one phase reaching it.
const ONE_VERSION_PLAN: &str = "\
name: t
versions:
  - version: \"1\"
    path: v1
phases:
  - name: all
    to: \"1\"
    strategy: in-place
";

/// Loads `plan.yaml` from `dir`.
fn load(dir: &TempDir) -> Result<Plan, PlanError> {
    Plan::load(&dir.path().join("plan.yaml"))
}

/// Loads `plan.yaml` from `dir`, expecting `PlanError::Invalid`, and
/// returns the whole error text.
fn load_err(dir: &TempDir) -> String {
    match load(dir) {
        Err(e @ PlanError::Invalid { .. }) => e.to_string(),
        Err(other) => panic!("expected PlanError::Invalid, got {other:?}"),
        Ok(plan) => panic!("expected an error, the plan loaded: {plan:#?}"),
    }
}

fn ids(plan: &Plan, version: usize) -> Vec<&str> {
    plan.versions[version]
        .migrations
        .iter()
        .map(|m| m.id.as_str())
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

// --- The bundled example -------------------------------------------------

#[test]
fn example_versions_and_phases() {
    let plan = Plan::load(&common::repo_path(EXAMPLE)).unwrap();

    assert_eq!(plan.name, "oauth-1x-to-2x");
    assert!(plan
        .description
        .as_deref()
        .unwrap_or("")
        .contains("OpenID Connect"));
    let names: Vec<&str> = plan.versions.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["1.0", "1.1", "1.2", "1.3", "2.0"]);
    assert_eq!(plan.version_index("1.3"), Some(3));
    assert!(plan.versions[4].folder.ends_with("plans/oauth/2.0"));

    assert_eq!(plan.phases.len(), 2);
    let first = &plan.phases[0];
    assert_eq!(first.name, "latest-1.x");
    assert_eq!(first.from, None);
    assert_eq!(first.to, "1.3");
    assert_eq!(first.strategy, Strategy::InPlace);
    assert_eq!(first.versions, 0..4);
    let second = &plan.phases[1];
    assert_eq!(second.name, "upgrade-2.0");
    assert_eq!(second.from.as_deref(), Some("1.3"));
    assert_eq!(second.to, "2.0");
    assert_eq!(second.strategy, Strategy::InPlace);
    assert_eq!(second.versions, 4..5);
}

#[test]
fn example_settings_override_plan_wide() {
    let plan = Plan::load(&common::repo_path(EXAMPLE)).unwrap();

    assert_eq!(plan.settings.lock_timeout, Duration::from_secs(2));
    assert_eq!(plan.settings.retry_backoff, Duration::from_millis(250));
    assert_eq!(plan.phases[0].settings, plan.settings);

    let upgrade = &plan.phases[1].settings;
    assert_eq!(upgrade.lock_timeout, Duration::from_secs(1));
    assert_eq!(upgrade.retries, 20);
    assert_eq!(upgrade.retry_backoff_max, Duration::from_secs(30));
    // Keys the phase does not set come from the plan.
    assert_eq!(upgrade.retry_backoff, Duration::from_millis(250));
    assert_eq!(upgrade.statement_timeout, Duration::ZERO);
}

#[test]
fn example_migrations_in_order() {
    let plan = Plan::load(&common::repo_path(EXAMPLE)).unwrap();

    let counts: Vec<usize> = plan.versions.iter().map(|v| v.migrations.len()).collect();
    assert_eq!(counts, [3, 2, 2, 3, 6]);

    let all: Vec<&str> = (0..plan.versions.len())
        .flat_map(|i| ids(&plan, i))
        .collect();
    let expected: Vec<String> = (1..=16).map(|n| n.to_string()).collect();
    assert_eq!(all, expected);

    let first = &plan.versions[0].migrations[0];
    assert_eq!(first.name, "initial_schema");
    assert!(first.path.ends_with("oauth/1.0/V1__initial_schema.sql"));
    assert!(first.sql.contains("CREATE TABLE clients"));
    assert!(plan
        .versions
        .iter()
        .flat_map(|v| &v.migrations)
        .all(|m| !m.autocommit));
}

#[test]
fn example_checksums_stable() {
    let plan = Plan::load(&common::repo_path(EXAMPLE)).unwrap();
    let again = Plan::load(&common::repo_path(EXAMPLE)).unwrap();

    for (version, version_again) in plan.versions.iter().zip(&again.versions) {
        for (m, m_again) in version.migrations.iter().zip(&version_again.migrations) {
            assert_eq!(m.checksum.len(), 64, "{}", m.path.display());
            assert_eq!(m.checksum, sha256_hex(&m.path), "{}", m.path.display());
            assert_eq!(m.checksum, m_again.checksum, "{}", m.path.display());
        }
    }
}

/// Returns the table's file number, which changes when the table is
/// rewritten.
async fn relfilenode(client: &tokio_postgres::Client, table: &str) -> u32 {
    let row = client
        .query_one(
            "SELECT relfilenode FROM pg_class WHERE oid = $1::text::regclass",
            &[&table],
        )
        .await
        .unwrap();
    row.get::<_, u32>(0)
}

#[tokio::test]
async fn example_applies_on_postgres() {
    let plan = Plan::load(&common::repo_path(EXAMPLE)).unwrap();
    let db = common::TestDb::new("plan_example").await;
    let client = db.client().await;

    let mut before_types = None;
    for migration in plan.versions.iter().flat_map(|v| &v.migrations) {
        if migration.id == "15" {
            before_types = Some((
                relfilenode(&client, "clients").await,
                relfilenode(&client, "signing_keys").await,
            ));
        }
        let script = format!("BEGIN;\n{}\nCOMMIT;", migration.sql);
        if let Err(e) = client.batch_execute(&script).await {
            panic!("{} failed: {e:?}", migration.path.display());
        }
    }

    // varchar(255) -> text is binary-coercible, text -> jsonb is not.
    let (clients_before, keys_before) = before_types.expect("the example has migration 15");
    assert_eq!(relfilenode(&client, "clients").await, clients_before);
    assert_ne!(relfilenode(&client, "signing_keys").await, keys_before);

    let tables: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "access_tokens",
            "authorization_codes",
            "clients",
            "consent_grants",
            "device_codes",
            "login_sessions",
            "refresh_tokens",
            "signing_keys",
        ]
    );

    for table in &tables {
        let row = client
            .query_opt(
                "SELECT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) \
                 FROM pg_attribute a \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = $1::text::regclass AND a.attname = 'tenant_id' \
                 AND NOT a.attisdropped",
                &[table],
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{table} has no tenant_id column"));
        assert!(row.get::<_, bool>(0), "{table}.tenant_id is nullable");
        let default: Option<String> = row.get(1);
        assert_eq!(
            default.as_deref(),
            Some("'default'::character varying"),
            "{table}.tenant_id default"
        );
    }

    for (table, constraint) in [
        ("refresh_tokens", "refresh_tokens_access_token_fk"),
        ("consent_grants", "consent_grants_login_session_fk"),
    ] {
        let row = client
            .query_opt(
                "SELECT contype::text, convalidated FROM pg_constraint \
                 WHERE conrelid = $1::text::regclass AND conname = $2",
                &[&table, &constraint],
            )
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("constraint {constraint} missing on {table}"));
        assert_eq!(row.get::<_, String>(0), "f", "{constraint} type");
        assert!(row.get::<_, bool>(1), "{constraint} is not validated");
    }

    let column_type = |table: &'static str, column: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                     WHERE attrelid = $1::text::regclass AND attname = $2",
                    &[&table, &column],
                )
                .await
                .unwrap()
                .get::<_, String>(0)
        }
    };
    assert_eq!(column_type("clients", "client_name").await, "text");
    assert_eq!(column_type("signing_keys", "key_data").await, "jsonb");

    let indexes: Vec<(String, bool)> = client
        .query(
            "SELECT c.relname::text, i.indisvalid FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = 'access_tokens'::regclass",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        indexes.contains(&("access_tokens_tenant_subject_idx".to_string(), true)),
        "{indexes:?}"
    );
    assert!(
        !indexes
            .iter()
            .any(|(name, _)| name == "access_tokens_subject_idx"),
        "{indexes:?}"
    );
}

// --- File name layouts ---------------------------------------------------

#[test]
fn versioned_layout_ordered_numerically() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/V2__c.sql", "SELECT 2;"),
        ("v1/V1_10__d.sql", "SELECT 110;"),
        ("v1/V1__a.sql", "SELECT 1;"),
        ("v1/V1.9__b.sql", "SELECT 19;"),
        ("v1/V10__e.sql", "SELECT 10;"),
        ("v1/README.md", "notes"),
        ("v1/V10__e.down.sql", "SELECT -10;"),
    ]);
    let plan = load(&dir).unwrap();

    assert_eq!(ids(&plan, 0), ["1", "1.9", "1.10", "2", "10"]);
    let names: Vec<&str> = plan.versions[0]
        .migrations
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "d", "c", "e"]);
    let last = &plan.versions[0].migrations[4];
    assert_eq!(last.sql, "SELECT 10;");
    assert_eq!(last.checksum, sha256_hex(&dir.path().join("v1/V10__e.sql")));
}

#[test]
fn numbered_layout_with_markers() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/0001_init.up.sql", "CREATE TABLE t (id int);"),
        ("v1/0001_init.down.sql", "DROP TABLE t;"),
        (
            "v1/0002_index.postgres.autocommit.up.sql",
            "CREATE INDEX CONCURRENTLY i ON t (id);",
        ),
        (
            "v1/0002_index.postgres.autocommit.down.sql",
            "DROP INDEX i;",
        ),
        ("v1/0003_plain.sql", "SELECT 3;"),
        ("v1/0010_pg-only.postgres.up.sql", "SELECT 10;"),
        ("v1/0011_auto.autocommit.sql", "VACUUM t;"),
        ("v1/notes.txt", "not a migration"),
        ("v1/nested/0099_ignored.sql", "SELECT 99;"),
    ]);
    let plan = load(&dir).unwrap();
    let migrations = &plan.versions[0].migrations;

    assert_eq!(ids(&plan, 0), ["1", "2", "3", "10", "11"]);
    let names: Vec<&str> = migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["init", "index", "plain", "pg-only", "auto"]);
    let autocommit: Vec<bool> = migrations.iter().map(|m| m.autocommit).collect();
    assert_eq!(autocommit, [false, true, false, false, true]);
    assert_eq!(migrations[0].sql, "CREATE TABLE t (id int);");
}

#[test]
fn timestamped_layout_ordered_numerically() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/20240105120000_add_index.up.sql", "SELECT 2;"),
        ("v1/20240105120000_add_index.down.sql", "SELECT -2;"),
        ("v1/20231201093000_create_users.sql", "SELECT 1;"),
        ("v1/20240211000000_backfill.autocommit.up.sql", "SELECT 3;"),
    ]);
    let plan = load(&dir).unwrap();

    assert_eq!(
        ids(&plan, 0),
        ["20231201093000", "20240105120000", "20240211000000"]
    );
    assert!(plan.versions[0].migrations[2].autocommit);
}

#[test]
fn mixed_layouts_in_one_folder() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/V3__flyway.sql", "SELECT 3;"),
        ("v1/0004_numbered.up.sql", "SELECT 4;"),
        ("v1/V1.5__between.sql", "SELECT 1.5;"),
    ]);
    let plan = load(&dir).unwrap();

    assert_eq!(ids(&plan, 0), ["1.5", "3", "4"]);
}

// --- Errors --------------------------------------------------------------

#[test]
fn unknown_top_level_key() {
    let dir = write_tree(&[
        ("plan.yaml", &format!("{ONE_VERSION_PLAN}nme: x\n")),
        ("v1/V1__a.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("unknown field `nme`"), "{err}");
    assert!(err.contains("line 9"), "{err}");
    assert!(err.contains("plan.yaml"), "{err}");
}

#[test]
fn unknown_phase_settings_key() {
    let plan = format!("{ONE_VERSION_PLAN}    settings:\n      lok_timeout: 2s\n");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("phases[0].settings"), "{err}");
    assert!(err.contains("unknown field `lok_timeout`"), "{err}");
    assert!(err.contains("line 10"), "{err}");
}

#[test]
fn unknown_version_key() {
    let plan = ONE_VERSION_PLAN.replace("    path: v1\n", "    path: v1\n    folder: v1\n");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("versions[0]"), "{err}");
    assert!(err.contains("unknown field `folder`"), "{err}");
    assert!(err.contains("line 5"), "{err}");
}

#[test]
fn missing_name() {
    let plan = ONE_VERSION_PLAN.replace("name: t\n", "");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("missing field `name`"), "{err}");
}

#[test]
fn invalid_duration() {
    let plan = ONE_VERSION_PLAN.replace(
        "name: t\n",
        "name: t\nsettings:\n  lock_timeout: 2 seconds\n",
    );
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("settings.lock_timeout"), "{err}");
    assert!(err.contains("\"2 seconds\""), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn duration_without_unit() {
    let plan = ONE_VERSION_PLAN.replace("name: t\n", "name: t\nsettings:\n  retry_backoff: 250\n");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("settings.retry_backoff"), "{err}");
    assert!(err.contains("250 has no unit"), "{err}");
}

#[test]
fn zero_duration_means_none() {
    let plan = ONE_VERSION_PLAN.replace(
        "name: t\n",
        "name: t\nsettings:\n  lock_timeout: 0\n  statement_timeout: \"0\"\n",
    );
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let plan = load(&dir).unwrap();

    assert_eq!(plan.phases[0].settings.lock_timeout, Duration::ZERO);
    assert_eq!(plan.phases[0].settings.statement_timeout, Duration::ZERO);
    let warnings = plan.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("lock_timeout to 0"), "{}", warnings[0]);
    assert!(warnings[0].contains("plan.yaml"), "{}", warnings[0]);
}

#[test]
fn example_plan_has_no_warnings() {
    let plan = Plan::load(&common::repo_path(EXAMPLE)).unwrap();

    assert_eq!(plan.warnings(), Vec::<String>::new());
}

#[test]
fn backoff_max_below_backoff() {
    let plan = ONE_VERSION_PLAN.replace(
        "name: t\n",
        "name: t\nsettings:\n  retry_backoff: 5s\n  retry_backoff_max: 1s\n",
    );
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("retry_backoff_max"), "{err}");
}

#[test]
fn timeout_above_postgres_limit() {
    let settings = "    settings:\n      statement_timeout: 600h\n";
    let dir = write_tree(&[
        ("plan.yaml", &format!("{ONE_VERSION_PLAN}{settings}")),
        ("v1/V1__a.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(
        err.contains("phases[0].settings.statement_timeout"),
        "{err}"
    );
    assert!(err.contains("2147483647ms"), "{err}");
}

#[test]
fn unquoted_version_number() {
    let plan = ONE_VERSION_PLAN.replace("version: \"1\"", "version: 1.10");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("versions[0].version"), "{err}");
    assert!(err.contains("quote version names"), "{err}");
}

#[test]
fn unknown_strategy() {
    let plan = ONE_VERSION_PLAN.replace("in-place", "inplace");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("phases[0].strategy"), "{err}");
    assert!(err.contains("`inplace`"), "{err}");
    assert!(err.contains("`in-place`"), "{err}");
}

#[test]
fn missing_folder() {
    let dir = write_tree(&[("plan.yaml", ONE_VERSION_PLAN)]);
    let err = load_err(&dir);

    assert!(err.contains("version \"1\""), "{err}");
    assert!(
        err.contains(&dir.path().join("v1").display().to_string()),
        "{err}"
    );
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn empty_versions() {
    let dir = write_tree(&[("plan.yaml", "name: t\nversions: []\nphases: []\n")]);
    let err = load_err(&dir);

    assert!(err.contains("`versions` is empty"), "{err}");
}

#[test]
fn duplicate_version() {
    let plan = "\
name: t
versions:
  - version: \"1\"
    path: v1
  - version: \"1\"
    path: v2
phases:
  - name: all
    to: \"1\"
    strategy: in-place
";
    let dir = write_tree(&[
        ("plan.yaml", plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("versions[1]"), "{err}");
    assert!(err.contains("version \"1\" is listed twice"), "{err}");
}

/// Two versions `1` and `2` in folders `v1` and `v2`, one phase each.
const TWO_VERSION_PLAN: &str = "\
name: t
versions:
  - version: \"1\"
    path: v1
  - version: \"2\"
    path: v2
phases:
  - name: first
    to: \"1\"
    strategy: in-place
  - name: second
    to: \"2\"
    strategy: blue-green
";

#[test]
fn two_phases_load() {
    let dir = write_tree(&[
        ("plan.yaml", TWO_VERSION_PLAN),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let plan = load(&dir).unwrap();

    assert_eq!(plan.phases[1].strategy, Strategy::BlueGreen);
    assert_eq!(plan.phases[1].from.as_deref(), Some("1"));
    assert_eq!(plan.phases[1].versions, 1..2);
    assert_eq!(plan.phases[1].settings, pgshift::plan::Settings::default());
}

#[test]
fn duplicate_migration_id_across_versions() {
    let dir = write_tree(&[
        ("plan.yaml", TWO_VERSION_PLAN),
        ("v1/V1__a.sql", ""),
        ("v1/V2__b.sql", ""),
        ("v2/0002_again.up.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("migration id 2 "), "{err}");
    assert!(
        err.contains(
            &dir.path()
                .join("v2/0002_again.up.sql")
                .display()
                .to_string()
        ),
        "{err}"
    );
    assert!(
        err.contains(&dir.path().join("v1/V2__b.sql").display().to_string()),
        "{err}"
    );
}

#[test]
fn duplicate_migration_id_in_one_folder() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/V1__flyway.sql", ""),
        ("v1/0001_numbered.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("0001_numbered.sql"), "{err}");
    assert!(err.contains("V1__flyway.sql"), "{err}");
}

#[test]
fn folder_without_migrations() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/README.md", "nothing here"),
        ("v1/0001_x.down.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("contains no migrations"), "{err}");
    assert!(err.contains("version \"1\""), "{err}");
    assert!(
        err.contains(&dir.path().join("v1").display().to_string()),
        "{err}"
    );
}

#[test]
fn unrecognised_file_name() {
    let dir = write_tree(&[
        ("plan.yaml", ONE_VERSION_PLAN),
        ("v1/V1__a.sql", ""),
        ("v1/add_index.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(
        err.contains(&dir.path().join("v1/add_index.sql").display().to_string()),
        "{err}"
    );
    assert!(err.contains("matches no known file name layout"), "{err}");
    assert!(err.contains("V<version>__<name>.sql"), "{err}");
    assert!(
        err.contains("<number>_<name>[.postgres][.autocommit][.up].sql"),
        "{err}"
    );
}

#[test]
fn phase_to_unknown_version() {
    let plan = ONE_VERSION_PLAN.replace("to: \"1\"", "to: \"1.5\"");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(err.contains("phase \"all\""), "{err}");
    assert!(err.contains("`to: \"1.5\"` names no version"), "{err}");
}

#[test]
fn phases_out_of_order() {
    let plan = TWO_VERSION_PLAN
        .replace("    to: \"1\"", "    to: \"TMP\"")
        .replace("    to: \"2\"", "    to: \"1\"")
        .replace("    to: \"TMP\"", "    to: \"2\"");
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("phase \"second\""), "{err}");
    assert!(err.contains("is not after \"2\""), "{err}");
}

#[test]
fn phase_repeating_a_version() {
    let plan = TWO_VERSION_PLAN.replace("    to: \"2\"", "    to: \"1\"");
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("phase \"second\""), "{err}");
    assert!(err.contains("is not after \"1\""), "{err}");
}

#[test]
fn phase_from_mismatch() {
    let plan =
        TWO_VERSION_PLAN.replace("  - name: second\n", "  - name: second\n    from: \"0\"\n");
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("phase \"second\""), "{err}");
    assert!(
        err.contains("`from: \"0\"` must equal the previous phase's `to`, \"1\""),
        "{err}"
    );
}

#[test]
fn first_phase_with_from() {
    let plan = TWO_VERSION_PLAN.replace("  - name: first\n", "  - name: first\n    from: \"1\"\n");
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("phase \"first\""), "{err}");
    assert!(err.contains("first phase"), "{err}");
}

#[test]
fn first_phase_with_null_from() {
    let plan = TWO_VERSION_PLAN.replace("  - name: first\n", "  - name: first\n    from: null\n");
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let plan = load(&dir).unwrap();

    assert_eq!(plan.phases[0].from, None);
}

#[test]
fn versions_not_covered() {
    let plan = TWO_VERSION_PLAN.replace(
        "  - name: second\n    to: \"2\"\n    strategy: blue-green\n",
        "",
    );
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(
        err.contains("version \"2\" is not covered by any phase"),
        "{err}"
    );
}

#[test]
fn no_phases() {
    let plan = "name: t\nversions:\n  - version: \"1\"\n    path: v1\nphases: []\n";
    let dir = write_tree(&[("plan.yaml", plan), ("v1/V1__a.sql", "")]);
    let err = load_err(&dir);

    assert!(
        err.contains("version \"1\" is not covered by any phase"),
        "{err}"
    );
}

#[test]
fn duplicate_phase_name() {
    let plan = TWO_VERSION_PLAN.replace("name: second", "name: first");
    let dir = write_tree(&[
        ("plan.yaml", &plan),
        ("v1/V1__a.sql", ""),
        ("v2/V2__b.sql", ""),
    ]);
    let err = load_err(&dir);

    assert!(err.contains("phases[1] (phase \"first\")"), "{err}");
    assert!(err.contains("used by an earlier phase"), "{err}");
}

#[test]
fn missing_plan_file() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("absent.yaml");
    let err = Plan::load(&path).unwrap_err();

    assert!(matches!(err, PlanError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.yaml"), "{err}");
}

#[test]
fn byte_order_mark_skipped() {
    let plan = format!("\u{feff}{ONE_VERSION_PLAN}");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);

    let plan = load(&dir).unwrap();
    assert_eq!(plan.name, "t");
}

#[test]
fn empty_plan_named() {
    for text in ["", "~\n", "# only a comment\n", "---\n"] {
        let dir = write_tree(&[("plan.yaml", text)]);
        let err = load_err(&dir);
        assert!(err.contains("the plan is empty"), "{text:?}: {err}");
        assert!(!err.contains("RawPlan"), "{text:?}: {err}");
    }
}

#[test]
fn backfill_settings_by_phase() {
    let plan = ONE_VERSION_PLAN.replace(
        "name: t\n",
        "name: t\nsettings:\n  backfill_batch_size: 250\n",
    );
    let plan = format!("{plan}    settings:\n      backfill: batched\n");
    let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
    let plan = load(&dir).unwrap();

    assert_eq!(plan.settings.backfill, pgshift::plan::Backfill::Atomic);
    let phase = &plan.phases[0].settings;
    assert_eq!(phase.backfill, pgshift::plan::Backfill::Batched);
    assert_eq!(phase.backfill_batch_size, 250);
}

#[test]
fn invalid_backfill_settings() {
    for (setting, expected) in [
        ("backfill: sometimes", "unknown variant `sometimes`"),
        (
            "backfill_batch_size: 0",
            "settings.backfill_batch_size is 0",
        ),
        (
            "backfill_batch_size: 5000000",
            "settings.backfill_batch_size is 5000000",
        ),
    ] {
        let plan =
            ONE_VERSION_PLAN.replace("name: t\n", &format!("name: t\nsettings:\n  {setting}\n"));
        let dir = write_tree(&[("plan.yaml", &plan), ("v1/V1__a.sql", "")]);
        let err = load_err(&dir);
        assert!(err.contains(expected), "{setting}: {err}");
    }
}
