//! Byte offset to line and column conversion.

/// Start offsets of every line of a text, for converting byte offsets to
/// 1-based line and column numbers in `O(log lines)` each.
///
/// A line ends at `\n`, so with CRLF endings the `\r` belongs to the line it
/// ends. Columns count characters, not bytes.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Builds the index in one pass over `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = Vec::with_capacity(text.len() / 32 + 1);
        starts.push(0);
        for (offset, byte) in text.bytes().enumerate() {
            if byte == b'\n' {
                starts.push(offset + 1);
            }
        }
        LineIndex { starts }
    }

    /// Returns the 1-based line that contains byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    /// Returns the byte offset where 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.starts[line - 1]
    }

    /// Returns the 1-based line and character column of byte `offset` in
    /// `text`, which must be the text the index was built from.
    ///
    /// An offset inside a multibyte character counts that character as
    /// already passed; an offset past the end is clamped to the end.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.line(offset);
        let start = self.line_start(line);
        (line, count_chars(&text.as_bytes()[start..offset]) + 1)
    }

    /// Number of lines, counting the line after a final newline.
    pub fn line_count(&self) -> usize {
        self.starts.len()
    }
}

/// Converts offsets in increasing order to lines and columns, counting
/// characters only from the previous offset when it is on the same line.
///
/// A file written on one long line stays linear in its length this way,
/// where [`LineIndex::line_col`] would count from the line start each time.
#[derive(Debug)]
pub(crate) struct ColumnCursor {
    offset: usize,
    line: usize,
    column: usize,
}

impl ColumnCursor {
    pub(crate) fn new() -> Self {
        ColumnCursor {
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    /// Returns the 1-based line and character column of byte `offset` in
    /// `text`, which `index` was built from. An offset before the previous
    /// one is counted from its line start.
    pub(crate) fn line_col(
        &mut self,
        index: &LineIndex,
        text: &str,
        offset: usize,
    ) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = index.line(offset);
        if line == self.line && offset >= self.offset {
            self.column += count_chars(&text.as_bytes()[self.offset..offset]);
        } else {
            let (_, column) = index.line_col(text, offset);
            self.column = column;
        }
        self.line = line;
        self.offset = offset;
        (self.line, self.column)
    }
}

fn count_chars(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .filter(|&&byte| !is_utf8_continuation(byte))
        .count()
}

fn is_utf8_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

/// Returns the 1-based line and character column of byte `offset` in `text`.
///
/// This scans `text` on every call; build a [`LineIndex`] once when
/// converting many offsets of the same text.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(text, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_is_line_one_column_one() {
        assert_eq!(line_col("SELECT 1", 0), (1, 1));
    }

    #[test]
    fn offsets_after_newlines() {
        let text = "a\nbc\n\nd";
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(text, 1), (1, 2));
        assert_eq!(index.line_col(text, 2), (2, 1));
        assert_eq!(index.line_col(text, 3), (2, 2));
        assert_eq!(index.line_col(text, 5), (3, 1));
        assert_eq!(index.line_col(text, 6), (4, 1));
        assert_eq!(index.line_count(), 4);
    }

    #[test]
    fn crlf_keeps_carriage_return_on_its_line() {
        let text = "a\r\nb";
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(text, 1), (1, 2));
        assert_eq!(index.line_col(text, 3), (2, 1));
    }

    #[test]
    fn columns_count_characters() {
        let text = "-- é ü\n/* 日本 */ SELECT";
        let select = text.find("SELECT").unwrap();
        assert_eq!(line_col(text, select), (2, 10));
    }

    #[test]
    fn cursor_matches_index() {
        let text = "é; ü;\nab; c";
        let index = LineIndex::new(text);
        let mut cursor = ColumnCursor::new();
        let offsets = [0, 3, 4, 7, 9, 11, 2, 12];
        for offset in offsets {
            assert_eq!(
                cursor.line_col(&index, text, offset),
                index.line_col(text, offset),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn offset_past_end_is_clamped() {
        assert_eq!(line_col("ab", 10), (1, 3));
    }
}
