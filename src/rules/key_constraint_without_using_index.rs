//! `key-constraint-without-using-index`: UNIQUE or PRIMARY KEY added without USING INDEX builds its index under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "key-constraint-without-using-index",
    summary:
        "UNIQUE or PRIMARY KEY added without USING INDEX builds its index under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ADD CONSTRAINT ... UNIQUE` or `PRIMARY KEY` on a table the
file did not create, when the constraint builds its own index instead of
taking over an existing one with `USING INDEX`.

## Why it hurts

The index is built while ACCESS EXCLUSIVE is held, so every read and
write of the table waits for the whole build.

## Lock taken

ACCESS EXCLUSIVE on the table for the whole index build.

## Safe alternative

Build a unique index with `CREATE UNIQUE INDEX CONCURRENTLY`, then attach
it with `ADD CONSTRAINT ... UNIQUE USING INDEX` (or `PRIMARY KEY USING
INDEX`), which only changes the catalog. For a primary key, make the
columns NOT NULL first (see `set-not-null-without-check`), or the attach
scans the table.

## Example

```sql
-- flagged
ALTER TABLE accounts ADD CONSTRAINT accounts_handle_key UNIQUE (handle);
-- safe
CREATE UNIQUE INDEX CONCURRENTLY accounts_handle_idx ON accounts (handle);
ALTER TABLE accounts ADD CONSTRAINT accounts_handle_key
    UNIQUE USING INDEX accounts_handle_idx;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let unique = check.has_subcommand("add-unique");
    if !unique && !check.has_subcommand("add-primary-key") {
        return None;
    }
    if check.target_is_new() {
        return None;
    }
    let locks = check.existing_locks();
    let what = if unique { "UNIQUE" } else { "PRIMARY KEY" };
    Some(Violation::new(
        format!(
            "adding a {what} constraint builds its index while holding {}, which blocks {}",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        format!(
            "build the index with CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... \
             {what} USING INDEX"
        ),
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "key-constraint-without-using-index";

    #[test]
    fn flags_unique_and_primary_key() {
        let sql =
            "ALTER TABLE a ADD CONSTRAINT k UNIQUE (h);\nALTER TABLE a ADD PRIMARY KEY (id);\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn accepts_using_index_and_new_tables() {
        let sql = "ALTER TABLE a ADD CONSTRAINT k UNIQUE USING INDEX i;\n\
                   CREATE TABLE n (id int);\nALTER TABLE n ADD PRIMARY KEY (id);\n";
        assert!(flagged_autocommit(RULE, sql).is_empty());
    }
}
