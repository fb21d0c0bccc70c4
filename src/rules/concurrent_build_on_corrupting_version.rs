//! `concurrent-build-on-corrupting-version`: CREATE INDEX or REINDEX CONCURRENTLY on PostgreSQL 14.0 to 14.3 can corrupt the index.

use pg_query::NodeEnum;

use super::versions::Feature;
use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::TransactionUse;

pub static RULE: Rule = Rule {
    id: "concurrent-build-on-corrupting-version",
    summary:
        "CREATE INDEX or REINDEX CONCURRENTLY on PostgreSQL 14.0 to 14.3 can corrupt the index",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`CREATE INDEX CONCURRENTLY` and `REINDEX ... CONCURRENTLY` when the target
server is PostgreSQL 14.0, 14.1, 14.2 or 14.3.

## Why it hurts

A bug in those releases (fixed in 14.4) lets a concurrent build miss rows
updated during the build (heap-only tuples), so the index silently lacks
entries and queries using it return wrong results. The release notes of
14.4 ask users to rebuild every index built concurrently on the affected
releases.

## Lock taken

SHARE UPDATE EXCLUSIVE on the table, as any concurrent build.

## Safe alternative

Upgrade the server to 14.4 or later first. If that is impossible, build
the index without CONCURRENTLY in a maintenance window, then check it with
`amcheck`.

## Example

```sql
-- flagged with --pg-version 14.2
CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if Feature::SafeConcurrentBuild.available(check.file.version) {
        return None;
    }
    let concurrent = match &check.statement.node {
        NodeEnum::IndexStmt(index) => index.concurrent,
        NodeEnum::ReindexStmt(_) => {
            check.analysis.transaction == TransactionUse::NotInBlock
                && check
                    .statement
                    .text
                    .to_ascii_uppercase()
                    .contains("CONCURRENTLY")
        }
        _ => false,
    };
    if !concurrent {
        return None;
    }
    Some(Violation::new(
        format!(
            "concurrent index builds on PostgreSQL {} can miss rows and corrupt the index \
             (fixed in 14.4)",
            check.file.version
        ),
        "upgrade the server to 14.4 or later before building indexes concurrently",
        check.analysis.effects.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "concurrent-build-on-corrupting-version";

    #[test]
    fn flags_concurrent_build_on_14_2() {
        let sql = "CREATE INDEX CONCURRENTLY a_idx ON a (x);";
        assert_eq!(flagged_lines_on(RULE, sql, pg(14, 2)), vec![1]);
    }

    #[test]
    fn accepts_14_4_and_15() {
        let sql = "CREATE INDEX CONCURRENTLY a_idx ON a (x);";
        assert!(flagged_lines_on(RULE, sql, pg(14, 4)).is_empty());
        assert!(flagged_lines_on(RULE, sql, pg(15, 0)).is_empty());
        assert!(flagged_lines_on(RULE, sql, pg(13, 9)).is_empty());
    }
}
