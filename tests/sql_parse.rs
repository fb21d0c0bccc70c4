//! Splitting and parsing of migration files, without a database.
//!
//! The real-world inputs come from `tests/cases/*/input.sql`. The small
//! files under `tests/fixtures/sql/ok` must parse and those under
//! `tests/fixtures/sql/err` must fail at the line their first comment names.

use std::fs;
use std::path::{Path, PathBuf};

use pg_query::NodeEnum;
use pgshift::sql::{self, ParseError, ParsedFile};

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read_case(name: &str) -> String {
    let path = manifest_path(&format!("tests/cases/{name}/input.sql"));
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn parse_ok(text: &str) -> ParsedFile {
    sql::parse(text).unwrap_or_else(|error| panic!("parse failed at {error}\n{text}"))
}

fn parse_err(text: &str) -> ParseError {
    match sql::parse(text) {
        Ok(parsed) => panic!(
            "parse succeeded with {} statements",
            parsed.statements.len()
        ),
        Err(error) => error,
    }
}

fn statement_lines(parsed: &ParsedFile) -> Vec<usize> {
    parsed
        .statements
        .iter()
        .map(|statement| statement.line)
        .collect()
}

/// Name of a parse tree node kind, such as `CreateFunctionStmt`.
fn kind(node: &NodeEnum) -> String {
    let debug = format!("{node:?}");
    debug.split('(').next().unwrap_or_default().to_string()
}

fn statement_kinds(parsed: &ParsedFile) -> Vec<String> {
    parsed
        .statements
        .iter()
        .map(|statement| kind(&statement.node))
        .collect()
}

/// Checks that each statement's span, text, line and column agree with the
/// file and that the text runs from the first token to the last.
fn assert_spans_consistent(text: &str, parsed: &ParsedFile) {
    let index = sql::LineIndex::new(text);
    for (position, statement) in parsed.statements.iter().enumerate() {
        let label = format!("statement {position} ({:?})", statement.text);
        assert_eq!(statement.index, position, "{label}: index");
        assert_eq!(
            &text[statement.span.clone()],
            statement.text,
            "{label}: span"
        );
        assert!(!statement.text.is_empty(), "{label}: empty text");
        assert!(
            !statement.text.starts_with(char::is_whitespace),
            "{label}: leading whitespace"
        );
        assert!(
            !statement.text.starts_with("--"),
            "{label}: leading comment"
        );
        assert!(
            !statement.text.starts_with("/*"),
            "{label}: leading comment"
        );
        assert!(
            !statement.text.ends_with(char::is_whitespace),
            "{label}: trailing whitespace"
        );
        assert!(
            !statement.text.ends_with(';'),
            "{label}: trailing semicolon"
        );
        assert_eq!(
            index.line_col(text, statement.span.start),
            (statement.line, statement.column),
            "{label}: line and column"
        );
        assert_eq!(
            index.line(statement.span.end - 1),
            statement.end_line,
            "{label}: end line"
        );
    }
}

#[test]
fn dollar_quoted_bodies_case() {
    let text = read_case("dollar-quoted-bodies-splitter");
    let parsed = parse_ok(&text);

    assert_eq!(statement_lines(&parsed), vec![1, 10, 18]);
    assert_eq!(
        statement_kinds(&parsed),
        vec!["CreateFunctionStmt", "DoStmt", "CreateTrigStmt"]
    );
    let function = &parsed.statements[0];
    assert!(function.text.starts_with("CREATE OR REPLACE FUNCTION"));
    assert!(function.text.contains("$q$a;b$q$"));
    assert!(function.text.ends_with("$fn$"));
    assert_eq!(function.end_line, 8);
    assert!(parsed.statements[1].text.starts_with("DO $$"));
    assert!(parsed.statements[1].text.ends_with("$$"));
    assert_spans_consistent(&text, &parsed);
}

#[test]
fn psql_meta_commands_case() {
    let text = read_case("psql-meta-commands");
    let parsed = parse_ok(&text);

    assert_eq!(statement_lines(&parsed), vec![3, 4, 6]);
    assert_eq!(
        statement_kinds(&parsed),
        vec!["VariableSetStmt", "IndexStmt", "SelectStmt"]
    );
    let commands: Vec<(&str, usize)> = parsed
        .meta_commands
        .iter()
        .map(|meta| (meta.command.as_str(), meta.line))
        .collect();
    assert_eq!(commands, vec![("set", 1), ("connect", 2), ("i", 5)]);
    assert_eq!(parsed.meta_commands[1].text, "\\connect appdb");
    assert_eq!(parsed.meta_commands[2].column, 1);
    assert!(parsed.statements[2]
        .text
        .contains("\\connect is not a command"));
    assert_spans_consistent(&text, &parsed);
}

#[test]
fn copy_from_stdin_case() {
    let text = read_case("copy-from-stdin-in-migration");
    let parsed = parse_ok(&text);

    assert_eq!(statement_lines(&parsed), vec![1, 2, 6]);
    assert_eq!(
        statement_kinds(&parsed),
        vec!["CreateStmt", "CopyStmt", "InsertStmt"]
    );
    assert!(parsed.statements[0].copy_data.is_none());
    assert!(parsed.statements[2].copy_data.is_none());

    let copy = parsed.statements[1].copy_data.as_ref().expect("COPY data");
    assert_eq!(copy.rows, 2);
    assert_eq!(copy.data, "EUR\tEuro; shared currency\nUSD\tUS dollar\n");
    let index = sql::LineIndex::new(&text);
    assert_eq!(index.line(copy.span.start), 3);
    assert_eq!(index.line(copy.span.end - 1), 5);
    assert!(text[copy.span.clone()].ends_with("\\."));
    assert_spans_consistent(&text, &parsed);
}

/// Every line that `cases.json` gives a verdict for contains a statement or a
/// meta-command that starts there and contains the expected text.
#[test]
fn case_expectations_find_statements() {
    let path = manifest_path("tests/cases/cases.json");
    let cases: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let cases = cases.as_array().expect("cases.json is an array");
    assert!(!cases.is_empty());

    for case in cases {
        let id = case["id"].as_str().expect("case id");
        let text = read_case(id);
        let parsed = sql::parse(&text).unwrap_or_else(|error| panic!("{id}:{error}"));
        assert_spans_consistent(&text, &parsed);

        let expectations = case["expectations"].as_array().expect("expectations");
        for expectation in expectations {
            let line = expectation["line"].as_u64().expect("line") as usize;
            let needle = expectation["match"].as_str().expect("match");
            let statement_found = parsed
                .statements
                .iter()
                .any(|statement| statement.line == line && statement.text.contains(needle));
            let meta_found = parsed
                .meta_commands
                .iter()
                .any(|meta| meta.line == line && meta.text.contains(needle));
            assert!(
                statement_found || meta_found,
                "{id}: nothing at line {line} contains {needle:?}"
            );
        }
    }
}

#[test]
fn semicolons_in_comments_and_strings() {
    let text = "-- one; two\nSELECT 'a;b', '-- not a comment' /* c; d */;\n\
                /* x; y */ SELECT \"col;umn\" FROM t;\n";
    let parsed = parse_ok(text);
    assert_eq!(parsed.statements.len(), 2);
    assert_eq!(
        parsed.statements[0].text,
        "SELECT 'a;b', '-- not a comment'"
    );
    assert_eq!(parsed.statements[1].text, "SELECT \"col;umn\" FROM t");
    assert_eq!(parsed.statements[1].column, 12);
    assert_spans_consistent(text, &parsed);
}

#[test]
fn escape_strings_with_backslash_quotes() {
    let text = "SELECT E'it\\'s; fine', e'\\\\';\nSELECT 'plain\\';\n";
    let parsed = parse_ok(text);
    assert_eq!(parsed.statements.len(), 2);
    assert_eq!(parsed.statements[0].text, "SELECT E'it\\'s; fine', e'\\\\'");
    assert_eq!(parsed.statements[1].line, 2);
    assert_spans_consistent(text, &parsed);
}

#[test]
fn nested_block_comments() {
    let text = "/* outer /* inner; */ still comment; */ SELECT 1;\nSELECT 2;";
    let parsed = parse_ok(text);
    assert_eq!(parsed.statements.len(), 2);
    assert_eq!(parsed.statements[0].text, "SELECT 1");
    assert_eq!(parsed.statements[0].column, 41);
    assert_spans_consistent(text, &parsed);
}

#[test]
fn last_statement_without_semicolon() {
    let text = "SELECT 1;\nSELECT 2\n-- trailing comment\n";
    let parsed = parse_ok(text);
    assert_eq!(parsed.statements.len(), 2);
    assert_eq!(parsed.statements[1].text, "SELECT 2");
    assert_eq!(parsed.statements[1].end_line, 2);
    assert_spans_consistent(text, &parsed);
}

#[test]
fn empty_file_has_no_statements() {
    let parsed = parse_ok("");
    assert!(parsed.statements.is_empty());
    assert!(parsed.meta_commands.is_empty());
}

#[test]
fn comment_only_file_has_no_statements() {
    let parsed = parse_ok("-- nothing here;\n/* nor; here */\n\n");
    assert!(parsed.statements.is_empty());
}

#[test]
fn crlf_line_endings() {
    let text = "SELECT 1;\r\n-- note\r\nCREATE TABLE t (\r\n  a int\r\n);\r\n";
    let parsed = parse_ok(text);
    assert_eq!(statement_lines(&parsed), vec![1, 3]);
    assert_eq!(parsed.statements[1].end_line, 5);
    assert_eq!(
        parsed.statements[1].text,
        "CREATE TABLE t (\r\n  a int\r\n)"
    );
    assert_spans_consistent(text, &parsed);
}

#[test]
fn crlf_copy_data() {
    let text = "COPY t FROM stdin;\r\n1\r\n2\r\n\\.\r\nSELECT 1;\r\n";
    let parsed = parse_ok(text);
    assert_eq!(statement_lines(&parsed), vec![1, 5]);
    let copy = parsed.statements[0].copy_data.as_ref().expect("COPY data");
    assert_eq!(copy.rows, 2);
    assert_eq!(copy.data, "1\r\n2\r\n");
    assert!(text[copy.span.clone()].ends_with("2\r\n\\."));
}

#[test]
fn byte_order_mark_is_skipped() {
    let text = "\u{feff}SELECT 1;\nSELECT 2;";
    let parsed = parse_ok(text);
    assert_eq!(parsed.statements[0].text, "SELECT 1");
    assert_eq!(
        (parsed.statements[0].line, parsed.statements[0].column),
        (1, 2)
    );
    assert_spans_consistent(text, &parsed);
}

#[test]
fn multibyte_text_before_statement() {
    let text = "/* café ☕ */ SELECT 'naïve';\n/* ü */ SELECT 2;";
    let parsed = parse_ok(text);
    assert_eq!(parsed.statements[0].column, 14);
    assert_eq!(parsed.statements[1].column, 9);
    assert_eq!(parsed.statements[0].text, "SELECT 'naïve'");
    assert_spans_consistent(text, &parsed);
}

#[test]
fn directives_are_recorded() {
    let text = "-- pgshift:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n\
                --   pgshift:ignore rule-a,rule-b reason text  \nDROP TABLE t;\n";
    let parsed = parse_ok(text);
    let directives: Vec<(&str, usize)> = parsed
        .directives
        .iter()
        .map(|directive| (directive.text.as_str(), directive.line))
        .collect();
    assert_eq!(
        directives,
        vec![
            ("no-transaction", 1),
            ("ignore rule-a,rule-b reason text", 3)
        ]
    );
    assert_eq!(statement_lines(&parsed), vec![2, 4]);
}

#[test]
fn routine_body_keeps_inner_semicolons() {
    let text = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  \
                SELECT CASE WHEN true THEN 2 END;\nEND;\nSELECT 3;";
    let parsed = parse_ok(text);
    assert_eq!(statement_lines(&parsed), vec![1, 6]);
    assert_eq!(
        statement_kinds(&parsed),
        vec!["CreateFunctionStmt", "SelectStmt"]
    );
    assert_spans_consistent(text, &parsed);
}

#[test]
fn gexec_ends_a_statement() {
    let text = "SELECT 'CREATE TABLE x ()' \\gexec\nSELECT 2;";
    let parsed = parse_ok(text);
    assert_eq!(statement_lines(&parsed), vec![1, 2]);
    assert_eq!(parsed.statements[0].text, "SELECT 'CREATE TABLE x ()'");
    assert_eq!(parsed.meta_commands[0].command, "gexec");
    assert_eq!(parsed.meta_commands[0].column, 28);
}

#[test]
fn meta_copy_data_is_skipped() {
    let text = "\\copy t (a) from stdin\n1\n2; not sql\n\\.\nSELECT 1;";
    let parsed = parse_ok(text);
    assert_eq!(statement_lines(&parsed), vec![5]);
    let copy = parsed.meta_commands[0]
        .copy_data
        .as_ref()
        .expect("\\copy data");
    assert_eq!(copy.rows, 2);
    assert_eq!(copy.data, "1\n2; not sql\n");
}

#[test]
fn syntax_error_in_third_statement() {
    let text = "SELECT 1;\nSELECT 2;\n-- broken\nALTER TABLE t ADD COLUMN c int FOO;\nSELECT 4;\n";
    let error = parse_err(text);
    assert_eq!(error.line, 4);
    assert_eq!(error.column, 32);
    assert_eq!(error.offset, text.find("FOO").unwrap());
    assert!(error.message.contains("\"FOO\""), "{}", error.message);
}

#[test]
fn error_at_end_of_input() {
    let error = parse_err("SELECT 1;\nCREATE TABLE t (a int\n");
    assert_eq!(error.message, "syntax error at end of input");
    assert_eq!((error.line, error.column), (2, 22));
}

#[test]
fn unterminated_dollar_quote() {
    let text = "SELECT 1;\n\nDO $body$\nBEGIN\n  NULL;\nEND\n$bod$;\n";
    let error = parse_err(text);
    assert_eq!((error.line, error.column), (3, 4));
    assert!(error.message.contains("$body$"), "{}", error.message);
}

#[test]
fn unterminated_string_and_comment() {
    let string = parse_err("SELECT 1;\nSELECT 'abc;\n");
    assert_eq!((string.line, string.column), (2, 8));

    let comment = parse_err("SELECT 1;\n  /* a /* b */\nSELECT 2;");
    assert_eq!((comment.line, comment.column), (2, 3));

    let identifier = parse_err("SELECT \"abc");
    assert_eq!((identifier.line, identifier.column), (1, 8));
}

#[test]
fn copy_without_terminator() {
    let error = parse_err("SELECT 1;\n  COPY t FROM STDIN (FORMAT csv);\n1,2\n");
    assert_eq!((error.line, error.column), (2, 3));
    assert!(error.message.contains("\\."), "{}", error.message);
}

#[test]
fn large_file_parses() {
    // About 5 MB and 80,000 statements: this guards against a slow path
    // that is quadratic in the file size, without timing anything.
    let mut text = String::with_capacity(6_000_000);
    for number in 0..80_000 {
        text.push_str(&format!(
            "-- step {number}\nINSERT INTO events (id, note) VALUES ({number}, 'note; {number}');\n"
        ));
    }
    assert!(text.len() > 5_000_000);
    let parsed = parse_ok(&text);
    assert_eq!(parsed.statements.len(), 80_000);
    let last = parsed.statements.last().unwrap();
    assert_eq!(last.line, 160_000);
    assert_eq!(&text[last.span.clone()], last.text);
}

#[test]
fn long_single_line_parses() {
    // Many statements on one line must not make the column count quadratic.
    let text = "SELECT 1; ".repeat(80_000);
    let parsed = parse_ok(&text);
    assert_eq!(parsed.statements.len(), 80_000);
    let last = parsed.statements.last().unwrap();
    assert_eq!((last.line, last.column), (1, 10 * 79_999 + 1));
}

#[test]
fn fixtures_ok_parse() {
    for path in fixture_files("ok") {
        let text = fs::read_to_string(&path).unwrap();
        let parsed = sql::parse(&text).unwrap_or_else(|error| panic!("{}:{error}", path.display()));
        assert!(!parsed.statements.is_empty(), "{}", path.display());
        assert_spans_consistent(&text, &parsed);
    }
}

#[test]
fn fixtures_err_fail_at_line() {
    for path in fixture_files("err") {
        let text = fs::read_to_string(&path).unwrap();
        let expected = expected_error_line(&text)
            .unwrap_or_else(|| panic!("{}: first line must be `-- error-line: N`", path.display()));
        let error = match sql::parse(&text) {
            Ok(_) => panic!("{}: parse succeeded", path.display()),
            Err(error) => error,
        };
        assert_eq!(error.line, expected, "{}: {error}", path.display());
    }
}

fn fixture_files(kind: &str) -> Vec<PathBuf> {
    let directory = manifest_path(&format!("tests/fixtures/sql/{kind}"));
    let mut files: Vec<PathBuf> = fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", directory.display());
    files
}

fn expected_error_line(text: &str) -> Option<usize> {
    let first = text.lines().next()?;
    first.strip_prefix("-- error-line:")?.trim().parse().ok()
}

#[test]
fn long_file_parsed_in_chunks_keeps_spans() {
    // More statements than one parser call takes, with comments, strings
    // and a function body holding `;` on the way.
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..1500 {
        let statement = match i % 4 {
            0 => format!("CREATE TABLE t{i} (id int, note text DEFAULT 'a;b')"),
            1 => format!("CREATE INDEX i{i} ON t{} (id)", i - 1),
            2 => format!("CREATE FUNCTION f{i}() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$"),
            _ => format!("-- comment; {i}\nINSERT INTO t{} VALUES ({i}, 'x')", i - 3),
        };
        let line = text.lines().count() + 1 + usize::from(i % 4 == 3);
        let code = statement.rsplit('\n').next().unwrap().to_string();
        expected.push((line, code));
        text.push_str(&statement);
        text.push_str(";\n");
    }
    let parsed = pgshift::sql::parse(&text).unwrap();
    assert_eq!(parsed.statements.len(), 1500);
    for (statement, (line, code)) in parsed.statements.iter().zip(&expected) {
        assert_eq!(&statement.text, code);
        assert_eq!(statement.line, *line, "{code}");
        assert_eq!(&text[statement.span.clone()], statement.text);
    }
}

#[test]
fn long_file_error_found_past_first_chunk() {
    let mut text = String::new();
    for i in 0..1200 {
        text.push_str(&format!("SELECT {i};\n"));
    }
    text.push_str("SELEC 1;\n");
    let err = pgshift::sql::parse(&text).unwrap_err();
    assert_eq!(err.line, 1201);
}
