//! The `blue_green` block of a phase: the green database, the captured
//! tables with their replay statements, the catch-up limits and the hooks
//! around each stage.
//!
//! Replay statements name values of the captured row as `:new.column`,
//! `:old.column`, or `:new` / `:old` for the whole row as JSON. Loading
//! replaces each name with a positional parameter (`$1`, `$2`, ...) and
//! parses the result with the PostgreSQL grammar, so a syntax error stops
//! the plan at load time. Values are always bound, never pasted into SQL.

use std::time::Duration;

use pg_query::protobuf::Token;
use serde::Deserialize;

use super::raw::PlanDuration;

/// The settings of a blue-green phase.
#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreen {
    pub green: GreenTarget,
    /// Tables whose writes are captured on blue and replayed on green, in
    /// plan order.
    pub capture: Vec<CaptureTable>,
    /// Tables outside `capture` whose writes during the window may be lost;
    /// every other written table stops the cutover.
    pub allow_writes: Vec<String>,
    /// Catch-up ends and the cutover starts once fewer events than this
    /// wait for replay.
    pub catch_up_threshold: u64,
    /// Events replayed per transaction on green.
    pub batch_size: u32,
    /// How long the cutover waits, after writes are paused, for
    /// transactions that were open on blue to end.
    pub drain_timeout: Duration,
    /// The forms in which green runs the phase's migrations.
    pub green_forms: GreenForms,
    pub hooks: Hooks,
}

/// The forms of the statements that green runs (`green_forms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GreenForms {
    /// The online forms that `apply` runs in place: concurrent index
    /// builds, `NOT VALID` constraints validated later, and so on.
    #[default]
    Online,
    /// The statements as written in the migration files. No application
    /// traffic reaches green before the cutover, so the locks of the plain
    /// forms block no application session, and a plain index build or constraint check is
    /// one pass instead of two.
    Plain,
}

impl GreenForms {
    pub fn as_str(self) -> &'static str {
        match self {
            GreenForms::Online => "online",
            GreenForms::Plain => "plain",
        }
    }
}

impl<'de> Deserialize<'de> for GreenForms {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "online" => Ok(GreenForms::Online),
            "plain" => Ok(GreenForms::Plain),
            other => Err(serde::de::Error::custom(format!(
                "unknown green_forms `{other}`, expected `online` or `plain`"
            ))),
        }
    }
}

/// The green database.
#[derive(Debug, Clone, PartialEq)]
pub enum GreenTarget {
    /// A database on blue's server, reached with blue's connection settings.
    /// pgshift creates it when it does not exist.
    Database(String),
    /// A libpq connection string or URL of an existing, empty database.
    Conninfo(String),
}

/// One captured table.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureTable {
    /// The table as written in the plan, optionally schema-qualified.
    pub table: String,
    pub insert: ReplayStatement,
    pub update: ReplayStatement,
    pub delete: ReplayStatement,
    /// Compare the row counts of this table on blue and green before the
    /// switch; turn off when the green schema merges or splits the table.
    pub verify_count: bool,
}

impl CaptureTable {
    /// Returns the replay statement of `op` (`insert`, `update` or `delete`).
    pub fn statement(&self, op: &str) -> Option<&ReplayStatement> {
        match op {
            "insert" => Some(&self.insert),
            "update" => Some(&self.update),
            "delete" => Some(&self.delete),
            _ => None,
        }
    }
}

/// A replay statement with its named parameters resolved to positions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStatement {
    /// The statement as written in the plan.
    pub text: String,
    /// The statement with `$1`, `$2`, ... in place of the names.
    pub sql: String,
    /// The value of `$n` is `params[n - 1]`.
    pub params: Vec<RowValue>,
}

/// A value taken from a captured row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowValue {
    pub row: RowImage,
    /// The column; `None` for the whole row as JSON.
    pub column: Option<String>,
}

impl std::fmt::Display for RowValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = match self.row {
            RowImage::Old => "old",
            RowImage::New => "new",
        };
        match &self.column {
            Some(column) => write!(f, ":{row}.{column}"),
            None => write!(f, ":{row}"),
        }
    }
}

