//! Batched backfills: a top-level `UPDATE` of a table the migration did not
//! create runs in primary key ranges (keyset batches), each batch in a
//! short transaction of its own.
//!
//! The plan keeps the `UPDATE` as written and marks its step
//! [`StepKind::Backfill`]; the executor builds each batch's SQL with
//! [`batch_update_sql`] and [`batch_end_sql`]. A batch covers the keys
//! after the last finished one up to the key `batch_size` rows further,
//! and runs the statement with its own `WHERE` ANDed with that range.
//! `pgshift fix` marks such a statement with `-- pgshift:backfill
//! batch-size=N`, so applying the fixed file runs the same batches.

use pg_query::protobuf::{Token, UpdateStmt};
use pg_query::NodeEnum;

use super::facts::{relation_name, Known};
use super::forms::Input;
use super::text::{self, quote_ident, quote_relation};
use super::{Note, Piece, Place, RewriteOptions, StepKind};
use crate::analysis::{parse_backfill_directive, BACKFILL_DIRECTIVE};
use crate::locks::RelationName;

const NAME: &str = "batched-backfill";

/// One column of a primary key, with its type as `format_type` spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub name: String,
    pub sql_type: String,
}

/// Returns the batched form of an `UPDATE`, `Ok(None)` to keep it as
/// written, or an error when a `-- pgshift:backfill` directive requests a
/// batched backfill that cannot be made.
pub(super) fn batched_update(
    input: &Input,
    update: &UpdateStmt,
    directive: Option<&str>,
    options: &RewriteOptions,
    notes: &mut Vec<Note>,
) -> Result<Option<Vec<Piece>>, String> {
    let marked = match directive {
        Some(text) => parse_backfill_directive(text)?,
        None => None,
    };
    if marked.is_none() && !options.batch_backfills {
        return Ok(None);
    }
    let Some(range) = update.relation.as_ref() else {
        return Ok(None);
    };
    let table = relation_name(range);
    if input.created_here(&table) {
        // A table created in the same file is empty when the UPDATE runs.
        return match marked {
            Some(_) => Err(format!(
                "`-- pgshift:{BACKFILL_DIRECTIVE}` marks an UPDATE of {}, which this file \
                 creates; remove the directive",
                table.name
            )),
            None => Ok(None),
        };
    }
    if let Some(reason) = unbatchable(input, update, &table, marked.is_some()) {
        if marked.is_some() {
            return Err(format!(
                "`-- pgshift:{BACKFILL_DIRECTIVE}` cannot batch this UPDATE: {reason}"
            ));
        }
        input.note(notes, NAME, true, reason);
        return Ok(None);
    }
    let qualifier = match &range.alias {
        Some(alias) => quote_ident(&alias.aliasname),
        None => quote_relation(&table),
    };
    Ok(Some(vec![Piece {
        sql: input.stmt.text.clone(),
        place: Place::Alone(StepKind::Backfill {
            table,
            qualifier,
            batch_size: marked.flatten().unwrap_or(options.batch_size),
        }),
    }]))
}

/// Returns why an `UPDATE` cannot run in key-range batches, or `None` when
/// it can. With `marked` (a directive requests batching) a table whose
/// primary key the facts do not show is batched, and the executor reads
/// the key from the catalog.
fn unbatchable(
    input: &Input,
    update: &UpdateStmt,
    table: &RelationName,
    marked: bool,
) -> Option<String> {
    if update
        .returning_clause
        .as_ref()
        .is_some_and(|r| !r.exprs.is_empty())
    {
        return Some(
            "an UPDATE with RETURNING returns all rows at once; batches would split its \
             result"
                .to_string(),
        );
    }
    if update.with_clause.is_some() {
        return Some(
            "an UPDATE with a WITH clause may depend on the rows of the whole table; \
             move the WITH query into a subquery to batch it"
                .to_string(),
        );
    }
    if matches!(
        update.where_clause.as_ref().and_then(|w| w.node.as_ref()),
        Some(NodeEnum::CurrentOfExpr(_))
    ) {
        return Some("WHERE CURRENT OF updates one row of a cursor".to_string());
    }
    match input.facts.has_primary_key(table) {
        Known::Yes => {}
        Known::No => {
            return Some(format!(
                "table {} has no primary key to batch by; add one first",
                table.name
            ))
        }
        Known::Unknown if marked => {}
        Known::Unknown => {
            return Some(format!(
                "not known whether table {} has a primary key to batch by; give \
                 --database-url",
                table.name
            ))
        }
    }
    let key = input.facts.primary_key(table)?;
    let column = set_columns(update)
        .into_iter()
        .find(|c| key.columns.contains(c))?;
    Some(format!(
        "the UPDATE sets primary key column {column}, so rows would move between batches"
    ))
}

