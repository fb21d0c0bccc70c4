//! `validate-after-not-valid-in-transaction`: VALIDATE CONSTRAINT in the transaction that added the constraint NOT VALID keeps the strong lock during the scan.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "validate-after-not-valid-in-transaction",
    summary: "VALIDATE CONSTRAINT in the transaction that added the constraint NOT VALID keeps the strong lock during the scan",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... VALIDATE CONSTRAINT` in the same transaction as the `ADD
CONSTRAINT ... NOT VALID` it validates: inside one `BEGIN` ... `COMMIT`, or
in the transaction pgshift wraps consecutive statements in.

## Why it hurts

Locks are held until the transaction ends. The validation scan then runs
while the transaction still holds the lock of the `ADD CONSTRAINT`: ACCESS
EXCLUSIVE for a CHECK (reads and writes blocked), SHARE ROW EXCLUSIVE on
both tables for a foreign key (writes blocked). Nothing is gained over
adding the constraint without `NOT VALID`.

## Lock taken

SHARE UPDATE EXCLUSIVE for the scan itself, on top of the lock still held
from the `ADD CONSTRAINT`.

## Safe alternative

Commit between the two statements: put the `VALIDATE CONSTRAINT` in a
later migration, or after a `COMMIT`.

## Example

```sql
-- flagged
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_qty_pos CHECK (qty > 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_qty_pos;
COMMIT;
-- safe
ALTER TABLE orders ADD CONSTRAINT orders_qty_pos CHECK (qty > 0) NOT VALID;
-- next migration, or after COMMIT
ALTER TABLE orders VALIDATE CONSTRAINT orders_qty_pos;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let added_at = check.context.validates_not_valid_from?;
    let held: Vec<_> = check.context.held_locks.iter().collect();
    let held_text = held
        .iter()
        .map(|h| format!("{} on {}", h.mode, super::qualified(&h.relation)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut locks = check.analysis.effects.clone();
    for h in held {
        if let Some(lock) = locks.iter_mut().find(|l| l.relation == h.relation) {
            lock.mode = lock.mode.max(h.mode);
        }
    }
    Some(Violation::new(
        format!(
            "the constraint was added NOT VALID on line {added_at} in the same transaction, so \
             the validation scan runs while {} is still held",
            if held_text.is_empty() {
                "that lock".to_string()
            } else {
                held_text
            }
        ),
        "commit before VALIDATE CONSTRAINT: move it to a later migration or after a COMMIT",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "validate-after-not-valid-in-transaction";

    #[test]
    fn flags_validate_in_explicit_block() {
        let sql = "BEGIN;\nALTER TABLE o ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT c;\nCOMMIT;\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![3]);
    }

    #[test]
    fn flags_validate_in_wrapping_transaction() {
        let sql = "ALTER TABLE o ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT c;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![2]);
    }

    #[test]
    fn accepts_validate_after_commit() {
        let sql = "BEGIN;\nALTER TABLE o ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\nCOMMIT;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT c;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
