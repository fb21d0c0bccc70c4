//! `detach-partition-without-concurrently`: DETACH PARTITION without CONCURRENTLY blocks every query of the partitioned table.

use super::versions::Feature;
use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::TransactionUse;

pub static RULE: Rule = Rule {
    id: "detach-partition-without-concurrently",
    summary: "DETACH PARTITION without CONCURRENTLY blocks every query of the partitioned table",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... DETACH PARTITION` without `CONCURRENTLY`, and `DETACH
PARTITION ... CONCURRENTLY` when the server is older than PostgreSQL 14
(where it does not exist).

## Why it hurts

A plain detach takes ACCESS EXCLUSIVE on the parent, so every read and
write of the whole partitioned table waits for it and for the queries
ahead of it.

## Lock taken

ACCESS EXCLUSIVE on the parent and on the partition, brief. With CONCURRENTLY: SHARE UPDATE EXCLUSIVE on the parent.

## Safe alternative

From PostgreSQL 14, `DETACH PARTITION ... CONCURRENTLY` outside a
transaction block. Before 14, set a short `lock_timeout` and retry.

## Example

```sql
-- flagged
ALTER TABLE events DETACH PARTITION events_2019;
-- safe (PostgreSQL 14 and later)
ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if !check.has_subcommand("detach-partition") {
        return None;
    }
    let available = Feature::DetachConcurrently.available(check.file.version);
    let concurrent = check.analysis.transaction == TransactionUse::NotInBlock;
    let locks = check.existing_locks();
    if concurrent {
        if available {
            return None;
        }
        return Some(Violation::new(
            format!(
                "DETACH PARTITION ... CONCURRENTLY needs PostgreSQL 14; PostgreSQL {} rejects it",
                check.file.version
            ),
            "detach without CONCURRENTLY under a short lock_timeout, or upgrade first",
            locks,
        ));
    }
    if locks.is_empty() {
        return None;
    }
    let help = if available {
        "detach with DETACH PARTITION ... CONCURRENTLY outside a transaction block"
    } else {
        "set a short lock_timeout and retry (CONCURRENTLY needs PostgreSQL 14)"
    };
    Some(Violation::new(
        format!(
            "DETACH PARTITION takes {}, which blocks {} of the whole partitioned table",
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

    const RULE: &str = "detach-partition-without-concurrently";

    #[test]
    fn flags_plain_detach() {
        assert_eq!(
            flagged_lines(RULE, "ALTER TABLE e DETACH PARTITION e1;"),
            vec![1]
        );
    }

    #[test]
    fn concurrent_detach_depends_on_version() {
        let sql = "ALTER TABLE e DETACH PARTITION e1 CONCURRENTLY;";
        assert!(flagged_lines_on(RULE, sql, pg(14, 0)).is_empty());
        assert_eq!(flagged_lines_on(RULE, sql, pg(13, 0)), vec![1]);
    }
}