/// Returns the columns an `UPDATE` assigns.
pub fn set_columns(update: &UpdateStmt) -> Vec<String> {
    update
        .target_list
        .iter()
        .filter_map(|t| match &t.node {
            Some(NodeEnum::ResTarget(target)) => Some(target.name.clone()),
            _ => None,
        })
        .collect()
}

/// Returns the directive line `fix` writes above a batched backfill.
pub(super) fn directive_line(batch_size: u32) -> String {
    format!("-- pgshift:{BACKFILL_DIRECTIVE} batch-size={batch_size}\n")
}

/// Returns `(c1, c2)` for the key columns, each prefixed by `qualifier`
/// when one is given.
fn key_row(qualifier: Option<&str>, key: &[KeyColumn]) -> String {
    let columns: Vec<String> = key
        .iter()
        .map(|c| match qualifier {
            Some(q) => format!("{q}.{}", quote_ident(&c.name)),
            None => quote_ident(&c.name),
        })
        .collect();
    format!("({})", columns.join(", "))
}

/// Returns `($1::text::type, ...)`: parameters sent as text and cast to
/// the key columns' types, numbered from `first`.
fn parameter_row(first: usize, key: &[KeyColumn]) -> String {
    let values: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::text::{}", first + i, c.sql_type))
        .collect();
    format!("({})", values.join(", "))
}

/// Returns the key range condition of a batch. With `after`, keys greater
/// than the parameters `$1..$n`; with `upto`, keys up to the next `n`
/// parameters.
fn range_condition(qualifier: Option<&str>, key: &[KeyColumn], after: bool, upto: bool) -> String {
    let row = key_row(qualifier, key);
    let mut parts = Vec::new();
    let mut next = 1;
    if after {
        parts.push(format!("{row} > {}", parameter_row(next, key)));
        next += key.len();
    }
    if upto {
        parts.push(format!("{row} <= {}", parameter_row(next, key)));
    }
    if parts.is_empty() {
        return "true".to_string();
    }
    parts.join(" AND ")
}

/// Returns the query that finds the last key of the next batch: the key
/// `batch_size` rows after the last finished one (after `$1..$n` when
/// `after` is set), as text, or no row when fewer rows remain.
pub fn batch_end_sql(
    table: &crate::locks::RelationName,
    key: &[KeyColumn],
    after: bool,
    batch_size: u32,
) -> String {
    let columns: Vec<String> = key
        .iter()
        .map(|c| format!("{}::text", quote_ident(&c.name)))
        .collect();
    let order: Vec<String> = key.iter().map(|c| quote_ident(&c.name)).collect();
    let filter = if after {
        format!(" WHERE {}", range_condition(None, key, true, false))
    } else {
        String::new()
    };
    // The casts to text sit in the outer query: in the inner one, ORDER BY
    // would take `id` for the output column `id::text AS id` and sort the
    // keys as text.
    format!(
        "SELECT {} FROM (SELECT {} FROM {}{filter} ORDER BY {} LIMIT 1 OFFSET {}) AS batch_end",
        columns.join(", "),
        order.join(", "),
        quote_relation(table),
        order.join(", "),
        batch_size.saturating_sub(1)
    )
}

/// Returns the query that counts the keys after `$1..$n` (all keys without
/// `after`): the size of the last batch, which is below `batch_size`.
pub fn batch_rest_sql(
    table: &crate::locks::RelationName,
    key: &[KeyColumn],
    after: bool,
) -> String {
    let filter = if after {
        format!(" WHERE {}", range_condition(None, key, true, false))
    } else {
        String::new()
    };
    format!("SELECT count(*) FROM {}{filter}", quote_relation(table))
}

