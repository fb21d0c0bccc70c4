//! `set-not-null-without-check`: SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a validated CHECK proves it.

use pg_query::protobuf::AlterTableType;
use pg_query::NodeEnum;

use super::versions::Feature;
use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "set-not-null-without-check",
    summary:
        "SET NOT NULL scans the table under ACCESS EXCLUSIVE unless a validated CHECK proves it",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ALTER COLUMN ... SET NOT NULL` on a table the file did not
create, unless an earlier statement of the file added and validated `CHECK
(col IS NOT NULL)` for that same column and the server is PostgreSQL 12 or
later. A CHECK about anything else, even on the same column, does not count.

## Why it hurts

The server reads every row to look for NULLs while it holds ACCESS
EXCLUSIVE, so reads and writes wait for the whole scan, on every version.
From PostgreSQL 12 a valid `CHECK (col IS NOT NULL)` lets the server skip
the scan.

## Lock taken

ACCESS EXCLUSIVE on the table during a full scan.

## Safe alternative

On PostgreSQL 12 and later: add `CHECK (col IS NOT NULL) NOT VALID`,
commit, `VALIDATE CONSTRAINT` (SHARE UPDATE EXCLUSIVE), then `SET NOT NULL`
(brief), then drop the CHECK.

## Example

```sql
-- flagged
ALTER TABLE orders ALTER COLUMN account_id SET NOT NULL;
-- safe (PostgreSQL 12 and later)
ALTER TABLE orders ADD CONSTRAINT orders_account_id_nn
    CHECK (account_id IS NOT NULL) NOT VALID;
-- next migration
ALTER TABLE orders VALIDATE CONSTRAINT orders_account_id_nn;
ALTER TABLE orders ALTER COLUMN account_id SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_account_id_nn;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::AlterTableStmt(alter) = &check.statement.node else {
        return None;
    };
    if check.target_is_new() {
        return None;
    }
    let proof_counts = Feature::SetNotNullUsesCheck.available(check.file.version);
    let unproven: Vec<String> = alter
        .cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd))
                if cmd.subtype == AlterTableType::AtSetNotNull as i32 =>
            {
                Some(cmd.name.clone())
            }
            _ => None,
        })
        .filter(|column| !(proof_counts && check.context.not_null_proven.contains(column)))
        .collect();
    if unproven.is_empty() {
        return None;
    }
    let locks = check.existing_locks();
    let help = if proof_counts {
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later transaction, then SET \
         NOT NULL and drop the CHECK"
    } else {
        "before PostgreSQL 12 SET NOT NULL always scans; run it in a maintenance window or \
         keep a validated CHECK (col IS NOT NULL) instead of NOT NULL"
    };
    Some(Violation::new(
        format!(
            "SET NOT NULL on {} scans the whole table while holding {}, which blocks {}",
            unproven.join(", "),
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        help,
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "set-not-null-without-check";

    #[test]
    fn flags_unproven_set_not_null() {
        let sql = "ALTER TABLE o ALTER COLUMN a SET NOT NULL;";
        assert_eq!(flagged_lines(RULE, sql), vec![1]);
    }

    #[test]
    fn check_on_other_expression_does_not_count() {
        let sql = "ALTER TABLE o ADD CONSTRAINT l CHECK (char_length(n) < 5) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT l;\nALTER TABLE o ALTER COLUMN n SET NOT NULL;\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![3]);
    }

    #[test]
    fn validated_not_null_check_counts_from_12() {
        let sql = "ALTER TABLE o ADD CONSTRAINT c CHECK (n IS NOT NULL) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT c;\nALTER TABLE o ALTER COLUMN n SET NOT NULL;\n";
        assert!(flagged_autocommit_on(RULE, sql, pg(12, 0)).is_empty());
        assert_eq!(flagged_autocommit_on(RULE, sql, pg(11, 0)), vec![3]);
    }

    #[test]
    fn unvalidated_check_does_not_count() {
        let sql = "ALTER TABLE o ADD CONSTRAINT c CHECK (n IS NOT NULL) NOT VALID;\n\
                   ALTER TABLE o ALTER COLUMN n SET NOT NULL;\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![2]);
    }
}
