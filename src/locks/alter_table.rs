//! `ALTER TABLE`: each subcommand's lock, merged per relation.
//!
//! One `ALTER TABLE` with several subcommands takes, on each relation, the
//! strongest mode any subcommand needs and holds it for the longest work
//! any subcommand does.

use pg_query::protobuf::{
    AlterTableCmd, AlterTableStmt, AlterTableType, ColumnDef, ConstrType, Constraint, PartitionCmd,
};
use pg_query::NodeEnum;

use super::builder::Builder;
use super::types::{change_skips_rewrite, SqlType};
use super::volatility::{tree_volatility, Volatility};
use super::{Context, Hold, LockMode, RelationName, TransactionUse};

use Hold::{Brief, Rewrite, Scan};
use LockMode::{AccessExclusive, ShareRowExclusive, ShareUpdateExclusive};

const FK_VALIDATE_NOTE: &str = "validating a foreign key also takes ROW SHARE on the \
     referenced table, which the statement does not name";
const FK_DROP_NOTE: &str = "dropping a foreign key also takes ACCESS EXCLUSIVE on the \
     referenced table, which the statement does not name";

pub(crate) fn analyze(stmt: &AlterTableStmt, context: &Context<'_>, builder: &mut Builder) {
    let Some(relation) = stmt.relation.as_ref().map(RelationName::from_range_var) else {
        return;
    };
    let commands: Vec<&AlterTableCmd> = stmt
        .cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => Some(&**cmd),
            _ => None,
        })
        .collect();

    for command in &commands {
        let kind = subcommand(command, &relation, context, builder);
        builder.subcommand(kind);
    }

    let kind = match commands.as_slice() {
        [single] => table_kind(single),
        _ => "alter-table",
    };
    builder.kind(kind);
}

/// Analyzes one subcommand into `builder` and returns its kind.
fn subcommand(
    command: &AlterTableCmd,
    table: &RelationName,
    context: &Context<'_>,
    builder: &mut Builder,
) -> &'static str {
    let version = context.version;
    let subtype = AlterTableType::try_from(command.subtype).unwrap_or(AlterTableType::Undefined);
    let def = command.def.as_ref().and_then(|d| d.node.as_ref());
    let lock = |builder: &mut Builder, mode, hold| {
        builder.table(table.clone(), mode, hold);
    };

    match subtype {
        AlterTableType::AtAddColumn => {
            if let Some(NodeEnum::ColumnDef(column)) = def {
                add_column(column, table, context, builder);
            }
            "add-column"
        }
        AlterTableType::AtColumnDefault => {
            lock(builder, AccessExclusive, Brief);
            if def.is_some() {
                "set-default"
            } else {
                "drop-default"
            }
        }
        AlterTableType::AtDropNotNull => {
            lock(builder, AccessExclusive, Brief);
            "drop-not-null"
        }
        AlterTableType::AtSetNotNull => {
            lock(builder, AccessExclusive, Scan);
            if version.at_least(12) {
                builder.note(
                    "from PostgreSQL 12 a valid CHECK (col IS NOT NULL) constraint lets \
                     SET NOT NULL skip the scan",
                );
            }
            "set-not-null"
        }
        AlterTableType::AtAddConstraint => match def {
            Some(NodeEnum::Constraint(constraint)) => {
                add_constraint(constraint, table, context, builder)
            }
            _ => {
                lock(builder, AccessExclusive, Scan);
                "add-constraint"
            }
        },
        AlterTableType::AtValidateConstraint => {
            // ACCESS EXCLUSIVE before 9.4.
            let mode = if version >= super::PgVersion::new(9, 4) {
                ShareUpdateExclusive
            } else {
                AccessExclusive
            };
            lock(builder, mode, Scan);
            builder.note(FK_VALIDATE_NOTE);
            "validate-constraint"
        }
        AlterTableType::AtDropConstraint => {
            lock(builder, AccessExclusive, Brief);
            builder.note(FK_DROP_NOTE);
            "drop-constraint"
        }
        AlterTableType::AtAlterColumnType => {
            let (hold, assumed) = match def {
                Some(NodeEnum::ColumnDef(column)) => {
                    column_type_hold(column, table, &command.name, context)
                }
                _ => (Rewrite, true),
            };
            if hold == Rewrite {
                builder.type_change_rewrites(assumed);
            }
            lock(builder, AccessExclusive, hold);
            "alter-column-type"
        }
        AlterTableType::AtDropColumn => {
            lock(builder, AccessExclusive, Brief);
            "drop-column"
        }
        AlterTableType::AtSetLogged => {
            lock(builder, AccessExclusive, Rewrite);
            "set-logged"
        }
        AlterTableType::AtSetUnLogged => {
            lock(builder, AccessExclusive, Rewrite);
            "set-unlogged"
        }
        AlterTableType::AtAttachPartition => {
            if let Some(NodeEnum::PartitionCmd(partition)) = def {
                attach_partition(partition, table, context, builder);
            }
            "attach-partition"
        }
        AlterTableType::AtDetachPartition => {
            if let Some(NodeEnum::PartitionCmd(partition)) = def {
                detach_partition(partition, table, context, builder);
            }
            "detach-partition"
        }
        AlterTableType::AtSetStatistics
        | AlterTableType::AtSetOptions
        | AlterTableType::AtResetOptions
        | AlterTableType::AtClusterOn
        | AlterTableType::AtDropCluster => {
            lock(builder, ShareUpdateExclusive, Brief);
            "set-column-option"
        }
        AlterTableType::AtEnableTrig
        | AlterTableType::AtEnableAlwaysTrig
        | AlterTableType::AtEnableReplicaTrig
        | AlterTableType::AtDisableTrig
        | AlterTableType::AtEnableTrigAll
        | AlterTableType::AtDisableTrigAll
        | AlterTableType::AtEnableTrigUser
        | AlterTableType::AtDisableTrigUser => {
            lock(builder, ShareRowExclusive, Brief);
            "enable-disable-trigger"
        }
        AlterTableType::AtSetRelOptions | AlterTableType::AtResetRelOptions => {
            let mode = match def {
                Some(NodeEnum::List(options)) => reloptions_mode(&options.items, version),
                _ => AccessExclusive,
            };
            lock(builder, mode, Brief);
            "set-storage-parameters"
        }
        AlterTableType::AtSetTableSpace | AlterTableType::AtSetAccessMethod => {
            lock(builder, AccessExclusive, Rewrite);
            "move-table"
        }
        _ => {
            // TODO: some of the remaining subcommands (ADD/DROP INHERIT,
            // REPLICA IDENTITY, ...) take weaker locks or lock a second table;
            // ACCESS EXCLUSIVE on the named table is the safe assumption.
            lock(builder, AccessExclusive, Brief);
            "other"
        }
    }
}

