//! `begin-without-commit`: BEGIN without a matching COMMIT or ROLLBACK before the end of the file.

use super::{Checker, Rule, Severity, Violation};
use crate::analysis::AnalyzedFile;
use crate::locks::{TransactionControl, TransactionUse};

pub static RULE: Rule = Rule {
    id: "begin-without-commit",
    summary: "BEGIN without a matching COMMIT or ROLLBACK before the end of the file",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::File(check),
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

fn check(file: &AnalyzedFile) -> Vec<Violation> {
    let mut open: Option<&crate::sql::Statement> = None;
    for (statement, analysis, _) in file.statements() {
        match analysis.transaction {
            TransactionUse::Control(TransactionControl::Begin) => open = Some(statement),
            TransactionUse::Control(TransactionControl::Commit | TransactionControl::Rollback) => {
                open = None
            }
            _ => {}
        }
    }
    let Some(begin) = open else {
        return Vec::new();
    };
    vec![Violation {
        message: "this transaction is still open at the end of the file; whether it commits \
                  depends on the runner"
            .to_string(),
        help: "end the transaction with COMMIT".to_string(),
        locks: Vec::new(),
        span: Some(begin.span.clone()),
    }]
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
