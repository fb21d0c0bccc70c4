//! One parse and one lock analysis of a migration file, shared by lint,
//! rewrite, dry-run and apply.
//!
//! Besides each statement's own lock facts, this tracks what a statement's
//! verdict depends on elsewhere in the file: whether it runs inside a
//! transaction block (explicit `BEGIN`, or the transaction pgshift wraps a
//! migration in), which tables the file created earlier (they are empty and,
//! inside the creating transaction, invisible to other sessions), and
//! whether a `lock_timeout` is in effect.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::locks::{self, Analysis, PgVersion, RelationName, TransactionControl, TransactionUse};
use crate::sql::{self, ParseError, ParsedFile, Statement};

/// The `-- pgshift:no-transaction` directive: every statement of the file
/// runs on its own, outside a transaction block.
pub const NO_TRANSACTION_DIRECTIVE: &str = "no-transaction";

/// How pgshift runs the statements of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// Statements run in transactions that pgshift opens; statements that
    /// cannot run in a transaction block become steps of their own.
    Wrapped,
    /// Every statement runs on its own in autocommit.
    Autocommit,
}

/// Facts about a statement that depend on the statements before it.
#[derive(Debug, Clone, Default)]
pub struct StatementContext {
    /// Inside an explicit `BEGIN` ... `COMMIT` of the file.
    pub in_explicit_block: bool,
    /// Inside a transaction block when pgshift runs the file: an explicit
    /// block, or the transaction pgshift wraps transactional statements in.
    pub in_transaction: bool,
    /// A `lock_timeout` other than 0 is in effect for this statement.
    pub lock_timeout_set: bool,
    /// Tables created earlier in the file and still private to the current
    /// transaction (created in it).
    pub created_in_transaction: HashSet<RelationName>,
    /// Tables created earlier anywhere in the file.
    pub created_in_file: HashSet<RelationName>,
}

/// A parsed and analyzed migration file.
#[derive(Debug, Clone)]
pub struct AnalyzedFile {
    pub path: PathBuf,
    pub text: String,
    pub parsed: ParsedFile,
    pub mode: FileMode,
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
        let parsed = sql::parse(&text)?;
        // Before the first statement the directive marks the whole file;
        // further down it marks only the statement below it.
        let first = parsed
            .statements
            .first()
            .map_or(usize::MAX, |s| s.span.start);
        let directive = parsed
            .directives
            .iter()
            .any(|d| d.text == NO_TRANSACTION_DIRECTIVE && d.span.start < first);
        let mode = if autocommit || directive {
            FileMode::Autocommit
        } else {
            FileMode::Wrapped
        };
        let analyses: Vec<Analysis> = parsed
            .statements
            .iter()
            .map(|s| locks::analyze(&s.node, version))
            .collect();
        let contexts = track_context(&parsed.statements, &analyses, mode);
        Ok(AnalyzedFile {
            path: path.to_path_buf(),
            text,
            parsed,
            mode,
            version,
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

/// Returns true when two names can denote the same relation: equal names,
/// and equal schemas where both are written.
pub fn same_relation(a: &RelationName, b: &RelationName) -> bool {
    a.name == b.name
        && match (&a.schema, &b.schema) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

/// Returns true when `set` holds a relation that `name` can denote.
pub fn contains_relation(set: &HashSet<RelationName>, name: &RelationName) -> bool {
    set.iter().any(|r| same_relation(r, name))
}

fn track_context(
    statements: &[Statement],
    analyses: &[Analysis],
    mode: FileMode,
) -> Vec<StatementContext> {
    let mut contexts = Vec::with_capacity(statements.len());
    let mut current = StatementContext::default();

    for (stmt, analysis) in statements.iter().zip(analyses) {
        let control = match analysis.transaction {
            TransactionUse::Control(c) => Some(c),
            _ => None,
        };
        if control == Some(TransactionControl::Begin) {
            current.in_explicit_block = true;
            current.created_in_transaction.clear();
        }
        current.in_transaction = current.in_explicit_block
            || (mode == FileMode::Wrapped && analysis.transaction == TransactionUse::Any);
        contexts.push(current.clone());

        match control {
            Some(TransactionControl::Commit) | Some(TransactionControl::Rollback) => {
                current.in_explicit_block = false;
                current.created_in_transaction.clear();
            }
            _ => {}
        }
        if let Some(timeout) = lock_timeout_setting(&stmt.node) {
            current.lock_timeout_set = timeout;
        }
        for created in &analysis.creates {
            current.created_in_file.insert(created.clone());
            if current.in_transaction {
                current.created_in_transaction.insert(created.clone());
            }
        }
        // In autocommit, or after a statement that ends pgshift's wrapping
        // transaction, nothing stays private to a transaction.
        if !current.in_explicit_block && mode == FileMode::Autocommit {
            current.created_in_transaction.clear();
        }
    }
    contexts
}

/// Returns `Some(true)` for a statement that sets `lock_timeout` to a
/// non-zero value, `Some(false)` for one that sets it to 0 or resets it.
///
/// `SET LOCAL` outside a transaction block has no effect, which the caller
/// does not model yet.
// TODO: treat SET LOCAL lock_timeout outside a transaction block as no-op.
fn lock_timeout_setting(node: &pg_query::NodeEnum) -> Option<bool> {
    use pg_query::protobuf::VariableSetKind;
    use pg_query::NodeEnum;

    let NodeEnum::VariableSetStmt(set) = node else {
        return None;
    };
    if set.name != "lock_timeout" && set.kind != VariableSetKind::VarResetAll as i32 {
        return None;
    }
    if set.kind != VariableSetKind::VarSetValue as i32 {
        return Some(false);
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
    Some(!zero)
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
