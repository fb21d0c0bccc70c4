//! `concurrently-in-transaction`: a statement that PostgreSQL rejects
//! inside a transaction block, written inside `BEGIN` ... `COMMIT`.

use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::TransactionUse;

pub static RULE: Rule = Rule {
    id: "concurrently-in-transaction",
    summary: "CONCURRENTLY (or VACUUM) inside BEGIN ... COMMIT fails with SQLSTATE 25001",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ...
CONCURRENTLY`, `DETACH PARTITION ... CONCURRENTLY`, `VACUUM` and other
statements that cannot run in a transaction block, written between an
explicit `BEGIN` and `COMMIT`.

## Why it hurts

PostgreSQL rejects the statement with SQLSTATE 25001 ("cannot run inside a
transaction block"), so the migration fails, and with psql the statements
before it in the block are rolled back.

## Lock taken

None: the statement never runs. Outside a block it would take SHARE UPDATE
EXCLUSIVE on its table.

## Safe alternative

Move the statement after the `COMMIT`. `pgshift apply` runs it as its own
step outside any transaction and commits the statements before it first.

## Example

```sql
-- flagged
BEGIN;
ALTER TABLE accounts ADD COLUMN referrer_id bigint;
CREATE INDEX CONCURRENTLY accounts_referrer_id_idx ON accounts (referrer_id);
COMMIT;
-- safe
BEGIN;
ALTER TABLE accounts ADD COLUMN referrer_id bigint;
COMMIT;
CREATE INDEX CONCURRENTLY accounts_referrer_id_idx ON accounts (referrer_id);
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.analysis.transaction != TransactionUse::NotInBlock || !check.context.in_explicit_block
    {
        return None;
    }
    Some(Violation {
        message: "this statement cannot run inside a transaction block, but the file opened \
                  one with BEGIN; PostgreSQL rejects it with SQLSTATE 25001"
            .to_string(),
        help: "move the statement after the COMMIT".to_string(),
        locks: check.analysis.effects.clone(),
        span: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::flagged_lines;

    #[test]
    fn flags_concurrent_build_in_block() {
        let sql = "BEGIN;\nALTER TABLE a ADD COLUMN b int;\n\
                   CREATE INDEX CONCURRENTLY a_b ON a (b);\nCOMMIT;\n";
        assert_eq!(flagged_lines("concurrently-in-transaction", sql), vec![3]);
    }

    #[test]
    fn accepts_concurrent_build_after_commit() {
        let sql = "BEGIN;\nALTER TABLE a ADD COLUMN b int;\nCOMMIT;\n\
                   CREATE INDEX CONCURRENTLY a_b ON a (b);\n";
        assert!(flagged_lines("concurrently-in-transaction", sql).is_empty());
    }
}
