//! `statement-after-access-exclusive`: long-running work done while the transaction holds ACCESS EXCLUSIVE on another statement's table.

use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::{Hold, LockMode};

pub static RULE: Rule = Rule {
    id: "statement-after-access-exclusive",
    summary: "Long-running work done while the transaction holds ACCESS EXCLUSIVE on another statement's table",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

A statement that scans, rewrites, changes every row or runs code pgshift
cannot see into (a `DO` block, a function call), inside a transaction that
already holds ACCESS EXCLUSIVE on a relation the file did not create.
Brief statements that need no new lock are not flagged.

## Why it hurts

ACCESS EXCLUSIVE blocks every read and write of its table until the
transaction commits. Each later statement of the transaction extends that
window by its own run time, so a quick `ALTER TABLE` followed by a backfill
or an index build blocks the table for the whole backfill or build.

## Lock taken

ACCESS EXCLUSIVE from the earlier statement, held until commit, plus this statement's own locks.

## Safe alternative

Commit right after the statement that takes ACCESS EXCLUSIVE, and do the
long work in its own transaction.

## Example

```sql
-- flagged (the UPDATE)
BEGIN;
ALTER TABLE orders ADD COLUMN tenant_id bigint;
UPDATE orders SET tenant_id = 1 WHERE tenant_id IS NULL;
COMMIT;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let held = check
        .context
        .held_locks
        .iter()
        .find(|h| h.mode == LockMode::AccessExclusive)?;
    let long = check.analysis.opaque
        || check.analysis.locks_all_rows
        || check.existing_locks().iter().any(|l| l.hold != Hold::Brief);
    if !long {
        return None;
    }
    Some(Violation::new(
        format!(
            "this statement does long-running work while the transaction holds ACCESS \
             EXCLUSIVE on {} since line {}, so every read and write of {} waits for it",
            super::qualified(&held.relation),
            held.line,
            super::qualified(&held.relation)
        ),
        "commit after the statement that takes ACCESS EXCLUSIVE and run this one in its own \
         transaction",
        check.analysis.effects.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "statement-after-access-exclusive";

    #[test]
    fn flags_backfill_after_access_exclusive() {
        let sql = "ALTER TABLE o ADD t int;\nUPDATE o SET t = 1 WHERE t IS NULL AND id > 0;\n\
                   UPDATE x SET t = 1;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![3]);
        let sql = "ALTER TABLE o ADD t int;\nCREATE INDEX i ON x (t);\nALTER TABLE o ADD u int;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![2]);
    }

    #[test]
    fn accepts_separate_transactions() {
        let sql = "ALTER TABLE o ADD t int;\nUPDATE x SET t = 1;\n";
        assert!(flagged_autocommit(RULE, sql).is_empty());
    }
}
