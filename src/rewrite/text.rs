//! Text helpers for rewrites: finding keywords with the PostgreSQL
//! scanner, inserting text at a token, and quoting identifiers.

use pg_query::protobuf::{KeywordKind, ScanToken, Token};

use crate::locks::RelationName;

/// Returns the tokens of `sql`, comments included, or none when the
/// scanner rejects it.
pub(super) fn tokens(sql: &str) -> Vec<ScanToken> {
    pg_query::scan(sql).map(|s| s.tokens).unwrap_or_default()
}

/// Byte range of a token.
pub(super) fn range(token: &ScanToken) -> std::ops::Range<usize> {
    let start = usize::try_from(token.start).unwrap_or(0);
    let end = usize::try_from(token.end).unwrap_or(start);
    start..end
}

/// Returns true for comment tokens, which every search skips.
fn is_comment(token: &ScanToken) -> bool {
    token.token == Token::SqlComment as i32 || token.token == Token::CComment as i32
}

/// Inserts `insert` right after the first `keyword` token of `sql` (a
/// comment or a literal never matches).
pub(super) fn insert_after(sql: &str, keyword: Token, insert: &str) -> Option<String> {
    let token = tokens(sql)
        .into_iter()
        .find(|t| t.token == keyword as i32)?;
    Some(splice(sql, range(&token).end, insert))
}

/// Inserts `insert` after the first of `keywords` that occurs in `sql`.
pub(super) fn insert_after_any(sql: &str, keywords: &[Token], insert: &str) -> Option<String> {
    let token = tokens(sql)
        .into_iter()
        .find(|t| keywords.iter().any(|k| t.token == *k as i32))?;
    Some(splice(sql, range(&token).end, insert))
}

/// Removes the first `IF NOT EXISTS` of `sql` and the space after it;
/// `None` when it has none.
pub(super) fn remove_if_not_exists(sql: &str) -> Option<String> {
    let tokens: Vec<ScanToken> = tokens(sql).into_iter().filter(|t| !is_comment(t)).collect();
    let at = tokens.windows(3).position(|w| {
        w[0].token == Token::IfP as i32
            && w[1].token == Token::Not as i32
            && w[2].token == Token::Exists as i32
    })?;
    let start = range(&tokens[at]).start;
    let mut end = range(&tokens[at + 2]).end;
    end += sql[end..].len() - sql[end..].trim_start().len();
    Some(replace(sql, start..end, ""))
}

/// Appends `suffix` after the last token of `sql` that is not a comment,
/// so a trailing comment stays at the end.
pub(super) fn append(sql: &str, suffix: &str) -> String {
    let end = tokens(sql)
        .iter()
        .rev()
        .find(|t| !is_comment(t))
        .map_or(sql.len(), |t| range(t).end);
    splice(sql, end, suffix)
}

/// Returns `sql` with `insert` at byte `at`.
pub(super) fn splice(sql: &str, at: usize, insert: &str) -> String {
    let mut out = String::with_capacity(sql.len() + insert.len());
    out.push_str(&sql[..at]);
    out.push_str(insert);
    out.push_str(&sql[at..]);
    out
}

/// Returns `sql` with the byte range `range` replaced by `with`.
pub(super) fn replace(sql: &str, range: std::ops::Range<usize>, with: &str) -> String {
    let mut out = String::with_capacity(sql.len() + with.len());
    out.push_str(&sql[..range.start]);
    out.push_str(with);
    out.push_str(&sql[range.end..]);
    out
}

/// Quotes an identifier when PostgreSQL would not read it back unchanged
/// without quotes.
pub(super) fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !is_reserved(name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Returns true when `name` is a keyword that cannot be a bare column or
/// table name.
fn is_reserved(name: &str) -> bool {
    let Ok(scan) = pg_query::scan(name) else {
        return true;
    };
    match scan.tokens.as_slice() {
        [token] => {
            token.keyword_kind != KeywordKind::NoKeyword as i32
                && token.keyword_kind != KeywordKind::UnreservedKeyword as i32
        }
        _ => true,
    }
}

/// Quotes a possibly schema-qualified name.
pub(super) fn quote_relation(name: &RelationName) -> String {
    match &name.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&name.name)),
        None => quote_ident(&name.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_ident("orders"), "orders");
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("status"), "status");
    }

    #[test]
    fn append_keeps_a_trailing_comment_last() {
        let sql = "ALTER TABLE t ADD CHECK (a > 0) -- positive";
        assert_eq!(
            append(sql, " NOT VALID"),
            "ALTER TABLE t ADD CHECK (a > 0) NOT VALID -- positive"
        );
    }

    #[test]
    fn insert_skips_keywords_in_comments() {
        let sql = "/* INDEX */ CREATE INDEX i ON t (a)";
        assert_eq!(
            insert_after(sql, Token::Index, " CONCURRENTLY").unwrap(),
            "/* INDEX */ CREATE INDEX CONCURRENTLY i ON t (a)"
        );
    }
}