/// The row before (`old`) or after (`new`) a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowImage {
    Old,
    New,
}

/// Hooks by stage. Each list runs in order; the first failure stops the
/// phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hooks {
    pub before_capture: Vec<Hook>,
    pub after_capture: Vec<Hook>,
    pub before_copy: Vec<Hook>,
    pub after_copy: Vec<Hook>,
    pub before_migrate: Vec<Hook>,
    pub after_migrate: Vec<Hook>,
    pub before_catch_up: Vec<Hook>,
    pub after_catch_up: Vec<Hook>,
    /// Stops application writes on blue at the start of the cutover.
    pub pause_writes: Vec<Hook>,
    /// Points the application at green.
    pub switch_traffic: Vec<Hook>,
    /// Lets the application write again, now on green.
    pub resume_writes: Vec<Hook>,
    pub after_cutover: Vec<Hook>,
}

/// One hook.
#[derive(Debug, Clone, PartialEq)]
pub enum Hook {
    /// SQL run on blue or green in one implicit transaction.
    Sql { on: Side, sql: String },
    /// A command run with `sh -c`.
    Shell { command: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Blue,
    Green,
}

// ---------------------------------------------------------------------------
// The YAML form.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBlueGreen {
    pub green: String,
    pub capture: Vec<RawCaptureTable>,
    #[serde(default)]
    pub allow_writes: Vec<String>,
    #[serde(default)]
    pub catch_up_threshold: Option<u64>,
    #[serde(default)]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub drain_timeout: Option<PlanDuration>,
    #[serde(default)]
    pub green_forms: GreenForms,
    #[serde(default)]
    pub hooks: RawHooks,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCaptureTable {
    pub table: String,
    pub insert: String,
    pub update: String,
    pub delete: String,
    #[serde(default)]
    pub verify_count: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    #[serde(default)]
    before_capture: Vec<RawHook>,
    #[serde(default)]
    after_capture: Vec<RawHook>,
    #[serde(default)]
    before_copy: Vec<RawHook>,
    #[serde(default)]
    after_copy: Vec<RawHook>,
    #[serde(default)]
    before_migrate: Vec<RawHook>,
    #[serde(default)]
    after_migrate: Vec<RawHook>,
    #[serde(default)]
    before_catch_up: Vec<RawHook>,
    #[serde(default)]
    after_catch_up: Vec<RawHook>,
    #[serde(default)]
    pause_writes: Vec<RawHook>,
    #[serde(default)]
    switch_traffic: Vec<RawHook>,
    #[serde(default)]
    resume_writes: Vec<RawHook>,
    #[serde(default)]
    after_cutover: Vec<RawHook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    on: Option<Side>,
    #[serde(default)]
    shell: Option<String>,
}

impl<'de> Deserialize<'de> for Side {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "blue" => Ok(Side::Blue),
            "green" => Ok(Side::Green),
            other => Err(serde::de::Error::custom(format!(
                "unknown database `{other}`, expected `blue` or `green`"
            ))),
        }
    }
}

