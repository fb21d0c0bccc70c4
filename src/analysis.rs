//! One parse and one lock analysis of a migration file, shared by lint,
//! rewrite, dry-run and apply.
//!
//! Besides each statement's own lock facts, this tracks what a statement's
//! verdict depends on elsewhere in the file: which transaction it runs in
//! (explicit `BEGIN`, or the transaction pgshift wraps consecutive
//! statements in), which tables the file created earlier (they are empty
//! and, inside the creating transaction, invisible to other sessions),
//! whether a `lock_timeout` is in effect, which strong locks the transaction
//! already holds, and the constraints and enum values added earlier.
//!
//! Tracking is one pass over the statements. Facts that grow with the file
//! (created tables, held locks) are shared between the statements' contexts
//! instead of copied, so the pass stays linear in the file's length.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pg_query::protobuf::{AlterTableType, ConstrType};
use pg_query::NodeEnum;

use crate::locks::{
    self, Analysis, ColumnTypes, LockMode, PgVersion, RelationName, SqlType, TransactionControl,
    TransactionUse,
};
use crate::sql::{self, ParseError, ParsedFile, Statement};

/// The `-- pgshift:no-transaction` directive: every statement of the file
/// runs on its own, outside a transaction block.
pub const NO_TRANSACTION_DIRECTIVE: &str = "no-transaction";

/// The `-- pgshift:backfill [batch-size=N]` directive: the `UPDATE` below
/// it runs as a batched backfill, in primary key ranges of N rows (the
/// plan's `backfill_batch_size` when N is not given), each batch in a
/// transaction of its own.
pub const BACKFILL_DIRECTIVE: &str = "backfill";

/// Reads the text of a `-- pgshift:backfill` directive. Returns `Ok(None)`
/// for another directive, `Ok(Some(size))` for a backfill directive with
/// its batch size, if it gives one, and an error naming the problem for a
/// malformed one.
pub fn parse_backfill_directive(text: &str) -> Result<Option<Option<u32>>, String> {
    let mut words = text.split_whitespace();
    if words.next() != Some(BACKFILL_DIRECTIVE) {
        return Ok(None);
    }
    let mut size = None;
    for word in words {
        let value = word.strip_prefix("batch-size=").ok_or_else(|| {
            format!(
                "unknown option `{word}` in `-- pgshift:{text}`; the only option is \
                 batch-size=N"
            )
        })?;
        match value.parse::<u32>() {
            Ok(n) if (1..=crate::plan::MAX_BATCH_SIZE).contains(&n) => size = Some(n),
            _ => {
                return Err(format!(
                    "invalid batch size `{value}` in `-- pgshift:{text}`; write a count of \
                     rows from 1 to {}",
                    crate::plan::MAX_BATCH_SIZE
                ))
            }
        }
    }
    Ok(Some(size))
}

/// How pgshift runs the statements of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Statements run in transactions that pgshift opens; statements that
    /// cannot run in a transaction block become steps of their own.
    Wrapped,
    /// Every statement runs on its own in autocommit.
    Autocommit,
}

/// A strong lock that a transaction holds since an earlier statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    pub relation: RelationName,
    pub mode: LockMode,
    /// 1-based line of the statement that took the lock.
    pub line: usize,
}

/// Relations created by the statements of a file before a given one.
///
/// All contexts of a file share one index of creations; each context sees
/// the creations in its own window of statements.
#[derive(Debug, Clone, Default)]
pub struct RelationSet {
    index: Arc<CreationIndex>,
    /// Statement positions whose creations belong to the set.
    window: std::ops::Range<usize>,
}

#[derive(Debug, Clone, Default)]
struct CreationIndex {
    /// Statement positions that create each relation, ascending.
    exact: HashMap<RelationName, Vec<usize>>,
    /// The same positions keyed by the bare name, for names written without
    /// a schema on either side.
    by_name: HashMap<String, Vec<usize>>,
}

impl CreationIndex {
    /// Records that the statement at `position` creates `relation`;
    /// positions must be added in ascending order.
    fn add(&mut self, relation: RelationName, position: usize) {
        self.by_name
            .entry(relation.name.clone())
            .or_default()
            .push(position);
        self.exact.entry(relation).or_default().push(position);
    }
}

impl RelationSet {
    fn in_window(&self, positions: Option<&Vec<usize>>) -> bool {
        let Some(positions) = positions else {
            return false;
        };
        let first = positions.partition_point(|&p| p < self.window.start);
        positions.get(first).is_some_and(|&p| p < self.window.end)
    }

