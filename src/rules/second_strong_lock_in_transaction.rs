//! `second-strong-lock-in-transaction`: a transaction that already holds a lock blocking writes requests one on another table.

use super::{Check, Checker, Rule, Severity, Violation};
use crate::analysis::same_relation;

pub static RULE: Rule = Rule {
    id: "second-strong-lock-in-transaction",
    summary:
        "A transaction that already holds a lock blocking writes requests one on another table",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

A statement that requests a lock blocking writes on a relation the file
did not create, inside a transaction that already holds such a lock on a
different relation (from an earlier statement of the same `BEGIN` ...
`COMMIT`, or of the transaction pgshift wraps consecutive statements in).

## Why it hurts

While the statement waits for the second lock, the first table stays
blocked, so an application request can wait up to twice the lock_timeout.
Taking locks on two tables in one transaction is also how lock-order
deadlocks with application transactions arise.

## Lock taken

The second lock, requested while the first is held until commit.

## Safe alternative

Put statements on different tables in separate transactions (separate
migrations, or a `COMMIT` between them), so each transaction holds one
strong lock at a time.

## Example

```sql
-- flagged (the second statement)
BEGIN;
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
ALTER TABLE accounts ADD COLUMN region text;
COMMIT;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let held = &check.context.held_locks;
    if held.is_empty() {
        return None;
    }
    let requested: Vec<_> = check
        .existing_locks()
        .into_iter()
        .filter(|l| l.mode.blocks_writes())
        .filter(|l| !held.iter().any(|h| same_relation(&h.relation, &l.relation)))
        .collect();
    if requested.is_empty() {
        return None;
    }
    let first = &held[0];
    Some(Violation::new(
        format!(
            "{} is requested while the transaction holds {} on {} since line {}; the first \
             table stays blocked while this lock waits",
            super::describe_locks(&requested),
            first.mode,
            super::qualified(&first.relation),
            first.line
        ),
        "commit between statements on different tables, so one strong lock is held at a time",
        requested,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "second-strong-lock-in-transaction";

    #[test]
    fn flags_second_table_in_transaction() {
        let sql = "ALTER TABLE a ADD x int;\nALTER TABLE a ADD y int;\nALTER TABLE b ADD z int;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![3]);
    }

    #[test]
    fn accepts_separate_transactions() {
        let sql = "ALTER TABLE a ADD x int;\nALTER TABLE b ADD z int;\n";
        assert!(flagged_autocommit(RULE, sql).is_empty());
        let sql = "BEGIN;\nALTER TABLE a ADD x int;\nCOMMIT;\nBEGIN;\nALTER TABLE b ADD z int;\nCOMMIT;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
