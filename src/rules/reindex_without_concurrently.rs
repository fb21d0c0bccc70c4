//! `reindex-without-concurrently`: REINDEX without CONCURRENTLY blocks writes to the table and reads through the index.

use pg_query::NodeEnum;

use super::versions::Feature;
use super::{Check, Checker, Rule, Severity, Violation};
use crate::locks::{RelationName, TransactionUse};

pub static RULE: Rule = Rule {
    id: "reindex-without-concurrently",
    summary: "REINDEX without CONCURRENTLY blocks writes to the table and reads through the index",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`REINDEX INDEX` and `REINDEX TABLE` without `CONCURRENTLY` on a relation
the file did not create.

## Why it hurts

A plain rebuild holds SHARE on the table, so writes wait for the whole
rebuild, and ACCESS EXCLUSIVE on each index it rebuilds. Planning any query
on the table takes ACCESS SHARE on all of its indexes, so in practice new
reads wait as well.

## Lock taken

SHARE on the table and ACCESS EXCLUSIVE on the index (`REINDEX INDEX`),
or on every index of the table, one after another, all held until the
statement ends (`REINDEX TABLE`).

## Safe alternative

From PostgreSQL 12, `REINDEX ... CONCURRENTLY`, which takes SHARE UPDATE
EXCLUSIVE and cannot run inside a transaction block. Before 12, build a twin
with `CREATE INDEX CONCURRENTLY`, drop the old index with `DROP INDEX
CONCURRENTLY` and rename the twin.

## Example

```sql
-- flagged
REINDEX INDEX orders_status_idx;
-- safe (PostgreSQL 12 and later)
REINDEX INDEX CONCURRENTLY orders_status_idx;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::ReindexStmt(reindex) = &check.statement.node else {
        return None;
    };
    if check.analysis.transaction == TransactionUse::NotInBlock {
        // CONCURRENTLY, or a schema/database/system reindex.
        let concurrent = check
            .statement
            .text
            .to_ascii_uppercase()
            .contains("CONCURRENTLY");
        if concurrent {
            return None;
        }
    }
    let relation = reindex.relation.as_ref().map(RelationName::from_range_var);
    if relation.as_ref().is_some_and(|r| check.is_new(r)) {
        return None;
    }
    let locks = check.analysis.effects.clone();
    let help = if Feature::ReindexConcurrently.available(check.file.version) {
        "rebuild with REINDEX ... CONCURRENTLY outside a transaction block"
    } else {
        "on this version, build a twin with CREATE INDEX CONCURRENTLY, drop the old index \
         with DROP INDEX CONCURRENTLY and rename the twin (REINDEX CONCURRENTLY needs \
         PostgreSQL 12)"
    };
    Some(Violation::new(
        format!(
            "REINDEX takes {} and holds ACCESS EXCLUSIVE on each index it rebuilds, which \
             blocks writes and, in practice, reads of the table",
            describe_or_note(&locks, &check.analysis.notes)
        ),
        help,
        locks,
    ))
}

fn describe_or_note(locks: &[crate::locks::LockEffect], notes: &[String]) -> String {
    let mut text = super::describe_locks(locks);
    if let Some(note) = notes.first() {
        text.push_str(&format!(" ({note})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "reindex-without-concurrently";

    #[test]
    fn flags_plain_reindex() {
        let sql = "REINDEX INDEX a_idx;\nREINDEX TABLE a;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn accepts_concurrent_reindex() {
        let sql = "REINDEX INDEX CONCURRENTLY a_idx;\nREINDEX TABLE CONCURRENTLY a;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }

    #[test]
    fn help_depends_on_version() {
        let old = diagnostics_on("REINDEX INDEX a_idx;", pg(11, 0));
        let help = &old.iter().find(|d| d.rule == RULE).unwrap().help;
        assert!(help.contains("needs PostgreSQL 12"), "{help}");
    }
}
