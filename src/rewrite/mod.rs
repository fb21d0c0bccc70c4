//! Online forms of unsafe statements, and the split of a migration into the
//! steps the executor runs.
//!
//! Statements that PostgreSQL rejects inside a transaction block
//! (`CREATE INDEX CONCURRENTLY` and friends) become steps of their own; the
//! other statements of a migration stay together in transactional steps,
//! in file order. A `VALIDATE CONSTRAINT` always gets a transaction of its
//! own, so its scan never runs under a lock taken by the statements around
//! it. Edits are made on the original text by byte span, so the rewritten
//! SQL keeps the author's comments and layout.
//!
//! [`plan_file`] gives the steps `apply` runs; [`fix_file`] renders the
//! same steps back into a migration file, which is what `pgshift fix`
//! prints. Both come from one list of planned statements, so the two never
//! disagree.

use std::collections::HashMap;

use pg_query::NodeEnum;

use crate::analysis::{AnalyzedFile, FileMode, NO_TRANSACTION_DIRECTIVE};
use crate::locks::{
    Analysis, LockEffect, PgVersion, RelationName, TransactionControl, TransactionUse,
};
use crate::sql::Statement;

mod add_column;
mod backfill;
mod facts;
mod forms;
mod render;
mod text;

pub use backfill::{batch_end_sql, batch_rest_sql, batch_update_sql, set_columns, KeyColumn};
pub use facts::{Known, PrimaryKey, SchemaFacts};

/// The way the executor runs a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StepKind {
    /// Statements run together in one transaction, committed with the
    /// step's journal row.
    Transaction,
    /// One statement that must run outside a transaction block, sent as its
    /// own protocol message.
    Autocommit,
    /// A concurrent index build. Before it runs (and before each retry) the
    /// executor looks the index up: an INVALID leftover from an earlier
    /// attempt is dropped concurrently, a valid one with the same
    /// definition is kept.
    ConcurrentIndex {
        /// The index name as written (schema-qualified when the table
        /// name was).
        index: RelationName,
        /// The table the index is built on.
        table: RelationName,
    },
    /// A `REINDEX ... CONCURRENTLY`. Before it runs (and before each retry),
    /// and after it fails, the executor drops the INVALID `_ccnew` and
    /// `_ccold` indexes that an interrupted rebuild of the same target left.
    ConcurrentReindex { target: ReindexTarget },
    /// An `UPDATE` run in primary key ranges of `batch_size` rows, each
    /// batch in a transaction of its own with the key of its last row
    /// recorded, so a resumed run starts after the last finished batch.
    Backfill {
        /// The table the `UPDATE` changes.
        table: RelationName,
        /// The name that qualifies the table's columns in the statement:
        /// its alias, or the table name, as SQL.
        qualifier: String,
        batch_size: u32,
    },
}

/// The object a `REINDEX CONCURRENTLY` step rebuilds: one index, or every
/// index of a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "object", content = "name", rename_all = "kebab-case")]
pub enum ReindexTarget {
    Index(RelationName),
    Table(RelationName),
}

/// One unit of execution.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Position of the step in its migration, counting from 0.
    pub index: usize,
    pub kind: StepKind,
    /// The statements of the step, as they will be sent.
    pub statements: Vec<StepStatement>,
}

/// One statement of a step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepStatement {
    /// The SQL that is sent, after rewriting.
    pub sql: String,
    /// 1-based line of the statement in its migration file.
    pub line: usize,
    /// True when the text differs from the file.
    pub rewritten: bool,
    pub locks: Vec<LockEffect>,
}

impl Step {
    /// Returns true when the step runs inside a transaction block.
    pub fn in_transaction(&self) -> bool {
        self.kind == StepKind::Transaction
    }
}

