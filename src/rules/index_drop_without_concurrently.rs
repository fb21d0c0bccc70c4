//! `index-drop-without-concurrently`: a plain `DROP INDEX`.

use pg_query::protobuf::ObjectType;
use pg_query::NodeEnum;

use super::{describe_blocked, Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "index-drop-without-concurrently",
    summary: "DROP INDEX without CONCURRENTLY blocks reads and writes of the table",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`DROP INDEX` without `CONCURRENTLY`.

## Why it hurts

The drop needs ACCESS EXCLUSIVE on the index's table. The drop itself is
quick, but while it waits for running queries every new query on the table
queues behind it.

## Lock taken

ACCESS EXCLUSIVE on the index and on its table until the transaction ends:
reads and writes wait.

## Safe alternative

`DROP INDEX CONCURRENTLY`, which waits for running queries without blocking
new ones. It cannot run inside a transaction block, cannot drop several
indexes at once or use CASCADE, and cannot drop an index that backs a UNIQUE
or PRIMARY KEY constraint: drop the constraint instead.

## Example

```sql
-- flagged
DROP INDEX orders_legacy_idx;
-- safe
DROP INDEX CONCURRENTLY IF EXISTS orders_legacy_idx;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::DropStmt(drop) = &check.statement.node else {
        return None;
    };
    if drop.remove_type != ObjectType::ObjectIndex as i32 || drop.concurrent {
        return None;
    }
    let locks = check.analysis.effects.clone();
    let names: Vec<String> = locks
        .iter()
        .map(|l| super::qualified(&l.relation))
        .collect();
    Some(Violation {
        message: format!(
            "DROP INDEX takes ACCESS EXCLUSIVE on {} and on its table, which blocks {}",
            names.join(", "),
            describe_blocked(&locks)
        ),
        help: "drop the index with DROP INDEX CONCURRENTLY outside a transaction block \
               (pgshift apply does this)"
            .to_string(),
        locks,
        span: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::flagged_lines;

    #[test]
    fn flags_plain_drop() {
        let sql = "DROP INDEX a_idx;\nDROP INDEX IF EXISTS b_idx;\n";
        assert_eq!(
            flagged_lines("index-drop-without-concurrently", sql),
            vec![1, 2]
        );
    }

    #[test]
    fn accepts_concurrent_drop_and_other_drops() {
        let sql = "DROP INDEX CONCURRENTLY a_idx;\nDROP TABLE t;\n";
        assert!(flagged_lines("index-drop-without-concurrently", sql).is_empty());
    }
}
