//! Online forms of unsafe statements, and the split of a migration into the
//! steps the executor runs.
//!
//! Statements that PostgreSQL rejects inside a transaction block
//! (`CREATE INDEX CONCURRENTLY` and friends) become steps of their own; the
//! other statements of a migration stay together in transactional steps,
//! in file order. Edits are made on the original text by byte span, so the
//! rewritten SQL keeps the author's comments and layout.

use pg_query::protobuf::{ObjectType, Token};
use pg_query::NodeEnum;

use crate::analysis::{contains_relation, AnalyzedFile, FileMode, StatementContext};
use crate::locks::{
    Analysis, LockEffect, PgVersion, RelationName, TransactionControl, TransactionUse,
};
use crate::sql::Statement;

/// How the executor runs a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// Parses a migration, rewrites its statements into their online forms and
/// groups them into steps.
pub fn plan_migration(
    migration: &crate::plan::Migration,
    version: PgVersion,
) -> Result<Vec<Step>, RewriteError> {
    let file = AnalyzedFile::new(
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
    })?;
    plan_file(&file)
}

/// Groups the statements of an analyzed file into steps, rewriting those
/// that have an online form.
pub fn plan_file(file: &AnalyzedFile) -> Result<Vec<Step>, RewriteError> {
    reject_unsupported(file)?;

    let mut steps: Vec<Step> = Vec::new();
    let mut open: Option<Step> = None;

    for (stmt, analysis, context) in file.statements() {
        match analysis.transaction {
            TransactionUse::Control(TransactionControl::Begin) => {
                close(&mut steps, &mut open);
                continue;
            }
            TransactionUse::Control(TransactionControl::Commit) => {
                close(&mut steps, &mut open);
                continue;
            }
            TransactionUse::Control(_) => {
                return Err(unsupported(
                    file,
                    stmt,
                    "transaction control other than BEGIN and COMMIT is not supported in a \
                     migration; pgshift commits each transaction itself",
                ));
            }
            _ => {}
        }

        let online = online_form(stmt, analysis, context);
        let runs_alone = file.mode == FileMode::Autocommit
            || online.is_some()
            || analysis.transaction == TransactionUse::NotInBlock;

        if !runs_alone {
            let step = open.get_or_insert_with(|| Step {
                index: 0,
                kind: StepKind::Transaction,
                statements: Vec::new(),
            });
            step.statements
                .push(step_statement(stmt, analysis, file.version, None));
            continue;
        }

        // A statement that cannot run in a transaction block ends the
        // current transaction step even inside an explicit BEGIN ... COMMIT,
        // because pgshift opens and commits every transaction itself; lint
        // reports such a file.
        close(&mut steps, &mut open);
        let (sql, kind) = match online {
            Some(online) => (Some(online.sql), online.kind),
            None => (None, kind_of(stmt)),
        };
        steps.push(Step {
            index: 0,
            kind,
            statements: vec![step_statement(stmt, analysis, file.version, sql)],
        });
    }
    close(&mut steps, &mut open);

    for (i, step) in steps.iter_mut().enumerate() {
        step.index = i;
    }
    Ok(steps)
}

/// A statement's online form, with the step kind it runs as.
struct OnlineForm {
    sql: String,
    kind: StepKind,
}

/// Returns the online form of a statement, or `None` when it is already
/// safe or has no online form that keeps its meaning.
fn online_form(
    stmt: &Statement,
    analysis: &Analysis,
    context: &StatementContext,
) -> Option<OnlineForm> {
    let _ = analysis;
    match &stmt.node {
        NodeEnum::IndexStmt(index) if !index.concurrent => {
            let table = relation_name(index.relation.as_ref()?);
            // A table created earlier in the same migration is empty, so the
            // plain build is instant; inside the creating transaction the
            // table is also invisible to other sessions, and CONCURRENTLY
            // would fail there.
            if contains_relation(&context.created_in_file, &table) {
                return None;
            }
            let sql = insert_after_index_keyword(&stmt.text, " CONCURRENTLY")?;
            let kind = if index.idxname.is_empty() {
                // TODO: find the generated name of an unnamed index so an
                // INVALID leftover of a failed build can be found and dropped.
                StepKind::Autocommit
            } else {
                StepKind::ConcurrentIndex {
                    index: RelationName {
                        schema: table.schema.clone(),
                        name: index.idxname.clone(),
                    },
                    table,
                }
            };
            Some(OnlineForm { sql, kind })
        }
        NodeEnum::DropStmt(drop)
            if drop.remove_type == ObjectType::ObjectIndex as i32
                && !drop.concurrent
                && drop.objects.len() == 1
                && drop.behavior != pg_query::protobuf::DropBehavior::DropCascade as i32 =>
        {
            // TODO: leave the drop alone when the index backs a UNIQUE or
            // PRIMARY KEY constraint (DROP INDEX CONCURRENTLY rejects it);
            // that needs the catalog.
            let insert = if drop.missing_ok {
                " CONCURRENTLY"
            } else {
                // IF EXISTS makes the step safe to re-run after a crash
                // between the drop and its journal entry.
                " CONCURRENTLY IF EXISTS"
            };
            let sql = insert_after_index_keyword(&stmt.text, insert)?;
            Some(OnlineForm {
                sql,
                kind: StepKind::Autocommit,
            })
        }
        _ => None,
    }
}

/// Inserts `insert` right after the first `INDEX` keyword of `sql`, found
/// with the PostgreSQL scanner so comments and literals are never touched.
fn insert_after_index_keyword(sql: &str, insert: &str) -> Option<String> {
    let scan = pg_query::scan(sql).ok()?;
    let index = scan
        .tokens
        .iter()
        .find(|t| t.token == Token::Index as i32)?;
    let at = usize::try_from(index.end).ok()?;
    let mut out = String::with_capacity(sql.len() + insert.len());
    out.push_str(&sql[..at]);
    out.push_str(insert);
    out.push_str(&sql[at..]);
    Some(out)
}

fn kind_of(stmt: &Statement) -> StepKind {
    match &stmt.node {
        NodeEnum::IndexStmt(index) if index.concurrent && !index.idxname.is_empty() => {
            match index.relation.as_ref() {
                Some(rel) => {
                    let table = relation_name(rel);
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
        _ => StepKind::Autocommit,
    }
}

fn relation_name(range: &pg_query::protobuf::RangeVar) -> RelationName {
    RelationName {
        schema: (!range.schemaname.is_empty()).then(|| range.schemaname.clone()),
        name: range.relname.clone(),
    }
}

fn step_statement(
    stmt: &Statement,
    analysis: &Analysis,
    version: PgVersion,
    rewritten: Option<String>,
) -> StepStatement {
    match rewritten {
        None => StepStatement {
            rewritten: false,
            sql: stmt.text.clone(),
            line: stmt.line,
            locks: analysis.effects.clone(),
        },
        Some(sql) => StepStatement {
            locks: reanalyze(&sql, version).unwrap_or_else(|| analysis.effects.clone()),
            rewritten: true,
            sql,
            line: stmt.line,
        },
    }
}

/// Returns the locks of rewritten SQL, which pgshift produced from a parsed
/// statement and so always parses.
fn reanalyze(sql: &str, version: PgVersion) -> Option<Vec<LockEffect>> {
    let parsed = pg_query::parse(sql).ok()?;
    let node = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    Some(crate::locks::analyze(node, version).effects)
}

fn close(steps: &mut Vec<Step>, open: &mut Option<Step>) {
    if let Some(step) = open.take() {
        steps.push(step);
    }
}

fn reject_unsupported(file: &AnalyzedFile) -> Result<(), RewriteError> {
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
