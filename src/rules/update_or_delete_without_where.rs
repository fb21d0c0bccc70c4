//! `update-or-delete-without-where`: UPDATE or DELETE without WHERE locks every row of the table until commit.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "update-or-delete-without-where",
    summary: "UPDATE or DELETE without WHERE locks every row of the table until commit",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`UPDATE` or `DELETE` without a `WHERE` clause on a table the file did not create, such as a one-statement backfill.

## Why it hurts

The statement writes every row and holds a row lock on each until the
transaction commits, so every concurrent update of the table waits. On a
large table it also runs for a long time, bloats the table and delays
replicas.

## Lock taken

ROW EXCLUSIVE on the table (does not block reads or other writers as a table lock), plus a row lock on every row until commit.

## Safe alternative

Backfill in batches of a few thousand rows by key range, each in its own transaction.

## Example

```sql
-- flagged
UPDATE access_tokens SET tenant_id = 1;
-- safe, repeated per key range
UPDATE access_tokens SET tenant_id = 1 WHERE id BETWEEN 1 AND 5000 AND tenant_id IS NULL;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    // A batched backfill holds its row locks for one batch at a time.
    if !check.analysis.locks_all_rows || check.context.batched_backfill {
        return None;
    }
    let locks = check.existing_locks();
    let table = locks.first()?;
    Some(Violation::new(
        format!(
            "{} without WHERE writes every row of {} and holds a row lock on each until the \
             transaction commits, which blocks concurrent updates of the table",
            check.analysis.kind.to_ascii_uppercase(),
            super::qualified(&table.relation)
        ),
        "backfill in batches by key range, one transaction per batch",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "update-or-delete-without-where";

    #[test]
    fn flags_statements_without_where() {
        let sql = "UPDATE t SET a = 1;\nDELETE FROM t;\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn accepts_where_and_new_tables() {
        let sql =
            "UPDATE t SET a = 1 WHERE id < 10;\nCREATE TABLE n (a int);\nUPDATE n SET a = 1;\n";
        assert!(flagged_autocommit(RULE, sql).is_empty());
    }
}
