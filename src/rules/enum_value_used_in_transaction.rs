//! `enum-value-used-in-transaction`: a value added with ALTER TYPE ... ADD VALUE is used before the transaction commits.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "enum-value-used-in-transaction",
    summary: "A value added with ALTER TYPE ... ADD VALUE is used before the transaction commits",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

A statement that uses a string literal equal to an enum value added by
`ALTER TYPE ... ADD VALUE` earlier in the same transaction.

## Why it hurts

PostgreSQL rejects the use of a new enum value before the transaction that
added it commits (SQLSTATE 55P04, "unsafe use of new value"), so the
migration fails. Before PostgreSQL 12, `ADD VALUE` cannot run in a
transaction block at all (see `concurrently-in-transaction`).

## Lock taken

None on tables: `ADD VALUE` locks only the type.

## Safe alternative

Commit after `ALTER TYPE ... ADD VALUE` and use the value in a later migration or transaction.

## Example

```sql
-- flagged
BEGIN;
ALTER TYPE order_status ADD VALUE 'refunded';
UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
COMMIT;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if check.context.enum_values_added.is_empty() || check.context.transaction.is_none() {
        return None;
    }
    let text = &check.statement.text;
    let (value, line) = check.context.enum_values_added.iter().find(|(value, _)| {
        let literal = format!("'{}'", value.replace('\'', "''"));
        text.contains(&literal)
    })?;
    Some(Violation::new(
        format!(
            "'{value}' was added to its enum on line {line} in the same transaction; using it \
             before COMMIT fails with SQLSTATE 55P04"
        ),
        "commit after ALTER TYPE ... ADD VALUE and use the value in a later transaction",
        check.analysis.effects.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "enum-value-used-in-transaction";

    #[test]
    fn flags_use_before_commit() {
        let sql =
            "BEGIN;\nALTER TYPE s ADD VALUE 'r';\nUPDATE o SET s = 'r' WHERE id = 1;\nCOMMIT;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![3]);
    }

    #[test]
    fn accepts_use_after_commit() {
        let sql =
            "BEGIN;\nALTER TYPE s ADD VALUE 'r';\nCOMMIT;\nUPDATE o SET s = 'r' WHERE id = 1;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
