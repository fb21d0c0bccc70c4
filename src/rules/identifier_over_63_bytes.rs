//! `identifier-over-63-bytes`: an identifier longer than 63 bytes is silently truncated.

use super::{Check, Checker, Rule, Severity, Violation};
use pg_query::protobuf::Token;
use pg_query::NodeEnum;

pub static RULE: Rule = Rule {
    id: "identifier-over-63-bytes",
    summary: "An identifier longer than 63 bytes is silently truncated",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

A table, index, column or constraint name longer than 63 bytes (`NAMEDATALEN - 1`) in a statement that creates or renames an object.

## Why it hurts

PostgreSQL truncates the name to 63 bytes with only a NOTICE. Later
migrations that use the full name fail, and two long names with the same
first 63 bytes collide.

## Lock taken

None beyond the statement's own.

## Safe alternative

Choose a name of at most 63 bytes.

## Example

```sql
-- flagged
CREATE INDEX access_tokens_tenant_id_client_id_subject_created_at_expires_at_idx
    ON access_tokens (tenant_id, client_id, subject, created_at, expires_at);
```
"#;

const MAX_BYTES: usize = 63;

fn check(check: &Check<'_>) -> Option<Violation> {
    // The parser truncates identifiers while scanning, so the parse tree
    // never shows a long name; the tokens of the original text do.
    let defines = matches!(
        check.statement.node,
        NodeEnum::IndexStmt(_)
            | NodeEnum::CreateStmt(_)
            | NodeEnum::AlterTableStmt(_)
            | NodeEnum::RenameStmt(_)
            | NodeEnum::ViewStmt(_)
            | NodeEnum::CreateTableAsStmt(_)
            | NodeEnum::CreateSeqStmt(_)
    );
    if !defines {
        return None;
    }
    let text = &check.statement.text;
    if !may_hold_long_identifier(text) {
        return None;
    }
    let scan = pg_query::scan(text).ok()?;
    let (start, end) = scan.tokens.iter().find_map(|token| {
        if token.token != Token::Ident as i32 {
            return None;
        }
        let (start, end) = (token.start as usize, token.end as usize);
        let name = text.get(start..end)?;
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(name);
        (name.len() > MAX_BYTES).then_some((start, end))
    })?;
    let name = &text[start..end];
    let offset = check.statement.span.start;
    Some(Violation {
        message: format!(
            "`{name}` is {} bytes long; PostgreSQL truncates names to {MAX_BYTES} bytes, so \
             two long names can collide and the object's name differs from the one written",
            name.trim_matches('"').len()
        ),
        help: "choose a name of at most 63 bytes".to_string(),
        locks: Vec::new(),
        span: Some(offset + start..offset + end),
    })
}

/// Returns false when no token of `text` can be an identifier over
/// `MAX_BYTES` bytes, which saves running the scanner on nearly every
/// statement. Without a double quote, an identifier is a run of letters,
/// digits, `_`, `$` and bytes of non-ASCII characters, so a text without
/// such a run longer than `MAX_BYTES` has none.
fn may_hold_long_identifier(text: &str) -> bool {
    if text.contains('"') {
        return true;
    }
    let mut run = 0;
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80 {
            run += 1;
            if run > MAX_BYTES {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "identifier-over-63-bytes";

    #[test]
    fn flags_long_index_name() {
        let name = "i".repeat(64);
        let sql = format!("CREATE INDEX CONCURRENTLY {name} ON a (x);");
        assert_eq!(flagged_lines(RULE, &sql), vec![1]);
    }

    #[test]
    fn accepts_63_bytes() {
        let name = "i".repeat(63);
        let sql = format!("CREATE TABLE {name} (id int);");
        assert!(flagged_lines(RULE, &sql).is_empty());
    }

    #[test]
    fn flags_long_quoted_name_with_spaces() {
        let name = format!("\"{}\"", "a b ".repeat(16));
        let sql = format!("CREATE TABLE {name} (id int);");
        assert_eq!(flagged_lines(RULE, &sql), vec![1]);
    }

    #[test]
    fn flags_long_name_of_multibyte_characters() {
        let name = "é".repeat(32);
        let sql = format!("ALTER TABLE a ADD COLUMN {name} int;");
        assert_eq!(flagged_lines(RULE, &sql), vec![1]);
    }

    #[test]
    fn accepts_long_string_literal() {
        let sql = format!("CREATE VIEW v AS SELECT '{}' AS note;", "x".repeat(80));
        assert!(flagged_lines(RULE, &sql).is_empty());
    }
}