/// Returns the lock `SET (...)` or `RESET (...)` of storage parameters
/// takes: the strongest any of the parameters needs. Autovacuum parameters
/// take SHARE UPDATE EXCLUSIVE from PostgreSQL 9.6, and `fillfactor`,
/// `parallel_workers`, `toast_tuple_target` and the vacuum parameters from
/// 10 (PostgreSQL's reloptions.c lists the lock of each). Any other
/// parameter, such as `user_catalog_table` or a view's `security_barrier`,
/// takes ACCESS EXCLUSIVE.
fn reloptions_mode(options: &[pg_query::protobuf::Node], version: super::PgVersion) -> LockMode {
    let weak = |name: &str| {
        let name = name.strip_prefix("toast.").unwrap_or(name);
        let autovacuum = name.starts_with("autovacuum_") || name == "log_autovacuum_min_duration";
        let planner_or_storage = matches!(
            name,
            "fillfactor"
                | "parallel_workers"
                | "toast_tuple_target"
                | "vacuum_index_cleanup"
                | "vacuum_truncate"
        );
        (autovacuum && version >= super::PgVersion::new(9, 6))
            || (planner_or_storage && version >= super::PgVersion::new(10, 0))
    };
    let all_weak = options.iter().all(|option| match &option.node {
        Some(NodeEnum::DefElem(def)) => {
            let name = if def.defnamespace.is_empty() {
                def.defname.clone()
            } else {
                format!("{}.{}", def.defnamespace, def.defname)
            };
            weak(&name)
        }
        _ => false,
    });
    if all_weak && !options.is_empty() {
        ShareUpdateExclusive
    } else {
        AccessExclusive
    }
}