    /// Returns true when the set contains a relation that `name` can denote:
    /// equal names, and equal schemas where both are written.
    pub fn contains(&self, name: &RelationName) -> bool {
        if name.schema.is_none() {
            return self.in_window(self.index.by_name.get(&name.name));
        }
        let bare = RelationName {
            schema: None,
            name: name.name.clone(),
        };
        self.in_window(self.index.exact.get(name)) || self.in_window(self.index.exact.get(&bare))
    }

    /// Iterates over the relations in the set, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &RelationName> {
        self.index
            .exact
            .iter()
            .filter(|(_, positions)| self.in_window(Some(positions)))
            .map(|(name, _)| name)
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Facts about a statement that depend on the statements before it.
#[derive(Debug, Clone, Default)]
pub struct StatementContext {
    /// Inside an explicit `BEGIN` ... `COMMIT` of the file.
    pub in_explicit_block: bool,
    /// Inside a transaction block when pgshift runs the file: an explicit
    /// block, or the transaction pgshift wraps transactional statements in.
    pub in_transaction: bool,
    /// Number of the transaction the statement runs in, counting from 0 in
    /// file order; statements in one transaction share it. `None` for a
    /// statement that runs outside any transaction block.
    pub transaction: Option<usize>,
    /// A `lock_timeout` other than 0 is in effect for this statement.
    pub lock_timeout_set: bool,
    /// A `statement_timeout` other than 0 is in effect for this statement.
    pub statement_timeout_set: bool,
    /// Tables created earlier in the file and still private to the current
    /// transaction (created in it).
    pub created_in_transaction: RelationSet,
    /// Tables created earlier anywhere in the file.
    pub created_in_file: RelationSet,
    /// Locks that block writes, on relations the file did not create, taken
    /// by earlier statements of the same transaction and held until it
    /// ends; one entry per relation with its strongest mode.
    pub held_locks: Arc<Vec<HeldLock>>,
    /// For `VALIDATE CONSTRAINT`: the line where the same transaction added
    /// the constraint `NOT VALID`.
    pub validates_not_valid_from: Option<usize>,
    /// For `SET NOT NULL` (one per column): columns that a validated
    /// `CHECK (col IS NOT NULL)` added earlier in the file proves.
    pub not_null_proven: Vec<String>,
    /// Enum values added by `ALTER TYPE ... ADD VALUE` earlier in the same
    /// transaction, with the line that added them.
    pub enum_values_added: Arc<Vec<(String, usize)>>,
    /// A `-- pgshift:backfill` directive sits between the previous
    /// statement and this one, so pgshift runs it as a batched backfill.
    pub batched_backfill: bool,
}

/// How to analyze a file.
#[derive(Clone, Copy)]
pub struct AnalyzeOptions<'a> {
    pub version: PgVersion,
    /// The file is marked to run without a transaction (the `.autocommit`
    /// file name marker).
    pub autocommit: bool,
    /// Every statement runs on its own unless the file opens a block with
    /// `BEGIN`, as with a runner that does not wrap files in a transaction,
    /// but the file itself is not marked.
    pub no_wrap: bool,
    /// A `lock_timeout` is in effect from the start, as when pgshift applies
    /// a plan (it sets the plan's `lock_timeout` before every step).
    pub lock_timeout: bool,
    /// Column types of existing tables, read from a live catalog.
    pub column_types: Option<&'a dyn ColumnTypes>,
}

impl<'a> AnalyzeOptions<'a> {
    pub fn new(version: PgVersion) -> AnalyzeOptions<'a> {
        AnalyzeOptions {
            version,
            autocommit: false,
            no_wrap: false,
            lock_timeout: false,
            column_types: None,
        }
    }
}

/// A parsed and analyzed migration file.
#[derive(Debug, Clone)]
pub struct AnalyzedFile {
    pub path: PathBuf,
    pub text: String,
    pub parsed: ParsedFile,
    pub mode: FileMode,
    /// The file itself requests to run without a transaction: the
    /// `-- pgshift:no-transaction` directive or the `.autocommit` name.
    pub marked_no_transaction: bool,
    /// Some statement of the file cannot run inside a transaction block.
    pub has_statement_outside_block: bool,
    pub version: PgVersion,
    /// One analysis per statement, in file order.
    pub analyses: Vec<Analysis>,
    /// One context per statement, in file order.
    pub contexts: Vec<StatementContext>,
}

impl AnalyzedFile {
    /// Parses and analyzes `text`, read from `path`. `autocommit` is true
    /// when the file name carries the `.autocommit` marker.
    pub fn new(
        path: &Path,
        text: String,
        autocommit: bool,
        version: PgVersion,
    ) -> Result<AnalyzedFile, ParseError> {
        let options = AnalyzeOptions {
            autocommit,
            ..AnalyzeOptions::new(version)
        };
        AnalyzedFile::with_options(path, text, &options)
    }

