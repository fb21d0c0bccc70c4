//! `cluster-table`: CLUSTER rewrites the table in index order under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "cluster-table",
    summary: "CLUSTER rewrites the table in index order under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`CLUSTER` of a table.

## Why it hurts

The table is rewritten in index order while ACCESS EXCLUSIVE is held, so reads and writes wait for the whole rewrite.

## Lock taken

ACCESS EXCLUSIVE on the table for a full rewrite.

## Safe alternative

Use an online tool such as pg_repack with its `--order-by` option, or run `CLUSTER` in a maintenance window.

## Example

```sql
-- flagged
CLUSTER orders USING orders_created_at_idx;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.kind != "cluster" {
        return None;
    }
    let locks = check.existing_locks();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "CLUSTER rewrites the table while holding {}, which blocks {}",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "reorder the table online with pg_repack, or run CLUSTER in a maintenance window",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "cluster-table";

    #[test]
    fn flags_statement() {
        assert_eq!(flagged_autocommit(RULE, "CLUSTER t USING t_idx;"), vec![1]);
    }

    #[test]
    fn accepts_safe_form() {
        assert!(flagged_autocommit(RULE, "ANALYZE t;").is_empty());
    }
}
