//! Lock analysis per statement kind, except `ALTER TABLE` (see
//! `alter_table.rs`).
//!
//! Each fact here was checked on PostgreSQL 15 with `pg_locks` by
//! `tests/locks_pg.rs`; facts that differ in other versions are keyed by
//! [`PgVersion`].

use pg_query::protobuf::{self, ObjectType};
use pg_query::NodeEnum;
use serde_json::Value;

use super::builder::Builder;
use super::volatility::calls_user_function;
use super::{
    alter_table, Analysis, Context, Hold, LockMode, PgVersion, RelationKind, RelationName,
    TransactionControl, TransactionUse,
};

use Hold::{Brief, Rewrite, Scan};
use LockMode::*;

pub(crate) fn analyze(node: &NodeEnum, context: &Context<'_>) -> Analysis {
    let mut b = Builder::new("other");
    let version = context.version;
    match node {
        NodeEnum::IndexStmt(stmt) => create_index(stmt, context, &mut b),
        NodeEnum::DropStmt(stmt) => drop(stmt, &mut b),
        NodeEnum::AlterTableStmt(stmt) => alter_table::analyze(stmt, context, &mut b),
        NodeEnum::RenameStmt(stmt) => rename(stmt, version, &mut b),
        NodeEnum::CreateStmt(stmt) => create_table(stmt, version, &mut b),
        NodeEnum::CreateTableAsStmt(stmt) => create_table_as(stmt, &mut b),
        NodeEnum::ViewStmt(stmt) => {
            b.kind("create-view");
            if let Some(view) = &stmt.view {
                b.creates(RelationName::from_range_var(view));
            }
            read_all(&stmt.query, &mut b);
        }
        NodeEnum::CreateTrigStmt(stmt) => {
            b.kind("create-trigger");
            if let Some(table) = &stmt.relation {
                b.table(
                    RelationName::from_range_var(table),
                    ShareRowExclusive,
                    Brief,
                );
            }
        }
        NodeEnum::CreatePolicyStmt(stmt) => {
            b.kind("create-policy");
            if let Some(table) = &stmt.table {
                b.table(RelationName::from_range_var(table), AccessExclusive, Brief);
            }
        }
        NodeEnum::AlterPolicyStmt(stmt) => {
            b.kind("alter-policy");
            if let Some(table) = &stmt.table {
                b.table(RelationName::from_range_var(table), AccessExclusive, Brief);
            }
        }
        NodeEnum::RuleStmt(stmt) => {
            b.kind("create-rule");
            if let Some(table) = &stmt.relation {
                b.table(RelationName::from_range_var(table), AccessExclusive, Brief);
            }
        }
        NodeEnum::TruncateStmt(stmt) => {
            b.kind("truncate");
            for table in range_vars(&stmt.relations) {
                b.table(table, AccessExclusive, Brief);
            }
        }
        NodeEnum::VacuumStmt(stmt) => vacuum(stmt, &mut b),
        NodeEnum::ClusterStmt(stmt) => {
            b.kind("cluster");
            match &stmt.relation {
                Some(table) => {
                    b.table(
                        RelationName::from_range_var(table),
                        AccessExclusive,
                        Rewrite,
                    );
                }
                None => {
                    b.transaction(TransactionUse::NotInBlock);
                    b.note(
                        "CLUSTER without a table reclusters every clustered table of the database",
                    );
                }
            }
        }
        NodeEnum::ReindexStmt(stmt) => reindex(stmt, version, &mut b),
        NodeEnum::RefreshMatViewStmt(stmt) => {
            b.kind("refresh-materialized-view");
            let (mode, hold) = if stmt.concurrent {
                (Exclusive, Scan)
            } else {
                (AccessExclusive, Rewrite)
            };
            if let Some(view) = &stmt.relation {
                b.lock(
                    RelationName::from_range_var(view),
                    RelationKind::MaterializedView,
                    mode,
                    hold,
                );
            }
            b.note("the tables the view reads get ACCESS SHARE; the statement does not name them");
        }
        NodeEnum::LockStmt(stmt) => {
            b.kind("lock-table");
            let mode = LockMode::from_lockmode_number(stmt.mode).unwrap_or(AccessExclusive);
            for table in range_vars(&stmt.relations) {
                b.table(table, mode, Brief);
            }
        }
        NodeEnum::InsertStmt(stmt) => {
            b.kind("insert");
            if let Some(table) = &stmt.relation {
                b.table(RelationName::from_range_var(table), RowExclusive, Brief);
            }
            read_all_except_target(node, &mut b);
            mark_user_calls(node, &mut b);
        }
        NodeEnum::UpdateStmt(stmt) => {
            b.kind("update");
            write_rows(&stmt.relation, stmt.where_clause.is_none(), node, &mut b);
        }
        NodeEnum::DeleteStmt(stmt) => {
            b.kind("delete");
            write_rows(&stmt.relation, stmt.where_clause.is_none(), node, &mut b);
        }
        NodeEnum::SelectStmt(stmt) => select(stmt, node, &mut b),
        NodeEnum::CopyStmt(stmt) => {
            b.kind("copy");
            if let Some(table) = &stmt.relation {
                let mode = if stmt.is_from {
                    RowExclusive
                } else {
                    AccessShare
                };
                b.table(RelationName::from_range_var(table), mode, Scan);
            }
            read_all(&stmt.query, &mut b);
        }
        NodeEnum::AlterEnumStmt(stmt) => {
            let adds = !stmt.new_val.is_empty() && stmt.old_val.is_empty();
            b.kind(if adds {
                "alter-type-add-value"
            } else {
                "alter-type-rename-value"
            });
            if adds && !version.at_least(12) {
                b.transaction(TransactionUse::NotInBlock);
            }
        }
        NodeEnum::CommentStmt(stmt) => comment(stmt, &mut b),
        NodeEnum::GrantStmt(stmt) => {
            b.kind(if stmt.is_grant { "grant" } else { "revoke" });
        }
        NodeEnum::VariableSetStmt(stmt) => {
            let resets = matches!(
                protobuf::VariableSetKind::try_from(stmt.kind),
                Ok(protobuf::VariableSetKind::VarReset | protobuf::VariableSetKind::VarResetAll)
            );
            b.kind(if resets { "reset" } else { "set" });
        }
        NodeEnum::VariableShowStmt(_) => {
            b.kind("show");
        }
        NodeEnum::TransactionStmt(stmt) => transaction(stmt, &mut b),
        NodeEnum::DoStmt(_) => {
            b.kind("do").opaque();
        }
        NodeEnum::CallStmt(_) => {
            b.kind("call").opaque();
        }
        NodeEnum::CreateFunctionStmt(stmt) => {
            b.kind(if stmt.is_procedure {
                "create-procedure"
            } else {
                "create-function"
            });
        }
        NodeEnum::CreatedbStmt(_) => {
            b.kind("create-database")
                .transaction(TransactionUse::NotInBlock);
        }
        NodeEnum::DropdbStmt(_) => {
            b.kind("drop-database")
                .transaction(TransactionUse::NotInBlock);
        }
        NodeEnum::ExplainStmt(stmt) => {
            b.kind("explain");
            read_all(&stmt.query, &mut b);
            mark_user_calls(node, &mut b);
        }
        _ => mark_user_calls(node, &mut b),
    }
    b.finish()
}

