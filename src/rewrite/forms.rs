//! The online form of each statement kind pgshift rewrites.
//!
//! Each function returns the statements that replace one statement, with
//! where each runs, or `None` to keep the statement as written. A rewrite
//! that is not made for a reason the user can act on leaves a [`Note`].

use pg_query::protobuf::{
    AlterTableCmd, AlterTableStmt, AlterTableType, ConstrType, DropBehavior, IndexStmt,
    NullTestType, ObjectType, ReindexObjectType, Token,
};
use pg_query::NodeEnum;

use super::facts::{relation_name, string_value, Known, SchemaFacts};
use super::text::{self, quote_ident, quote_relation};
use super::{NotNullProofs, Note, Piece, Place, StepKind};
use crate::analysis::{contains_relation, StatementContext};
use crate::locks::{PgVersion, RelationName};
use crate::sql::Statement;

/// PostgreSQL's limit on identifier length in bytes (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// What a rewrite may look at.
pub(super) struct Input<'a> {
    pub stmt: &'a Statement,
    pub context: &'a StatementContext,
    pub version: PgVersion,
    pub facts: &'a SchemaFacts,
    pub proofs: &'a NotNullProofs,
    pub options: &'a super::RewriteOptions,
}

impl Input<'_> {
    pub(super) fn note(
        &self,
        notes: &mut Vec<Note>,
        rewrite: &'static str,
        skipped: bool,
        reason: String,
    ) {
        notes.push(Note {
            line: self.stmt.line,
            rewrite,
            skipped,
            reason,
        });
    }

    /// A table created earlier in the same file is empty, so the plain
    /// form is instant; inside the creating transaction it is also
    /// invisible to others and a concurrent form would fail there.
    pub(super) fn created_here(&self, table: &RelationName) -> bool {
        contains_relation(&self.context.created_in_file, table)
    }

    /// Byte range, within the statement text, of a location in the file.
    fn offset(&self, location: i32) -> Option<usize> {
        usize::try_from(location)
            .ok()?
            .checked_sub(self.stmt.span.start)
    }
}

/// Returns the online form of a statement, or `None` to keep it.
pub(super) fn online_form(input: &Input, notes: &mut Vec<Note>) -> Option<Vec<Piece>> {
    match &input.stmt.node {
        NodeEnum::IndexStmt(index) if !index.concurrent => create_index(input, index, notes),
        NodeEnum::DropStmt(drop)
            if drop.remove_type == ObjectType::ObjectIndex as i32 && !drop.concurrent =>
        {
            drop_index(input, drop, notes)
        }
        NodeEnum::ReindexStmt(reindex) => reindex_concurrently(input, reindex, notes),
        NodeEnum::AlterTableStmt(alter) => alter_table(input, alter, notes),
        _ => None,
    }
}