/// Choices of the plan that change how statements are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewriteOptions {
    /// Run backfills in batches (the plan's `backfill: batched`). An
    /// `UPDATE` marked with `-- pgshift:backfill` is batched either way.
    pub batch_backfills: bool,
    /// Rows per batch when the directive gives no size.
    pub batch_size: u32,
    /// A `lock_timeout` to write into each transaction that takes a lock
    /// that blocks writes on an existing table, unless one is in effect
    /// there (`pgshift fix --lock-timeout`). `apply` sets its own before
    /// each step and leaves this `None`.
    pub lock_timeout: Option<std::time::Duration>,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            batch_backfills: false,
            batch_size: crate::plan::DEFAULT_BATCH_SIZE,
            lock_timeout: None,
        }
    }
}

impl RewriteOptions {
    /// Returns the options a phase's settings choose.
    pub fn from_settings(settings: &crate::plan::Settings) -> RewriteOptions {
        RewriteOptions {
            batch_backfills: settings.backfill == crate::plan::Backfill::Batched,
            batch_size: settings.backfill_batch_size,
            lock_timeout: None,
        }
    }
}

/// A rewrite that was not made, or made without a fact it would need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// 1-based line of the statement.
    pub line: usize,
    /// Short name of the rewrite, e.g. `drop-index-concurrently`.
    pub rewrite: &'static str,
    /// True when the statement was left as written.
    pub skipped: bool,
    /// Why, and what would make the rewrite possible.
    pub reason: String,
}

/// Errors from turning a migration into steps.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A statement pgshift cannot run, such as a psql meta-command.
    #[error("{path}:{line}: {message}")]
    Unsupported {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
}

/// The plan of one file: its steps, and the notes on rewrites not made.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
    units: Vec<Unit>,
}

/// The output of `pgshift fix` for one file.
#[derive(Debug, Clone)]
pub struct Fixed {
    /// The rewritten file text.
    pub text: String,
    /// True when `text` differs from the input.
    pub changed: bool,
    pub steps: Vec<Step>,
    pub notes: Vec<Note>,
}

/// Where a planned statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// In the current transaction, with its neighbours.
    Transaction,
    /// In a transaction of its own.
    OwnTransaction,
    /// Outside any transaction block, as a step of the given kind.
    Alone(StepKind),
}

/// One statement the plan sends, or a transaction control statement of
/// the file, in file order.
#[derive(Debug, Clone)]
struct Unit {
    /// Index of the file statement it comes from.
    source: usize,
    sql: String,
    place: Place,
    control: Option<TransactionControl>,
    /// The step the unit belongs to; `None` for control statements.
    step: Option<usize>,
}

/// A statement of the online form: its text and where it runs.
#[derive(Debug, Clone)]
struct Piece {
    sql: String,
    place: Place,
}

/// Parses a migration, rewrites its statements into their online forms and
/// groups them into steps.
pub fn plan_migration(
    migration: &crate::plan::Migration,
    version: PgVersion,
) -> Result<Vec<Step>, RewriteError> {
    plan_migration_with(
        migration,
        version,
        &SchemaFacts::default(),
        &RewriteOptions::default(),
    )
    .map(|plan| plan.steps)
}

/// Like [`plan_migration`], with facts about the schema from the database
/// or from earlier migrations, and the rewrite choices of the migration's
/// phase.
pub fn plan_migration_with(
    migration: &crate::plan::Migration,
    version: PgVersion,
    facts: &SchemaFacts,
    options: &RewriteOptions,
) -> Result<FilePlan, RewriteError> {
    let file = analyze_migration(migration, version)?;
    plan_file_with_options(&file, facts, options)
}

/// Groups a migration's statements into steps as written, without online
/// forms: a blue-green phase runs them so on green, where no application
/// waits for the locks. Statements that cannot run in a transaction block
/// still get steps of their own.
pub fn plan_migration_plain(
    migration: &crate::plan::Migration,
    version: PgVersion,
) -> Result<Vec<Step>, RewriteError> {
    let file = analyze_migration(migration, version)?;
    plan_units(
        &file,
        &SchemaFacts::default(),
        &RewriteOptions::default(),
        false,
    )
    .map(|plan| plan.steps)
}