fn create_index(stmt: &protobuf::IndexStmt, context: &Context<'_>, b: &mut Builder) {
    b.kind("create-index");
    let Some(range) = stmt.relation.as_ref() else {
        return;
    };
    let table = RelationName::from_range_var(range);
    // `CREATE INDEX ... ON ONLY parent` of a partitioned table creates the
    // parent's index INVALID and builds nothing: partitions get their
    // indexes built and attached separately. On a table that is not
    // partitioned, ONLY changes nothing and the index is built.
    let partitioned = context
        .column_types
        .and_then(|catalog| catalog.is_partitioned(&table));
    if !range.inh && !stmt.concurrent && partitioned != Some(false) {
        if !stmt.idxname.is_empty() {
            b.creates(RelationName {
                schema: table.schema.clone(),
                name: stmt.idxname.clone(),
            });
        }
        if partitioned.is_none() {
            b.note(
                "ON ONLY is taken as the index of a partitioned table's parent, which \
                 builds nothing; on a table that is not partitioned the index is built",
            );
        }
        b.table(table, Share, Brief);
        return;
    }
    let mode = if stmt.concurrent {
        b.transaction(TransactionUse::NotInBlock);
        ShareUpdateExclusive
    } else {
        Share
    };
    if !stmt.idxname.is_empty() {
        b.creates(RelationName {
            schema: table.schema.clone(),
            name: stmt.idxname.clone(),
        });
    }
    b.table(table, mode, Scan);
}

