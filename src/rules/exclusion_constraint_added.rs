//! `exclusion-constraint-added`: an exclusion constraint on an existing table builds its index under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "exclusion-constraint-added",
    summary: "An exclusion constraint on an existing table builds its index under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ADD CONSTRAINT ... EXCLUDE` on a table the file did not
create.

## Why it hurts

The constraint's index is built, and every row checked, while ACCESS
EXCLUSIVE is held. Unlike UNIQUE, an exclusion constraint cannot take over
an index built concurrently, so there is no online form.

## Lock taken

ACCESS EXCLUSIVE on the table for the whole build.

## Safe alternative

Create the constraint together with the table. For an existing table,
run the statement in a maintenance window, or create a new table with the
constraint and move the rows over in batches.

## Example

```sql
-- flagged
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (room WITH =, during WITH &&);
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if !check.has_subcommand("add-exclusion") || check.target_is_new() {
        return None;
    }
    let locks = check.existing_locks();
    Some(Violation::new(
        format!(
            "adding an exclusion constraint builds its index while holding {}, which blocks {}",
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "create the constraint with the table, or run it in a maintenance window; it has no \
         online form",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "exclusion-constraint-added";

    #[test]
    fn flags_exclusion_on_existing_table() {
        let sql = "ALTER TABLE b ADD CONSTRAINT x EXCLUDE USING gist (r WITH =);";
        assert_eq!(flagged_lines(RULE, sql), vec![1]);
    }

    #[test]
    fn accepts_exclusion_on_new_table() {
        let sql = "CREATE TABLE b (r int);\nALTER TABLE b ADD CONSTRAINT x EXCLUDE USING gist (r WITH =);";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