/// Returns one batch of the `UPDATE` in `sql`: its own `WHERE` (if any),
/// in parentheses, ANDed with the key range. `after` adds the lower bound
/// `$1..$n`, `upto` the upper bound in the next `n` parameters. Returns
/// `None` when the statement text cannot be scanned.
pub fn batch_update_sql(
    sql: &str,
    qualifier: &str,
    key: &[KeyColumn],
    after: bool,
    upto: bool,
) -> Option<String> {
    let tokens = text::tokens(sql);
    if tokens.is_empty() {
        return None;
    }
    let condition = range_condition(Some(qualifier), key, after, upto);
    let code_end = tokens
        .iter()
        .rev()
        .find(|t| t.token != Token::SqlComment as i32 && t.token != Token::CComment as i32)
        .map(|t| text::range(t).end)?;
    let mut depth = 0i32;
    let mut where_end = None;
    for token in &tokens {
        if token.token == i32::from(b'(') {
            depth += 1;
        } else if token.token == i32::from(b')') {
            depth -= 1;
        } else if depth == 0 && token.token == Token::Where as i32 {
            where_end = Some(text::range(token).end);
            break;
        }
    }
    Some(match where_end {
        Some(at) => format!(
            "{} ({}) AND {condition}{}",
            &sql[..at],
            sql[at..code_end].trim(),
            &sql[code_end..]
        ),
        None => format!("{} WHERE {condition}{}", &sql[..code_end], &sql[code_end..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(names: &[(&str, &str)]) -> Vec<KeyColumn> {
        names
            .iter()
            .map(|(n, t)| KeyColumn {
                name: n.to_string(),
                sql_type: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn own_where_is_kept_and_anded() {
        let sql = "UPDATE t AS x SET a = c.a FROM c WHERE c.id = x.cid -- note";
        let out = batch_update_sql(sql, "x", &key(&[("id", "bigint")]), true, true).unwrap();
        assert_eq!(
            out,
            "UPDATE t AS x SET a = c.a FROM c WHERE (c.id = x.cid) AND (x.id) > \
             ($1::text::bigint) AND (x.id) <= ($2::text::bigint) -- note"
        );
    }

    #[test]
    fn where_in_subquery_is_not_the_statement_where() {
        let sql = "UPDATE t SET a = (SELECT max(b) FROM u WHERE u.t = t.id)";
        let out = batch_update_sql(sql, "t", &key(&[("id", "int")]), false, true).unwrap();
        assert_eq!(
            out,
            "UPDATE t SET a = (SELECT max(b) FROM u WHERE u.t = t.id) WHERE (t.id) <= \
             ($1::text::int)"
        );
    }

    fn plan(sql: &str, batch: bool) -> Result<super::super::FilePlan, super::super::RewriteError> {
        let file = crate::analysis::AnalyzedFile::new(
            std::path::Path::new("t.sql"),
            sql.to_string(),
            false,
            crate::locks::PgVersion::new(15, 0),
        )
        .unwrap();
        let mut facts = super::super::SchemaFacts::default();
        facts.learn_sql("CREATE TABLE t (id int PRIMARY KEY, n int);");
        let options = RewriteOptions {
            batch_backfills: batch,
            batch_size: 50,
            ..RewriteOptions::default()
        };
        super::super::plan_file_with_options(&file, &facts, &options)
    }

    #[test]
    fn directive_batches_without_the_setting() {
        let marked = plan(
            "-- pgshift:backfill batch-size=7\nUPDATE t SET n = 1;",
            false,
        )
        .unwrap();
        assert!(matches!(
            marked.steps[0].kind,
            StepKind::Backfill { batch_size: 7, .. }
        ));
        let plain = plan("UPDATE t SET n = 1;", false).unwrap();
        assert_eq!(plain.steps[0].kind, StepKind::Transaction);
        let set = plan("UPDATE t SET n = 1;", true).unwrap();
        assert!(matches!(
            set.steps[0].kind,
            StepKind::Backfill { batch_size: 50, .. }
        ));
    }

    #[test]
    fn directive_on_other_statements_is_an_error() {
        let error = plan("-- pgshift:backfill\nDELETE FROM t;", false).unwrap_err();
        assert!(error.to_string().contains("not an UPDATE"), "{error}");
        let error = plan("-- pgshift:backfill\nUPDATE t SET id = id + 1;", false).unwrap_err();
        assert!(
            error.to_string().contains("primary key column id"),
            "{error}"
        );
        let error = plan(
            "-- pgshift:backfill batch-size=-1\nUPDATE t SET n = 1;",
            false,
        )
        .unwrap_err();
        assert!(error.to_string().contains("invalid batch size"), "{error}");
    }

    #[test]
    fn composite_key_compares_rows() {
        let sql = "UPDATE t SET n = n + 1";
        let k = key(&[("a", "int"), ("b", "text")]);
        let out = batch_update_sql(sql, "t", &k, true, false).unwrap();
        assert_eq!(
            out,
            "UPDATE t SET n = n + 1 WHERE (t.a, t.b) > ($1::text::int, $2::text::text)"
        );
        let end = batch_end_sql(
            &crate::locks::RelationName {
                schema: Some("app".into()),
                name: "t".into(),
            },
            &k,
            true,
            500,
        );
        assert_eq!(
            end,
            "SELECT a::text, b::text FROM (SELECT a, b FROM app.t WHERE (a, b) > \
             ($1::text::int, $2::text::text) ORDER BY a, b LIMIT 1 OFFSET 499) AS batch_end"
        );
    }
}
