//! `transactional-statement-in-no-transaction-file`: a statement that could run in a transaction shares a no-transaction file with a concurrent statement.

use super::{Check, Checker, FileEnd, FilePass, Finding, Place, Rule, Severity, Violation};
use crate::locks::TransactionUse;

pub static RULE: Rule = Rule {
    id: "transactional-statement-in-no-transaction-file",
    summary: "A statement that could run in a transaction shares a no-transaction file with a concurrent statement",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::File(pass),
};

const DOCS: &str = r#"## What it flags

In a file that runs without a wrapping transaction (`-- pgshift:no-transaction`
or an `.autocommit` file name) and contains a statement that must run
outside a transaction block, every other statement that changes the schema
or data and could run inside a transaction. `SET`, `RESET`, `SHOW` and
plain `SELECT` are not flagged.

## Why it hurts

Each statement commits on its own. When a later statement fails, the
earlier ones stay applied while the migration is not recorded, so a plain
rerun fails on the first statement (for example with "column already
exists") and the database needs manual repair.

## Lock taken

The statement's own lock.

## Safe alternative

Move the transactional statements to a migration of their own and keep
only the concurrent statement in the no-transaction file, or make each
statement idempotent (`IF NOT EXISTS`). pgshift apply journals every
statement, but other runners do not.

## Example

```sql
-- flagged (the ALTER and the UPDATE)
-- pgshift:no-transaction
ALTER TABLE orders ADD COLUMN fulfilled_at timestamptz;
CREATE INDEX CONCURRENTLY orders_fulfilled_at_idx ON orders (fulfilled_at);
UPDATE schema_flags SET value = 'on' WHERE name = 'fulfilment';
```
"#;

fn pass() -> Box<dyn FilePass> {
    Box::new(NoTransactionFile::default())
}

/// The statements to flag, which are reported only when the file turns out
/// to have a statement that cannot run in a transaction block.
#[derive(Default)]
struct NoTransactionFile {
    candidates: Vec<Finding>,
    has_statement_outside_block: bool,
}

impl FilePass for NoTransactionFile {
    fn statement(&mut self, check: &Check<'_>, _found: &mut Vec<Finding>) {
        if check.analysis.transaction == TransactionUse::NotInBlock {
            self.has_statement_outside_block = true;
        }
        if let Some(violation) = candidate(check) {
            self.candidates.push(Finding {
                statement: Some(Place::of(check.statement)),
                violation,
            });
        }
    }

    fn finish(&mut self, _end: &FileEnd<'_>, found: &mut Vec<Finding>) {
        if self.has_statement_outside_block {
            found.append(&mut self.candidates);
        }
    }
}

fn candidate(check: &Check<'_>) -> Option<Violation> {
    if !check.file.marked_no_transaction || check.context.in_explicit_block {
        return None;
    }
    if check.analysis.transaction != TransactionUse::Any || is_session_only(check.analysis.kind) {
        return None;
    }
    Some(Violation::new(
        "this statement commits on its own in a no-transaction file; if a later statement \
         fails, it stays applied and a rerun of the file fails on it"
            .to_string(),
        "move it to a transactional migration, or make it idempotent (IF NOT EXISTS)",
        check.analysis.effects.clone(),
    ))
}

fn is_session_only(kind: &str) -> bool {
    matches!(
        kind,
        "set" | "reset" | "show" | "select" | "explain" | "comment"
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "transactional-statement-in-no-transaction-file";

    #[test]
    fn flags_mixed_no_transaction_file() {
        let sql = "-- pgshift:no-transaction\nALTER TABLE o ADD f int;\n\
                   CREATE INDEX CONCURRENTLY i ON o (f);\nUPDATE s SET v = 1 WHERE n = 'x';\n";
        assert_eq!(flagged_lines(RULE, sql), vec![2, 4]);
    }

    #[test]
    fn accepts_settings_and_pure_concurrent_files() {
        let sql = "-- pgshift:no-transaction\nSET statement_timeout = 0;\n\
                   CREATE INDEX CONCURRENTLY i ON o (f);\nRESET statement_timeout;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
        assert!(
            flagged_autocommit(RULE, "ALTER TABLE o ADD f int;\nALTER TABLE o ADD g int;")
                .is_empty()
        );
    }
}