fn analyze_migration(
    migration: &crate::plan::Migration,
    version: PgVersion,
) -> Result<AnalyzedFile, RewriteError> {
    AnalyzedFile::new(
        &migration.path,
        migration.sql.clone(),
        migration.autocommit,
        version,
    )
    .map_err(|e| RewriteError::Parse {
        path: migration.path.clone(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

/// Groups the statements of an analyzed file into steps, rewriting those
/// that have an online form.
pub fn plan_file(file: &AnalyzedFile) -> Result<Vec<Step>, RewriteError> {
    plan_file_with(file, &SchemaFacts::default()).map(|plan| plan.steps)
}

/// Like [`plan_file`], with facts about the schema. The facts are updated
/// with what the file's own statements change as planning goes on.
pub fn plan_file_with(file: &AnalyzedFile, facts: &SchemaFacts) -> Result<FilePlan, RewriteError> {
    plan_file_with_options(file, facts, &RewriteOptions::default())
}

/// Like [`plan_file_with`], with the plan's rewrite choices.
pub fn plan_file_with_options(
    file: &AnalyzedFile,
    facts: &SchemaFacts,
    options: &RewriteOptions,
) -> Result<FilePlan, RewriteError> {
    plan_units(file, facts, options, true)
}

/// Plans the steps of a file; with `online` false every statement keeps
/// the form it has in the file, and no backfill is batched.
fn plan_units(
    file: &AnalyzedFile,
    facts: &SchemaFacts,
    options: &RewriteOptions,
    online: bool,
) -> Result<FilePlan, RewriteError> {
    reject_unsupported(file)?;
    let mut facts = facts.clone();
    let mut notes = Vec::new();
    let mut units = Vec::new();
    let mut proofs = NotNullProofs::default();
    // Inside a BEGIN ... COMMIT block of the file. Its statements stay in
    // one transaction even in a no-transaction file.
    let mut in_block = false;

    for (stmt, analysis, context) in file.statements() {
        if let TransactionUse::Control(control) = analysis.transaction {
            in_block = control == TransactionControl::Begin;
            if !matches!(
                control,
                TransactionControl::Begin | TransactionControl::Commit
            ) {
                return Err(unsupported(
                    file,
                    stmt,
                    "transaction control other than BEGIN and COMMIT is not supported in a \
                     migration; pgshift commits each transaction itself",
                ));
            }
            units.push(Unit {
                source: stmt.index,
                sql: stmt.text.clone(),
                place: Place::Transaction,
                control: Some(control),
                step: None,
            });
            continue;
        }

        let input = forms::Input {
            stmt,
            context,
            version: file.version,
            facts: &facts,
            proofs: &proofs,
            options,
        };
        let directive = backfill_directive(file, stmt);
        let batched = match &stmt.node {
            NodeEnum::UpdateStmt(update) if online => {
                backfill::batched_update(&input, update, directive, options, &mut notes)
                    .map_err(|message| unsupported(file, stmt, &message))?
            }
            NodeEnum::UpdateStmt(_) => None,
            _ if directive.is_some() => {
                return Err(unsupported(
                    file,
                    stmt,
                    "`-- pgshift:backfill` marks a statement that is not an UPDATE; move the \
                     directive above the UPDATE it is meant for, or remove it",
                ))
            }
            _ => None,
        };
        let online_pieces = match batched {
            Some(pieces) => Some(pieces),
            None if online => forms::online_form(&input, &mut notes),
            None => None,
        };
        let pieces = online_pieces.unwrap_or_else(|| vec![default_piece(file, stmt, analysis)]);
        for piece in pieces {
            let place = match (file.mode, piece.place) {
                (FileMode::Autocommit, Place::Alone(kind)) => Place::Alone(kind),
                (FileMode::Autocommit, place) if in_block => place,
                (FileMode::Autocommit, _) => Place::Alone(StepKind::Autocommit),
                (FileMode::Wrapped, place) => place,
            };
            units.push(Unit {
                source: stmt.index,
                sql: piece.sql,
                place,
                control: None,
                step: None,
            });
        }
        facts.learn(&stmt.node);
        proofs.learn(&stmt.node);
    }

    let mut steps = build_steps(file, &mut units);
    if let Some(timeout) = options.lock_timeout {
        if file.mode == FileMode::Wrapped {
            units = with_lock_timeouts(file, units, timeout);
            steps = build_steps(file, &mut units);
        } else {
            // TODO: a session-level SET in a file whose statements each run
            // alone would stay in effect for later concurrent builds too.
            notes.push(Note {
                line: file.parsed.statements.first().map_or(1, |s| s.line),
                rewrite: "lock-timeout",
                skipped: true,
                reason: "the file runs every statement on its own, so SET LOCAL would not \
                         last; set lock_timeout in the file yourself"
                    .to_string(),
            });
        }
    }
    Ok(FilePlan {
        steps,
        notes,
        units,
    })
}

/// Plans a file and renders the plan back into a migration file: the text
/// `pgshift fix` prints, which runs as the same steps.
pub fn fix_file(file: &AnalyzedFile, facts: &SchemaFacts) -> Result<Fixed, RewriteError> {
    fix_file_with_options(file, facts, &RewriteOptions::default())
}

/// Like [`fix_file`], with the rewrite choices of `pgshift fix`'s flags.
pub fn fix_file_with_options(
    file: &AnalyzedFile,
    facts: &SchemaFacts,
    options: &RewriteOptions,
) -> Result<Fixed, RewriteError> {
    let plan = plan_file_with_options(file, facts, options)?;
    let mut text = render::render(file, &plan.units, &plan.steps);
    if uses_only_crlf(&file.text) {
        // Every bare LF of the output is one pgshift wrote, because the file
        // has none, so the file keeps one kind of line ending.
        text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    Ok(Fixed {
        changed: text != file.text,
        text,
        steps: plan.steps,
        notes: plan.notes,
    })
}

/// Returns true when `text` has line breaks and every one is CRLF.
fn uses_only_crlf(text: &str) -> bool {
    let crlf = text.matches("\r\n").count();
    crlf > 0 && crlf == text.matches('\n').count()
}

/// Where a statement without an online form runs.
fn default_piece(file: &AnalyzedFile, stmt: &Statement, analysis: &Analysis) -> Piece {
    let place = if analysis.transaction == TransactionUse::NotInBlock || marked_alone(file, stmt) {
        Place::Alone(kind_of(stmt))
    } else if is_validate(&stmt.node) {
        Place::OwnTransaction
    } else {
        Place::Transaction
    };
    Piece {
        sql: stmt.text.clone(),
        place,
    }
}

/// Returns true when a `-- pgshift:no-transaction` line sits between the
/// previous statement and `stmt` (and so is not the file's own marker).
fn marked_alone(file: &AnalyzedFile, stmt: &Statement) -> bool {
    if stmt.index == 0 {
        return false;
    }
    let previous_end = file.parsed.statements[stmt.index - 1].span.end;
    file.parsed.directives.iter().any(|d| {
        d.text == NO_TRANSACTION_DIRECTIVE
            && d.span.start >= previous_end
            && d.span.start < stmt.span.start
    })
}

/// Inserts `SET LOCAL lock_timeout` before the first unit of each
/// transaction that takes a lock that blocks writes on a table the file did
/// not create, unless a lock_timeout is in effect there. `SET LOCAL` ends
/// with its transaction, so it never reaches a concurrent build, which
/// would fail on a short lock_timeout while it waits for older
/// transactions. A statement that takes such a lock outside a transaction
/// block, other than a concurrent one, gets `SET lock_timeout` before it
/// and `RESET lock_timeout` after.
fn with_lock_timeouts(
    file: &AnalyzedFile,
    units: Vec<Unit>,
    timeout: std::time::Duration,
) -> Vec<Unit> {
    let mut out = Vec::with_capacity(units.len() + 4);
    let mut step = None;
    let mut covered = false;
    for unit in units {
        if unit.step != step || unit.control.is_some() {
            step = unit.step;
            covered = false;
        }
        let stmt = &file.parsed.statements[unit.source];
        let context = &file.contexts[unit.source];
        let as_written = unit.sql == stmt.text;
        if as_written && is_lock_timeout_setting(&stmt.node) {
            covered = true;
        }
        let effects = if as_written {
            Some(file.analyses[unit.source].effects.clone())
        } else {
            reanalyze(&unit.sql, file.version)
        };
        let strong = effects.unwrap_or_default().iter().any(|effect| {
            effect.mode.blocks_writes() && !context.created_in_file.contains(&effect.relation)
        });
        let set_by_file = as_written && context.lock_timeout_set;
        if unit.control.is_none()
            && unit.place == Place::Transaction
            && strong
            && !covered
            && !set_by_file
        {
            out.push(Unit {
                source: unit.source,
                sql: format!("SET LOCAL lock_timeout = '{}ms'", timeout.as_millis()),
                place: Place::Transaction,
                control: None,
                step: None,
            });
            covered = true;
        }
        // A concurrent statement waits for older transactions by design, and
        // a short lock_timeout would make it fail instead.
        let concurrent = unit.sql.to_ascii_uppercase().contains("CONCURRENTLY");
        let alone_strong =
            unit.place == Place::Alone(StepKind::Autocommit) && strong && !concurrent;
        if alone_strong && !set_by_file {
            // Outside a transaction block SET LOCAL does nothing, so the
            // session setting is set around the statement and reset after
            // it, before any later concurrent build.
            let source = unit.source;
            out.push(Unit {
                source,
                sql: format!("SET lock_timeout = '{}ms'", timeout.as_millis()),
                place: Place::Transaction,
                control: None,
                step: None,
            });
            out.push(unit);
            out.push(Unit {
                source,
                sql: "RESET lock_timeout".to_string(),
                place: Place::Transaction,
                control: None,
                step: None,
            });
            continue;
        }
        out.push(unit);
    }
    out
}

/// Returns true for `SET` or `SET LOCAL` of `lock_timeout`.
fn is_lock_timeout_setting(node: &NodeEnum) -> bool {
    matches!(node, NodeEnum::VariableSetStmt(set) if set.name == "lock_timeout")
}

/// Returns the text of the `-- pgshift:backfill` directive between the
/// previous statement and `stmt`, if there is one.
fn backfill_directive<'a>(file: &'a AnalyzedFile, stmt: &Statement) -> Option<&'a str> {
    let from = match stmt.index {
        0 => 0,
        i => file.parsed.statements[i - 1].span.end,
    };
    file.parsed
        .directives
        .iter()
        .find(|d| {
            d.span.start >= from
                && d.span.start < stmt.span.start
                && d.text.split_whitespace().next() == Some(crate::analysis::BACKFILL_DIRECTIVE)
        })
        .map(|d| d.text.as_str())
}

/// Returns true for an `ALTER TABLE` with a `VALIDATE CONSTRAINT`.
fn is_validate(node: &NodeEnum) -> bool {
    use pg_query::protobuf::AlterTableType;
    let NodeEnum::AlterTableStmt(alter) = node else {
        return false;
    };
    alter.cmds.iter().any(|cmd| {
        matches!(&cmd.node, Some(NodeEnum::AlterTableCmd(c))
            if c.subtype == AlterTableType::AtValidateConstraint as i32)
    })
}

/// Groups units into steps and records each unit's step.
fn build_steps(file: &AnalyzedFile, units: &mut [Unit]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut open = false;
    let statements = &file.parsed.statements;

    for unit in units.iter_mut() {
        if unit.control.is_some() {
            open = false;
            continue;
        }
        let stmt = &statements[unit.source];
        let analysis = &file.analyses[unit.source];
        let statement = step_statement(stmt, analysis, file.version, &unit.sql);
        match &unit.place {
            Place::Transaction if open => {
                let step = steps.last_mut().expect("an open step exists");
                step.statements.push(statement);
            }
            Place::Transaction | Place::OwnTransaction => {
                steps.push(Step {
                    index: steps.len(),
                    kind: StepKind::Transaction,
                    statements: vec![statement],
                });
                open = unit.place == Place::Transaction;
            }
            Place::Alone(kind) => {
                steps.push(Step {
                    index: steps.len(),
                    kind: kind.clone(),
                    statements: vec![statement],
                });
                open = false;
            }
        }
        unit.step = Some(steps.len() - 1);
    }
    steps
}

fn kind_of(stmt: &Statement) -> StepKind {
    match &stmt.node {
        NodeEnum::IndexStmt(index) if index.concurrent && !index.idxname.is_empty() => {
            match index.relation.as_ref() {
                Some(rel) => {
                    let table = facts::relation_name(rel);
                    StepKind::ConcurrentIndex {
                        index: RelationName {
                            schema: table.schema.clone(),
                            name: index.idxname.clone(),
                        },
                        table,
                    }
                }
                None => StepKind::Autocommit,
            }
        }
        NodeEnum::ReindexStmt(reindex) => reindex_kind(reindex),
        _ => StepKind::Autocommit,
    }
}

fn reindex_kind(reindex: &pg_query::protobuf::ReindexStmt) -> StepKind {
    let concurrent = reindex
        .params
        .iter()
        .any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"));
    match reindex_target(reindex) {
        Some(target) if concurrent => StepKind::ConcurrentReindex { target },
        _ => StepKind::Autocommit,
    }
}

/// Returns the index or table a `REINDEX` rebuilds; `None` for
/// `REINDEX SCHEMA`, `DATABASE` and `SYSTEM`.
fn reindex_target(reindex: &pg_query::protobuf::ReindexStmt) -> Option<ReindexTarget> {
    use pg_query::protobuf::ReindexObjectType;

    let name = facts::relation_name(reindex.relation.as_ref()?);
    if reindex.kind == ReindexObjectType::ReindexObjectIndex as i32 {
        Some(ReindexTarget::Index(name))
    } else if reindex.kind == ReindexObjectType::ReindexObjectTable as i32 {
        Some(ReindexTarget::Table(name))
    } else {
        None
    }
}

fn step_statement(
    stmt: &Statement,
    analysis: &Analysis,
    version: PgVersion,
    sql: &str,
) -> StepStatement {
    if sql == stmt.text {
        return StepStatement {
            rewritten: false,
            sql: stmt.text.clone(),
            line: stmt.line,
            locks: analysis.effects.clone(),
        };
    }
    StepStatement {
        locks: reanalyze(sql, version).unwrap_or_else(|| analysis.effects.clone()),
        rewritten: true,
        sql: sql.to_string(),
        line: stmt.line,
    }
}

/// Returns true when `sql` is a `SET` (or `RESET`) of a session setting:
/// not `SET LOCAL`, whose effect ends with its transaction.
pub fn sets_session_setting(sql: &str) -> bool {
    matches!(
        crate::sql::first_node(sql),
        Some(NodeEnum::VariableSetStmt(set)) if !set.is_local
    )
}

/// Returns true when PostgreSQL `version` accepts the statement `sql` inside
/// a transaction block and it is not transaction control.
pub fn runs_in_transaction_block(sql: &str, version: PgVersion) -> bool {
    crate::sql::first_node(sql).is_some_and(|node| {
        crate::locks::analyze(&node, version).transaction == TransactionUse::Any
    })
}

/// Returns the locks of rewritten SQL, which pgshift produced from a parsed
/// statement and so always parses.
fn reanalyze(sql: &str, version: PgVersion) -> Option<Vec<LockEffect>> {
    let node = crate::sql::first_node(sql)?;
    Some(crate::locks::analyze(&node, version).effects)
}

/// Columns that a validated `CHECK (col IS NOT NULL)` earlier in the file
/// proves not null, so `SET NOT NULL` on them skips its scan (PG 12+).
#[derive(Debug, Default)]
struct NotNullProofs {
    /// Constraint name to (table, column), for checks added `NOT VALID`.
    pending: HashMap<String, (String, String)>,
    /// Constraint name to (table, column), for validated checks.
    valid: HashMap<String, (String, String)>,
}

impl NotNullProofs {
    fn proves(&self, table: &str, column: &str) -> bool {
        self.valid.values().any(|(t, c)| t == table && c == column)
    }

    fn learn(&mut self, node: &NodeEnum) {
        use pg_query::protobuf::AlterTableType;
        let NodeEnum::AlterTableStmt(alter) = node else {
            return;
        };
        let Some(table) = alter.relation.as_ref().map(|r| r.relname.clone()) else {
            return;
        };
        for cmd in &alter.cmds {
            let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
                continue;
            };
            if cmd.subtype == AlterTableType::AtAddConstraint as i32 {
                let Some(NodeEnum::Constraint(c)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
                else {
                    continue;
                };
                let Some(column) = forms::not_null_check_column(c) else {
                    continue;
                };
                let entry = (table.clone(), column);
                if c.skip_validation {
                    self.pending.insert(c.conname.clone(), entry);
                } else {
                    self.valid.insert(c.conname.clone(), entry);
                }
            } else if cmd.subtype == AlterTableType::AtValidateConstraint as i32 {
                if let Some(entry) = self.pending.remove(&cmd.name) {
                    self.valid.insert(cmd.name.clone(), entry);
                }
            } else if cmd.subtype == AlterTableType::AtDropConstraint as i32 {
                self.pending.remove(&cmd.name);
                self.valid.remove(&cmd.name);
            }
        }
    }
}

fn reject_unsupported(file: &AnalyzedFile) -> Result<(), RewriteError> {
    if let Some(directive) = file
        .parsed
        .directives
        .iter()
        .find(|d| !crate::lint::is_known_directive(&d.text))
    {
        return Err(RewriteError::Unsupported {
            path: file.path.clone(),
            line: directive.line,
            message: format!(
                "unknown directive `-- pgshift:{}`; the known ones are `no-transaction`, \
                 `backfill`, `ignore` and `ignore-file`",
                directive.text
            ),
        });
    }
    if let Some(meta) = file.parsed.meta_commands.first() {
        return Err(RewriteError::Unsupported {
            path: file.path.clone(),
            line: meta.line,
            message: format!(
                "psql meta-command `{}` is not SQL and pgshift cannot run it; \
                 remove it or move its effect into SQL",
                meta.text.trim()
            ),
        });
    }
    for stmt in &file.parsed.statements {
        if stmt.copy_data.is_some() {
            // TODO: stream inline COPY data through the COPY protocol.
            return Err(unsupported(
                file,
                stmt,
                "COPY ... FROM stdin with inline data needs COPY protocol support, which \
                 pgshift does not have yet; load the rows with INSERT statements instead",
            ));
        }
    }
    Ok(())
}

fn unsupported(file: &AnalyzedFile, stmt: &Statement, message: &str) -> RewriteError {
    RewriteError::Unsupported {
        path: file.path.clone(),
        line: stmt.line,
        message: message.to_string(),
    }
}
