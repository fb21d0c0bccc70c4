//! The pre-scan: one pass over a file before `pg_query` parses it.
//!
//! The scan follows the lexical states of PostgreSQL's lexer just far
//! enough to know, at each byte, whether it is plain code: single-quoted
//! strings (with `''`, and backslash escapes in `E'...'`), double-quoted
//! identifiers, dollar quotes, `--` comments and nested `/* */` comments.
//! In plain code it finds what `pg_query` cannot parse (psql meta-commands
//! and the inline data of `COPY ... FROM stdin`) and blanks those bytes, and
//! it records comments, `-- pgshift:` directives and the `;` that end
//! statements, which the error path uses to find the failing statement.

use std::ops::Range;

use super::lines::LineIndex;
use super::{CopyData, Directive, MetaCommand, ParseError};

/// Meta-commands that send the query buffer to the server like a `;` does.
const SENDING_META_COMMANDS: &[&str] = &["g", "gx", "gset", "gexec", "gdesc", "crosstabview"];

/// Results of the pre-scan of one file.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The file with meta-commands and COPY data replaced by spaces
    /// (newlines kept), or `None` when nothing had to be blanked.
    pub blanked: Option<String>,
    /// Byte ranges of all comments, in file order. A `--` comment ends
    /// before its line break.
    pub comments: Vec<Range<usize>>,
    /// Offsets of the `;` that end statements, outside parentheses and
    /// `BEGIN ATOMIC ... END` bodies. A sending meta-command such as
    /// `\gexec` counts as one, at its backslash.
    pub separators: Vec<usize>,
    pub meta_commands: Vec<MetaCommand>,
    pub directives: Vec<Directive>,
    /// Inline data of each `COPY ... FROM stdin`, keyed by the offset of the
    /// `;` that ends the COPY statement.
    pub copies: Vec<(usize, CopyData)>,
}

/// Words at the head of a statement that change how the scan reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum HeadWord {
    #[default]
    Other,
    Copy,
    Create,
    Or,
    Replace,
    Function,
    Procedure,
}

impl HeadWord {
    fn classify(word: &str) -> HeadWord {
        const WORDS: &[(&str, HeadWord)] = &[
            ("copy", HeadWord::Copy),
            ("create", HeadWord::Create),
            ("or", HeadWord::Or),
            ("replace", HeadWord::Replace),
            ("function", HeadWord::Function),
            ("procedure", HeadWord::Procedure),
        ];
        WORDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map_or(HeadWord::Other, |&(_, head)| head)
    }

    fn is_routine(self) -> bool {
        matches!(self, HeadWord::Function | HeadWord::Procedure)
    }
}

/// The part of the current statement the scan keeps track of.
#[derive(Debug, Default)]
struct StatementState {
    /// Offset of the statement's first token.
    start: Option<usize>,
    words: usize,
    head: [HeadWord; 4],
    previous_word_was_from: bool,
    copy_from_stdin: bool,
    /// Depth of `BEGIN ... END` in a `CREATE FUNCTION ... BEGIN ATOMIC`
    /// body, where `;` does not end the statement.
    begin_depth: usize,
}

impl StatementState {
    /// Checks whether the statement is `CREATE [OR REPLACE]
    /// FUNCTION|PROCEDURE`, the statements in which psql tracks `BEGIN ... END`.
    fn defines_routine(&self) -> bool {
        let head = &self.head;
        head[0] == HeadWord::Create
            && (head[1].is_routine()
                || (head[1] == HeadWord::Or
                    && head[2] == HeadWord::Replace
                    && head[3].is_routine()))
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    lines: &'a LineIndex,
    pos: usize,
    paren_depth: usize,
    statement: StatementState,
    blanked: Option<Vec<u8>>,
    out: Scan,
}

/// Scans `text` once; see the module documentation.
pub(crate) fn scan(text: &str, lines: &LineIndex) -> Result<Scan, ParseError> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        lines,
        pos: 0,
        paren_depth: 0,
        statement: StatementState::default(),
        blanked: None,
        out: Scan::default(),
    };
    scanner.run()?;

    let mut out = scanner.out;
    if let Some(bytes) = scanner.blanked {
        // Blanking replaces whole lines or whole characters, so the bytes
        // stay valid UTF-8.
        out.blanked = Some(String::from_utf8(bytes).expect("blanking keeps UTF-8 valid"));
    }
    Ok(out)
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// First byte of an identifier, as PostgreSQL's lexer defines it: a letter,
/// `_`, or any byte of a multibyte character.
fn is_ident_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte >= 0x80
}