    /// Parses and analyzes `text`, read from `path`, with `options`.
    pub fn with_options(
        path: &Path,
        text: String,
        options: &AnalyzeOptions<'_>,
    ) -> Result<AnalyzedFile, ParseError> {
        let parsed = sql::parse(&text)?;
        let first = parsed.statements.first().map(|s| s.span.start);
        let (mode, marked_no_transaction) = file_mode(&parsed.directives, first, options);
        let creations = index_creations(&parsed.statements, options.version);
        let mut analyzer = Analyzer {
            options: *options,
            tracker: Tracker::new(mode, options, Arc::new(creations)),
            grow_creations: false,
            position: 0,
            backfill_directives: backfill_offsets(&parsed.directives),
            previous_end: 0,
        };
        let mut analyses = Vec::with_capacity(parsed.statements.len());
        let mut contexts = Vec::with_capacity(parsed.statements.len());
        for statement in &parsed.statements {
            let (analysis, context) = analyzer.analyze(statement);
            contexts.push(context);
            analyses.push(analysis);
        }
        Ok(AnalyzedFile {
            path: path.to_path_buf(),
            text,
            parsed,
            mode,
            marked_no_transaction,
            has_statement_outside_block: analyses
                .iter()
                .any(|a: &Analysis| a.transaction == TransactionUse::NotInBlock),
            version: options.version,
            analyses,
            contexts,
        })
    }

    /// Iterates over statements with their analysis and context.
    pub fn statements(&self) -> impl Iterator<Item = (&Statement, &Analysis, &StatementContext)> {
        self.parsed
            .statements
            .iter()
            .zip(&self.analyses)
            .zip(&self.contexts)
            .map(|((s, a), c)| (s, a, c))
    }
}

/// Returns the offsets of the valid `-- pgshift:backfill` directives.
fn backfill_offsets(directives: &[sql::Directive]) -> Vec<usize> {
    directives
        .iter()
        .filter(|d| matches!(parse_backfill_directive(&d.text), Ok(Some(_))))
        .map(|d| d.span.start)
        .collect()
}

/// Returns how pgshift runs a file and whether the file itself requests to
/// run without a transaction, from its directives and the offset where its
/// first statement starts (`None` for a file without statements).
pub fn file_mode(
    directives: &[sql::Directive],
    first_statement: Option<usize>,
    options: &AnalyzeOptions<'_>,
) -> (FileMode, bool) {
    // Before the first statement the directive marks the whole file;
    // further down it marks only the statement below it.
    let first = first_statement.unwrap_or(usize::MAX);
    let directive = directives
        .iter()
        .any(|d| d.text == NO_TRANSACTION_DIRECTIVE && d.span.start < first);
    let marked_no_transaction = options.autocommit || directive;
    let mode = if marked_no_transaction || options.no_wrap {
        FileMode::Autocommit
    } else {
        FileMode::Wrapped
    };
    (mode, marked_no_transaction)
}

/// The analysis of a file fed one statement at a time, in file order, so a
/// caller can drop each parse tree once its statement is analyzed.
pub struct Analyzer<'a> {
    options: AnalyzeOptions<'a>,
    tracker: Tracker,
    /// Index each statement's creations as it arrives, instead of reading
    /// them from an index built over the whole file beforehand.
    grow_creations: bool,
    position: usize,
    /// Offsets of the `-- pgshift:backfill` directives of the file.
    backfill_directives: Vec<usize>,
    /// Where the previous statement ended.
    previous_end: usize,
}

impl<'a> Analyzer<'a> {
    /// Starts a pass over a file that runs in `mode`.
    ///
    /// Contexts share one index of created relations. The pass adds to it
    /// in place, so a caller that keeps earlier contexts alive makes each
    /// addition copy the index.
    pub fn new(mode: FileMode, options: &AnalyzeOptions<'a>) -> Analyzer<'a> {
        Analyzer {
            options: *options,
            tracker: Tracker::new(mode, options, Arc::default()),
            grow_creations: true,
            position: 0,
            backfill_directives: Vec::new(),
            previous_end: 0,
        }
    }

    /// Takes note of the file's `-- pgshift:backfill` directives, so the
    /// `UPDATE` below each one is analyzed as the batched backfill it runs
    /// as.
    pub fn with_directives(mut self, directives: &[sql::Directive]) -> Analyzer<'a> {
        self.backfill_directives = backfill_offsets(directives);
        self
    }

