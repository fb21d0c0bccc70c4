//! `begin-without-commit`: BEGIN without a matching COMMIT or ROLLBACK before the end of the file.

use std::ops::Range;

use super::{Check, Checker, FileEnd, FilePass, Finding, Rule, Severity, Violation};
use crate::locks::{TransactionControl, TransactionUse};

pub static RULE: Rule = Rule {
    id: "begin-without-commit",
    summary: "BEGIN without a matching COMMIT or ROLLBACK before the end of the file",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::File(pass),
};

const DOCS: &str = r#"## What it flags

A `BEGIN` (or `START TRANSACTION`) whose transaction is still open at the end of the file.

## Why it hurts

Whether the statements are committed then depends on the runner: psql
rolls them back when the session ends, other runners commit, and a pooled
connection can stay idle in a transaction holding every lock taken so far.

## Lock taken

Every lock the open transaction took, held until the session ends.

## Safe alternative

End every explicit transaction with `COMMIT` in the same file.

## Example

```sql
-- flagged
BEGIN;
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
-- safe
BEGIN;
ALTER TABLE orders ADD COLUMN shipped_at timestamptz;
COMMIT;
```
"#;

fn pass() -> Box<dyn FilePass> {
    Box::new(OpenBlock::default())
}

/// The span of the `BEGIN` whose transaction is open, if any.
#[derive(Default)]
struct OpenBlock {
    begin: Option<Range<usize>>,
}

impl FilePass for OpenBlock {
    fn statement(&mut self, check: &Check<'_>, _found: &mut Vec<Finding>) {
        match check.analysis.transaction {
            TransactionUse::Control(TransactionControl::Begin) => {
                self.begin = Some(check.statement.span.clone())
            }
            TransactionUse::Control(TransactionControl::Commit | TransactionControl::Rollback) => {
                self.begin = None
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: &FileEnd<'_>, found: &mut Vec<Finding>) {
        let Some(begin) = self.begin.take() else {
            return;
        };
        found.push(Finding {
            statement: None,
            violation: Violation {
                message: "this transaction is still open at the end of the file; whether it \
                          commits depends on the runner"
                    .to_string(),
                help: "end the transaction with COMMIT".to_string(),
                locks: Vec::new(),
                span: Some(begin),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "begin-without-commit";

    #[test]
    fn flags_open_transaction() {
        assert_eq!(
            flagged_lines(RULE, "SELECT 1;\nBEGIN;\nALTER TABLE a ADD b int;\n"),
            vec![2]
        );
    }

    #[test]
    fn accepts_committed_transaction() {
        assert!(flagged_lines(RULE, "BEGIN;\nALTER TABLE a ADD b int;\nCOMMIT;\n").is_empty());
    }
}
