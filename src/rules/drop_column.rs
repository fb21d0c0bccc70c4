//! `drop-column`: ALTER TABLE ... DROP COLUMN breaks application code that still uses the old name.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "drop-column",
    summary: "ALTER TABLE ... DROP COLUMN breaks application code that still uses the old name",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... DROP COLUMN` on a relation the file did not create.

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
ALTER TABLE tokens DROP COLUMN legacy_secret;
-- safe
-- release 1: stop reading and writing the column (ORM: ignore it)
-- release 2:
ALTER TABLE tokens DROP COLUMN legacy_secret;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if !check.has_subcommand("drop-column") {
        return None;
    }
    super::contract_violation(
        check,
        "dropping a column breaks application code that still names it",
        "42703 (column does not exist)",
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "drop-column";

    #[test]
    fn flags_existing_relation() {
        assert_eq!(
            flagged_lines(RULE, "ALTER TABLE tokens DROP COLUMN legacy_secret;"),
            vec![1]
        );
    }

    #[test]
    fn accepts_relation_created_in_file() {
        let sql = "CREATE TABLE tokens (id int, legacy_secret text, login text);\nALTER TABLE tokens DROP COLUMN legacy_secret;";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