    /// Analyzes the next statement of the file and returns its lock
    /// analysis and its context.
    pub fn analyze(&mut self, statement: &Statement) -> (Analysis, StatementContext) {
        let overlay = ColumnOverlay {
            file: &self.tracker.column_types,
            partitioned: &self.tracker.partitioned,
            catalog: self.options.column_types,
        };
        let context = locks::Context {
            version: self.options.version,
            column_types: Some(&overlay),
        };
        let analysis = locks::analyze_in(&statement.node, &context);
        let position = self.position;
        self.position += 1;
        if self.grow_creations && creates_relations(&statement.node) {
            let index = Arc::make_mut(&mut self.tracker.creations);
            for relation in &analysis.creates {
                index.add(relation.clone(), position);
            }
        }
        let batched = self
            .backfill_directives
            .iter()
            .any(|&at| at >= self.previous_end && at < statement.span.start);
        self.previous_end = statement.span.end;
        let mut context = if batched {
            // A batched backfill commits its own batches, so it ends the
            // transaction around it like a statement that cannot run in a
            // transaction block.
            let alone = Analysis {
                transaction: TransactionUse::NotInBlock,
                ..analysis.clone()
            };
            self.tracker.step(position, statement, &alone)
        } else {
            self.tracker.step(position, statement, &analysis)
        };
        context.batched_backfill = batched;
        (analysis, context)
    }
}

/// Returns true when two names can denote the same relation: equal names,
/// and equal schemas where both are written.
pub fn same_relation(a: &RelationName, b: &RelationName) -> bool {
    a.name == b.name
        && match (&a.schema, &b.schema) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

/// Returns true when `set` contains a relation that `name` can denote.
pub fn contains_relation(set: &RelationSet, name: &RelationName) -> bool {
    set.contains(name)
}

/// Column types declared earlier in the file, then the catalog's, and
/// the same for whether a table is partitioned.
struct ColumnOverlay<'a> {
    file: &'a HashMap<(String, String), String>,
    /// Table name -> created with `PARTITION BY`, for tables the file
    /// created.
    partitioned: &'a HashMap<String, bool>,
    catalog: Option<&'a dyn ColumnTypes>,
}

impl ColumnTypes for ColumnOverlay<'_> {
    fn column_type(&self, table: &RelationName, column: &str) -> Option<String> {
        let key = (table.name.clone(), column.to_string());
        if let Some(declared) = self.file.get(&key) {
            return Some(declared.clone());
        }
        self.catalog?.column_type(table, column)
    }

    fn is_partitioned(&self, table: &RelationName) -> Option<bool> {
        if let Some(partitioned) = self.partitioned.get(&table.name) {
            return Some(*partitioned);
        }
        self.catalog?.is_partitioned(table)
    }
}

/// The state of one pass over a file's statements.
struct Tracker {
    mode: FileMode,
    creations: Arc<CreationIndex>,
    in_block: bool,
    /// The transaction that statements outside an explicit block join in
    /// wrapped mode, or the explicit block's.
    transaction: Option<usize>,
    /// First statement position of the current transaction.
    transaction_start: usize,
    next_transaction: usize,
    session_lock_timeout: bool,
    local_lock_timeout: Option<bool>,
    session_statement_timeout: bool,
    local_statement_timeout: Option<bool>,
    held: Arc<Vec<HeldLock>>,
    /// `(table name, constraint)` -> (transaction, line) of `NOT VALID` adds.
    not_valid: HashMap<(String, String), (Option<usize>, usize)>,
    /// `(table name, constraint)` -> column of `CHECK (col IS NOT NULL)`
    /// constraints that are not validated yet.
    pending_not_null: HashMap<(String, String), String>,
    /// `(table name, column)` proven NOT NULL by a validated CHECK.
    proven_not_null: std::collections::HashSet<(String, String)>,
    enum_values: Arc<Vec<(String, usize)>>,
    /// `(table name, column)` -> type as [`SqlType::parse`] reads it.
    column_types: HashMap<(String, String), String>,
    /// Table name -> created with `PARTITION BY`, for tables created so far.
    partitioned: HashMap<String, bool>,
}

impl Tracker {
    fn new(mode: FileMode, options: &AnalyzeOptions<'_>, creations: Arc<CreationIndex>) -> Tracker {
        Tracker {
            mode,
            creations,
            in_block: false,
            transaction: None,
            transaction_start: 0,
            next_transaction: 0,
            session_lock_timeout: options.lock_timeout,
            local_lock_timeout: None,
            session_statement_timeout: false,
            local_statement_timeout: None,
            held: Arc::default(),
            not_valid: HashMap::new(),
            pending_not_null: HashMap::new(),
            proven_not_null: Default::default(),
            enum_values: Arc::default(),
            column_types: HashMap::new(),
            partitioned: HashMap::new(),
        }
    }

