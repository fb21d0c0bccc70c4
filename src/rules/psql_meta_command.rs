//! `psql-meta-command`: a psql meta-command such as \connect or \set in a migration file.

use super::{Checker, FileEnd, FilePass, Finding, Rule, Severity, Violation};
use crate::sql::MetaCommand;

pub static RULE: Rule = Rule {
    id: "psql-meta-command",
    summary: "A psql meta-command such as \\connect or \\set in a migration file",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::File(pass),
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

fn pass() -> Box<dyn FilePass> {
    Box::new(MetaCommands)
}

/// Reads the meta-commands at the end of the file.
struct MetaCommands;

impl FilePass for MetaCommands {
    fn finish(&mut self, end: &FileEnd<'_>, found: &mut Vec<Finding>) {
        found.extend(
            check(end.meta_commands)
                .into_iter()
                .map(|violation| Finding {
                    statement: None,
                    violation,
                }),
        );
    }
}

fn check(meta_commands: &[MetaCommand]) -> Vec<Violation> {
    meta_commands
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