fn create_index(input: &Input, index: &IndexStmt, notes: &mut Vec<Note>) -> Option<Vec<Piece>> {
    const NAME: &str = "create-index-concurrently";
    let range = index.relation.as_ref()?;
    let table = relation_name(range);
    if input.created_here(&table) || !range.inh {
        // `ON ONLY` is how a partitioned table's parent index is created
        // without building anything.
        return None;
    }
    match input.facts.is_partitioned(&table) {
        Known::Yes => return partitioned_index(input, index, &table, notes),
        Known::No => {}
        Known::Unknown => input.note(
            notes,
            NAME,
            false,
            format!(
                "{} is not known to be a plain table; on a partitioned table CREATE INDEX \
                 CONCURRENTLY fails, so pass --database-url to plan the per-partition form",
                crate::rules::qualified(&table)
            ),
        ),
    }
    let mut sql = text::insert_after(&input.stmt.text, Token::Index, " CONCURRENTLY")?;
    if index.if_not_exists && !index.idxname.is_empty() {
        // With CONCURRENTLY, IF NOT EXISTS would skip an INVALID leftover
        // of a failed build. The executor looks the index up instead: it
        // keeps a valid one with the same definition and rebuilds an
        // INVALID one.
        sql = text::remove_if_not_exists(&sql).unwrap_or(sql);
    }
    let kind = if index.idxname.is_empty() {
        // TODO: find the generated name of an unnamed index so an INVALID
        // leftover of a failed build can be found and dropped.
        input.note(
            notes,
            NAME,
            false,
            "the index has no name, so a failed build's INVALID leftover cannot be found \
             and dropped before a retry; name the index"
                .to_string(),
        );
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
    Some(vec![Piece {
        sql,
        place: Place::Alone(kind),
    }])
}

/// `CREATE INDEX` on a partitioned table: the parent index `ON ONLY` the
/// parent (no build), one concurrent build per partition under the name
/// PostgreSQL would give it, and an `ATTACH PARTITION` of each.
fn partitioned_index(
    input: &Input,
    index: &IndexStmt,
    table: &RelationName,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "partitioned-index";
    let skip = |notes: &mut Vec<Note>, reason: &str| {
        input.note(notes, NAME, true, reason.to_string());
        None
    };
    let partitions = input.facts.partitions_of(table)?;
    if index.idxname.is_empty() {
        return skip(
            notes,
            "name the index so its partitions' indexes can be attached to it",
        );
    }
    if partitions
        .iter()
        .any(|p| input.facts.is_partitioned(p) == Known::Yes)
    {
        return skip(
            notes,
            "a partition is itself partitioned; pgshift builds one level of partitions only",
        );
    }
    let Some(columns) = index_column_names(index) else {
        return skip(
            notes,
            "the index has expression keys whose index names pgshift cannot predict",
        );
    };
    let stmt_text = &input.stmt.text;
    let relation_at = input.offset(index.relation.as_ref()?.location)?;
    let tokens = text::tokens(stmt_text);
    let name_token = index_name_token(&tokens)?;
    let name_range = text::range(name_token);
    let relation_range = tokens
        .iter()
        .map(text::range)
        .find(|r| r.start == relation_at)?;
    let relation_end = relation_token_end(&tokens, relation_at)?;

    let parent_index = RelationName {
        schema: table.schema.clone(),
        name: index.idxname.clone(),
    };
    let mut pieces = vec![Piece {
        sql: text::splice(stmt_text, relation_range.start, "ONLY "),
        place: Place::Transaction,
    }];
    for partition in partitions {
        let child_name = format!("{}_{}_idx", partition.name, columns.join("_"));
        if child_name.len() > MAX_IDENTIFIER {
            return skip(
                notes,
                "a partition's index name would be truncated by PostgreSQL",
            );
        }
        // Replace the later range first so the earlier offsets hold.
        let sql = text::replace(
            stmt_text,
            relation_range.start..relation_end,
            &quote_relation(partition),
        );
        let sql = text::replace(&sql, name_range.clone(), &quote_ident(&child_name));
        let sql = text::insert_after(&sql, Token::Index, " CONCURRENTLY")?;
        let child_index = RelationName {
            schema: partition.schema.clone(),
            name: child_name.clone(),
        };
        pieces.push(Piece {
            sql,
            place: Place::Alone(StepKind::ConcurrentIndex {
                index: child_index.clone(),
                table: partition.clone(),
            }),
        });
        pieces.push(Piece {
            sql: format!(
                "ALTER INDEX {} ATTACH PARTITION {}",
                quote_relation(&parent_index),
                quote_relation(&child_index)
            ),
            place: Place::Transaction,
        });
    }
    Some(pieces)
}

/// Returns the token of the index name: the first token after `INDEX`,
/// past `CONCURRENTLY` and `IF NOT EXISTS`.
fn index_name_token(
    tokens: &[pg_query::protobuf::ScanToken],
) -> Option<&pg_query::protobuf::ScanToken> {
    let at = tokens.iter().position(|t| t.token == Token::Index as i32)?;
    let skipped = [Token::Concurrently, Token::IfP, Token::Not, Token::Exists];
    tokens[at + 1..]
        .iter()
        .find(|t| !skipped.iter().any(|s| t.token == *s as i32))
}

/// Returns the end of a possibly qualified relation name starting at byte
/// `start`: the end of its last `.`-joined identifier.
fn relation_token_end(tokens: &[pg_query::protobuf::ScanToken], start: usize) -> Option<usize> {
    let first = tokens.iter().position(|t| text::range(t).start == start)?;
    let mut end = text::range(&tokens[first]).end;
    let mut i = first + 1;
    while i + 1 < tokens.len() && tokens[i].token == i32::from(b'.') {
        end = text::range(&tokens[i + 1]).end;
        i += 2;
    }
    Some(end)
}

/// Returns the column names PostgreSQL puts into an automatic index name,
/// or `None` when a key is an expression.
fn index_column_names(index: &IndexStmt) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for param in index
        .index_params
        .iter()
        .chain(&index.index_including_params)
    {
        match &param.node {
            Some(NodeEnum::IndexElem(elem)) if !elem.name.is_empty() => {
                names.push(elem.name.clone())
            }
            _ => return None,
        }
    }
    Some(names)
}

