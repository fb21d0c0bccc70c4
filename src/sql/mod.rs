//! Splitting and parsing migration files with the PostgreSQL parser.
//!
//! A file is first scanned for the parts that are not SQL at all: psql
//! meta-commands (from a backslash outside any literal or comment to the end
//! of its line) and the inline data of `COPY ... FROM stdin`. Those bytes are blanked out
//! (newlines kept), so the text handed to `pg_query` keeps every byte offset
//! of the original file and each statement's span, line and column point
//! into the file as the user wrote it.
//!
//! NOTE: psql variable interpolation (`:name`, `:'name'`) is not expanded,
//! so a file that relies on `\set` variables inside SQL fails to parse with
//! a syntax error at the `:`.

use std::ops::Range;

mod lines;
mod locate;
mod scan;

use lines::ColumnCursor;
pub use lines::{line_col, LineIndex};

/// One top-level SQL statement of a file.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Position of the statement in its file, counting from 0.
    pub index: usize,
    /// Byte range of the statement in the file: from its first token to its
    /// last, without leading comments and without the terminating `;`.
    pub span: Range<usize>,
    /// 1-based line of the first token.
    pub line: usize,
    /// 1-based column (in characters) of the first token.
    pub column: usize,
    /// 1-based line of the last byte of the statement.
    pub end_line: usize,
    /// The statement's text, equal to `&file_text[span]`.
    pub text: String,
    /// The parse tree of the statement.
    pub node: pg_query::NodeEnum,
    /// Inline rows of a `COPY ... FROM stdin`, when the statement is one.
    pub copy_data: Option<CopyData>,
}

/// Inline data that follows a `COPY ... FROM stdin` statement.
#[derive(Debug, Clone)]
pub struct CopyData {
    /// Byte range of the data lines, up to and including the `\.` line.
    pub span: Range<usize>,
    /// The data lines without the terminating `\.` line.
    pub data: String,
    /// Number of data rows.
    pub rows: usize,
}

/// A psql meta-command line such as `\connect appdb`.
#[derive(Debug, Clone)]
pub struct MetaCommand {
    pub line: usize,
    pub column: usize,
    pub span: Range<usize>,
    /// Command name without the backslash, e.g. `connect`, `set`, `i`.
    pub command: String,
    /// The command from its backslash to the end of its line, without the
    /// line break.
    pub text: String,
    /// Inline rows of a `\copy ... from stdin`, when the command is one.
    pub copy_data: Option<CopyData>,
}

/// A `-- pgshift:...` directive comment.
#[derive(Debug, Clone)]
pub struct Directive {
    pub line: usize,
    pub span: Range<usize>,
    /// The directive text after `pgshift:`, trimmed, e.g. `no-transaction`.
    pub text: String,
}

/// A parsed migration file.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub statements: Vec<Statement>,
    pub meta_commands: Vec<MetaCommand>,
    pub directives: Vec<Directive>,
}

/// A file that could not be split or parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ParseError {
    pub message: String,
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column of the error.
    pub column: usize,
    /// Byte offset of the error in the file.
    pub offset: usize,
}

/// Splits and parses the text of one migration file.
///
/// The text is scanned once, then parsed with `pg_query::parse` in chunks
/// of statements cut at the `;` the scan found. Only when a chunk fails is
/// the text parsed again, statement by statement, to find where the error
/// is.
pub fn parse(text: &str) -> Result<ParsedFile, ParseError> {
    let lines = LineIndex::new(text);
    let scan = scan::scan(text, &lines)?;
    let sql = scan.blanked.as_deref().unwrap_or(text);
    let raw_statements = match parse_in_chunks(sql, &scan.separators) {
        Ok(raw) => raw,
        Err(error) => return Err(locate::locate_error(text, sql, &lines, &scan, error)),
    };

    let mut cursor = ColumnCursor::new(&lines, text);
    let mut copies = scan.copies.into_iter().peekable();
    let mut statements = Vec::with_capacity(raw_statements.len());
    for (index, raw) in raw_statements.into_iter().enumerate() {
        let start = to_offset(raw.stmt_location);
        // A length of 0 means the statement runs to the end of the text.
        let end = match raw.stmt_len {
            0 => sql.len(),
            len => start + to_offset(len),
        };
        let span = trim_span(sql, &scan.comments, start..end);
        let (line, column) = cursor.line_col(span.start);
        let end_line = lines.line(span.end.saturating_sub(1).max(span.start));

        let Some(node) = raw.stmt.and_then(|stmt| stmt.node) else {
            let message = "the parser returned no parse tree for this statement";
            return Err(ParseError {
                message: message.to_string(),
                line,
                column,
                offset: span.start,
            });
        };

        // The COPY data was recorded under the offset of the `;` that ends
        // the COPY statement, which is where `stmt_len` ends.
        while copies.peek().is_some_and(|(separator, _)| *separator < end) {
            copies.next();
        }
        let copy_data = copies
            .next_if(|(separator, _)| *separator == end)
            .map(|(_, data)| data);

        statements.push(Statement {
            index,
            text: text[span.clone()].to_string(),
            span,
            line,
            column,
            end_line,
            node,
            copy_data,
        });
    }

    Ok(ParsedFile {
        statements,
        meta_commands: scan.meta_commands,
        directives: scan.directives,
    })
}

