//! Schema facts that some rewrites depend on: which tables are partitioned
//! and their partitions, which indexes back a constraint, which partitioned
//! tables have a default partition.
//!
//! The facts come from the database (`db::catalog`), from the statements
//! of earlier migrations, and from the statements earlier in the same file.
//! Without a database the facts are incomplete: a rewrite that would be
//! wrong for an object pgshift cannot see is skipped with a note instead.

use std::collections::{BTreeMap, BTreeSet};

use pg_query::protobuf::{AlterTableType, ConstrType, PartitionCmd};
use pg_query::NodeEnum;

use crate::analysis::same_relation;
use crate::locks::RelationName;

/// Facts about the schema a migration runs against.
#[derive(Debug, Clone, Default)]
pub struct SchemaFacts {
    /// True when the facts were read from the database the migrations run
    /// on, so an object they do not list does not exist there.
    pub from_database: bool,
    /// Partitioned tables and their direct partitions.
    pub partitions: BTreeMap<RelationName, Vec<RelationName>>,
    /// Indexes that back a PRIMARY KEY, UNIQUE or EXCLUDE constraint.
    pub constraint_indexes: BTreeSet<RelationName>,
    /// Partitioned indexes (the parent index of a partitioned table).
    pub partitioned_indexes: BTreeSet<RelationName>,
    /// Partitioned tables that have a DEFAULT partition.
    pub default_partitions: BTreeSet<RelationName>,
    /// The partition key columns of partitioned tables whose key is plain
    /// columns.
    pub partition_keys: BTreeMap<RelationName, Vec<String>>,
    /// Tables that earlier migrations created without `PARTITION BY`.
    pub plain_tables: BTreeSet<RelationName>,
    /// Tables with a primary key: the constraint's name and its columns in
    /// key order (empty when added `USING INDEX`, whose columns the
    /// statement does not name).
    pub primary_keys: BTreeMap<RelationName, PrimaryKey>,
}

/// A table's primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    pub constraint: String,
    pub columns: Vec<String>,
}

/// The answer the facts give to a yes-or-no question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Yes,
    No,
    /// Neither the database nor the migrations tell.
    Unknown,
}

impl SchemaFacts {
    /// Returns the partitions of `table` when it is known to be
    /// partitioned.
    pub fn partitions_of(&self, table: &RelationName) -> Option<&Vec<RelationName>> {
        self.partitions
            .iter()
            .find(|(parent, _)| same_relation(parent, table))
            .map(|(_, children)| children)
    }

    /// Returns the partition key columns of `table`, when known.
    pub fn partition_key(&self, table: &RelationName) -> Option<&Vec<String>> {
        self.partition_keys
            .iter()
            .find(|(parent, _)| same_relation(parent, table))
            .map(|(_, key)| key)
    }

    /// Returns the primary key of `table`, when known.
    pub fn primary_key(&self, table: &RelationName) -> Option<&PrimaryKey> {
        self.primary_keys
            .iter()
            .find(|(t, _)| same_relation(t, table))
            .map(|(_, key)| key)
    }

    /// Returns whether `table` has a primary key.
    pub fn has_primary_key(&self, table: &RelationName) -> Known {
        self.known(self.primary_key(table).is_some())
    }

    /// Returns whether `table` is a partitioned table.
    pub fn is_partitioned(&self, table: &RelationName) -> Known {
        if self.partitions_of(table).is_none() && contains(&self.plain_tables, table) {
            return Known::No;
        }
        self.known(self.partitions_of(table).is_some())
    }

    /// Returns whether `index` backs a constraint.
    pub fn backs_constraint(&self, index: &RelationName) -> Known {
        self.known(contains(&self.constraint_indexes, index))
    }

    /// Returns whether `index` is a partitioned index.
    pub fn is_partitioned_index(&self, index: &RelationName) -> Known {
        self.known(contains(&self.partitioned_indexes, index))
    }

    /// Returns whether the partitioned table `table` has a default partition.
    pub fn has_default_partition(&self, table: &RelationName) -> Known {
        self.known(contains(&self.default_partitions, table))
    }

    fn known(&self, found: bool) -> Known {
        match (found, self.from_database) {
            (true, _) => Known::Yes,
            (false, true) => Known::No,
            (false, false) => Known::Unknown,
        }
    }

    /// Learns the facts a migration's SQL establishes, for the migrations
    /// after it. Text that does not parse teaches nothing; planning that
    /// migration reports the error.
    pub fn learn_sql(&mut self, sql: &str) {
        if let Ok(parsed) = crate::sql::parse(sql) {
            for statement in &parsed.statements {
                self.learn(&statement.node);
            }
        }
    }

