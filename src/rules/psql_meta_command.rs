//! `psql-meta-command`: a psql meta-command such as \connect or \set in a migration file.

use super::{Checker, Rule, Severity, Violation};
use crate::analysis::AnalyzedFile;

pub static RULE: Rule = Rule {
    id: "psql-meta-command",
    summary: "A psql meta-command such as \\connect or \\set in a migration file",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::File(check),
};

const DOCS: &str = r#"## What it flags

A line starting with a psql backslash command, for example `\connect`,
`\set`, `\copy` or `\i` (which `psql-include` also reports).

## Why it hurts

Meta-commands are executed by psql, not by the server. Any other runner,
pgshift apply included, fails on them or skips them; a skipped `\connect`
sends the following statements to the wrong database.

## Lock taken

None.

## Safe alternative

Remove the line, or do its work in SQL: `SET` instead of `\set`, a separate migration per database instead of `\connect`, `INSERT` instead of `\copy`.

## Example

```sql
-- flagged
\connect appdb
```
"#;

fn check(file: &AnalyzedFile) -> Vec<Violation> {
    file.parsed
        .meta_commands
        .iter()
        .map(|meta| Violation {
            message: format!(
                "`{}` is a psql meta-command, not SQL; pgshift cannot run it",
                meta.text.trim()
            ),
            help: "remove the line, or do its work in SQL (SET instead of \\set; a separate \
                   migration per database instead of \\connect)"
                .to_string(),
            locks: Vec::new(),
            span: Some(meta.span.start..meta.span.start + meta.text.trim_end().len()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "psql-meta-command";

    #[test]
    fn flags_connect_and_set() {
        let sql = "\\set ON_ERROR_STOP on\n\\connect appdb\nSELECT 1;\n\\i x.sql\n";
        assert_eq!(flagged_lines(RULE, sql), vec![1, 2, 4]);
    }
}
