//! `identifier-over-63-bytes`: an identifier longer than 63 bytes is silently truncated.

use pg_query::NodeEnum;
use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "identifier-over-63-bytes",
    summary: "An identifier longer than 63 bytes is silently truncated",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

A table, index, column or constraint name longer than 63 bytes (`NAMEDATALEN - 1`) in a statement that creates or renames an object.

## Why it hurts

PostgreSQL truncates the name to 63 bytes with only a NOTICE. Later
migrations that use the full name fail, and two long names with the same
first 63 bytes collide.

## Lock taken

None beyond the statement's own.

## Safe alternative

Choose a name of at most 63 bytes.

## Example

```sql
-- flagged
CREATE INDEX access_tokens_tenant_id_client_id_subject_created_at_expires_at_idx
    ON access_tokens (tenant_id, client_id, subject, created_at, expires_at);
```
"#;

const MAX_BYTES: usize = 63;

fn check(check: &Check<'_>) -> Option<Violation> {
    let mut names: Vec<String> = Vec::new();
    match &check.statement.node {
        NodeEnum::IndexStmt(index) => names.push(index.idxname.clone()),
        NodeEnum::CreateStmt(create) => {
            if let Some(table) = &create.relation {
                names.push(table.relname.clone());
            }
            for element in &create.table_elts {
                match &element.node {
                    Some(NodeEnum::ColumnDef(column)) => names.push(column.colname.clone()),
                    Some(NodeEnum::Constraint(constraint)) => {
                        names.push(constraint.conname.clone())
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::AlterTableStmt(alter) => {
            for command in &alter.cmds {
                let Some(NodeEnum::AlterTableCmd(command)) = &command.node else {
                    continue;
                };
                match command.def.as_ref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::ColumnDef(column)) => names.push(column.colname.clone()),
                    Some(NodeEnum::Constraint(constraint)) => {
                        names.push(constraint.conname.clone())
                    }
                    _ => {}
                }
            }
        }
        NodeEnum::RenameStmt(rename) => names.push(rename.newname.clone()),
        NodeEnum::ViewStmt(view) => {
            if let Some(v) = &view.view {
                names.push(v.relname.clone());
            }
        }
        _ => return None,
    }
    let long = names.into_iter().find(|n| n.len() > MAX_BYTES)?;
    Some(Violation::new(
        format!(
            "`{long}` is {} bytes long; PostgreSQL truncates names to {MAX_BYTES} bytes, so \
             later statements using the full name will not find it",
            long.len()
        ),
        "choose a name of at most 63 bytes",
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "identifier-over-63-bytes";

    #[test]
    fn flags_long_index_name() {
        let name = "i".repeat(64);
        let sql = format!("CREATE INDEX CONCURRENTLY {name} ON a (x);");
        assert_eq!(flagged_lines(RULE, &sql), vec![1]);
    }

    #[test]
    fn accepts_63_bytes() {
        let name = "i".repeat(63);
        let sql = format!("CREATE TABLE {name} (id int);");
        assert!(flagged_lines(RULE, &sql).is_empty());
    }
}
