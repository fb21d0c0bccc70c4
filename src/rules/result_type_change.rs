//! `result-type-change`: ADD COLUMN or a column type change alters the row type that prepared `SELECT *` statements cached.

use pg_query::NodeEnum;

use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::RelationName;

pub static RULE: Rule = Rule {
    id: "result-type-change",
    summary: "ADD COLUMN or a column type change alters the row type that prepared SELECT * \
              statements cached",
    docs: DOCS,
    severity: Severity::Info,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ADD COLUMN` and `ALTER COLUMN ... TYPE` on a table the
file did not create. The finding is information, not a locking problem:
adding a nullable column or one with a constant default is instant.

## Why it hurts

A statement prepared on the server before the migration (`SELECT *`, or
`INSERT ... RETURNING *`) keeps its result row type. After the table's row
type changes, each execution of it fails with SQLSTATE 0A000, "cached plan
must not change result type", until the client prepares it again. Drivers
that drop their statement cache on this error fail once per connection.
Others fail on every execution until the application restarts.
`DROP COLUMN` changes the row type too, and is flagged by `drop-column`.

## Lock taken

ACCESS EXCLUSIVE on the table. Without a rewrite it is held only for the
catalog change.

## Safe alternative

Name the columns in queries that clients prepare, or use a driver that
re-prepares on SQLSTATE 0A000. Otherwise deploy the migration when clients
can reconnect, or restart them after it.

## Example

```sql
-- information
ALTER TABLE tokens ADD COLUMN last_used_at timestamptz;
-- clients prepare SELECT id, subject, expires_at FROM tokens instead of
-- SELECT * FROM tokens, so the new column does not change their results
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let changes_type =
        check.has_subcommand("add-column") || check.has_subcommand("alter-column-type");
    if !changes_type {
        return None;
    }
    // The altered table, not a table that an added foreign key references.
    let NodeEnum::AlterTableStmt(alter) = &check.statement.node else {
        return None;
    };
    let table = RelationName::from_range_var(alter.relation.as_ref()?);
    if check.is_new(&table) {
        return None;
    }
    let locks: Vec<_> = check
        .existing_locks()
        .into_iter()
        .filter(|lock| lock.relation == table)
        .collect();
    Some(Violation::new(
        format!(
            "the row type of {} changes: statements that clients prepared with SELECT * or \
             RETURNING * fail with SQLSTATE 0A000 (cached plan must not change result type) \
             until they are prepared again",
            super::qualified(&table)
        ),
        "name the columns in prepared queries, or let clients reconnect after the migration",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "result-type-change";

    #[test]
    fn flags_add_column_and_type_change() {
        let sql = "ALTER TABLE tokens ADD COLUMN last_used_at timestamptz;\n\
                   ALTER TABLE tokens ALTER COLUMN note TYPE text;\n\
                   ALTER TABLE tokens DROP COLUMN legacy_secret;\n\
                   ALTER TABLE tokens RENAME COLUMN a TO b;";
        assert_eq!(flagged_lines(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn names_altered_table_not_referenced_one() {
        let file = analyze_on(
            "ALTER TABLE child ADD COLUMN parent_id int REFERENCES parent (id);",
            pg(15, 0),
            false,
        );
        let found: Vec<_> = crate::lint::lint_file(&file, &Default::default())
            .into_iter()
            .filter(|d| d.rule == RULE)
            .collect();
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("row type of child"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn accepts_table_created_in_file() {
        let sql = "CREATE TABLE tokens (id int);\n\
                   ALTER TABLE tokens ADD COLUMN last_used_at timestamptz;";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
