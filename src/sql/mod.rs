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
    parse_file(text)
}

/// Returns the parse tree of the first statement of `sql`, or `None` when
/// `sql` does not parse or contains no statement. For SQL that pgshift
/// produced or already parsed once, such as a step's statement.
pub fn first_node(sql: &str) -> Option<pg_query::NodeEnum> {
    pg_query::parse(sql, 0)
        .ok()?
        .protobuf
        .stmts
        .into_iter()
        .next()?
        .stmt?
        .node
}

fn parse_file(text: &str) -> Result<ParsedFile, ParseError> {
    let mut stream = StatementStream::new(text)?;
    let mut statements = Vec::new();
    while let Some(chunk) = stream.next_chunk() {
        statements.extend(chunk?);
    }
    let (meta_commands, directives) = stream.into_parts();
    Ok(ParsedFile {
        statements,
        meta_commands,
        directives,
    })
}

/// A file after the pre-scan, parsed one chunk of statements at a time, so
/// a caller can finish its work on a chunk and drop its parse trees before
/// the next chunk is parsed.
pub struct StatementStream<'a> {
    text: &'a str,
    lines: LineIndex,
    scan: scan::Scan,
    /// Offset in the text where the next chunk starts.
    start: usize,
    /// Number of separators that earlier chunks used up.
    separators_used: usize,
    /// Number of statements returned so far.
    returned: usize,
    /// Position of the next COPY data block in `scan.copies`.
    next_copy: usize,
    cursor: ColumnCursor,
    /// Offset up to which chunks were built into statements.
    built_to: usize,
    failed: bool,
}