fn drop_index(
    input: &Input,
    drop: &pg_query::protobuf::DropStmt,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "drop-index-concurrently";
    if drop.objects.len() != 1 || drop.behavior == DropBehavior::DropCascade as i32 {
        return None;
    }
    let index = list_name(drop.objects.first()?)?;
    match input.facts.backs_constraint(&index) {
        Known::Yes => {
            input.note(
                notes,
                NAME,
                true,
                format!(
                    "index {} backs a constraint, which DROP INDEX CONCURRENTLY cannot drop; \
                     drop the constraint instead",
                    index.name
                ),
            );
            return None;
        }
        Known::Unknown => input.note(
            notes,
            NAME,
            false,
            format!(
                "not checked whether index {} backs a constraint (which would make the \
                 concurrent drop fail); give --database-url to check",
                index.name
            ),
        ),
        Known::No => {}
    }
    if input.facts.is_partitioned_index(&index) == Known::Yes {
        input.note(
            notes,
            NAME,
            true,
            format!(
                "index {} is a partitioned index, which cannot be dropped concurrently",
                index.name
            ),
        );
        return None;
    }
    let insert = if drop.missing_ok {
        " CONCURRENTLY"
    } else {
        // IF EXISTS makes the step safe to re-run after a crash between the
        // drop and its journal entry.
        " CONCURRENTLY IF EXISTS"
    };
    let sql = text::insert_after(&input.stmt.text, Token::Index, insert)?;
    Some(vec![Piece {
        sql,
        place: Place::Alone(StepKind::Autocommit),
    }])
}

/// Returns the name a `DROP` object list spells.
fn list_name(node: &pg_query::protobuf::Node) -> Option<RelationName> {
    let Some(NodeEnum::List(list)) = &node.node else {
        return None;
    };
    let parts: Vec<String> = list.items.iter().filter_map(string_value).collect();
    match parts.as_slice() {
        [name] => Some(RelationName {
            schema: None,
            name: name.clone(),
        }),
        [schema, name] => Some(RelationName {
            schema: Some(schema.clone()),
            name: name.clone(),
        }),
        _ => None,
    }
}

fn reindex_concurrently(
    input: &Input,
    reindex: &pg_query::protobuf::ReindexStmt,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "reindex-concurrently";
    let concurrent = reindex
        .params
        .iter()
        .any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"));
    let kind = reindex.kind;
    let is_index = kind == ReindexObjectType::ReindexObjectIndex as i32;
    let is_table = kind == ReindexObjectType::ReindexObjectTable as i32;
    if concurrent || !(is_index || is_table) {
        return None;
    }
    if is_table {
        if let Some(table) = reindex.relation.as_ref().map(relation_name) {
            if input.created_here(&table) {
                return None;
            }
        }
    }
    if input.version.major < 12 {
        input.note(
            notes,
            NAME,
            true,
            "REINDEX CONCURRENTLY needs PostgreSQL 12; build a twin index concurrently, \
             drop the old one concurrently and rename the twin instead"
                .to_string(),
        );
        return None;
    }
    let sql = text::insert_after_any(
        &input.stmt.text,
        &[Token::Index, Token::Table],
        " CONCURRENTLY",
    )?;
    let kind = match super::reindex_target(reindex) {
        Some(target) => StepKind::ConcurrentReindex { target },
        None => StepKind::Autocommit,
    };
    Some(vec![Piece {
        sql,
        place: Place::Alone(kind),
    }])
}

