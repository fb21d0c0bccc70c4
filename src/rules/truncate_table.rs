//! `truncate-table`: TRUNCATE takes ACCESS EXCLUSIVE and removes every row at once.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "truncate-table",
    summary: "TRUNCATE takes ACCESS EXCLUSIVE and removes every row at once",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`TRUNCATE` of a table the file did not create.

## Why it hurts

It waits for ACCESS EXCLUSIVE (queueing every later read and write behind
it), then deletes all rows in one step that cannot be undone after commit.
It is not MVCC-safe: transactions that started before it see an empty
table.

## Lock taken

ACCESS EXCLUSIVE on each table named, brief.

## Safe alternative

Delete the rows in batches with `DELETE ... WHERE` on a key range, or drop the table in a later release once nothing uses it.

## Example

```sql
-- flagged
TRUNCATE audit_log;
-- safe
DELETE FROM audit_log WHERE id BETWEEN 1 AND 10000;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.kind != "truncate" {
        return None;
    }
    let locks = check.existing_locks();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "TRUNCATE takes {}, which blocks {}, and empties the table for every session",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "delete the rows in batches with DELETE ... WHERE on a key range",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "truncate-table";

    #[test]
    fn flags_statement() {
        assert_eq!(flagged_autocommit(RULE, "TRUNCATE t;"), vec![1]);
    }

    #[test]
    fn accepts_safe_form() {
        assert!(flagged_autocommit(RULE, "DELETE FROM t WHERE id < 10;").is_empty());
    }
}