impl<'a> StatementStream<'a> {
    /// Scans `text` for psql meta-commands, COPY data and directives. The
    /// scan rejects unterminated quotes and comments.
    pub fn new(text: &'a str) -> Result<StatementStream<'a>, ParseError> {
        let lines = LineIndex::new(text);
        let scan = scan::scan(text, &lines)?;
        Ok(StatementStream {
            text,
            lines,
            scan,
            start: 0,
            separators_used: 0,
            returned: 0,
            next_copy: 0,
            cursor: ColumnCursor::new(),
            built_to: 0,
            failed: false,
        })
    }

    /// Returns the file's psql meta-commands, in file order.
    pub fn meta_commands(&self) -> &[MetaCommand] {
        &self.scan.meta_commands
    }

    /// Returns the file's `-- pgshift:` directives, in file order.
    pub fn directives(&self) -> &[Directive] {
        &self.scan.directives
    }

    /// Returns true when the file takes more than one chunk to parse.
    pub fn has_several_chunks(&self) -> bool {
        self.scan.separators.len() > CHUNK_STATEMENTS
    }

    /// Returns the meta-commands and directives.
    pub fn into_parts(self) -> (Vec<MetaCommand>, Vec<Directive>) {
        (self.scan.meta_commands, self.scan.directives)
    }

    /// Parses the next chunk of up to `CHUNK_STATEMENTS` statements.
    /// Returns `None` after the last chunk and after an error.
    pub fn next_chunk(&mut self) -> Option<Result<Vec<Statement>, ParseError>> {
        let range = self.next_range()?;
        let parsed = parse_chunk(self.sql(), range.clone());
        Some(self.build_chunk(range, parsed))
    }

    /// Returns the text handed to the parser: the file with meta-commands
    /// and COPY data blanked out.
    pub fn sql(&self) -> &str {
        self.scan.blanked.as_deref().unwrap_or(self.text)
    }

    /// Returns the blanked text when the scan had to blank something out,
    /// else `None`: then `sql()` is the file's text itself.
    pub fn blanked(&self) -> Option<&str> {
        self.scan.blanked.as_deref()
    }

    /// Returns the byte ranges of `sql()` that make up the chunks not
    /// parsed yet, in order. [`parse_chunk`] parses each on any thread,
    /// and [`StatementStream::build_chunk`] takes the results in order.
    pub fn chunk_ranges(&self) -> Vec<Range<usize>> {
        let length = self.sql().len();
        let mut ranges = Vec::new();
        let (mut start, mut used) = (self.start, self.separators_used);
        while !self.failed && start < length {
            let end = self.chunk_end(used, length);
            ranges.push(start..end);
            start = end;
            used += CHUNK_STATEMENTS;
        }
        ranges
    }

    /// Returns the next chunk's range and moves past it.
    fn next_range(&mut self) -> Option<Range<usize>> {
        let length = self.sql().len();
        if self.failed || self.start >= length {
            return None;
        }
        let end = self.chunk_end(self.separators_used, length);
        let range = self.start..end;
        self.start = end;
        self.separators_used += CHUNK_STATEMENTS;
        Some(range)
    }

    /// Returns where a chunk ends that starts after `used` separators: after
    /// its `CHUNK_STATEMENTS`-th separator, or at the end of the text.
    fn chunk_end(&self, used: usize, length: usize) -> usize {
        match self.scan.separators.get(used + CHUNK_STATEMENTS - 1) {
            Some(separator) => separator + 1,
            None => length,
        }
    }

    /// Builds the statements of the chunk at `range` from its parse. Chunks
    /// must come in order. After a chunk that the parser rejects, the rest
    /// of the file comes from a parse of the whole text, and later chunks
    /// build to nothing.
    pub fn build_chunk(
        &mut self,
        range: Range<usize>,
        parsed: Option<Vec<pg_query::protobuf::RawStmt>>,
    ) -> Result<Vec<Statement>, ParseError> {
        if self.failed || range.start < self.built_to {
            return Ok(Vec::new());
        }
        self.built_to = range.end;
        let raw = match parsed {
            Some(raw) => raw,
            // The scan's separators might disagree with the parser, so the
            // rest of the file is taken from a parse of the whole text. Only
            // when that fails too is the file invalid.
            None => {
                let sql = self.scan.blanked.as_deref().unwrap_or(self.text);
                match pg_query::parse(sql, 0) {
                    Ok(whole) => {
                        self.built_to = sql.len();
                        self.start = sql.len();
                        whole
                            .protobuf
                            .stmts
                            .into_iter()
                            .filter(|raw| to_offset(raw.stmt_location) >= range.start)
                            .collect()
                    }
                    Err(error) => {
                        self.failed = true;
                        return Err(locate::locate_error(
                            self.text,
                            sql,
                            &self.lines,
                            &self.scan,
                            error,
                        ));
                    }
                }
            }
        };
        let mut statements = Vec::with_capacity(raw.len());
        for raw in raw {
            match self.statement(raw) {
                Ok(statement) => statements.push(statement),
                Err(error) => {
                    self.failed = true;
                    return Err(error);
                }
            }
        }
        Ok(statements)
    }

    /// Builds the statement for one parsed statement with a location in the
    /// whole text.
    fn statement(&mut self, raw: pg_query::protobuf::RawStmt) -> Result<Statement, ParseError> {
        let text = self.text;
        let sql = self.scan.blanked.as_deref().unwrap_or(text);
        let start = to_offset(raw.stmt_location);
        // A length of 0 means the statement runs to the end of the text.
        let end = match raw.stmt_len {
            0 => sql.len(),
            len => start + to_offset(len),
        };
        let span = trim_span(sql, &self.scan.comments, start..end);
        let (line, column) = self.cursor.line_col(&self.lines, text, span.start);
        let end_line = self.lines.line(span.end.saturating_sub(1).max(span.start));
        let index = self.returned;
        self.returned += 1;

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
        let copies = &self.scan.copies;
        while copies
            .get(self.next_copy)
            .is_some_and(|(separator, _)| *separator < end)
        {
            self.next_copy += 1;
        }
        let copy_data = match copies.get(self.next_copy) {
            Some((separator, data)) if *separator == end => {
                self.next_copy += 1;
                Some(data.clone())
            }
            _ => None,
        };

        Ok(Statement {
            index,
            text: text[span.clone()].to_string(),
            span,
            line,
            column,
            end_line,
            node,
            copy_data,
        })
    }
}

/// Statements parsed per `pg_query::parse` call. The parser keeps the tree
/// of its whole input and its serialized copy at once, so parsing a long
/// file in chunks bounds that peak. A chunk of 128 statements parses in
/// about half a millisecond, so the calls cost little more than one call
/// would, and the chunks that lint's threads hold at once stay a few MB.
const CHUNK_STATEMENTS: usize = 128;

/// Parses `sql[range]` and returns its statements with locations in `sql`,
/// or `None` when the parser rejects the chunk. The error is not kept:
/// [`StatementStream::build_chunk`] parses the whole text to find it.
pub fn parse_chunk(sql: &str, range: Range<usize>) -> Option<Vec<pg_query::protobuf::RawStmt>> {
    let start = range.start;
    let chunk = &sql[range];
    let parsed = pg_query::parse(chunk, 0).ok()?;
    let mut statements = parsed.protobuf.stmts;
    for raw in &mut statements {
        let location = to_offset(raw.stmt_location);
        // A length of 0 means "to the end of the input", here the chunk.
        if raw.stmt_len == 0 {
            raw.stmt_len = i32::try_from(chunk.len() - location).unwrap_or(i32::MAX);
        }
        raw.stmt_location = i32::try_from(start + location).unwrap_or(i32::MAX);
    }
    Some(statements)
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
