//! `not-null-column-without-default`: ADD COLUMN ... NOT NULL without a default fails on any table with rows.

use super::{Check, Checker, Rule, Severity, Violation};
use pg_query::protobuf::{AlterTableType, ColumnDef, ConstrType};
use pg_query::NodeEnum;

pub static RULE: Rule = Rule {
    id: "not-null-column-without-default",
    summary: "ADD COLUMN ... NOT NULL without a default fails on any table with rows",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ADD COLUMN ... NOT NULL` with no `DEFAULT` (and not an
identity, serial or generated column) on a table the file did not create.

## Why it hurts

Existing rows get NULL in the new column, so the statement fails with
SQLSTATE 23502 on any table that has rows, after waiting for ACCESS
EXCLUSIVE. It only works on an empty table, which is rarely what production
holds.

## Lock taken

ACCESS EXCLUSIVE on the table while every row is checked.

## Safe alternative

Add the column with a constant default (instant from PostgreSQL 11), or
add it nullable, backfill it in batches and add NOT NULL the safe way (see
`set-not-null-without-check`).

## Example

```sql
-- flagged
ALTER TABLE tokens ADD COLUMN scope text NOT NULL;
-- safe
ALTER TABLE tokens ADD COLUMN scope text NOT NULL DEFAULT 'read';
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::AlterTableStmt(alter) = &check.statement.node else {
        return None;
    };
    if check.target_is_new() {
        return None;
    }
    let column = alter.cmds.iter().find_map(|c| match &c.node {
        Some(NodeEnum::AlterTableCmd(cmd)) if cmd.subtype == AlterTableType::AtAddColumn as i32 => {
            match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(column)) if needs_value(column) => Some(column),
                _ => None,
            }
        }
        _ => None,
    })?;
    Some(Violation::new(
        format!(
            "column {} is NOT NULL without a default, so the statement fails with SQLSTATE \
             23502 on a table that has rows",
            column.colname
        ),
        "add a constant DEFAULT, or add the column nullable, backfill it, then add NOT NULL",
        check.existing_locks(),
    ))
}

/// Returns true for a NOT NULL column with nothing that fills existing rows.
fn needs_value(column: &ColumnDef) -> bool {
    let kinds: Vec<i32> = column
        .constraints
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::Constraint(c)) => Some(c.contype),
            _ => None,
        })
        .collect();
    let has = |t: ConstrType| kinds.contains(&(t as i32));
    let serial = column.type_name.as_ref().is_some_and(|t| {
        t.names.last().is_some_and(|n| {
            matches!(&n.node, Some(NodeEnum::String(s)) if s.sval.to_ascii_lowercase().contains("serial"))
        })
    });
    (has(ConstrType::ConstrNotnull) || has(ConstrType::ConstrPrimary))
        && !has(ConstrType::ConstrDefault)
        && !has(ConstrType::ConstrIdentity)
        && !has(ConstrType::ConstrGenerated)
        && !serial
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "not-null-column-without-default";

    #[test]
    fn flags_not_null_without_default() {
        let sql = "ALTER TABLE t ADD COLUMN s text NOT NULL;";
        assert_eq!(flagged_lines(RULE, sql), vec![1]);
    }

    #[test]
    fn accepts_default_identity_and_new_tables() {
        let sql = "ALTER TABLE t ADD COLUMN s text NOT NULL DEFAULT 'x';\n\
                   ALTER TABLE t ADD COLUMN i bigint NOT NULL GENERATED ALWAYS AS IDENTITY;\n\
                   ALTER TABLE t ADD COLUMN q bigserial NOT NULL;\n\
                   CREATE TABLE n (id int);\nALTER TABLE n ADD COLUMN s text NOT NULL;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