    fn begin_transaction(&mut self, position: usize) {
        self.end_transaction();
        self.transaction = Some(self.next_transaction);
        self.next_transaction += 1;
        self.transaction_start = position;
    }

    fn end_transaction(&mut self) {
        self.transaction = None;
        self.local_lock_timeout = None;
        self.local_statement_timeout = None;
        if !self.held.is_empty() {
            self.held = Arc::default();
        }
        if !self.enum_values.is_empty() {
            self.enum_values = Arc::default();
        }
    }

    /// Returns the context of the statement at `position` and moves the
    /// state past it.
    fn step(
        &mut self,
        position: usize,
        statement: &Statement,
        analysis: &Analysis,
    ) -> StatementContext {
        let control = match analysis.transaction {
            TransactionUse::Control(c) => Some(c),
            _ => None,
        };
        match control {
            Some(TransactionControl::Begin) => {
                self.begin_transaction(position);
                self.in_block = true;
            }
            Some(_) => {}
            None if self.in_block => {}
            None => {
                let joins_wrapping =
                    self.mode == FileMode::Wrapped && analysis.transaction == TransactionUse::Any;
                if analysis.transaction == TransactionUse::NotInBlock {
                    self.end_transaction();
                } else if !joins_wrapping || self.transaction.is_none() {
                    // Autocommit: each statement is a transaction of its own.
                    self.begin_transaction(position);
                }
            }
        }

        let file_window = 0..position;
        let transaction_window = match self.transaction {
            Some(_) => self.transaction_start..position,
            None => position..position,
        };
        let context = StatementContext {
            in_explicit_block: self.in_block,
            in_transaction: self.transaction.is_some(),
            transaction: self.transaction,
            lock_timeout_set: self.local_lock_timeout.unwrap_or(self.session_lock_timeout),
            statement_timeout_set: self
                .local_statement_timeout
                .unwrap_or(self.session_statement_timeout),
            created_in_transaction: RelationSet {
                index: self.creations.clone(),
                window: transaction_window,
            },
            created_in_file: RelationSet {
                index: self.creations.clone(),
                window: file_window.clone(),
            },
            held_locks: self.held.clone(),
            validates_not_valid_from: None,
            not_null_proven: Vec::new(),
            enum_values_added: self.enum_values.clone(),
            batched_backfill: false,
        };
        let mut context = context;
        self.record_constraints(statement, &mut context);
        self.record_settings(&statement.node);
        self.record_locks(statement, analysis, &context);
        self.record_columns(&statement.node);
        if let NodeEnum::AlterEnumStmt(alter) = &statement.node {
            if !alter.new_val.is_empty() && alter.old_val.is_empty() && self.transaction.is_some() {
                Arc::make_mut(&mut self.enum_values).push((alter.new_val.clone(), statement.line));
            }
        }

        let ends = matches!(
            control,
            Some(TransactionControl::Commit | TransactionControl::Rollback)
        );
        if ends {
            self.in_block = false;
            self.end_transaction();
        } else if !self.in_block && self.mode == FileMode::Autocommit {
            self.end_transaction();
        }
        context
    }

    /// Applies `SET` and `RESET` of `lock_timeout` and `statement_timeout`.
    fn record_settings(&mut self, node: &NodeEnum) {
        let Some((name, local, value)) = timeout_setting(node) else {
            return;
        };
        let names: Vec<&str> = match name.as_deref() {
            Some(name) => vec![name],
            None => vec!["lock_timeout", "statement_timeout"],
        };
        for name in names {
            let (session, local_slot) = match name {
                "lock_timeout" => (&mut self.session_lock_timeout, &mut self.local_lock_timeout),
                "statement_timeout" => (
                    &mut self.session_statement_timeout,
                    &mut self.local_statement_timeout,
                ),
                _ => continue,
            };
            if local {
                // SET LOCAL outside a transaction block only raises a
                // warning on the server and changes nothing.
                if self.transaction.is_some() {
                    *local_slot = Some(value);
                }
            } else {
                *session = value;
                *local_slot = None;
            }
        }
    }

