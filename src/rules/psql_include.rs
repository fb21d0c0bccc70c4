//! `psql-include`: a psql \i or \ir include whose file is not linted.

use super::{Checker, FileEnd, FilePass, Finding, Rule, Severity, Violation};
use crate::sql::MetaCommand;

pub static RULE: Rule = Rule {
    id: "psql-include",
    summary: "A psql \\i or \\ir include whose file is not linted",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::File(pass),
};

const DOCS: &str = r#"## What it flags

`\i`, `\ir`, `\include` and `\include_relative` lines.

## Why it hurts

psql reads and runs the named file at that point. pgshift does not follow
includes, so the included statements are neither linted nor run by
pgshift apply.

## Lock taken

Unknown: the included statements are not analysed.

## Safe alternative

Put the included statements in the migration itself, or in a migration of their own.

## Example

```sql
-- flagged
\i seed/plans.sql
```
"#;

/// Returns true for the psql commands that include another file.
fn is_include(command: &str) -> bool {
    matches!(command, "i" | "ir" | "include" | "include_relative")
}

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
        .filter(|meta| is_include(&meta.command))
        .map(|meta| Violation {
            message: format!(
                "`{}` includes a file that pgshift does not lint or run",
                meta.text.trim()
            ),
            help: "put the included statements in the migration itself".to_string(),
            locks: Vec::new(),
            span: Some(meta.span.start..meta.span.start + meta.text.trim_end().len()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "psql-include";

    #[test]
    fn flags_include() {
        let sql = "\\connect appdb\n\\i seed/plans.sql\n\\ir other.sql\n";
        assert_eq!(flagged_lines(RULE, sql), vec![2, 3]);
    }
}
