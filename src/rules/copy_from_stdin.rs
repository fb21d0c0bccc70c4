//! `copy-from-stdin`: COPY ... FROM stdin with inline data that only psql can send.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "copy-from-stdin",
    summary: "COPY ... FROM stdin with inline data that only psql can send",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`COPY ... FROM stdin` followed by inline data rows and a `\.` line.

## Why it hurts

The rows are not SQL: psql sends them through the COPY protocol. Other
runners, pgshift apply included, cannot run the file.

## Lock taken

ROW EXCLUSIVE on the table the rows are copied into.

## Safe alternative

Load the rows with `INSERT` statements.

## Example

```sql
-- flagged
COPY currencies (code, label) FROM stdin;
EUR	Euro
\.
-- safe
INSERT INTO currencies (code, label) VALUES ('EUR', 'Euro');
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    check.statement.copy_data.as_ref()?;
    Some(Violation::new(
        "COPY ... FROM stdin carries inline data that only psql can send; pgshift apply \
         rejects the file"
            .to_string(),
        "load the rows with INSERT statements",
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "copy-from-stdin";

    #[test]
    fn flags_inline_copy() {
        let sql = "CREATE TABLE c (a text);\nCOPY c (a) FROM stdin;\nx\n\\.\nINSERT INTO c VALUES ('y');\n";
        assert_eq!(flagged_lines(RULE, sql), vec![2]);
    }
}
