//! `vacuum-full`: VACUUM FULL rewrites the table under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "vacuum-full",
    summary: "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`VACUUM FULL` of a table (or, without a table name, of every table).

## Why it hurts

The table and its indexes are copied while ACCESS EXCLUSIVE is held, so reads and writes wait for the whole copy. It also needs free disk space for a second copy.

## Lock taken

ACCESS EXCLUSIVE on the table for a full rewrite.

## Safe alternative

Plain `VACUUM` (SHARE UPDATE EXCLUSIVE) reclaims space for reuse. To shrink a table online, use an extension such as pg_repack or pg_squeeze.

## Example

```sql
-- flagged
VACUUM FULL orders;
-- safe
VACUUM orders;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.kind != "vacuum-full" {
        return None;
    }
    let locks = check.existing_locks();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "VACUUM FULL rewrites the table while holding {}, which blocks {}",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "run plain VACUUM, or shrink the table online with pg_repack",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "vacuum-full";

    #[test]
    fn flags_statement() {
        assert_eq!(flagged_autocommit(RULE, "VACUUM FULL t;"), vec![1]);
    }

    #[test]
    fn accepts_safe_form() {
        assert!(flagged_autocommit(RULE, "VACUUM t;").is_empty());
    }
}
