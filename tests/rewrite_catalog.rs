//! A snapshot of a database's schema read from the catalog, for proving
//! that a rewritten migration ends in the same schema as the original.
//! Other test files include this file as a module; its own tests show that
//! the snapshot sees each kind of difference it claims to compare.

#![allow(dead_code)]

#[allow(unused)]
pub mod common;

use tokio_postgres::Client;

/// Tables, columns, indexes and constraints of the non-system schemas,
/// each as one sorted line of text so a difference prints readably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tables: Vec<String>,
    pub columns: Vec<String>,
    pub indexes: Vec<String>,
    pub constraints: Vec<String>,
}

const TABLES: &str = "
SELECT n.nspname || '.' || c.relname || ' kind=' || c.relkind::text
       || coalesce(' partition of ' || pn.nspname || '.' || p.relname
                   || ' ' || pg_get_expr(c.relpartbound, c.oid), '')
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
  LEFT JOIN pg_class p ON p.oid = i.inhparent
  LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift')
   AND n.nspname NOT LIKE 'pg_toast%'
 ORDER BY 1";

const COLUMNS: &str = "
SELECT n.nspname || '.' || c.relname || '.' || a.attname
       || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
   AND c.relkind IN ('r', 'p', 'v', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift')
 ORDER BY 1";

const INDEXES: &str = "
SELECT pg_get_indexdef(i.indexrelid)
       || CASE WHEN i.indisvalid THEN ' VALID' ELSE ' INVALID' END
       || CASE WHEN i.indisready THEN '' ELSE ' NOT READY' END
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift')
   AND n.nspname NOT LIKE 'pg_toast%'
 ORDER BY 1";

const CONSTRAINTS: &str = "
SELECT n.nspname || '.' || coalesce(c.relname, '-') || ' ' || con.conname
       || ' ' || pg_get_constraintdef(con.oid)
       || CASE WHEN con.convalidated THEN ' VALIDATED' ELSE ' NOT VALIDATED' END
       || coalesce(' index=' || ic.relname, '')
  FROM pg_constraint con
  JOIN pg_namespace n ON n.oid = con.connamespace
  LEFT JOIN pg_class c ON c.oid = con.conrelid
  LEFT JOIN pg_class ic ON ic.oid = con.conindid
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgshift')
 ORDER BY 1";

/// Reads the schema snapshot of the database `client` is connected to.
pub async fn snapshot(client: &Client) -> Snapshot {
    Snapshot {
        tables: lines(client, TABLES).await,
        columns: lines(client, COLUMNS).await,
        indexes: lines(client, INDEXES).await,
        constraints: lines(client, CONSTRAINTS).await,
    }
}

async fn lines(client: &Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("catalog query failed: {e:?}"))
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect()
}

/// Asserts two snapshots are equal, printing the lines that differ.
pub fn assert_same(what: &str, original: &Snapshot, rewritten: &Snapshot) {
    let parts = [
        ("tables", &original.tables, &rewritten.tables),
        ("columns", &original.columns, &rewritten.columns),
        ("indexes", &original.indexes, &rewritten.indexes),
        ("constraints", &original.constraints, &rewritten.constraints),
    ];
    let mut report = String::new();
    for (name, a, b) in parts {
        for line in a.iter().filter(|l| !b.contains(l)) {
            report.push_str(&format!("  {name} only in original:  {line}\n"));
        }
        for line in b.iter().filter(|l| !a.contains(l)) {
            report.push_str(&format!("  {name} only in rewritten: {line}\n"));
        }
    }
    assert!(
        report.is_empty() && original == rewritten,
        "{what}: schemas differ\n{report}"
    );
}

#[tokio::test]
async fn snapshot_sees_each_kind_of_difference() {
    let db = common::TestDb::new("snapshot_kinds").await;
    db.exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, a int, b text);
         CREATE INDEX t_a_idx ON t (a);",
    )
    .await;
    let client = db.client().await;
    let base = snapshot(&client).await;
    assert!(base.tables.iter().any(|l| l.starts_with("public.t kind=r")));
    assert!(base
        .indexes
        .iter()
        .any(|l| l.contains("t_a_idx") && l.ends_with(" VALID")));

    // Each change must show up in the part of the snapshot it belongs to.
    type Part = fn(&Snapshot) -> &Vec<String>;
    let changes: [(&str, &str, Part); 6] = [
        (
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "not null",
            |s| &s.columns,
        ),
        (
            "ALTER TABLE t ALTER COLUMN b SET DEFAULT 'x'",
            "default",
            |s| &s.columns,
        ),
        ("ALTER TABLE t ALTER COLUMN a TYPE bigint", "type", |s| {
            &s.columns
        }),
        (
            "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID",
            "constraint",
            |s| &s.constraints,
        ),
        (
            "ALTER TABLE t VALIDATE CONSTRAINT t_a_pos",
            "validity",
            |s| &s.constraints,
        ),
        (
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 't_a_idx'::regclass",
            "index validity",
            |s| &s.indexes,
        ),
    ];
    let mut before = base;
    for (sql, what, part) in changes {
        client.batch_execute(sql).await.unwrap();
        let after = snapshot(&client).await;
        assert_ne!(part(&before), part(&after), "{what} change not seen");
        let caught = std::panic::catch_unwind(|| assert_same(what, &before, &after));
        assert!(caught.is_err(), "assert_same missed the {what} change");
        before = after;
    }
}