/// Statements parsed per `pg_query::parse` call. The parser keeps the tree
/// of its whole input and its serialized copy at once, so parsing a long
/// file in chunks bounds that peak; 512 statements keep the number of calls
/// small.
const CHUNK_STATEMENTS: usize = 512;

/// Parses `sql` in chunks that end after every `CHUNK_STATEMENTS`-th
/// separator, and returns the statements with locations in `sql`. When a
/// chunk fails, the whole text is parsed at once, because the scan's
/// separators might disagree with the parser. That parse's error is the one
/// reported.
fn parse_in_chunks(
    sql: &str,
    separators: &[usize],
) -> Result<Vec<pg_query::protobuf::RawStmt>, pg_query::Error> {
    let mut statements = Vec::new();
    let mut start = 0;
    let ends = separators
        .iter()
        .skip(CHUNK_STATEMENTS - 1)
        .step_by(CHUNK_STATEMENTS)
        .map(|separator| separator + 1)
        .chain(std::iter::once(sql.len()));

    for end in ends {
        if end <= start {
            continue;
        }
        let chunk = &sql[start..end];
        let parsed = match pg_query::parse(chunk) {
            Ok(parsed) => parsed,
            Err(_) => return pg_query::parse(sql).map(|whole| whole.protobuf.stmts),
        };
        for mut raw in parsed.protobuf.stmts {
            let location = to_offset(raw.stmt_location);
            // A length of 0 means "to the end of the input", here the chunk.
            if raw.stmt_len == 0 {
                raw.stmt_len = i32::try_from(chunk.len() - location).unwrap_or(i32::MAX);
            }
            raw.stmt_location = i32::try_from(start + location).unwrap_or(i32::MAX);
            statements.push(raw);
        }
        start = end;
    }
    Ok(statements)
}

/// Converts a location from `pg_query`, which is never negative for a
/// statement that exists.
fn to_offset(location: i32) -> usize {
    usize::try_from(location).unwrap_or(0)
}

/// Narrows `range` of `sql` to run from its first token to its last,
/// skipping whitespace and the `comments` (sorted by start) at both ends.
fn trim_span(sql: &str, comments: &[Range<usize>], range: Range<usize>) -> Range<usize> {
    let bytes = sql.as_bytes();
    let is_space = |byte: u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);

    let mut start = range.start;
    while start < range.end {
        if is_space(bytes[start]) {
            start += 1;
        } else if let Some(comment) = comment_containing(comments, start) {
            start = comment.end;
        } else {
            break;
        }
    }

    let mut end = range.end;
    while end > start {
        if is_space(bytes[end - 1]) {
            end -= 1;
        } else if let Some(comment) = comment_containing(comments, end - 1) {
            end = comment.start;
        } else {
            break;
        }
    }
    start..end.max(start)
}

/// Returns the comment that contains byte `offset`, if any.
fn comment_containing(comments: &[Range<usize>], offset: usize) -> Option<&Range<usize>> {
    let after = comments.partition_point(|comment| comment.start <= offset);
    let comment = comments[..after].last()?;
    comment.contains(&offset).then_some(comment)
}