fn alter_table(input: &Input, alter: &AlterTableStmt, notes: &mut Vec<Note>) -> Option<Vec<Piece>> {
    let range = alter.relation.as_ref()?;
    let table = relation_name(range);
    if input.created_here(&table) {
        return None;
    }
    let cmds: Vec<&AlterTableCmd> = alter
        .cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
            _ => None,
        })
        .collect();
    if cmds.len() != 1 {
        if cmds.iter().any(|c| has_online_form(c)) {
            input.note(
                notes,
                "alter-table",
                true,
                "split the ALTER TABLE into one statement per change so each can take its \
                 online form"
                    .to_string(),
            );
        }
        return None;
    }
    let target = Target {
        table: &table,
        sql: target_sql(alter, range),
    };
    let cmd = cmds[0];
    let def = cmd.def.as_ref().and_then(|d| d.node.as_ref());
    match (AlterTableType::try_from(cmd.subtype).ok()?, def) {
        (AlterTableType::AtAddConstraint, Some(NodeEnum::Constraint(c))) => {
            let contype = ConstrType::try_from(c.contype).ok()?;
            match contype {
                ConstrType::ConstrForeign | ConstrType::ConstrCheck => {
                    add_not_valid(input, &target, c, contype, notes)
                }
                ConstrType::ConstrUnique | ConstrType::ConstrPrimary => {
                    add_key_using_index(input, &target, c, contype, notes)
                }
                _ => None,
            }
        }
        (AlterTableType::AtSetNotNull, _) => {
            set_not_null(input, &target, &cmd.name, input.stmt.text.clone(), notes)
        }
        (AlterTableType::AtAddColumn, Some(NodeEnum::ColumnDef(column))) => {
            super::add_column::volatile_default(input, alter, &target, column, notes)
        }
        (AlterTableType::AtDetachPartition, Some(NodeEnum::PartitionCmd(p))) if !p.concurrent => {
            detach_concurrently(input, &target, notes)
        }
        _ => None,
    }
}

fn has_online_form(cmd: &AlterTableCmd) -> bool {
    let subtype = cmd.subtype;
    subtype == AlterTableType::AtSetNotNull as i32
        || (subtype == AlterTableType::AtAddConstraint as i32
            && matches!(cmd.def.as_ref().and_then(|d| d.node.as_ref()),
                Some(NodeEnum::Constraint(c)) if !c.skip_validation && c.indexname.is_empty()))
}

/// The table of an `ALTER TABLE` as pgshift writes it in new statements.
pub(super) struct Target<'a> {
    pub table: &'a RelationName,
    /// `IF EXISTS`, `ONLY` and the quoted name, as the statement has them.
    pub sql: String,
}

fn target_sql(alter: &AlterTableStmt, range: &pg_query::protobuf::RangeVar) -> String {
    let mut sql = String::new();
    if alter.missing_ok {
        sql.push_str("IF EXISTS ");
    }
    if !range.inh {
        sql.push_str("ONLY ");
    }
    sql.push_str(&quote_relation(&relation_name(range)));
    sql
}

