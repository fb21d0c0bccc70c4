//! `lock-timeout-before-concurrent-build`: a short lock_timeout also bounds the snapshot waits of a following concurrent build.

use super::{Checker, FilePass, Rule, Severity, TimeoutBeforeConcurrent, Violation};

pub static RULE: Rule = Rule {
    id: "lock-timeout-before-concurrent-build",
    summary: "A short lock_timeout also bounds the snapshot waits of a following concurrent build",
    docs: DOCS,
    severity: Severity::Info,
    check: Checker::File(pass),
};

const DOCS: &str = r#"## What it flags

A `SET lock_timeout` to a value other than 0 that is still in effect when a
later statement of the file runs `CONCURRENTLY` (or another statement that
must run outside a transaction block and waits for older transactions).
The finding is on the `SET` line.

## Why it hurts

`CREATE INDEX CONCURRENTLY` and its relatives wait, in two of their
phases, for every transaction in the database that holds an older
snapshot, including transactions on unrelated tables. Those waits count
against `lock_timeout`, so a timeout meant for brief DDL locks makes the
build fail with SQLSTATE 55P03 and leave an INVALID index behind.

## Lock taken

None: `SET` takes no lock.

## Safe alternative

Reset `lock_timeout` right before the concurrent statement and set it again
afterwards, or give concurrent statements their own budget.

## Example

```sql
-- reported on the SET
SET lock_timeout = '3s';
CREATE INDEX CONCURRENTLY events_account_id_idx ON events (account_id);
```
"#;

fn pass() -> Box<dyn FilePass> {
    Box::new(TimeoutBeforeConcurrent::new(
        "lock_timeout",
        |context| context.lock_timeout_set,
        violation,
    ))
}

fn violation(line: usize) -> Violation {
    Violation::new(
        format!(
            "this lock_timeout is still in effect for the concurrent statement on line {line}, \
             which can exceed it while waiting for older transactions or building"
        ),
        "reset lock_timeout (or raise it) before the concurrent build; pgshift apply uses its separate concurrent_lock_timeout for such steps",
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "lock-timeout-before-concurrent-build";

    #[test]
    fn flags_setting_before_concurrent_build() {
        let sql = "SET lock_timeout = '3s';\nCREATE INDEX CONCURRENTLY i ON e (a);\n";
        assert_eq!(flagged_autocommit(RULE, sql), vec![1]);
    }

    #[test]
    fn accepts_set_local_before_build() {
        // With a session lock_timeout in effect from the start, as under
        // `pgshift apply`, the build runs under a timeout, but not under
        // the SET LOCAL, which ended with its transaction.
        let sql = "SET LOCAL lock_timeout = '3s';\nALTER TABLE e ADD b int;\n\
                   CREATE INDEX CONCURRENTLY i ON e (a);\n";
        let mut options = crate::analysis::AnalyzeOptions::new(pg(15, 0));
        options.lock_timeout = true;
        let file = crate::analysis::AnalyzedFile::with_options(
            std::path::Path::new("t.sql"),
            sql.to_string(),
            &options,
        )
        .unwrap();
        let flagged: Vec<_> = crate::lint::lint_file(&file, &crate::lint::LintOptions::default())
            .into_iter()
            .filter(|d| d.rule == RULE)
            .collect();
        assert!(flagged.is_empty(), "{flagged:#?}");
    }

    #[test]
    fn accepts_reset_before_build() {
        let sql = "SET lock_timeout = '3s';\nALTER TABLE e ADD b int;\nRESET lock_timeout;\n\
                   CREATE INDEX CONCURRENTLY i ON e (a);\n";
        assert!(flagged_autocommit(RULE, sql).is_empty());
    }
}
