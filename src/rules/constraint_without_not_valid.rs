//! `constraint-without-not-valid`: a foreign key or CHECK added without NOT VALID scans the table under its lock.

use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::Hold;

pub static RULE: Rule = Rule {
    id: "constraint-without-not-valid",
    summary: "A foreign key or CHECK added without NOT VALID scans the table under its lock",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY` or `CHECK` without `NOT
VALID` on a table the file did not create, and a `REFERENCES` or `CHECK`
constraint declared on a column that `ADD COLUMN` adds, which PostgreSQL
validates at once because an inline constraint cannot be `NOT VALID`.

## Why it hurts

The server checks every existing row while it holds the lock. A CHECK
holds ACCESS EXCLUSIVE (no reads, no writes) for the scan. A foreign key
holds SHARE ROW EXCLUSIVE on both the table and the referenced table, so
writes to both wait for the scan.

## Lock taken

CHECK: ACCESS EXCLUSIVE on the table during a full scan. Foreign key:
SHARE ROW EXCLUSIVE on the table and on the referenced table during a full
scan of the table.

## Safe alternative

Add the constraint `NOT VALID` (a brief lock, no scan), commit, then run
`ALTER TABLE ... VALIDATE CONSTRAINT` in a later transaction. Validation
takes SHARE UPDATE EXCLUSIVE, which lets reads and writes go on.

## Example

```sql
-- flagged
ALTER TABLE orders ADD CONSTRAINT orders_account_fk
    FOREIGN KEY (account_id) REFERENCES accounts (id);
-- safe
ALTER TABLE orders ADD CONSTRAINT orders_account_fk
    FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
COMMIT;
ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;
```
"#;

/// Returns the kind of the first FOREIGN KEY or CHECK constraint declared
/// on a column that the statement adds. PostgreSQL validates it at once
/// (an inline constraint cannot be NOT VALID), so it scans the table.
fn inline_constraint(check: &Check<'_>) -> Option<&'static str> {
    use pg_query::protobuf::{AlterTableType, ConstrType};
    use pg_query::NodeEnum;

    let NodeEnum::AlterTableStmt(alter) = &check.statement.node else {
        return None;
    };
    alter.cmds.iter().find_map(|cmd| {
        let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
            return None;
        };
        if cmd.subtype != AlterTableType::AtAddColumn as i32 {
            return None;
        }
        let Some(NodeEnum::ColumnDef(column)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
        else {
            return None;
        };
        column.constraints.iter().find_map(|c| match &c.node {
            Some(NodeEnum::Constraint(c)) if c.contype == ConstrType::ConstrForeign as i32 => {
                Some("FOREIGN KEY")
            }
            Some(NodeEnum::Constraint(c)) if c.contype == ConstrType::ConstrCheck as i32 => {
                Some("CHECK")
            }
            _ => None,
        })
    })
}

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.has_subcommand("add-column") {
        return inline_column_constraint(check);
    }
    let fk = check.has_subcommand("add-foreign-key");
    if !fk && !check.has_subcommand("add-check") {
        return None;
    }
    if check.target_is_new() {
        return None;
    }
    let scanned = check.analysis.effects.first()?;
    if scanned.hold == Hold::Brief {
        return None;
    }
    let locks = check.existing_locks();
    let what = if fk { "FOREIGN KEY" } else { "CHECK" };
    Some(Violation::new(
        format!(
            "adding a {what} constraint without NOT VALID scans {} while holding {}, which \
             blocks {}",
            super::qualified(&scanned.relation),
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "add the constraint NOT VALID, commit, then VALIDATE CONSTRAINT in a later transaction",
        locks,
    ))
}

/// Flags a FOREIGN KEY or CHECK declared on an added column.
fn inline_column_constraint(check: &Check<'_>) -> Option<Violation> {
    let what = inline_constraint(check)?;
    let pg_query::NodeEnum::AlterTableStmt(alter) = &check.statement.node else {
        return None;
    };
    let table = &crate::locks::RelationName::from_range_var(alter.relation.as_ref()?);
    if check.is_new(table) {
        return None;
    }
    let locks = check.existing_locks();
    Some(Violation::new(
        format!(
            "the {what} constraint declared on the new column is validated at once: it scans \
             {} while holding {}, which blocks {}",
            super::qualified(table),
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "add the column without the constraint, then add the constraint NOT VALID and \
         VALIDATE it in a later transaction",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "constraint-without-not-valid";

    #[test]
    fn flags_validated_foreign_key_and_check() {
        let sql = "ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES a (id);\n\
                   ALTER TABLE o ADD CONSTRAINT c CHECK (x > 0);\n";
        assert_eq!(flagged_lines(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn flags_constraint_on_added_column() {
        let sql = "ALTER TABLE o ADD COLUMN a int REFERENCES a (id);\n\
                   ALTER TABLE o ADD COLUMN x int CHECK (x > 0);\n\
                   ALTER TABLE o ADD COLUMN y int;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![1, 2]);
        let found = diagnostics_on(sql, pg(15, 0));
        let d = found.iter().find(|d| d.rule == RULE).unwrap();
        assert!(d.message.contains("scans o while"), "{}", d.message);
    }

    #[test]
    fn message_names_both_tables() {
        let sql = "ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES a (id);";
        let found = diagnostics_on(sql, pg(15, 0));
        let d = found.iter().find(|d| d.rule == RULE).unwrap();
        assert!(
            d.message.contains("SHARE ROW EXCLUSIVE on o"),
            "{}",
            d.message
        );
        assert!(
            d.message.contains("SHARE ROW EXCLUSIVE on a"),
            "{}",
            d.message
        );
    }

    #[test]
    fn accepts_not_valid_and_new_tables() {
        let sql = "ALTER TABLE o ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\n\
                   CREATE TABLE n (x int);\nALTER TABLE n ADD CONSTRAINT d CHECK (x > 0);\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