fn is_ident_continue(byte: u8) -> bool {
    is_ident_start(byte) || byte.is_ascii_digit() || byte == b'$'
}

/// Checks whether `byte` can continue a dollar-quote tag, which takes any
/// identifier byte except `$`.
fn is_tag_continue(byte: u8) -> bool {
    is_ident_start(byte) || byte.is_ascii_digit()
}

impl Scanner<'_> {
    fn run(&mut self) -> Result<(), ParseError> {
        // Editors on Windows often save a byte order mark, which PostgreSQL
        // rejects as a syntax error, so it is blanked like whitespace.
        if self.text.starts_with('\u{feff}') {
            let length = '\u{feff}'.len_utf8();
            self.blank(0..length);
            self.pos = length;
        }

        while self.pos < self.bytes.len() {
            let byte = self.bytes[self.pos];
            let next = self.bytes.get(self.pos + 1).copied();
            match byte {
                _ if is_whitespace(byte) => self.pos += 1,
                b'-' if next == Some(b'-') => self.line_comment(),
                b'/' if next == Some(b'*') => self.block_comment()?,
                b'\'' | b'"' => {
                    self.other_token();
                    self.pos = self.quoted(self.pos, self.pos, false)?;
                }
                b'$' => {
                    self.other_token();
                    self.dollar()?;
                }
                // psql turns `\;` into a `;` that does not send the buffer
                // yet. Both statements still reach the server, so the scan
                // splits there like at any `;`.
                b'\\' if next == Some(b';') => {
                    self.blank(self.pos..self.pos + 1);
                    self.pos += 1;
                }
                b'\\' => self.meta_command()?,
                b';' => self.semicolon()?,
                b'(' => {
                    self.other_token();
                    self.paren_depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    self.other_token();
                    self.paren_depth = self.paren_depth.saturating_sub(1);
                    self.pos += 1;
                }
                0 => return Err(self.error_at(self.pos, NUL_BYTE)),
                _ if is_ident_start(byte) => self.word()?,
                _ if byte.is_ascii_digit() => self.number(),
                _ => {
                    self.other_token();
                    self.pos += 1;
                }
            }
        }
        Ok(())
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = self.lines.line_col(self.text, offset);
        ParseError {
            message: message.into(),
            line,
            column,
            offset,
        }
    }

    /// Notes a token at `self.pos` that is not a word.
    fn other_token(&mut self) {
        self.statement.start.get_or_insert(self.pos);
        self.statement.previous_word_was_from = false;
    }

    /// Returns the offset of the next `\n` at or after `from`, or the end.
    fn line_end(&self, from: usize) -> usize {
        self.bytes[from..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(self.bytes.len(), |index| from + index)
    }

    /// Returns `end` moved back over a `\r` that precedes it.
    fn without_carriage_return(&self, start: usize, end: usize) -> usize {
        if end > start && self.bytes[end - 1] == b'\r' {
            end - 1
        } else {
            end
        }
    }

    /// Replaces `range` with spaces in the text given to `pg_query`,
    /// keeping line breaks so that offsets and line numbers stay put.
    fn blank(&mut self, range: Range<usize>) {
        let blanked = self.blanked.get_or_insert_with(|| self.bytes.to_vec());
        for byte in &mut blanked[range] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }

    fn line_comment(&mut self) {
        let start = self.pos;
        // PostgreSQL ends a `--` comment at either line break character.
        let end = self.bytes[start..]
            .iter()
            .position(|&byte| byte == b'\n' || byte == b'\r')
            .map_or(self.bytes.len(), |index| start + index);
        self.out.comments.push(start..end);

        let body = self.text[start + 2..end].trim_start();
        if let Some(directive) = body.strip_prefix("pgshift:") {
            self.out.directives.push(Directive {
                line: self.lines.line(start),
                span: start..end,
                text: directive.trim().to_string(),
            });
        }
        self.pos = end;
    }

    fn block_comment(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut pos = start;
        while pos + 1 < self.bytes.len() {
            match (self.bytes[pos], self.bytes[pos + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    pos += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    pos += 2;
                    if depth == 0 {
                        self.out.comments.push(start..pos);
                        self.pos = pos;
                        return Ok(());
                    }
                }
                _ => pos += 1,
            }
        }
        Err(self.error_at(start, UNTERMINATED_BLOCK_COMMENT))
    }

    /// Skips a literal that opens with the quote byte at `quote`, reporting
    /// an unterminated literal at `start`. Returns the offset after it.
    fn quoted(
        &self,
        start: usize,
        quote: usize,
        backslash_escapes: bool,
    ) -> Result<usize, ParseError> {
        let delimiter = self.bytes[quote];
        let mut pos = quote + 1;
        while pos < self.bytes.len() {
            let byte = self.bytes[pos];
            if backslash_escapes && byte == b'\\' {
                pos += 2;
            } else if byte == delimiter {
                // A doubled delimiter is one delimiter character.
                if self.bytes.get(pos + 1) == Some(&delimiter) {
                    pos += 2;
                } else {
                    return Ok(pos + 1);
                }
            } else {
                pos += 1;
            }
        }
        let message = if delimiter == b'"' {
            UNTERMINATED_IDENTIFIER
        } else {
            UNTERMINATED_STRING
        };
        Err(self.error_at(start, message))
    }

    /// Handles a `$`: a parameter such as `$1`, a dollar quote such as `$$`
    /// or `$fn$`, or a stray `$` left for the parser to judge.
    fn dollar(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut pos = start + 1;
        if self.bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            while self.bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            self.pos = pos;
            return Ok(());
        }

        if self.bytes.get(pos).copied().is_some_and(is_ident_start) {
            while self.bytes.get(pos).copied().is_some_and(is_tag_continue) {
                pos += 1;
            }
        }
        if self.bytes.get(pos) != Some(&b'$') {
            self.pos = start + 1;
            return Ok(());
        }

        // Only the same tag closes the quote, so a `$q$` or a lone `$` inside
        // a `$fn$` body is part of the body.
        let delimiter = &self.text[start..=pos];
        let body_start = pos + 1;
        match self.text[body_start..].find(delimiter) {
            Some(index) => {
                self.pos = body_start + index + delimiter.len();
                Ok(())
            }
            None => {
                let message =
                    format!("unterminated dollar-quoted string; add the closing {delimiter}");
                Err(self.error_at(start, message))
            }
        }
    }

    fn number(&mut self) {
        self.other_token();
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|&byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.')
        {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let mut end = start + 1;
        while self.bytes.get(end).copied().is_some_and(is_ident_continue) {
            end += 1;
        }

        // `E'...'` is a string with backslash escapes, but only when the `E`
        // is a token of its own: `ne'x'` is the identifier `ne` and a string.
        let word = &self.text[start..end];
        if word.eq_ignore_ascii_case("e") && self.bytes.get(end) == Some(&b'\'') {
            self.other_token();
            self.pos = self.quoted(start, end, true)?;
            return Ok(());
        }

        self.statement.start.get_or_insert(start);
        self.note_word(word);
        self.pos = end;
        Ok(())
    }

    fn note_word(&mut self, word: &str) {
        let statement = &mut self.statement;
        if statement.words < statement.head.len() {
            statement.head[statement.words] = HeadWord::classify(word);
        }
        statement.words += 1;

        if statement.head[0] == HeadWord::Copy {
            if statement.previous_word_was_from && word.eq_ignore_ascii_case("stdin") {
                statement.copy_from_stdin = true;
            }
            statement.previous_word_was_from = word.eq_ignore_ascii_case("from");
        }

        // A SQL-standard routine body, `BEGIN ATOMIC ... END`, holds `;`
        // that do not end the statement. `CASE` also closes with `END`.
        if statement.defines_routine() && self.paren_depth == 0 {
            let opens_block = word.eq_ignore_ascii_case("begin")
                || (word.eq_ignore_ascii_case("case") && statement.begin_depth > 0);
            if opens_block {
                statement.begin_depth += 1;
            } else if word.eq_ignore_ascii_case("end") {
                statement.begin_depth = statement.begin_depth.saturating_sub(1);
            }
        }
    }

    fn semicolon(&mut self) -> Result<(), ParseError> {
        if self.paren_depth > 0 || self.statement.begin_depth > 0 {
            self.other_token();
            self.pos += 1;
            return Ok(());
        }
        let separator = self.pos;
        self.pos += 1;
        self.end_statement(separator)
    }

    /// Ends the current statement at `separator` and, for a
    /// `COPY ... FROM stdin`, skips the data lines that follow.
    fn end_statement(&mut self, separator: usize) -> Result<(), ParseError> {
        self.out.separators.push(separator);
        let statement = std::mem::take(&mut self.statement);
        self.paren_depth = 0;
        if statement.copy_from_stdin {
            let start = statement.start.unwrap_or(separator);
            let data = self.copy_data(self.pos, start, COPY_WITHOUT_TERMINATOR)?;
            self.out.copies.push((separator, data));
        }
        Ok(())
    }

    /// Reads the inline data lines that start on the line after `after`, up
    /// to a line that is exactly `\.`, blanks them and moves past them.
    /// A missing terminator is reported at `statement_start`.
    fn copy_data(
        &mut self,
        after: usize,
        statement_start: usize,
        missing_terminator: &str,
    ) -> Result<CopyData, ParseError> {
        let mut line_start = self.line_end(after) + 1;
        let data_start = line_start;
        let mut rows = 0;
        while line_start < self.bytes.len() {
            let line_end = self.line_end(line_start);
            let content_end = self.without_carriage_return(line_start, line_end);
            if &self.bytes[line_start..content_end] == b"\\." {
                let span = data_start..content_end;
                self.blank(span.clone());
                self.pos = line_end;
                return Ok(CopyData {
                    span,
                    data: self.text[data_start..line_start].to_string(),
                    rows,
                });
            }
            rows += 1;
            line_start = line_end + 1;
        }
        Err(self.error_at(statement_start, missing_terminator))
    }

    /// Records a psql meta-command that runs from the backslash at
    /// `self.pos` to the end of its line, and blanks it.
    ///
    /// psql reads a backslash in plain code as a meta-command wherever it
    /// is on the line, and PostgreSQL's grammar has no use for one, so
    /// this accepts a meta-command after SQL on the same line too, as in
    /// `SELECT ... \gexec`.
    fn meta_command(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let line_end = self.line_end(start);
        let end = self.without_carriage_return(start, line_end);
        let name_end = self.bytes[start + 1..end]
            .iter()
            .position(|&byte| is_whitespace(byte) || byte == b'\\')
            .map_or(end, |index| start + 1 + index);
        let command = self.text[start + 1..name_end].to_string();
        let (line, column) = self.lines.line_col(self.text, start);
        self.blank(start..end);
        self.pos = line_end;

        let sends_query = SENDING_META_COMMANDS.contains(&command.as_str());
        let copy_data = if command == "copy" && reads_inline_data(&self.text[name_end..end]) {
            Some(self.copy_data(line_end, start, META_COPY_WITHOUT_TERMINATOR)?)
        } else {
            None
        };
        self.out.meta_commands.push(MetaCommand {
            line,
            column,
            span: start..end,
            command,
            text: self.text[start..end].to_string(),
            copy_data,
        });

        // NOTE: `\g` with an empty query buffer makes psql run the previous
        // query again; that second run is not represented here.
        if sends_query && self.statement.start.is_some() {
            if let Some(blanked) = self.blanked.as_mut() {
                blanked[start] = b';';
            }
            self.end_statement(start)?;
        }
        Ok(())
    }
}