/// Default of `catch_up_threshold`.
pub const DEFAULT_CATCH_UP_THRESHOLD: u64 = 1_000;
/// Default of `batch_size`.
pub const DEFAULT_BATCH_SIZE: u32 = 1_000;
/// Default of `drain_timeout`.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Validates the `blue_green` block found at `at` (e.g.
/// `phases[1].blue_green`).
pub(super) fn resolve(raw: &RawBlueGreen, at: &str) -> Result<BlueGreen, String> {
    let green = raw.green.trim();
    if green.is_empty() {
        return Err(format!(
            "{at}.green is empty; name the green database, or give its connection string"
        ));
    }
    let green = if green.contains('=') || green.contains("://") {
        GreenTarget::Conninfo(green.to_string())
    } else {
        GreenTarget::Database(green.to_string())
    };
    if raw.capture.is_empty() {
        return Err(format!(
            "{at}.capture is empty; list the tables whose writes must reach green"
        ));
    }

    let mut capture: Vec<CaptureTable> = Vec::with_capacity(raw.capture.len());
    for (index, entry) in raw.capture.iter().enumerate() {
        let key = format!("{at}.capture[{index}]");
        let table = entry.table.trim().to_string();
        if table.is_empty() {
            return Err(format!("{key}.table is empty; name the captured table"));
        }
        if capture.iter().any(|c| c.table == table) {
            return Err(format!(
                "{key}: table `{table}` is captured twice; merge the entries"
            ));
        }
        let parse = |op: &str, text: &str| {
            parse_replay(text).map_err(|message| format!("{key}.{op}: {message}"))
        };
        capture.push(CaptureTable {
            insert: parse("insert", &entry.insert)?,
            update: parse("update", &entry.update)?,
            delete: parse("delete", &entry.delete)?,
            verify_count: entry.verify_count.unwrap_or(true),
            table,
        });
    }
    for (index, table) in raw.allow_writes.iter().enumerate() {
        if capture.iter().any(|c| &c.table == table) {
            return Err(format!(
                "{at}.allow_writes[{index}]: `{table}` is also captured; remove it from \
                 one of the two lists"
            ));
        }
    }

    let batch_size = raw.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if batch_size == 0 {
        return Err(format!("{at}.batch_size is 0; use at least 1"));
    }
    Ok(BlueGreen {
        green,
        capture,
        allow_writes: raw.allow_writes.clone(),
        catch_up_threshold: raw.catch_up_threshold.unwrap_or(DEFAULT_CATCH_UP_THRESHOLD),
        batch_size,
        drain_timeout: raw.drain_timeout.map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.0),
        green_forms: raw.green_forms,
        hooks: resolve_hooks(&raw.hooks, &format!("{at}.hooks"))?,
    })
}

fn resolve_hooks(raw: &RawHooks, at: &str) -> Result<Hooks, String> {
    let list = |name: &str, hooks: &[RawHook]| -> Result<Vec<Hook>, String> {
        hooks
            .iter()
            .enumerate()
            .map(|(index, hook)| resolve_hook(hook, &format!("{at}.{name}[{index}]")))
            .collect()
    };
    Ok(Hooks {
        before_capture: list("before_capture", &raw.before_capture)?,
        after_capture: list("after_capture", &raw.after_capture)?,
        before_copy: list("before_copy", &raw.before_copy)?,
        after_copy: list("after_copy", &raw.after_copy)?,
        before_migrate: list("before_migrate", &raw.before_migrate)?,
        after_migrate: list("after_migrate", &raw.after_migrate)?,
        before_catch_up: list("before_catch_up", &raw.before_catch_up)?,
        after_catch_up: list("after_catch_up", &raw.after_catch_up)?,
        pause_writes: list("pause_writes", &raw.pause_writes)?,
        switch_traffic: list("switch_traffic", &raw.switch_traffic)?,
        resume_writes: list("resume_writes", &raw.resume_writes)?,
        after_cutover: list("after_cutover", &raw.after_cutover)?,
    })
}

fn resolve_hook(raw: &RawHook, at: &str) -> Result<Hook, String> {
    match (&raw.sql, &raw.shell) {
        (Some(sql), None) => {
            let Some(on) = raw.on else {
                return Err(format!(
                    "{at}: an `sql` hook needs `on: blue` or `on: green`"
                ));
            };
            if sql.trim().is_empty() {
                return Err(format!("{at}.sql is empty"));
            }
            Ok(Hook::Sql {
                on,
                sql: sql.clone(),
            })
        }
        (None, Some(command)) => {
            if raw.on.is_some() {
                return Err(format!(
                    "{at}: `on` applies to `sql` hooks only; remove it from the shell hook"
                ));
            }
            if command.trim().is_empty() {
                return Err(format!("{at}.shell is empty"));
            }
            Ok(Hook::Shell {
                command: command.clone(),
            })
        }
        (Some(_), Some(_)) => Err(format!(
            "{at}: a hook has either `sql` or `shell`, not both; split it into two hooks"
        )),
        (None, None) => Err(format!("{at}: a hook needs `sql` (with `on`) or `shell`")),
    }
}

