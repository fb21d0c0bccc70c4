//! `attach-partition`: ATTACH PARTITION scans the new partition under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::Hold;

pub static RULE: Rule = Rule {
    id: "attach-partition",
    summary: "ATTACH PARTITION scans the new partition under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ATTACH PARTITION` of a table the file did not create.

## Why it hurts

The server scans the attached table to check that every row fits the
partition bound, holding ACCESS EXCLUSIVE on it; a DEFAULT partition of the
parent is scanned too. Before PostgreSQL 12 the parent itself is locked
ACCESS EXCLUSIVE, which blocks every query of the partitioned table.

## Lock taken

ACCESS EXCLUSIVE on the attached table during a scan; SHARE UPDATE EXCLUSIVE on the parent from PostgreSQL 12, ACCESS EXCLUSIVE before.

## Safe alternative

Before attaching, add a CHECK constraint that matches the partition bound
`NOT VALID` and validate it in a separate transaction; the attach then
skips the scan. Drop the CHECK afterwards.

## Example

```sql
-- flagged
ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
-- safe
ALTER TABLE events_2024 ADD CONSTRAINT events_2024_bound
    CHECK (created_at >= '2024-01-01' AND created_at < '2025-01-01') NOT VALID;
-- next migration
ALTER TABLE events_2024 VALIDATE CONSTRAINT events_2024_bound;
ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if !check.has_subcommand("attach-partition") {
        return None;
    }
    let locks = check.existing_locks();
    let partition = locks.iter().find(|l| l.hold == Hold::Scan)?;
    Some(Violation::new(
        format!(
            "attaching {} scans it to check the partition bound while holding {}, which \
             blocks {}",
            super::qualified(&partition.relation),
            super::describe_locks(&locks),
            super::describe_blocked(&locks)
        ),
        "add a CHECK constraint matching the bound NOT VALID, validate it in a separate \
         transaction, then attach",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "attach-partition";

    #[test]
    fn flags_attach_of_existing_table() {
        let sql = "ALTER TABLE e ATTACH PARTITION e1 FOR VALUES FROM (1) TO (2);";
        assert_eq!(flagged_lines(RULE, sql), vec![1]);
    }

    #[test]
    fn accepts_attach_of_new_table() {
        let sql = "CREATE TABLE e1 (id int);\nALTER TABLE e ATTACH PARTITION e1 FOR VALUES FROM (1) TO (2);";
        assert!(flagged_lines(RULE, sql).is_empty());
    }

    #[test]
    fn parent_lock_depends_on_version() {
        let sql = "ALTER TABLE e ATTACH PARTITION e1 FOR VALUES FROM (1) TO (2);";
        let old = diagnostics_on(sql, pg(11, 0));
        let d = old.iter().find(|d| d.rule == RULE).unwrap();
        assert!(
            d.message.contains("ACCESS EXCLUSIVE on e,"),
            "{}",
            d.message
        );
        let new = diagnostics_on(sql, pg(12, 0));
        let d = new.iter().find(|d| d.rule == RULE).unwrap();
        assert!(
            d.message.contains("SHARE UPDATE EXCLUSIVE on e,"),
            "{}",
            d.message
        );
    }
}
