//! `set-logged-or-unlogged`: SET LOGGED or SET UNLOGGED rewrites the table under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "set-logged-or-unlogged",
    summary: "SET LOGGED or SET UNLOGGED rewrites the table under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... SET LOGGED` or `SET UNLOGGED` on a table the file did not create.

## Why it hurts

Both rewrite the table (SET LOGGED also writes all of it to the WAL) while ACCESS EXCLUSIVE is held, so reads and writes wait for the whole rewrite.

## Lock taken

ACCESS EXCLUSIVE on the table for a full rewrite.

## Safe alternative

Create the table with the persistence it needs. To change it on a live table, create a new table, copy the rows in batches and swap the names in a short transaction.

## Example

```sql
-- flagged
ALTER TABLE events SET LOGGED;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if !(check.has_subcommand("set-logged") || check.has_subcommand("set-unlogged")) {
        return None;
    }
    let locks = check.existing_locks();
    if locks.is_empty() {
        return None;
    }
    Some(Violation::new(
        format!(
            "changing the table's persistence rewrites it while holding {}, which blocks {}",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "create a new table with the wanted persistence, copy the rows in batches and swap names",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "set-logged-or-unlogged";

    #[test]
    fn flags_statement() {
        assert_eq!(
            flagged_autocommit(RULE, "ALTER TABLE t SET LOGGED;"),
            vec![1]
        );
    }

    #[test]
    fn accepts_safe_form() {
        assert!(flagged_autocommit(RULE, "ALTER TABLE t ADD COLUMN c int;").is_empty());
    }
}
