//! `refresh-materialized-view-without-concurrently`: REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view.

use super::{Check, Checker, Rule, Severity, Violation};
use pg_query::NodeEnum;

pub static RULE: Rule = Rule {
    id: "refresh-materialized-view-without-concurrently",
    summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`REFRESH MATERIALIZED VIEW` without `CONCURRENTLY`.

## Why it hurts

The view is rebuilt while ACCESS EXCLUSIVE is held on it, so every query of the view waits for the whole rebuild.

## Lock taken

ACCESS EXCLUSIVE on the materialized view for the whole refresh; ACCESS SHARE on the tables it reads.

## Safe alternative

`REFRESH MATERIALIZED VIEW CONCURRENTLY`, which takes EXCLUSIVE (reads go on). It needs a unique index on the view.

## Example

```sql
-- flagged
REFRESH MATERIALIZED VIEW daily_totals;
-- safe
REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::RefreshMatViewStmt(refresh) = &check.statement.node else {
        return None;
    };
    if refresh.concurrent {
        return None;
    }
    let locks = check.existing_locks();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "the refresh holds {} for the whole rebuild, which blocks {} of the view",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "refresh with CONCURRENTLY (the view needs a unique index)",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "refresh-materialized-view-without-concurrently";

    #[test]
    fn flags_plain_refresh() {
        assert_eq!(flagged_lines(RULE, "REFRESH MATERIALIZED VIEW v;"), vec![1]);
    }

    #[test]
    fn accepts_concurrent_refresh() {
        assert!(flagged_lines(RULE, "REFRESH MATERIALIZED VIEW CONCURRENTLY v;").is_empty());
    }
}