    fn record_locks(&mut self, statement: &Statement, analysis: &Analysis, ctx: &StatementContext) {
        if self.transaction.is_none() {
            return;
        }
        for effect in &analysis.effects {
            if !effect.mode.blocks_writes() || ctx.created_in_file.contains(&effect.relation) {
                continue;
            }
            let existing = self
                .held
                .iter()
                .position(|h| same_relation(&h.relation, &effect.relation));
            // Copy the shared list only when it changes, so statements that
            // take locks the transaction already holds cost nothing here.
            if existing.is_some_and(|i| self.held[i].mode >= effect.mode) {
                continue;
            }
            let held = Arc::make_mut(&mut self.held);
            match existing.map(|i| &mut held[i]) {
                Some(existing) => {
                    existing.mode = effect.mode;
                    existing.line = statement.line;
                }
                None => held.push(HeldLock {
                    relation: effect.relation.clone(),
                    mode: effect.mode,
                    line: statement.line,
                }),
            }
        }
    }

    /// Tracks `NOT VALID` constraints and `CHECK (col IS NOT NULL)` proofs.
    fn record_constraints(&mut self, statement: &Statement, context: &mut StatementContext) {
        let NodeEnum::AlterTableStmt(alter) = &statement.node else {
            return;
        };
        let Some(table) = alter.relation.as_ref().map(|r| r.relname.clone()) else {
            return;
        };
        for command in alter_commands(alter) {
            let subtype = AlterTableType::try_from(command.subtype).ok();
            match subtype {
                Some(AlterTableType::AtAddConstraint) => {
                    let Some(NodeEnum::Constraint(c)) =
                        command.def.as_ref().and_then(|d| d.node.as_ref())
                    else {
                        continue;
                    };
                    let key = (table.clone(), c.conname.clone());
                    if c.skip_validation {
                        self.not_valid
                            .insert(key.clone(), (self.transaction, statement.line));
                    }
                    if c.contype == ConstrType::ConstrCheck as i32 {
                        if let Some(column) = c.raw_expr.as_deref().and_then(is_not_null_test) {
                            if c.skip_validation {
                                self.pending_not_null.insert(key, column);
                            } else {
                                self.proven_not_null.insert((table.clone(), column));
                            }
                        }
                    }
                }
                Some(AlterTableType::AtValidateConstraint) => {
                    let key = (table.clone(), command.name.clone());
                    if let Some((transaction, line)) = self.not_valid.get(&key) {
                        if transaction.is_some() && *transaction == self.transaction {
                            context.validates_not_valid_from = Some(*line);
                        }
                    }
                    if let Some(column) = self.pending_not_null.remove(&key) {
                        self.proven_not_null.insert((table.clone(), column));
                    }
                }
                Some(AlterTableType::AtSetNotNull)
                    if self
                        .proven_not_null
                        .contains(&(table.clone(), command.name.clone())) =>
                {
                    context.not_null_proven.push(command.name.clone());
                }
                _ => {}
            }
        }
    }

