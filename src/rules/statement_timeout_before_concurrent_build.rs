//! `statement-timeout-before-concurrent-build`: statement_timeout applies to the whole of a following concurrent build.

use super::{Checker, FilePass, Rule, Severity, TimeoutBeforeConcurrent, Violation};

pub static RULE: Rule = Rule {
    id: "statement-timeout-before-concurrent-build",
    summary: "statement_timeout applies to the whole of a following concurrent build",
    docs: DOCS,
    severity: Severity::Info,
    check: Checker::File(pass),
};

const DOCS: &str = r#"## What it flags

A `SET statement_timeout` to a value other than 0 that is still in effect when a
later statement of the file runs `CONCURRENTLY` (or another statement that
must run outside a transaction block and waits for older transactions).
The finding is on the `SET` line.

## Why it hurts

A concurrent index build on a large table runs for minutes or hours, and
`statement_timeout` cancels it (SQLSTATE 57014) at the limit, leaving an
INVALID index behind that blocks reruns.

## Lock taken

None: `SET` takes no lock.

## Safe alternative

Reset `statement_timeout` right before the concurrent statement and set it again
afterwards, or give concurrent statements their own budget.

## Example

```sql
-- reported on the SET
SET statement_timeout = '3s';
CREATE INDEX CONCURRENTLY events_account_id_idx ON events (account_id);
```
"#;

fn pass() -> Box<dyn FilePass> {
    Box::new(TimeoutBeforeConcurrent::new(
        "statement_timeout",
        |context| context.statement_timeout_set,
        violation,
    ))
}

fn violation(line: usize) -> Violation {
    Violation::new(
        format!(
            "this statement_timeout is still in effect for the concurrent statement on line {line}, \
             which can exceed it while waiting for older transactions or building"
        ),
        "set statement_timeout to 0 (or a budget fitting the table size) for the concurrent build",
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "statement-timeout-before-concurrent-build";

    #[test]
    fn flags_setting_before_concurrent_build() {
        let sql = "SET statement_timeout = '3s';\nCREATE INDEX CONCURRENTLY i ON e (a);\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![1]);
    }

    #[test]
    fn accepts_reset_before_build() {
        let sql =
            "SET statement_timeout = '3s';\nALTER TABLE e ADD b int;\nRESET statement_timeout;\n\
                   CREATE INDEX CONCURRENTLY i ON e (a);\n";
        assert!(flagged_autocommit(RULE, sql).is_empty());
    }
}