/// Replaces the named parameters of `text` with positional ones and checks
/// that the result is one statement PostgreSQL can parse.
pub fn parse_replay(text: &str) -> Result<ReplayStatement, String> {
    let scan = pg_query::scan(text).map_err(|e| format!("cannot scan the statement: {e}"))?;
    let tokens = &scan.tokens;
    let slice = |i: usize| {
        let t = &tokens[i];
        &text[t.start as usize..t.end as usize]
    };
    let adjacent = |i: usize| i + 1 < tokens.len() && tokens[i].end == tokens[i + 1].start;

    let mut params: Vec<RowValue> = Vec::new();
    let mut sql = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].token == Token::Param as i32 {
            return Err(format!(
                "positional parameter `{}` is not allowed; name the value as \
                 `:new.column` or `:old.column`",
                slice(i)
            ));
        }
        let is_colon = tokens[i].token == Token::Ascii58 as i32;
        if !(is_colon && adjacent(i)) {
            i += 1;
            continue;
        }
        let row = match slice(i + 1).to_ascii_lowercase().as_str() {
            "new" => RowImage::New,
            "old" => RowImage::Old,
            other => {
                return Err(format!(
                    "`:{other}` is not a parameter; write `:new.column` or `:old.column`"
                ))
            }
        };
        let mut end = i + 2;
        let mut column = None;
        if adjacent(i + 1) && tokens[i + 2].token == Token::Ascii46 as i32 && adjacent(i + 2) {
            column = Some(identifier(slice(i + 3)));
            end = i + 4;
        }
        let value = RowValue { row, column };
        let position = match params.iter().position(|p| p == &value) {
            Some(p) => p + 1,
            None => {
                params.push(value);
                params.len()
            }
        };
        sql.push_str(&text[copied..tokens[i].start as usize]);
        sql.push_str(&format!("${position}"));
        copied = tokens[end - 1].end as usize;
        i = end;
    }
    sql.push_str(&text[copied..]);

    let parsed = pg_query::parse(&sql, 0).map_err(|e| format!("invalid SQL: {e}"))?;
    let count = parsed.protobuf.stmts.len();
    if count != 1 {
        return Err(format!(
            "contains {count} statements; write exactly one replay statement"
        ));
    }
    if params.is_empty() {
        return Err(
            "uses no value of the captured row; name them as `:new.column` or `:old.column`"
                .to_string(),
        );
    }
    Ok(ReplayStatement {
        text: text.to_string(),
        sql,
        params,
    })
}

/// Folds an identifier as PostgreSQL does: unquoted to lower case, quoted
/// as written.
fn identifier(token: &str) -> String {
    match token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => token.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_positions() {
        let statement = parse_replay(
            "UPDATE t SET revoked_at = :new.revoked_at, note = ':new.x' \
             WHERE signature = :old.signature AND k = :new.revoked_at::text",
        )
        .unwrap();
        assert_eq!(
            statement.sql,
            "UPDATE t SET revoked_at = $1, note = ':new.x' \
             WHERE signature = $2 AND k = $1::text"
        );
        assert_eq!(statement.params.len(), 2);
        assert_eq!(statement.params[0].to_string(), ":new.revoked_at");
        assert_eq!(statement.params[1].to_string(), ":old.signature");
    }

    #[test]
    fn whole_row_and_quoted_column() {
        let statement =
            parse_replay("INSERT INTO t SELECT * FROM jsonb_populate_record(NULL::t, :new) WHERE :NEW.\"Id\" IS NOT NULL").unwrap();
        assert_eq!(statement.params[0].column, None);
        assert_eq!(statement.params[1].column.as_deref(), Some("Id"));
        assert!(statement.sql.contains("NULL::t, $1)"), "{}", statement.sql);
    }

    #[test]
    fn rejects_bad_statements() {
        let cases = [
            ("DELETE FROM t WHERE id = $1", "positional parameter"),
            (
                "DELETE FROM t WHERE id = :row.id",
                "`:row` is not a parameter",
            ),
            ("DELETE FROM t WHERE id = :old.id; SELECT 1", "2 statements"),
            ("DELETE FROM t WHERE", "invalid SQL"),
            ("DELETE FROM t", "uses no value"),
        ];
        for (text, expected) in cases {
            let error = parse_replay(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