/// Checks whether the arguments of `\copy` read rows from the script itself.
fn reads_inline_data(arguments: &str) -> bool {
    let words: Vec<&str> = arguments.split_whitespace().collect();
    words
        .windows(2)
        .any(|pair| pair[0].eq_ignore_ascii_case("from") && pair[1].eq_ignore_ascii_case("stdin"))
}

const NUL_BYTE: &str = "file contains a NUL byte, which SQL text cannot hold; remove it";
const UNTERMINATED_BLOCK_COMMENT: &str = "unterminated /* comment; add the closing */";
const UNTERMINATED_IDENTIFIER: &str = "unterminated quoted identifier; add the closing \"";
const UNTERMINATED_STRING: &str = "unterminated quoted string; add the closing '";
const COPY_WITHOUT_TERMINATOR: &str = "COPY ... FROM stdin data has no terminating \\. line; \
     add a line containing only \\. after the last data row";
const META_COPY_WITHOUT_TERMINATOR: &str = "\\copy ... from stdin data has no terminating \\. \
     line; add a line containing only \\. after the last data row";

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_text(text: &str) -> Scan {
        scan(text, &LineIndex::new(text)).expect("scan succeeds")
    }

    fn scan_error(text: &str) -> ParseError {
        scan(text, &LineIndex::new(text)).expect_err("scan fails")
    }

    #[test]
    fn separators_skip_quotes_and_comments() {
        let text = "SELECT ';', \"a;b\" -- c;\n/* d; /* e; */ */ FROM t; SELECT $$;$$;";
        let scanned = scan_text(text);
        let last = text.len() - 1;
        assert_eq!(
            scanned.separators,
            vec![text.find(" SELECT").unwrap() - 1, last]
        );
        assert!(scanned.blanked.is_none());
    }

    #[test]
    fn parameter_is_not_a_dollar_quote() {
        let text = "SELECT $1; SELECT $2;";
        assert_eq!(scan_text(text).separators, vec![9, 20]);
    }

    #[test]
    fn dollar_inside_identifier_is_not_a_quote() {
        let text = "SELECT a$$b; SELECT 2;";
        assert_eq!(scan_text(text).separators.len(), 2);
    }

    #[test]
    fn lone_dollar_inside_dollar_body() {
        let text = "SELECT $$ costs $5; $ x $$; SELECT 2;";
        assert_eq!(scan_text(text).separators.len(), 2);
    }

    #[test]
    fn nested_tag_does_not_close_outer_quote() {
        let text = "DO $fn$ BEGIN PERFORM $q$;$q$; END $fn$; SELECT 1;";
        let scanned = scan_text(text);
        assert_eq!(
            scanned.separators,
            vec![text.find("; SELECT 1").unwrap(), text.len() - 1]
        );
    }

    #[test]
    fn escape_string_needs_lone_e() {
        // In `ne'a\'` the backslash is data and the quote after it closes
        // the string, so the `;` that follows ends the statement.
        let text = "SELECT ne'a\\'; SELECT E'b\\';';";
        let scanned = scan_text(text);
        assert_eq!(scanned.separators, vec![13, text.len() - 1]);
    }

    #[test]
    fn meta_command_after_blanks_is_blanked() {
        let text = "SELECT 1;\n  \\echo hi; there\r\nSELECT 'a\\b';\n";
        let scanned = scan_text(text);
        let meta = &scanned.meta_commands[0];
        assert_eq!(meta.command, "echo");
        assert_eq!((meta.line, meta.column), (2, 3));
        assert_eq!(meta.text, "\\echo hi; there");
        assert_eq!(scanned.meta_commands.len(), 1);

        let blanked = scanned.blanked.expect("text was blanked");
        assert_eq!(blanked.len(), text.len());
        assert_eq!(blanked, "SELECT 1;\n                 \r\nSELECT 'a\\b';\n");
        assert_eq!(scanned.separators.len(), 2);
    }

    #[test]
    fn backslash_semicolon_splits_without_meta_command() {
        let text = "SELECT 1\\; SELECT 2;";
        let scanned = scan_text(text);
        assert!(scanned.meta_commands.is_empty());
        assert_eq!(scanned.separators, vec![9, text.len() - 1]);
        assert_eq!(scanned.blanked.as_deref(), Some("SELECT 1 ; SELECT 2;"));
    }

    #[test]
    fn copy_data_is_blanked_and_counted() {
        let text = "copy t from STDIN;\na;b\n\\.\nSELECT 1;";
        let scanned = scan_text(text);
        let (separator, data) = &scanned.copies[0];
        assert_eq!(*separator, 17);
        assert_eq!(data.rows, 1);
        assert_eq!(data.data, "a;b\n");
        assert_eq!(&text[data.span.clone()], "a;b\n\\.");
        let blanked = scanned.blanked.expect("text was blanked");
        assert_eq!(blanked, "copy t from STDIN;\n   \n  \nSELECT 1;");
    }

    #[test]
    fn copy_to_stdout_has_no_data() {
        let text = "COPY t TO STDOUT;\nSELECT 1;";
        let scanned = scan_text(text);
        assert!(scanned.copies.is_empty());
        assert_eq!(scanned.separators.len(), 2);
    }

    #[test]
    fn directive_text_is_trimmed() {
        let text = "--pgshift:  no-transaction  \nSELECT 1; -- pgshift:ignore a b\n-- other";
        let scanned = scan_text(text);
        let directives: Vec<(&str, usize)> = scanned
            .directives
            .iter()
            .map(|directive| (directive.text.as_str(), directive.line))
            .collect();
        assert_eq!(directives, vec![("no-transaction", 1), ("ignore a b", 2)]);
        assert_eq!(scanned.comments.len(), 3);
    }

    #[test]
    fn unterminated_literals_report_their_start() {
        assert_eq!(scan_error("SELECT 1;\n\nSELECT E'a\\';").line, 3);
        assert_eq!(scan_error("SELECT $x$ body $y$").column, 8);
        assert_eq!(scan_error("a\n b /* c").column, 4);
    }

    #[test]
    fn nul_byte_is_rejected() {
        let error = scan_error("SELECT 1;\0");
        assert_eq!(error.offset, 9);
        assert!(error.message.contains("NUL"));
    }
}