/// `ADD FOREIGN KEY` / `ADD CHECK` → `... NOT VALID`, then `VALIDATE
/// CONSTRAINT` in a transaction of its own.
fn add_not_valid(
    input: &Input,
    target: &Target,
    c: &pg_query::protobuf::Constraint,
    contype: ConstrType,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "add-constraint-not-valid";
    if c.skip_validation {
        return None;
    }
    if c.conname.is_empty() {
        input.note(
            notes,
            NAME,
            true,
            "name the constraint so a later VALIDATE CONSTRAINT can refer to it".to_string(),
        );
        return None;
    }
    if contype == ConstrType::ConstrForeign {
        match input.facts.is_partitioned(target.table) {
            Known::Yes => {
                input.note(
                    notes,
                    NAME,
                    true,
                    "a foreign key on a partitioned table cannot be added NOT VALID".to_string(),
                );
                return None;
            }
            Known::Unknown => input.note(
                notes,
                NAME,
                false,
                "not checked whether the table is partitioned (a foreign key on one cannot \
                 be added NOT VALID); give --database-url to check"
                    .to_string(),
            ),
            Known::No => {}
        }
    }
    Some(vec![
        Piece {
            sql: text::append(&input.stmt.text, " NOT VALID"),
            place: Place::Transaction,
        },
        Piece {
            sql: format!(
                "ALTER TABLE {} VALIDATE CONSTRAINT {}",
                target.sql,
                quote_ident(&c.conname)
            ),
            place: Place::OwnTransaction,
        },
    ])
}

/// `ADD UNIQUE` / `ADD PRIMARY KEY` → `CREATE UNIQUE INDEX CONCURRENTLY`
/// under the constraint's name, then `ADD CONSTRAINT ... USING INDEX`.
fn add_key_using_index(
    input: &Input,
    target: &Target,
    c: &pg_query::protobuf::Constraint,
    contype: ConstrType,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "add-key-using-index";
    if !c.indexname.is_empty() {
        return None;
    }
    let skip = |notes: &mut Vec<Note>, reason: &str| {
        input.note(notes, NAME, true, reason.to_string());
        None
    };
    if c.conname.is_empty() {
        return skip(
            notes,
            "name the constraint so its index can be built under that name",
        );
    }
    if c.deferrable || !c.including.is_empty() || !c.options.is_empty() || !c.indexspace.is_empty()
    {
        return skip(
            notes,
            "DEFERRABLE, INCLUDE, WITH and USING INDEX TABLESPACE are not carried over to a \
             concurrent build yet",
        );
    }
    if target.sql.starts_with("ONLY ") || target.sql.contains(" ONLY ") {
        return None;
    }
    if input.facts.is_partitioned(target.table) == Known::Yes {
        return skip(
            notes,
            "an index on a partitioned table cannot be built concurrently",
        );
    }
    let columns: Vec<String> = c
        .keys
        .iter()
        .filter_map(string_value)
        .map(|k| quote_ident(&k))
        .collect();
    let nulls = if c.nulls_not_distinct {
        " NULLS NOT DISTINCT"
    } else {
        ""
    };
    let name = quote_ident(&c.conname);
    let table_sql = quote_relation(target.table);
    let key = if contype == ConstrType::ConstrPrimary {
        "PRIMARY KEY"
    } else {
        "UNIQUE"
    };
    Some(vec![
        Piece {
            sql: format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table_sql} ({}){nulls}",
                columns.join(", ")
            ),
            place: Place::Alone(StepKind::ConcurrentIndex {
                index: RelationName {
                    schema: target.table.schema.clone(),
                    name: c.conname.clone(),
                },
                table: target.table.clone(),
            }),
        },
        Piece {
            sql: format!(
                "ALTER TABLE {} ADD CONSTRAINT {name} {key} USING INDEX {name}",
                target.sql
            ),
            place: Place::Transaction,
        },
    ])
}

