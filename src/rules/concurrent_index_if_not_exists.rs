//! `concurrent-index-if-not-exists`: CREATE INDEX CONCURRENTLY IF NOT EXISTS skips an INVALID leftover instead of rebuilding it.

use super::{Check, Checker, Rule, Severity, Violation};
use pg_query::NodeEnum;

pub static RULE: Rule = Rule {
    id: "concurrent-index-if-not-exists",
    summary:
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS skips an INVALID leftover instead of rebuilding it",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`CREATE INDEX CONCURRENTLY IF NOT EXISTS`.

## Why it hurts

A concurrent build that fails or is cancelled leaves an INVALID index
behind. On a rerun, `IF NOT EXISTS` finds it, prints a NOTICE and succeeds,
so the migration is recorded as applied while the index is never used by
queries (and, if it got far enough, is still maintained on every write).

## Lock taken

SHARE UPDATE EXCLUSIVE on the table.

## Safe alternative

Before the build, look the index up in `pg_index`; drop it with `DROP
INDEX CONCURRENTLY` when `indisvalid` is false, then build it without `IF
NOT EXISTS`. `pgshift apply` does this for every concurrent build.

## Example

```sql
-- flagged
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tokens_digest_key ON tokens (digest);
-- safe
CREATE UNIQUE INDEX CONCURRENTLY tokens_digest_key ON tokens (digest);
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::IndexStmt(index) = &check.statement.node else {
        return None;
    };
    if !index.concurrent || !index.if_not_exists {
        return None;
    }
    Some(Violation::new(
        "IF NOT EXISTS treats an INVALID index left by a failed concurrent build as done, so \
         a rerun succeeds without a usable index"
            .to_string(),
        "drop an INVALID leftover with DROP INDEX CONCURRENTLY before the build and remove \
         IF NOT EXISTS (pgshift apply checks pg_index.indisvalid itself)",
        check.analysis.effects.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "concurrent-index-if-not-exists";

    #[test]
    fn flags_if_not_exists() {
        let sql = "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (x);";
        assert_eq!(flagged_lines(RULE, sql), vec![1]);
    }

    #[test]
    fn accepts_plain_concurrent_build() {
        assert!(flagged_lines(RULE, "CREATE INDEX CONCURRENTLY i ON a (x);").is_empty());
    }
}