/// Returns the [`super::Analysis::kind`] of a one-subcommand `ALTER TABLE`.
fn table_kind(command: &AlterTableCmd) -> &'static str {
    let subtype = AlterTableType::try_from(command.subtype).unwrap_or(AlterTableType::Undefined);
    let has_def = command.def.is_some();
    match subtype {
        AlterTableType::AtAddColumn => "alter-table-add-column",
        AlterTableType::AtColumnDefault if has_def => "alter-table-set-default",
        AlterTableType::AtColumnDefault => "alter-table-drop-default",
        AlterTableType::AtDropNotNull => "alter-table-drop-not-null",
        AlterTableType::AtSetNotNull => "alter-table-set-not-null",
        AlterTableType::AtAddConstraint => "alter-table-add-constraint",
        AlterTableType::AtValidateConstraint => "alter-table-validate-constraint",
        AlterTableType::AtDropConstraint => "alter-table-drop-constraint",
        AlterTableType::AtAlterColumnType => "alter-table-alter-column-type",
        AlterTableType::AtDropColumn => "alter-table-drop-column",
        AlterTableType::AtSetLogged => "alter-table-set-logged",
        AlterTableType::AtSetUnLogged => "alter-table-set-unlogged",
        AlterTableType::AtAttachPartition => "alter-table-attach-partition",
        AlterTableType::AtDetachPartition => "alter-table-detach-partition",
        _ => "alter-table",
    }
}

fn add_column(
    column: &ColumnDef,
    table: &RelationName,
    context: &Context<'_>,
    builder: &mut Builder,
) {
    let version = context.version;
    let mut hold = Brief;
    let mut has_default = false;

    if is_serial(column) {
        hold = Rewrite;
        builder.note("a serial column's default is nextval(), which is volatile");
    }
    for constraint in column_constraints(column) {
        let contype = ConstrType::try_from(constraint.contype).unwrap_or(ConstrType::Undefined);
        match contype {
            ConstrType::ConstrDefault => {
                let Some(expr) = constraint.raw_expr.as_deref() else {
                    continue;
                };
                if is_null_literal(expr) {
                    continue;
                }
                has_default = true;
                // Before 11 every non-NULL default rewrites; from 11 only a
                // volatile call anywhere in the expression does.
                if !version.at_least(11) || tree_volatility(expr) == Volatility::Volatile {
                    hold = Rewrite;
                }
            }
            ConstrType::ConstrIdentity => hold = Rewrite,
            // pg_query parses the PostgreSQL 18 grammar, which marks a
            // VIRTUAL generated column with `generated_kind` "v".
            // TODO: a VIRTUAL column (PostgreSQL 18) adds no rewrite; treat
            // it as brief once a PostgreSQL 18 server in the tests proves it.
            ConstrType::ConstrGenerated => hold = Rewrite,
            ConstrType::ConstrCheck
            | ConstrType::ConstrPrimary
            | ConstrType::ConstrUnique
            | ConstrType::ConstrExclusion => hold = hold.max(Scan),
            ConstrType::ConstrForeign => {
                hold = hold.max(Scan);
                if let Some(referenced) = &constraint.pktable {
                    builder.table(
                        RelationName::from_range_var(referenced),
                        fk_mode(context),
                        Brief,
                    );
                }
            }
            _ => {}
        }
    }
    // NOT NULL without a default makes the server check every existing row;
    // with a default the stored value satisfies it without a scan.
    let not_null =
        column_constraints(column).any(|c| c.contype == ConstrType::ConstrNotnull as i32);
    if not_null && !has_default {
        hold = hold.max(Scan);
    }
    if hold == Rewrite {
        builder.add_column_rewrites();
    }
    builder.table(table.clone(), AccessExclusive, hold);
}

fn column_constraints(column: &ColumnDef) -> impl Iterator<Item = &Constraint> {
    column.constraints.iter().filter_map(|c| match &c.node {
        Some(NodeEnum::Constraint(constraint)) => Some(&**constraint),
        _ => None,
    })
}

fn is_serial(column: &ColumnDef) -> bool {
    let Some(type_name) = &column.type_name else {
        return false;
    };
    let last = type_name.names.last().and_then(|n| match &n.node {
        Some(NodeEnum::String(s)) => Some(s.sval.to_ascii_lowercase()),
        _ => None,
    });
    matches!(
        last.as_deref(),
        Some("serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8")
    )
}

fn is_null_literal(expr: &pg_query::protobuf::Node) -> bool {
    matches!(&expr.node, Some(NodeEnum::AConst(c)) if c.isnull)
}

