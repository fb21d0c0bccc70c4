//! `opaque-statement`: a DO block or a function call runs code whose locks pgshift cannot see.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "opaque-statement",
    summary: "A DO block or a function call runs code whose locks pgshift cannot see",
    docs: DOCS,
    severity: Severity::Info,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`DO` blocks, `CALL`, and statements that call functions that are not built in.

## Why it hurts

pgshift analyses statements, not the code inside function bodies. The
locks such code takes, and how long it runs, are unknown, so no other rule
can judge it.

## Lock taken

Unknown.

## Safe alternative

Write the migration as plain SQL statements where possible, so each one is checked.

## Example

```sql
-- reported
DO $$ BEGIN PERFORM backfill_tenants(); END $$;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    if !check.analysis.opaque {
        return None;
    }
    Some(Violation::new(
        "this statement runs code pgshift cannot analyse; the locks it takes are unknown"
            .to_string(),
        "check the locks of the code it runs by hand, or write it as plain SQL statements",
        check.analysis.effects.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "opaque-statement";

    #[test]
    fn reports_do_block() {
        assert_eq!(flagged_lines(RULE, "DO $$ BEGIN NULL; END $$;"), vec![1]);
    }

    #[test]
    fn accepts_plain_sql() {
        assert!(flagged_lines(RULE, "SELECT now();").is_empty());
    }
}
