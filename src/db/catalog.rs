//! Read-only catalog lookups for rewrites: partitioned tables and their
//! partitions, indexes that back a constraint, partitioned indexes,
//! default partitions and primary keys. Names are schema-qualified.

use tokio_postgres::Client;

use super::DbError;
use crate::locks::RelationName;
use crate::rewrite::{PrimaryKey, SchemaFacts};

const PARTITIONS: &str = "
SELECT pn.nspname::text, p.relname::text, cn.nspname::text, c.relname::text,
       pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
  FROM pg_class p
  JOIN pg_namespace pn ON pn.oid = p.relnamespace
  LEFT JOIN pg_inherits i ON i.inhparent = p.oid
  LEFT JOIN pg_class c ON c.oid = i.inhrelid
  LEFT JOIN pg_namespace cn ON cn.oid = c.relnamespace
 WHERE p.relkind = 'p'
 ORDER BY 1, 2, 3, 4";

const CONSTRAINT_INDEXES: &str = "
SELECT n.nspname::text, i.relname::text
  FROM pg_constraint con
  JOIN pg_class i ON i.oid = con.conindid
  JOIN pg_namespace n ON n.oid = i.relnamespace
 WHERE con.contype IN ('p', 'u', 'x')";

const PARTITIONED_INDEXES: &str = "
SELECT n.nspname::text, c.relname::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'I'";

const PARTITION_KEYS: &str = "
SELECT n.nspname::text, c.relname::text,
       array_agg(a.attname::text ORDER BY k.ord), bool_and(k.attnum <> 0)
  FROM pg_partitioned_table p
  JOIN pg_class c ON c.oid = p.partrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(p.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 GROUP BY 1, 2";

const PRIMARY_KEYS: &str = "
SELECT n.nspname::text, c.relname::text, con.conname::text,
       array_agg(a.attname::text ORDER BY k.ord)
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 WHERE con.contype = 'p'
 GROUP BY 1, 2, 3";

/// Reads the facts rewrites need from the database of `client`.
pub async fn schema_facts(client: &Client) -> Result<SchemaFacts, DbError> {
    let error = |what| move |source| DbError::Query { what, source };
    let mut facts = SchemaFacts {
        from_database: true,
        ..SchemaFacts::default()
    };

    for row in client
        .query(PARTITIONS, &[])
        .await
        .map_err(error("partitions"))?
    {
        let parent = qualified(row.get(0), row.get(1));
        let children = facts.partitions.entry(parent.clone()).or_default();
        let child_schema: Option<String> = row.get(2);
        let child_name: Option<String> = row.get(3);
        if let (Some(schema), Some(name)) = (child_schema, child_name) {
            children.push(qualified(schema, name));
            if row.get::<_, Option<bool>>(4) == Some(true) {
                facts.default_partitions.insert(parent);
            }
        }
    }
    for row in client
        .query(CONSTRAINT_INDEXES, &[])
        .await
        .map_err(error("constraint indexes"))?
    {
        facts
            .constraint_indexes
            .insert(qualified(row.get(0), row.get(1)));
    }
    for row in client
        .query(PARTITIONED_INDEXES, &[])
        .await
        .map_err(error("partitioned indexes"))?
    {
        facts
            .partitioned_indexes
            .insert(qualified(row.get(0), row.get(1)));
    }
    for row in client
        .query(PARTITION_KEYS, &[])
        .await
        .map_err(error("partition keys"))?
    {
        // A key with an expression has attnum 0 and no column name.
        if row.get::<_, bool>(3) {
            facts
                .partition_keys
                .insert(qualified(row.get(0), row.get(1)), row.get(2));
        }
    }
    for row in client
        .query(PRIMARY_KEYS, &[])
        .await
        .map_err(error("primary keys"))?
    {
        facts.primary_keys.insert(
            qualified(row.get(0), row.get(1)),
            PrimaryKey {
                constraint: row.get(2),
                columns: row.get(3),
            },
        );
    }
    Ok(facts)
}

fn qualified(schema: String, name: String) -> RelationName {
    RelationName {
        schema: Some(schema),
        name,
    }
}
