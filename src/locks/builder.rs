//! Building an [`Analysis`]: effects on the same relation merge into one,
//! keeping the strongest mode and the longest hold.

use super::{Analysis, Hold, LockEffect, LockMode, RelationKind, RelationName, TransactionUse};

impl RelationName {
    /// Builds a relation name from a parse tree `RangeVar`.
    pub fn from_range_var(range_var: &pg_query::protobuf::RangeVar) -> RelationName {
        RelationName {
            schema: non_empty(&range_var.schemaname),
            name: range_var.relname.clone(),
        }
    }

    /// Builds a relation name from a qualified name list (`["schema", "name"]` or
    /// `["name"]`) of string nodes; `None` when the list is empty.
    pub fn from_name_list(names: &[String]) -> Option<RelationName> {
        match names {
            [name] => Some(RelationName {
                schema: None,
                name: name.clone(),
            }),
            [.., schema, name] => Some(RelationName {
                schema: Some(schema.clone()),
                name: name.clone(),
            }),
            [] => None,
        }
    }
}

impl std::fmt::Display for RelationName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

/// Accumulates lock effects and the other facts of one statement.
pub(crate) struct Builder {
    analysis: Analysis,
}

impl Builder {
    pub fn new(kind: &'static str) -> Builder {
        Builder {
            analysis: Analysis {
                kind,
                effects: Vec::new(),
                transaction: TransactionUse::Any,
                creates: Vec::new(),
                opaque: false,
                locks_all_rows: false,
                subcommands: Vec::new(),
                add_column_rewrites: false,
                type_change_rewrites: false,
                type_change_assumed: false,
                notes: Vec::new(),
            },
        }
    }

    pub fn kind(&mut self, kind: &'static str) -> &mut Self {
        self.analysis.kind = kind;
        self
    }

    /// Adds a lock, merging it with an earlier lock on the same relation.
    pub fn lock(
        &mut self,
        relation: RelationName,
        kind: RelationKind,
        mode: LockMode,
        hold: Hold,
    ) -> &mut Self {
        let effects = &mut self.analysis.effects;
        match effects.iter_mut().find(|e| e.relation == relation) {
            Some(effect) => {
                effect.mode = effect.mode.max(mode);
                effect.hold = effect.hold.max(hold);
                if effect.kind == RelationKind::Unknown {
                    effect.kind = kind;
                }
            }
            None => effects.push(LockEffect {
                relation,
                kind,
                mode,
                hold,
            }),
        }
        self
    }

    pub fn table(&mut self, relation: RelationName, mode: LockMode, hold: Hold) -> &mut Self {
        self.lock(relation, RelationKind::Table, mode, hold)
    }

    pub fn transaction(&mut self, transaction: TransactionUse) -> &mut Self {
        self.analysis.transaction = transaction;
        self
    }

    pub fn creates(&mut self, relation: RelationName) -> &mut Self {
        if !self.analysis.creates.contains(&relation) {
            self.analysis.creates.push(relation);
        }
        self
    }

    pub fn opaque(&mut self) -> &mut Self {
        self.analysis.opaque = true;
        self
    }

    pub fn locks_all_rows(&mut self) -> &mut Self {
        self.analysis.locks_all_rows = true;
        self
    }

    pub fn add_column_rewrites(&mut self) -> &mut Self {
        self.analysis.add_column_rewrites = true;
        self
    }

    /// Marks a rewriting type change; `assumed` when a type was unknown.
    pub fn type_change_rewrites(&mut self, assumed: bool) -> &mut Self {
        self.analysis.type_change_rewrites = true;
        self.analysis.type_change_assumed |= assumed;
        self
    }

    pub fn subcommand(&mut self, kind: &'static str) -> &mut Self {
        self.analysis.subcommands.push(kind);
        self
    }

    pub fn note(&mut self, note: impl Into<String>) -> &mut Self {
        self.analysis.notes.push(note.into());
        self
    }

    pub fn finish(self) -> Analysis {
        self.analysis
    }
}
