//! `ADD COLUMN` with a volatile default on a populated table, where the
//! plan allows batched backfills. The column is added without its default,
//! so the table is not rewritten, and the default is set for new rows. A
//! batched backfill then fills the existing rows, and `NOT NULL` is added
//! the safe way.

use pg_query::protobuf::{
    AlterTableStmt, ColumnDef, ConstrType, LimitOption, Node, ResTarget, SelectStmt, SetOperation,
};
use pg_query::NodeEnum;

use super::facts::Known;
use super::forms::{set_not_null, Input, Target};
use super::text::{quote_ident, quote_relation};
use super::{Note, Piece, Place, StepKind};
use crate::locks::volatility::{tree_volatility, Volatility};

const NAME: &str = "add-column-batched-default";

/// Returns the pieces that replace `ADD COLUMN c type DEFAULT <volatile>
/// [NOT NULL]`, or `None` to keep the statement.
pub(super) fn volatile_default(
    input: &Input,
    alter: &AlterTableStmt,
    target: &Target,
    column: &ColumnDef,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    // From PostgreSQL 11 only a volatile default rewrites the table.
    // TODO: before 11 every default rewrites; this form would help there
    // too, with the backfill for any default.
    if !input.options.batch_backfills || input.version.major < 11 {
        return None;
    }
    let mut default = None;
    let mut not_null = false;
    for constraint in &column.constraints {
        let Some(NodeEnum::Constraint(c)) = &constraint.node else {
            return None;
        };
        match ConstrType::try_from(c.contype).ok()? {
            ConstrType::ConstrDefault => default = c.raw_expr.as_deref(),
            ConstrType::ConstrNotnull => not_null = true,
            ConstrType::ConstrNull => {}
            // Identity and generated columns are not defaults to backfill.
            ConstrType::ConstrIdentity | ConstrType::ConstrGenerated => return None,
            _ => {
                if default.is_some_and(|d| tree_volatility(d) == Volatility::Volatile) {
                    input.note(
                        notes,
                        NAME,
                        true,
                        "add the column's other constraints in statements of their own, so \
                         its volatile default can be backfilled in batches"
                            .to_string(),
                    );
                }
                return None;
            }
        }
    }
    let default = default?;
    if tree_volatility(default) != Volatility::Volatile {
        return None;
    }
    if alter.missing_ok || target.sql.starts_with("ONLY ") {
        return None;
    }
    if input.facts.has_primary_key(target.table) != Known::Yes {
        input.note(
            notes,
            NAME,
            true,
            format!(
                "the volatile default needs a batched backfill, which needs a primary key on \
                 {}{}",
                target.table.name,
                if input.facts.from_database {
                    ""
                } else {
                    " (give --database-url if it has one)"
                }
            ),
        );
        return None;
    }
    let expression = deparse_expression(default)?;
    let add = deparse_without_default(alter, column)?;
    let name = quote_ident(&column.colname);
    let table = &target.sql;
    let mut pieces = vec![
        Piece {
            sql: add,
            place: Place::Transaction,
        },
        Piece {
            sql: format!("ALTER TABLE {table} ALTER COLUMN {name} SET DEFAULT {expression}"),
            place: Place::Transaction,
        },
        Piece {
            sql: format!("UPDATE {table} SET {name} = {expression} WHERE {name} IS NULL"),
            place: Place::Alone(StepKind::Backfill {
                table: target.table.clone(),
                qualifier: quote_relation(target.table),
                batch_size: input.options.batch_size,
            }),
        },
    ];
    if not_null {
        let set = format!("ALTER TABLE {table} ALTER COLUMN {name} SET NOT NULL");
        pieces.extend(set_not_null(
            input,
            target,
            &column.colname,
            set.clone(),
            notes,
        )?);
    }
    Some(pieces)
}

/// Returns the `ALTER TABLE ... ADD COLUMN` with the column's `DEFAULT`
/// and `NOT NULL` left out.
fn deparse_without_default(alter: &AlterTableStmt, column: &ColumnDef) -> Option<String> {
    let mut column = column.clone();
    column.constraints.retain(|c| {
        !matches!(&c.node, Some(NodeEnum::Constraint(c))
            if c.contype == ConstrType::ConstrDefault as i32
                || c.contype == ConstrType::ConstrNotnull as i32)
    });
    let mut alter = alter.clone();
    let Some(NodeEnum::AlterTableCmd(cmd)) = alter.cmds.first_mut()?.node.as_mut() else {
        return None;
    };
    cmd.def = Some(Box::new(Node {
        node: Some(NodeEnum::ColumnDef(Box::new(column))),
    }));
    NodeEnum::AlterTableStmt(alter)
        .deparse(Default::default())
        .ok()
}

/// Returns the SQL text of an expression, as PostgreSQL's deparser writes
/// it.
fn deparse_expression(expression: &Node) -> Option<String> {
    let select = SelectStmt {
        target_list: vec![Node {
            node: Some(NodeEnum::ResTarget(Box::new(ResTarget {
                val: Some(Box::new(expression.clone())),
                ..ResTarget::default()
            }))),
        }],
        // Protobuf's 0 is "undefined" for these enums, which the deparser
        // rejects.
        limit_option: LimitOption::Default as i32,
        op: SetOperation::SetopNone as i32,
        ..SelectStmt::default()
    };
    let text = NodeEnum::SelectStmt(Box::new(select))
        .deparse(Default::default())
        .ok()?;
    text.strip_prefix("SELECT ").map(str::to_string)
}
