//! `rename-table`: ALTER TABLE ... RENAME TO breaks application code that still uses the old name.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "rename-table",
    summary: "ALTER TABLE ... RENAME TO breaks application code that still uses the old name",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... RENAME TO` on a relation the file did not create.

## Why it hurts

The lock is brief, but application instances deployed before the
migration keep sending SQL that names the old object. They fail with
SQLSTATE 42P01 (relation does not exist) from the moment the migration commits until every instance
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
ALTER TABLE orders RENAME TO purchase_orders;
-- safe
ALTER TABLE orders RENAME TO purchase_orders;
CREATE VIEW orders AS SELECT * FROM purchase_orders;
-- drop the view once no release uses the old name
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.kind != "rename-table" {
        return None;
    }
    super::contract_violation(
        check,
        "renaming a table breaks running code that uses the old name",
        "42P01 (relation does not exist)",
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "rename-table";

    #[test]
    fn flags_existing_relation() {
        assert_eq!(
            flagged_lines(RULE, "ALTER TABLE orders RENAME TO purchase_orders;"),
            vec![1]
        );
    }

    #[test]
    fn accepts_relation_created_in_file() {
        let sql = "CREATE TABLE orders (id int, legacy_secret text, login text);\nALTER TABLE orders RENAME TO purchase_orders;";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
