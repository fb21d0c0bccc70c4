//! `strong-lock-without-lock-timeout`: a lock that blocks writes is requested with no lock_timeout in effect.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "strong-lock-without-lock-timeout",
    summary: "A lock that blocks writes is requested with no lock_timeout in effect",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

A statement that requests a lock blocking writes (SHARE or stronger) on a
relation the file did not create while no `lock_timeout` is in effect.
`SET lock_timeout` earlier in the file counts; `SET LOCAL lock_timeout`
counts only inside the transaction it was run in (outside a transaction
block it does nothing). With `--lock-timeout` (or when pgshift applies a
plan, which sets `lock_timeout` before every step) the rule is quiet.

## Why it hurts

While the statement waits for its lock, for example behind a long
report, every later query on the table queues behind it, even plain
SELECTs when the lock is ACCESS EXCLUSIVE. A migration step of a few
milliseconds turns into an outage lasting as long as the longest running
query.

## Lock taken

The statement's own lock; this rule is about how long it may wait for it.

## Safe alternative

`SET lock_timeout = '2s'` before the statement (or run the migration
with pgshift apply, which sets it and retries on SQLSTATE 55P03).

## Example

```sql
-- flagged
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
-- safe
SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.context.lock_timeout_set {
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
            "{} is requested with no lock_timeout; while it waits, every later query that \
             conflicts with it ({}) queues behind it",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "SET lock_timeout = '2s' before the statement, or pass --lock-timeout when the runner \
         sets it",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "strong-lock-without-lock-timeout";

    #[test]
    fn flags_strong_lock_without_timeout() {
        assert_eq!(
            flagged_lines(RULE, "ALTER TABLE o ADD COLUMN s int;"),
            vec![1]
        );
    }

    #[test]
    fn accepts_timeout_weak_locks_and_new_tables() {
        let sql = "SET lock_timeout = '2s';\nALTER TABLE o ADD COLUMN s int;";
        assert!(flagged_lines(RULE, sql).is_empty());
        assert!(flagged_lines(RULE, "CREATE INDEX CONCURRENTLY i ON o (s);").is_empty());
        assert!(flagged_lines(RULE, "CREATE TABLE n (id int);").is_empty());
    }

    #[test]
    fn set_local_outside_block_does_not_count() {
        let sql = "SET LOCAL lock_timeout = '2s';\nALTER TABLE o ADD COLUMN s int;";
        assert_eq!(flagged_autocommit(RULE, sql), vec![2]);
    }

    #[test]
    fn create_trigger_reports_share_row_exclusive() {
        let sql = "CREATE TRIGGER t BEFORE UPDATE ON o FOR EACH ROW EXECUTE FUNCTION f();";
        let found = diagnostics_on(sql, pg(15, 0));
        let d = found.iter().find(|d| d.rule == RULE).unwrap();
        assert_eq!(d.locks[0].mode, "SHARE ROW EXCLUSIVE");
    }
}