fn drop(stmt: &protobuf::DropStmt, b: &mut Builder) {
    let object_type = ObjectType::try_from(stmt.remove_type).unwrap_or(ObjectType::Undefined);
    let names: Vec<Vec<String>> = stmt.objects.iter().map(|o| strings(&o.node)).collect();
    let relations = || names.iter().filter_map(|n| RelationName::from_name_list(n));
    match object_type {
        ObjectType::ObjectIndex => {
            b.kind("drop-index");
            let mode = if stmt.concurrent {
                b.transaction(TransactionUse::NotInBlock);
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            for index in relations() {
                b.lock(index, RelationKind::Index, mode, Brief);
            }
            b.note(format!(
                "the index's table also gets {}; the statement does not name it",
                mode.sql_name()
            ));
        }
        ObjectType::ObjectTable | ObjectType::ObjectForeignTable => {
            b.kind("drop-table");
            for table in relations() {
                b.table(table, AccessExclusive, Brief);
            }
            b.note(
                "every table that the dropped table's foreign keys reference, or that references \
                 it, also gets ACCESS EXCLUSIVE while the foreign key triggers are removed; the \
                 statement does not name them",
            );
        }
        ObjectType::ObjectView | ObjectType::ObjectMatview | ObjectType::ObjectSequence => {
            b.kind("drop-relation");
            let kind = match object_type {
                ObjectType::ObjectView => RelationKind::View,
                ObjectType::ObjectMatview => RelationKind::MaterializedView,
                _ => RelationKind::Sequence,
            };
            for relation in relations() {
                b.lock(relation, kind, AccessExclusive, Brief);
            }
        }
        ObjectType::ObjectTrigger | ObjectType::ObjectRule | ObjectType::ObjectPolicy => {
            b.kind(match object_type {
                ObjectType::ObjectTrigger => "drop-trigger",
                ObjectType::ObjectRule => "drop-rule",
                _ => "drop-policy",
            });
            // The name list is [schema.]table.object.
            for name in &names {
                if let Some(table) =
                    RelationName::from_name_list(&name[..name.len().saturating_sub(1)])
                {
                    b.table(table, AccessExclusive, Brief);
                }
            }
        }
        _ => {
            b.kind("drop-other");
        }
    }
}

fn rename(stmt: &protobuf::RenameStmt, version: PgVersion, b: &mut Builder) {
    let rename_type = ObjectType::try_from(stmt.rename_type).unwrap_or(ObjectType::Undefined);
    let Some(relation) = stmt.relation.as_ref().map(RelationName::from_range_var) else {
        b.kind("rename-other");
        return;
    };
    match rename_type {
        ObjectType::ObjectTable | ObjectType::ObjectForeignTable => {
            b.kind("rename-table")
                .table(relation, AccessExclusive, Brief);
        }
        ObjectType::ObjectColumn => {
            b.kind("rename-column")
                .table(relation, AccessExclusive, Brief);
        }
        ObjectType::ObjectTabconstraint => {
            b.kind("rename-constraint")
                .table(relation, AccessExclusive, Brief);
        }
        ObjectType::ObjectIndex => {
            // ALTER INDEX ... RENAME takes SHARE UPDATE EXCLUSIVE from 12.
            let mode = if version.at_least(12) {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            b.kind("rename-index")
                .lock(relation, RelationKind::Index, mode, Brief);
        }
        ObjectType::ObjectView | ObjectType::ObjectMatview | ObjectType::ObjectSequence => {
            b.kind("rename-relation")
                .lock(relation, RelationKind::Unknown, AccessExclusive, Brief);
        }
        ObjectType::ObjectTrigger | ObjectType::ObjectRule | ObjectType::ObjectPolicy => {
            b.kind("rename-other")
                .table(relation, AccessExclusive, Brief);
        }
        _ => {
            b.kind("rename-other");
        }
    }
}

fn create_table(stmt: &protobuf::CreateStmt, version: PgVersion, b: &mut Builder) {
    b.kind("create-table");
    if let Some(table) = &stmt.relation {
        b.creates(RelationName::from_range_var(table));
    }
    let parents = range_vars(&stmt.inh_relations);
    if stmt.partbound.is_some() {
        b.kind("create-table-partition-of");
        for parent in parents {
            b.table(parent, AccessExclusive, Brief);
        }
    } else {
        for parent in parents {
            b.table(parent, ShareUpdateExclusive, Brief);
        }
    }

    // Foreign keys: SHARE ROW EXCLUSIVE on the referenced table from 9.5.
    let fk_mode = if version >= PgVersion::new(9, 5) {
        ShareRowExclusive
    } else {
        AccessExclusive
    };
    let mut constraints: Vec<&protobuf::Constraint> = Vec::new();
    for element in &stmt.table_elts {
        match &element.node {
            Some(NodeEnum::ColumnDef(column)) => {
                constraints.extend(column.constraints.iter().filter_map(as_constraint));
            }
            Some(NodeEnum::Constraint(constraint)) => constraints.push(constraint),
            Some(NodeEnum::TableLikeClause(like)) => {
                if let Some(source) = &like.relation {
                    b.table(RelationName::from_range_var(source), AccessShare, Brief);
                }
            }
            _ => {}
        }
    }
    constraints.extend(stmt.constraints.iter().filter_map(as_constraint));
    for constraint in constraints {
        if constraint.contype == protobuf::ConstrType::ConstrForeign as i32 {
            if let Some(referenced) = &constraint.pktable {
                b.table(RelationName::from_range_var(referenced), fk_mode, Brief);
            }
        }
    }
}

fn as_constraint(node: &protobuf::Node) -> Option<&protobuf::Constraint> {
    match &node.node {
        Some(NodeEnum::Constraint(constraint)) => Some(constraint),
        _ => None,
    }
}

fn create_table_as(stmt: &protobuf::CreateTableAsStmt, b: &mut Builder) {
    let matview = stmt.objtype == ObjectType::ObjectMatview as i32;
    b.kind(if matview {
        "create-materialized-view"
    } else {
        "create-table-as"
    });
    if let Some(rel) = stmt.into.as_ref().and_then(|into| into.rel.as_ref()) {
        b.creates(RelationName::from_range_var(rel));
    }
    read_all(&stmt.query, b);
}

fn vacuum(stmt: &protobuf::VacuumStmt, b: &mut Builder) {
    let full = def_elems(&stmt.options).any(|(name, on)| name == "full" && on);
    let (kind, mode, hold) = match (stmt.is_vacuumcmd, full) {
        (true, true) => ("vacuum-full", AccessExclusive, Rewrite),
        (true, false) => ("vacuum", ShareUpdateExclusive, Scan),
        (false, _) => ("analyze", ShareUpdateExclusive, Scan),
    };
    b.kind(kind);
    if stmt.is_vacuumcmd {
        b.transaction(TransactionUse::NotInBlock);
    }
    for relation in &stmt.rels {
        if let Some(NodeEnum::VacuumRelation(rel)) = &relation.node {
            if let Some(table) = &rel.relation {
                b.table(RelationName::from_range_var(table), mode, hold);
            }
        }
    }
    if stmt.rels.is_empty() {
        b.note(format!(
            "{kind} without a table processes every table of the database"
        ));
    }
}

fn reindex(stmt: &protobuf::ReindexStmt, version: PgVersion, b: &mut Builder) {
    use protobuf::ReindexObjectType as Object;
    b.kind("reindex");
    let concurrent = def_elems(&stmt.params).any(|(name, on)| name == "concurrently" && on);
    if concurrent {
        b.transaction(TransactionUse::NotInBlock);
        if !version.at_least(12) {
            b.note("REINDEX ... CONCURRENTLY needs PostgreSQL 12");
        }
    }
    let relation = stmt.relation.as_ref().map(RelationName::from_range_var);
    match (
        Object::try_from(stmt.kind).unwrap_or(Object::Undefined),
        relation,
    ) {
        (Object::ReindexObjectIndex, Some(index)) => {
            let mode = if concurrent {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            b.lock(index, RelationKind::Index, mode, Rewrite);
            let table_mode = if concurrent {
                ShareUpdateExclusive
            } else {
                Share
            };
            b.note(format!(
                "the index's table also gets {}; the statement does not name it",
                table_mode.sql_name()
            ));
        }
        (Object::ReindexObjectTable, Some(table)) => {
            let mode = if concurrent {
                ShareUpdateExclusive
            } else {
                Share
            };
            b.table(table, mode, Scan);
            let index_mode = if concurrent {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            b.note(format!(
                "each index of the table (and of its TOAST table) gets {} while it is rebuilt",
                index_mode.sql_name()
            ));
        }
        _ => {
            b.transaction(TransactionUse::NotInBlock);
            b.note(
                "REINDEX of a schema, database or system locks every table in it, one at a time",
            );
        }
    }
}

fn comment(stmt: &protobuf::CommentStmt, b: &mut Builder) {
    b.kind("comment");
    let object_type = ObjectType::try_from(stmt.objtype).unwrap_or(ObjectType::Undefined);
    let names = stmt
        .object
        .as_ref()
        .map(|o| strings(&o.node))
        .unwrap_or_default();
    let relation = match object_type {
        ObjectType::ObjectTable
        | ObjectType::ObjectView
        | ObjectType::ObjectMatview
        | ObjectType::ObjectIndex
        | ObjectType::ObjectSequence
        | ObjectType::ObjectForeignTable => RelationName::from_name_list(&names),
        ObjectType::ObjectColumn => {
            RelationName::from_name_list(&names[..names.len().saturating_sub(1)])
        }
        // TODO: COMMENT ON CONSTRAINT / TRIGGER ... ON table also locks the
        // table; not yet verified against the server, so not claimed.
        _ => None,
    };
    if let Some(relation) = relation {
        let kind = match object_type {
            ObjectType::ObjectIndex => RelationKind::Index,
            ObjectType::ObjectTable | ObjectType::ObjectColumn => RelationKind::Table,
            _ => RelationKind::Unknown,
        };
        b.lock(relation, kind, ShareUpdateExclusive, Brief);
    }
}

fn transaction(stmt: &protobuf::TransactionStmt, b: &mut Builder) {
    use protobuf::TransactionStmtKind as Kind;
    let (kind, control) = match Kind::try_from(stmt.kind).unwrap_or(Kind::Undefined) {
        Kind::TransStmtBegin | Kind::TransStmtStart => ("begin", TransactionControl::Begin),
        Kind::TransStmtCommit => ("commit", TransactionControl::Commit),
        Kind::TransStmtRollback => ("rollback", TransactionControl::Rollback),
        Kind::TransStmtSavepoint => ("savepoint", TransactionControl::Other),
        Kind::TransStmtRelease => ("release-savepoint", TransactionControl::Other),
        Kind::TransStmtRollbackTo => ("rollback-to-savepoint", TransactionControl::Other),
        _ => ("transaction-other", TransactionControl::Other),
    };
    b.kind(kind).transaction(TransactionUse::Control(control));
}

fn select(stmt: &protobuf::SelectStmt, node: &NodeEnum, b: &mut Builder) {
    b.kind("select");
    if let Some(rel) = stmt.into_clause.as_ref().and_then(|into| into.rel.as_ref()) {
        b.kind("select-into");
        b.creates(RelationName::from_range_var(rel));
    }
    let mode = if stmt.locking_clause.is_empty() {
        AccessShare
    } else {
        RowShare
    };
    for table in tables_read(node) {
        b.table(table, mode, Brief);
    }
    mark_user_calls(node, b);
}

/// Adds ROW EXCLUSIVE on the target of an `UPDATE` or `DELETE` and ACCESS
/// SHARE on the other tables it reads.
fn write_rows(
    target: &Option<protobuf::RangeVar>,
    no_where: bool,
    node: &NodeEnum,
    b: &mut Builder,
) {
    if let Some(table) = target {
        let hold = if no_where { Scan } else { Brief };
        b.table(RelationName::from_range_var(table), RowExclusive, hold);
    }
    if no_where {
        b.locks_all_rows();
    }
    read_all_except_target(node, b);
    mark_user_calls(node, b);
}

fn mark_user_calls(node: &NodeEnum, b: &mut Builder) {
    if calls_user_function(node) {
        b.opaque();
        b.note("calls a function that is not built in; its locks are unknown");
    }
}

/// Adds ACCESS SHARE on every table a subtree reads.
fn read_all(tree: &Option<Box<protobuf::Node>>, b: &mut Builder) {
    if let Some(tree) = tree.as_ref().and_then(|t| t.node.as_ref()) {
        for table in tables_read(tree) {
            b.table(table, AccessShare, Brief);
        }
    }
}

/// Adds ACCESS SHARE on every table a DML statement reads besides its
/// target (which is serialized as a plain `relation` field, not a
/// `RangeVar` node, so the walk does not see it).
fn read_all_except_target(node: &NodeEnum, b: &mut Builder) {
    for table in tables_read(node) {
        b.table(table, AccessShare, Brief);
    }
}

/// Tables referenced as `RangeVar` nodes anywhere in a tree, minus names
/// that refer to a CTE of the same statement.
fn tables_read<T: serde::Serialize>(tree: &T) -> Vec<RelationName> {
    if !super::volatility::has_node_of_kind(tree, "RangeVar") {
        return Vec::new();
    }
    let Ok(value) = serde_json::to_value(tree) else {
        return Vec::new();
    };
    let mut tables = Vec::new();
    let mut ctes = Vec::new();
    walk(&value, &mut tables, &mut ctes);
    tables.retain(|t| t.schema.is_some() || !ctes.contains(&t.name));
    let mut unique = Vec::new();
    for table in tables {
        if !unique.contains(&table) {
            unique.push(table);
        }
    }
    unique
}

fn walk(value: &Value, tables: &mut Vec<RelationName>, ctes: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "RangeVar" {
                    let text = |k: &str| child.get(k).and_then(Value::as_str).unwrap_or("");
                    let schema = text("schemaname");
                    tables.push(RelationName {
                        schema: (!schema.is_empty()).then(|| schema.to_string()),
                        name: text("relname").to_string(),
                    });
                }
                if key == "CommonTableExpr" {
                    if let Some(name) = child.get("ctename").and_then(Value::as_str) {
                        ctes.push(name.to_string());
                    }
                }
                walk(child, tables, ctes);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, tables, ctes)),
        _ => {}
    }
}

fn range_vars(nodes: &[protobuf::Node]) -> Vec<RelationName> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::RangeVar(rv)) => Some(RelationName::from_range_var(rv)),
            _ => None,
        })
        .collect()
}

/// The string items of a `List` node (or a lone `String` node).
fn strings(node: &Option<NodeEnum>) -> Vec<String> {
    match node {
        Some(NodeEnum::List(list)) => list
            .items
            .iter()
            .filter_map(|item| match &item.node {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect(),
        Some(NodeEnum::String(s)) => vec![s.sval.clone()],
        _ => Vec::new(),
    }
}

/// `DefElem` options as (lower-case name, enabled) pairs; an option without
/// an argument, or with anything but an explicit false/off/0, is enabled.
fn def_elems(options: &[protobuf::Node]) -> impl Iterator<Item = (String, bool)> + '_ {
    options.iter().filter_map(|option| match &option.node {
        Some(NodeEnum::DefElem(elem)) => {
            let off = match elem.arg.as_ref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::String(s)) => {
                    matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off" | "0")
                }
                Some(NodeEnum::Boolean(v)) => !v.boolval,
                Some(NodeEnum::Integer(i)) => i.ival == 0,
                _ => false,
            };
            Some((elem.defname.to_ascii_lowercase(), !off))
        }
        _ => None,
    })
}
