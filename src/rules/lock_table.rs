//! `lock-table`: LOCK TABLE in a mode that blocks writes holds the lock until the transaction ends.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "lock-table",
    summary: "LOCK TABLE in a mode that blocks writes holds the lock until the transaction ends",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`LOCK TABLE` in SHARE mode or stronger (any mode that blocks writes) on a table the file did not create.

## Why it hurts

The lock is held until the transaction commits, so everything the
transaction does afterwards runs while the table is blocked. The request
also queues every later read or write behind it while it waits.

## Lock taken

The mode named in the statement (ACCESS EXCLUSIVE when none is named), until the end of the transaction.

## Safe alternative

Drop the explicit lock: each statement takes the lock it needs. If you
need one, take it last, right before the statement that needs it, under a
short `lock_timeout`, and keep the transaction short.

## Example

```sql
-- flagged
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.kind != "lock-table" {
        return None;
    }
    let locks: Vec<_> = check
        .existing_locks()
        .into_iter()
        .filter(|l| l.mode.blocks_writes())
        .collect();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "LOCK TABLE takes {} until the transaction ends, which blocks {} for everything \
             that follows",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "remove the explicit lock, or take it right before the statement that needs it under \
         a short lock_timeout",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "lock-table";

    #[test]
    fn flags_strong_modes() {
        let sql = "LOCK TABLE a;\nLOCK TABLE b IN SHARE MODE;\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn accepts_weak_modes() {
        assert!(flagged_autocommit(RULE, "LOCK TABLE a IN ROW EXCLUSIVE MODE;").is_empty());
    }
}
