//! `rename-column`: ALTER TABLE ... RENAME COLUMN breaks application code that still uses the old name.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "rename-column",
    summary: "ALTER TABLE ... RENAME COLUMN breaks application code that still uses the old name",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... RENAME COLUMN` on a relation the file did not create.

## Why it hurts

The lock is brief, but application instances deployed before the
migration keep sending SQL that names the old object. They fail with
SQLSTATE 42703 (column does not exist) from the moment the migration commits until every instance
runs the new code. ORMs that cache column lists fail even for queries that
never mention the column.

## Lock taken

ACCESS EXCLUSIVE on the table, brief (catalog change only).

## Safe alternative

Expand and contract: ship a release that no longer uses the object (for
a rename: add the new object and write to both), then remove the old object
in a later migration, after every instance runs that release.

## Example

```sql
-- flagged
ALTER TABLE accounts RENAME COLUMN login TO handle;
-- safe
ALTER TABLE accounts ADD COLUMN handle text;
-- write both, backfill, switch readers, then drop login in a later release
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.kind != "rename-column" {
        return None;
    }
    super::contract_violation(
        check,
        "renaming a column breaks running code that uses the old name",
        "42703 (column does not exist)",
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "rename-column";

    #[test]
    fn flags_existing_relation() {
        assert_eq!(
            flagged_lines(RULE, "ALTER TABLE accounts RENAME COLUMN login TO handle;"),
            vec![1]
        );
    }

    #[test]
    fn accepts_relation_created_in_file() {
        let sql = "CREATE TABLE accounts (id int, legacy_secret text, login text);\nALTER TABLE accounts RENAME COLUMN login TO handle;";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
