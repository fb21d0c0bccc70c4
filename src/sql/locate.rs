//! Finding where a parse error is, on the error path only.
//!
//! `pg_query` returns an error message without a position. The file is
//! split at the `;` that the pre-scan found, the pieces are parsed in groups
//! until one group fails, then one by one within that group. In the failing
//! statement, the error points at the token that the message names (`at or
//! near "X"`), at the end of the statement for `at end of input`, and
//! otherwise at the statement's first token.

use std::ops::Range;

use super::lines::LineIndex;
use super::scan::Scan;
use super::{trim_span, ParseError};

/// Number of statements parsed in one call while looking for the failing
/// one, so that a long file costs few parser calls before the slow,
/// one-statement-at-a-time search.
const GROUP_SIZE: usize = 128;

const NEAR_MARKER: &str = "at or near \"";
const END_OF_INPUT: &str = "at end of input";

/// Builds the error for a file whose text `sql` (`text` after blanking)
/// failed to parse with `error`.
pub(super) fn locate_error(
    text: &str,
    sql: &str,
    lines: &LineIndex,
    scan: &Scan,
    error: pg_query::Error,
) -> ParseError {
    let file_message = message_of(error);
    let pieces = split_pieces(sql, &scan.separators);
    let (message, offset) = match failing_piece(sql, &pieces) {
        Some((piece, message)) => {
            let offset = error_offset(sql, &scan.comments, piece, &message);
            (message, offset)
        }
        // Every piece parsed alone, so the split does not match the parser's.
        // The first token of the file is the only position known to be
        // related to the error.
        None => {
            let offset = trim_span(sql, &scan.comments, 0..sql.len()).start;
            (file_message, offset)
        }
    };

    let (line, column) = lines.line_col(text, offset);
    ParseError {
        message,
        line,
        column,
        offset,
    }
}

fn message_of(error: pg_query::Error) -> String {
    match error {
        pg_query::Error::Parse(message) if message.contains(TOO_DEEP) => format!(
            "this statement nests more than {MAX_NESTING} levels deep (about {} \
             chained operators such as `+`), past what pgshift's parser hands \
             over; PostgreSQL's default max_stack_depth rejects it sooner. Split \
             the expression, or move it into a function",
            MAX_NESTING / 2
        ),
        pg_query::Error::Parse(message) => message,
        other => other.to_string(),
    }
}

/// libpg_query's message for a parse tree deeper than its protobuf limit.
const TOO_DEEP: &str = "nested too deeply to serialize";
/// The nesting limit behind [`TOO_DEEP`]: libpg_query's
/// `PG_QUERY_PROTOBUF_MAX_DEPTH`.
const MAX_NESTING: usize = 10_000;

/// Splits `sql` at the `separators`, leaving them out.
fn split_pieces(sql: &str, separators: &[usize]) -> Vec<Range<usize>> {
    let mut pieces = Vec::with_capacity(separators.len() + 1);
    let mut start = 0;
    for &separator in separators {
        pieces.push(start..separator);
        start = separator + 1;
    }
    pieces.push(start..sql.len());
    pieces
}

/// Returns the first piece that fails to parse, with the parser's message.
fn failing_piece(sql: &str, pieces: &[Range<usize>]) -> Option<(Range<usize>, String)> {
    for group in pieces.chunks(GROUP_SIZE) {
        let whole = group[0].start..group[group.len() - 1].end;
        if pg_query::parse(&sql[whole], 0).is_ok() {
            continue;
        }
        for piece in group {
            if let Err(error) = pg_query::parse(&sql[piece.clone()], 0) {
                return Some((piece.clone(), message_of(error)));
            }
        }
    }
    None
}

/// Returns the offset in `sql` of the error `message` raised by `piece`.
fn error_offset(sql: &str, comments: &[Range<usize>], piece: Range<usize>, message: &str) -> usize {
    let statement = trim_span(sql, comments, piece.clone());
    if message.ends_with(END_OF_INPUT) {
        return statement.end;
    }
    named_token(message)
        .and_then(|token| token_offset(sql, piece, token, message))
        .unwrap_or(statement.start)
}

/// Returns `X` from a message that ends in `at or near "X"`.
fn named_token(message: &str) -> Option<&str> {
    let start = message.find(NEAR_MARKER)? + NEAR_MARKER.len();
    let end = message.rfind('"')?;
    (end > start).then(|| &message[start..end])
}

/// Returns the offset of the occurrence of `token` in `piece` that raises
/// `message`.
///
/// The parser reports a syntax error at the token it has just read, so
/// parsing the piece up to the end of the right occurrence raises the same
/// message, while stopping at an earlier occurrence does not.
fn token_offset(sql: &str, piece: Range<usize>, token: &str, message: &str) -> Option<usize> {
    let source = &sql[piece.clone()];
    let candidates: Vec<Range<usize>> = match pg_query::scan(source) {
        Ok(scanned) => scanned
            .tokens
            .iter()
            .filter_map(|scanned| {
                let start = usize::try_from(scanned.start).ok()?;
                let end = usize::try_from(scanned.end).ok()?;
                (source.get(start..end) == Some(token)).then_some(start..end)
            })
            .collect(),
        // The scanner can reject the piece too, so search the text instead.
        Err(_) => source
            .match_indices(token)
            .map(|(start, found)| start..start + found.len())
            .collect(),
    };

    let confirmed = candidates.iter().find(|candidate| {
        let prefix = &source[..candidate.end];
        pg_query::parse(prefix, 0).err().map(message_of).as_deref() == Some(message)
    });
    confirmed
        .or(candidates.first())
        .map(|candidate| piece.start + candidate.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_token_reads_quoted_token() {
        let message = "syntax error at or near \"FOO\"";
        assert_eq!(named_token(message), Some("FOO"));
    }

    #[test]
    fn named_token_keeps_inner_quotes() {
        let message = "syntax error at or near \"\"a b\"\"";
        assert_eq!(named_token(message), Some("\"a b\""));
    }

    #[test]
    fn named_token_absent_without_marker() {
        assert_eq!(named_token("syntax error at end of input"), None);
    }

    #[test]
    fn pieces_leave_separators_out() {
        let sql = "a;b;c";
        assert_eq!(split_pieces(sql, &[1, 3]), vec![0..1, 2..3, 4..5]);
    }

    #[test]
    fn token_offset_picks_failing_occurrence() {
        let sql = "SELECT a = b FROM t WHERE a = = b";
        let message = match pg_query::parse(sql, 0) {
            Err(error) => message_of(error),
            Ok(_) => panic!("the statement must not parse"),
        };
        let offset = token_offset(sql, 0..sql.len(), "=", &message);
        assert_eq!(offset, Some(sql.rfind('=').unwrap()));
    }
}