    /// Records what a statement changes in the facts. Statements that
    /// touch nothing tracked here are ignored.
    pub fn learn(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(create) => self.learn_create(create),
            NodeEnum::AlterTableStmt(alter) => {
                let Some(table) = alter.relation.as_ref().map(relation_name) else {
                    return;
                };
                for cmd in &alter.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        self.learn_alter(&table, cmd);
                    }
                }
            }
            NodeEnum::IndexStmt(index) if !index.idxname.is_empty() => {
                let Some(table) = index.relation.as_ref().map(relation_name) else {
                    return;
                };
                if self.partitions_of(&table).is_some() {
                    self.partitioned_indexes.insert(RelationName {
                        schema: table.schema.clone(),
                        name: index.idxname.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    fn learn_create(&mut self, create: &pg_query::protobuf::CreateStmt) {
        let Some(table) = create.relation.as_ref().map(relation_name) else {
            return;
        };
        if create.partspec.is_none() {
            self.plain_tables.insert(table.clone());
        }
        if let Some(spec) = &create.partspec {
            self.partitions.entry(table.clone()).or_default();
            let key: Vec<String> = spec
                .part_params
                .iter()
                .filter_map(|p| match &p.node {
                    Some(NodeEnum::PartitionElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
                    _ => None,
                })
                .collect();
            if key.len() == spec.part_params.len() {
                self.partition_keys.insert(table.clone(), key);
            }
        }
        if let Some(parent) = create.inh_relations.first().and_then(|n| n.node.as_ref()) {
            if let (NodeEnum::RangeVar(parent), Some(bound)) = (parent, &create.partbound) {
                let parent = relation_name(parent);
                self.add_partition(&parent, table.clone(), bound.is_default);
            }
        }
        for element in &create.table_elts {
            match &element.node {
                Some(NodeEnum::Constraint(c)) => self.learn_constraint(&table, c, &[]),
                Some(NodeEnum::ColumnDef(column)) => {
                    for c in &column.constraints {
                        if let Some(NodeEnum::Constraint(c)) = &c.node {
                            self.learn_constraint(&table, c, std::slice::from_ref(&column.colname));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn learn_alter(&mut self, table: &RelationName, cmd: &pg_query::protobuf::AlterTableCmd) {
        let subtype = cmd.subtype;
        let def = cmd.def.as_ref().and_then(|d| d.node.as_ref());
        if subtype == AlterTableType::AtAddConstraint as i32 {
            if let Some(NodeEnum::Constraint(c)) = def {
                self.learn_constraint(table, c, &[]);
            }
        } else if subtype == AlterTableType::AtDropConstraint as i32 {
            self.primary_keys
                .retain(|t, key| !(same_relation(t, table) && key.constraint == cmd.name));
        } else if subtype == AlterTableType::AtAttachPartition as i32 {
            if let Some(NodeEnum::PartitionCmd(PartitionCmd {
                name: Some(child),
                bound,
                ..
            })) = def
            {
                let default = bound.as_ref().is_some_and(|b| b.is_default);
                self.add_partition(table, relation_name(child), default);
            }
        } else if subtype == AlterTableType::AtDetachPartition as i32 {
            if let Some(NodeEnum::PartitionCmd(PartitionCmd {
                name: Some(child), ..
            })) = def
            {
                let child = relation_name(child);
                if let Some(children) = self
                    .partitions
                    .iter_mut()
                    .find(|(parent, _)| same_relation(parent, table))
                    .map(|(_, children)| children)
                {
                    children.retain(|c| !same_relation(c, &child));
                }
            }
        }
    }

    fn add_partition(&mut self, parent: &RelationName, child: RelationName, default: bool) {
        let key = self
            .partitions
            .keys()
            .find(|p| same_relation(p, parent))
            .cloned()
            .unwrap_or_else(|| parent.clone());
        self.partitions.entry(key.clone()).or_default().push(child);
        if default {
            self.default_partitions.insert(key);
        }
    }

    /// Records the index behind a key constraint. A named constraint's
    /// index has the constraint's name; an unnamed primary key's index is
    /// `<table>_pkey`, and an unnamed one-column UNIQUE's `<table>_<col>_key`
    /// (PostgreSQL's naming, for names short enough not to be truncated).
    fn learn_constraint(
        &mut self,
        table: &RelationName,
        c: &pg_query::protobuf::Constraint,
        columns: &[String],
    ) {
        let primary = c.contype == ConstrType::ConstrPrimary as i32;
        let unique = c.contype == ConstrType::ConstrUnique as i32;
        let exclusion = c.contype == ConstrType::ConstrExclusion as i32;
        if !(primary || unique || exclusion) {
            return;
        }
        if primary {
            let columns: Vec<String> = if c.keys.is_empty() {
                columns.to_vec()
            } else {
                c.keys.iter().filter_map(string_value).collect()
            };
            let constraint = if c.conname.is_empty() {
                format!("{}_pkey", table.name)
            } else {
                c.conname.clone()
            };
            self.primary_keys.insert(
                table.clone(),
                PrimaryKey {
                    constraint,
                    columns,
                },
            );
        }
        let name = if !c.conname.is_empty() {
            c.conname.clone()
        } else if primary {
            format!("{}_pkey", table.name)
        } else {
            let keys: Vec<String> = if c.keys.is_empty() {
                columns.to_vec()
            } else {
                c.keys.iter().filter_map(string_value).collect()
            };
            format!("{}_{}_key", table.name, keys.join("_"))
        };
        // `USING INDEX x` renames x to the constraint's name.
        if !c.indexname.is_empty() {
            self.constraint_indexes.retain(|i| i.name != c.indexname);
        }
        if name.len() <= 63 {
            self.constraint_indexes.insert(RelationName {
                schema: table.schema.clone(),
                name,
            });
        }
    }
}

fn contains(set: &BTreeSet<RelationName>, name: &RelationName) -> bool {
    set.iter().any(|r| same_relation(r, name))
}

/// Returns the name a `RangeVar` spells.
pub(super) fn relation_name(range: &pg_query::protobuf::RangeVar) -> RelationName {
    RelationName {
        schema: (!range.schemaname.is_empty()).then(|| range.schemaname.clone()),
        name: range.relname.clone(),
    }
}

/// Returns the text of a `String` node.
pub(super) fn string_value(node: &pg_query::protobuf::Node) -> Option<String> {
    match &node.node {
        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
        _ => None,
    }
}