/// `SET NOT NULL` → a `CHECK (col IS NOT NULL) NOT VALID`, its `VALIDATE`
/// in a transaction of its own, then `set_sql` (the `SET NOT NULL`, which
/// the valid check spares a scan on PG 12+) and the drop of the helper
/// check.
pub(super) fn set_not_null(
    input: &Input,
    target: &Target,
    column: &str,
    set_sql: String,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "set-not-null-via-check";
    if input.proofs.proves(&target.table.name, column) {
        return None;
    }
    if input.version.major < 12 {
        input.note(
            notes,
            NAME,
            true,
            "before PostgreSQL 12 SET NOT NULL scans the table even with a valid CHECK \
             (col IS NOT NULL)"
                .to_string(),
        );
        return None;
    }
    let check = format!("{}_{}_not_null", target.table.name, column);
    if check.len() > MAX_IDENTIFIER {
        input.note(
            notes,
            NAME,
            true,
            format!("the helper constraint name {check} is longer than 63 bytes"),
        );
        return None;
    }
    let check = quote_ident(&check);
    let table = &target.sql;
    Some(vec![
        Piece {
            sql: format!(
                "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({} IS NOT NULL) NOT VALID",
                quote_ident(column)
            ),
            place: Place::Transaction,
        },
        Piece {
            sql: format!("ALTER TABLE {table} VALIDATE CONSTRAINT {check}"),
            place: Place::OwnTransaction,
        },
        Piece {
            sql: set_sql,
            place: Place::Transaction,
        },
        Piece {
            sql: format!("ALTER TABLE {table} DROP CONSTRAINT {check}"),
            place: Place::Transaction,
        },
    ])
}

/// `DETACH PARTITION` → `DETACH PARTITION ... CONCURRENTLY` on PG 14+.
fn detach_concurrently(
    input: &Input,
    target: &Target,
    notes: &mut Vec<Note>,
) -> Option<Vec<Piece>> {
    const NAME: &str = "detach-partition-concurrently";
    if input.version.major < 14 {
        input.note(
            notes,
            NAME,
            true,
            "DETACH PARTITION CONCURRENTLY needs PostgreSQL 14".to_string(),
        );
        return None;
    }
    match input.facts.has_default_partition(target.table) {
        Known::Yes => {
            input.note(
                notes,
                NAME,
                true,
                "the table has a DEFAULT partition, which rules out a concurrent detach"
                    .to_string(),
            );
            return None;
        }
        Known::Unknown => input.note(
            notes,
            NAME,
            false,
            "not checked whether the table has a DEFAULT partition (which rules out a \
             concurrent detach); give --database-url to check"
                .to_string(),
        ),
        Known::No => {}
    }
    // A concurrent detach leaves the partition with a CHECK constraint
    // copying its bound, named as PostgreSQL names a CHECK: after its one
    // column, or after the table alone when the key has several.
    let Some(key) = input.facts.partition_key(target.table) else {
        input.note(
            notes,
            NAME,
            true,
            "the partition key is not known, so the CHECK constraint a concurrent detach \
             leaves behind cannot be dropped; give --database-url"
                .to_string(),
        );
        return None;
    };
    let NodeEnum::AlterTableStmt(alter) = &input.stmt.node else {
        return None;
    };
    let partition = alter.cmds.first().and_then(|c| match &c.node {
        Some(NodeEnum::AlterTableCmd(cmd)) => match cmd.def.as_ref()?.node.as_ref()? {
            NodeEnum::PartitionCmd(p) => p.name.as_ref().map(relation_name),
            _ => None,
        },
        _ => None,
    })?;
    let check = match key.as_slice() {
        [column] => format!("{}_{}_check", partition.name, column),
        _ => format!("{}_check", partition.name),
    };
    if check.len() > MAX_IDENTIFIER {
        return None;
    }
    Some(vec![
        Piece {
            sql: text::append(&input.stmt.text, " CONCURRENTLY"),
            place: Place::Alone(StepKind::Autocommit),
        },
        Piece {
            sql: format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                quote_relation(&partition),
                quote_ident(&check)
            ),
            place: Place::Transaction,
        },
    ])
}

/// Returns the column of a `CHECK (col IS NOT NULL)` constraint.
pub(super) fn not_null_check_column(c: &pg_query::protobuf::Constraint) -> Option<String> {
    if c.contype != ConstrType::ConstrCheck as i32 {
        return None;
    }
    let Some(NodeEnum::NullTest(test)) = c.raw_expr.as_ref()?.node.as_ref() else {
        return None;
    };
    if test.nulltesttype != NullTestType::IsNotNull as i32 {
        return None;
    }
    let Some(NodeEnum::ColumnRef(column)) = test.arg.as_ref()?.node.as_ref() else {
        return None;
    };
    match column.fields.as_slice() {
        [field] => string_value(field),
        _ => None,
    }
}