/// Returns the mode a new foreign key takes on both tables: SHARE ROW
/// EXCLUSIVE from 9.5, ACCESS EXCLUSIVE before.
fn fk_mode(context: &Context<'_>) -> LockMode {
    if context.version >= super::PgVersion::new(9, 5) {
        ShareRowExclusive
    } else {
        AccessExclusive
    }
}

fn add_constraint(
    constraint: &Constraint,
    table: &RelationName,
    context: &Context<'_>,
    builder: &mut Builder,
) -> &'static str {
    let contype = ConstrType::try_from(constraint.contype).unwrap_or(ConstrType::Undefined);
    let validated = if constraint.skip_validation {
        Brief
    } else {
        Scan
    };
    match contype {
        ConstrType::ConstrForeign => {
            let mode = fk_mode(context);
            builder.table(table.clone(), mode, validated);
            if let Some(referenced) = &constraint.pktable {
                builder.table(RelationName::from_range_var(referenced), mode, Brief);
            }
            "add-foreign-key"
        }
        ConstrType::ConstrCheck => {
            builder.table(table.clone(), AccessExclusive, validated);
            "add-check"
        }
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
            let using_index = !constraint.indexname.is_empty();
            let hold = if using_index { Brief } else { Scan };
            builder.table(table.clone(), AccessExclusive, hold);
            if using_index && contype == ConstrType::ConstrPrimary {
                builder.note(
                    "PRIMARY KEY USING INDEX scans the table under ACCESS EXCLUSIVE \
                     when a key column is not yet NOT NULL",
                );
            }
            match (contype, using_index) {
                (ConstrType::ConstrPrimary, false) => "add-primary-key",
                (ConstrType::ConstrPrimary, true) => "add-primary-key-using-index",
                (_, false) => "add-unique",
                (_, true) => "add-unique-using-index",
            }
        }
        ConstrType::ConstrExclusion => {
            builder.table(table.clone(), AccessExclusive, Scan);
            "add-exclusion"
        }
        _ => {
            builder.table(table.clone(), AccessExclusive, validated);
            "add-constraint"
        }
    }
}

/// Decides whether `ALTER COLUMN ... TYPE` rewrites, assuming a rewrite
/// whenever the old or new type is unknown. The flag is true for such an
/// assumed rewrite.
fn column_type_hold(
    column: &ColumnDef,
    table: &RelationName,
    column_name: &str,
    context: &Context<'_>,
) -> (Hold, bool) {
    // A USING expression always rewrites, even to the same type.
    if column.raw_default.is_some() {
        return (Rewrite, false);
    }
    let new = column.type_name.as_ref().and_then(SqlType::from_type_name);
    let old = context
        .column_types
        .and_then(|types| types.column_type(table, column_name))
        .and_then(|text| SqlType::parse(&text));
    match (old, new) {
        (Some(old), Some(new)) if change_skips_rewrite(&old, &new) => (Brief, false),
        (Some(_), Some(_)) => (Rewrite, false),
        _ => (Rewrite, true),
    }
}

fn attach_partition(
    partition: &PartitionCmd,
    parent: &RelationName,
    context: &Context<'_>,
    builder: &mut Builder,
) {
    // Before 12 ATTACH PARTITION took ACCESS EXCLUSIVE on the parent.
    let parent_mode = if context.version.at_least(12) {
        ShareUpdateExclusive
    } else {
        AccessExclusive
    };
    builder.table(parent.clone(), parent_mode, Brief);
    if let Some(name) = &partition.name {
        builder.table(RelationName::from_range_var(name), AccessExclusive, Scan);
    }
    builder.note(
        "when the parent has a DEFAULT partition, it is locked and scanned too; \
         the statement does not name it",
    );
}

fn detach_partition(
    partition: &PartitionCmd,
    parent: &RelationName,
    context: &Context<'_>,
    builder: &mut Builder,
) {
    let mode = if partition.concurrent {
        if !context.version.at_least(14) {
            builder.note("DETACH PARTITION ... CONCURRENTLY needs PostgreSQL 14");
        }
        builder.transaction(TransactionUse::NotInBlock);
        ShareUpdateExclusive
    } else {
        AccessExclusive
    };
    builder.table(parent.clone(), mode, Brief);
    // Even with CONCURRENTLY the partition gets ACCESS EXCLUSIVE: PostgreSQL
    // 15 takes it in the second of the two transactions (seen in pg_locks).
    if let Some(name) = &partition.name {
        builder.table(RelationName::from_range_var(name), AccessExclusive, Brief);
    }
}