    /// Records the column types that `CREATE TABLE` and `ADD COLUMN` declare.
    fn record_columns(&mut self, node: &NodeEnum) {
        let mut record = |table: &str, column: &pg_query::protobuf::ColumnDef| {
            let Some(sql_type) = column.type_name.as_ref().and_then(SqlType::from_type_name) else {
                return;
            };
            let text = if sql_type.modifiers.is_empty() {
                sql_type.name.clone()
            } else {
                let modifiers: Vec<String> =
                    sql_type.modifiers.iter().map(|m| m.to_string()).collect();
                format!("{}({})", sql_type.name, modifiers.join(","))
            };
            self.column_types
                .insert((table.to_string(), column.colname.clone()), text);
        };
        match node {
            NodeEnum::CreateStmt(create) => {
                let Some(table) = &create.relation else {
                    return;
                };
                self.partitioned
                    .insert(table.relname.clone(), create.partspec.is_some());
                for element in &create.table_elts {
                    if let Some(NodeEnum::ColumnDef(column)) = &element.node {
                        record(&table.relname, column);
                    }
                }
            }
            NodeEnum::AlterTableStmt(alter) => {
                let Some(table) = &alter.relation else {
                    return;
                };
                for command in alter_commands(alter) {
                    let subtype = AlterTableType::try_from(command.subtype).ok();
                    let def = command.def.as_ref().and_then(|d| d.node.as_ref());
                    match (subtype, def) {
                        (Some(AlterTableType::AtAddColumn), Some(NodeEnum::ColumnDef(column))) => {
                            record(&table.relname, column);
                        }
                        (
                            Some(AlterTableType::AtAlterColumnType),
                            Some(NodeEnum::ColumnDef(column)),
                        ) => {
                            let mut column = (**column).clone();
                            column.colname = command.name.clone();
                            record(&table.relname, &column);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn alter_commands(
    alter: &pg_query::protobuf::AlterTableStmt,
) -> impl Iterator<Item = &pg_query::protobuf::AlterTableCmd> {
    alter.cmds.iter().filter_map(|c| match &c.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => Some(&**cmd),
        _ => None,
    })
}

/// Returns the column of a `col IS NOT NULL` expression.
fn is_not_null_test(expr: &pg_query::protobuf::Node) -> Option<String> {
    let Some(NodeEnum::NullTest(test)) = &expr.node else {
        return None;
    };
    if test.nulltesttype != pg_query::protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    match test.arg.as_deref().and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::ColumnRef(column)) => match column.fields.last()?.node.as_ref()? {
            NodeEnum::String(name) => Some(name.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Indexes which statement creates which relation.
fn index_creations(statements: &[Statement], version: PgVersion) -> CreationIndex {
    let mut index = CreationIndex::default();
    for (position, statement) in statements.iter().enumerate() {
        if !creates_relations(&statement.node) {
            continue;
        }
        for relation in locks::analyze(&statement.node, version).creates {
            index.add(relation, position);
        }
    }
    index
}

/// Returns true for the statement kinds whose created relations count as
/// new for later statements.
fn creates_relations(node: &NodeEnum) -> bool {
    matches!(
        node,
        NodeEnum::CreateStmt(_)
            | NodeEnum::CreateTableAsStmt(_)
            | NodeEnum::ViewStmt(_)
            | NodeEnum::IndexStmt(_)
            | NodeEnum::SelectStmt(_)
    )
}

/// Reads a `SET`/`RESET` of `lock_timeout` or `statement_timeout`: the
/// setting's name (`None` for `RESET ALL`), whether it is `SET LOCAL`, and
/// whether the new value is a timeout other than 0.
fn timeout_setting(node: &NodeEnum) -> Option<(Option<String>, bool, bool)> {
    use pg_query::protobuf::VariableSetKind;

    let NodeEnum::VariableSetStmt(set) = node else {
        return None;
    };
    if set.kind == VariableSetKind::VarResetAll as i32 {
        return Some((None, false, false));
    }
    if set.name != "lock_timeout" && set.name != "statement_timeout" {
        return None;
    }
    if set.kind != VariableSetKind::VarSetValue as i32 {
        return Some((Some(set.name.clone()), set.is_local, false));
    }
    let value = set.args.first().and_then(|a| a.node.as_ref());
    let zero = match value {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(pg_query::protobuf::a_const::Val::Ival(i)) => i.ival == 0,
            Some(pg_query::protobuf::a_const::Val::Sval(s)) => is_zero_duration(&s.sval),
            _ => false,
        },
        _ => false,
    };
    Some((Some(set.name.clone()), set.is_local, !zero))
}

/// Returns true for a GUC duration such as `0`, `0ms` or ` 0 s`.
fn is_zero_duration(text: &str) -> bool {
    let number: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse::<f64>().map(|n| n == 0.0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(sql: &str, autocommit: bool) -> AnalyzedFile {
        AnalyzedFile::new(
            Path::new("t.sql"),
            sql.to_string(),
            autocommit,
            PgVersion::new(15, 0),
        )
        .unwrap()
    }

    #[test]
    fn set_local_outside_block_has_no_effect() {
        let file = analyze(
            "SET LOCAL lock_timeout = '1s';\nALTER TABLE a ADD b int;",
            true,
        );
        assert!(!file.contexts[1].lock_timeout_set);
    }

    #[test]
    fn set_local_inside_block_lasts_until_commit() {
        let sql = "BEGIN;\nSET LOCAL lock_timeout = '1s';\nALTER TABLE a ADD b int;\nCOMMIT;\n\
                   ALTER TABLE a ADD c int;";
        let file = analyze(sql, true);
        assert!(file.contexts[2].lock_timeout_set);
        assert!(!file.contexts[4].lock_timeout_set);
    }

    #[test]
    fn set_local_in_wrapping_transaction_counts() {
        let file = analyze(
            "SET LOCAL lock_timeout = '1s';\nALTER TABLE a ADD b int;",
            false,
        );
        assert!(file.contexts[1].lock_timeout_set);
    }

    #[test]
    fn session_set_and_reset() {
        let sql = "SET lock_timeout = '1s';\nALTER TABLE a ADD b int;\nRESET lock_timeout;\n\
                   ALTER TABLE a ADD c int;\nSET lock_timeout = 0;\nALTER TABLE a ADD d int;";
        let file = analyze(sql, true);
        assert!(file.contexts[1].lock_timeout_set);
        assert!(!file.contexts[3].lock_timeout_set);
        assert!(!file.contexts[5].lock_timeout_set);
    }

    #[test]
    fn wrapped_statements_share_a_transaction() {
        let sql = "ALTER TABLE a ADD b int;\nALTER TABLE c ADD d int;\n\
                   CREATE INDEX CONCURRENTLY i ON a (b);\nALTER TABLE a ADD e int;";
        let file = analyze(sql, false);
        assert_eq!(file.contexts[0].transaction, file.contexts[1].transaction);
        assert_eq!(file.contexts[2].transaction, None);
        assert_ne!(file.contexts[3].transaction, file.contexts[0].transaction);
        assert_eq!(file.contexts[1].held_locks.len(), 1);
        assert_eq!(file.contexts[1].held_locks[0].relation.name, "a");
        assert!(file.contexts[3].held_locks.is_empty());
    }

    #[test]
    fn autocommit_statements_hold_nothing() {
        let file = analyze("ALTER TABLE a ADD b int;\nALTER TABLE c ADD d int;", true);
        assert_ne!(file.contexts[0].transaction, file.contexts[1].transaction);
        assert!(file.contexts[1].held_locks.is_empty());
    }

    #[test]
    fn created_sets_follow_windows() {
        let sql = "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\nCREATE INDEX i ON t (id);\n\
                   CREATE INDEX j ON app.t (id);";
        let file = analyze(sql, false);
        assert!(!file.contexts[1].created_in_file.contains(&name("t")));
        assert!(file.contexts[3].created_in_file.contains(&name("t")));
        assert!(!file.contexts[3].created_in_transaction.contains(&name("t")));
        let qualified = RelationName {
            schema: Some("app".into()),
            name: "t".into(),
        };
        assert!(file.contexts[4].created_in_file.contains(&qualified));
        assert_eq!(file.contexts[4].created_in_file.iter().count(), 2);
    }

    #[test]
    fn validate_after_not_valid_in_same_transaction() {
        let sql = "ALTER TABLE o ADD CONSTRAINT c CHECK (x > 0) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT c;";
        assert_eq!(
            analyze(sql, false).contexts[1].validates_not_valid_from,
            Some(1)
        );
        assert_eq!(
            analyze(sql, true).contexts[1].validates_not_valid_from,
            None
        );
    }

    #[test]
    fn not_null_proof_needs_matching_column() {
        let sql = "ALTER TABLE o ADD CONSTRAINT c CHECK (note IS NOT NULL) NOT VALID;\n\
                   ALTER TABLE o VALIDATE CONSTRAINT c;\n\
                   ALTER TABLE o ALTER COLUMN note SET NOT NULL;\n\
                   ALTER TABLE o ALTER COLUMN other SET NOT NULL;";
        let file = analyze(sql, true);
        assert_eq!(file.contexts[2].not_null_proven, vec!["note".to_string()]);
        assert!(file.contexts[3].not_null_proven.is_empty());
    }

    #[test]
    fn declared_column_type_decides_rewrite() {
        let sql = "CREATE TABLE t (v varchar(20));\nALTER TABLE t ALTER COLUMN v TYPE text;\n\
                   ALTER TABLE t ALTER COLUMN v TYPE int USING v::int;";
        let file = analyze(sql, true);
        let hold = |i: usize| file.analyses[i].effects[0].hold;
        assert_eq!(hold(1), locks::Hold::Brief);
        assert_eq!(hold(2), locks::Hold::Rewrite);
    }

    #[test]
    fn backfill_directive_forms() {
        assert_eq!(parse_backfill_directive("no-transaction"), Ok(None));
        assert_eq!(parse_backfill_directive("backfill"), Ok(Some(None)));
        assert_eq!(
            parse_backfill_directive("backfill batch-size=500"),
            Ok(Some(Some(500)))
        );
        for bad in [
            "backfill batch-size=0",
            "backfill batch-size=x",
            "backfill size=5",
        ] {
            assert!(parse_backfill_directive(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backfill_directive_ends_the_transaction() {
        let sql = "ALTER TABLE a ADD b int;\n-- pgshift:backfill\nUPDATE a SET b = 1;\n\
                   ALTER TABLE a ADD c int;";
        let file = analyze(sql, false);
        assert!(!file.contexts[0].batched_backfill);
        assert!(file.contexts[1].batched_backfill);
        assert!(!file.contexts[2].batched_backfill);
        assert_eq!(file.contexts[1].transaction, None);
        assert_ne!(file.contexts[2].transaction, file.contexts[0].transaction);
    }

    fn name(n: &str) -> RelationName {
        RelationName {
            schema: None,
            name: n.into(),
        }
    }
}
