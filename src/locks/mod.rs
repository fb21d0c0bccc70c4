//! Table-level lock facts for every statement kind pgshift understands.
//!
//! This is the single source of lock knowledge: lint rules, rewrites, the
//! dry-run report and the executor all read [`analyze`] and never derive lock
//! facts themselves. Facts that changed between server versions are keyed by
//! [`PgVersion`].

use std::fmt;

/// The eight table-level lock modes, weakest first, as listed in the
/// PostgreSQL documentation chapter "Explicit Locking".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

/// How long a lock is held relative to the work done under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Hold {
    /// Only a catalog change happens under the lock.
    Brief,
    /// The whole table is read while the lock is held.
    Scan,
    /// The table and its indexes are rewritten while the lock is held.
    Rewrite,
}

/// A relation name as written in the statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct RelationName {
    pub schema: Option<String>,
    pub name: String,
}

/// What kind of relation a lock lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum RelationKind {
    Table,
    Index,
    Sequence,
    View,
    MaterializedView,
    /// Could not be told from the statement alone (e.g. `DROP INDEX` names
    /// the index, and its table is only known from the catalog).
    Unknown,
}

/// One lock a statement takes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockEffect {
    pub relation: RelationName,
    pub kind: RelationKind,
    pub mode: LockMode,
    pub hold: Hold,
}

/// Whether a statement may run inside a transaction block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TransactionUse {
    /// Runs inside or outside a transaction block.
    Any,
    /// Fails with SQLSTATE 25001 inside a transaction block
    /// (`CREATE INDEX CONCURRENTLY`, `VACUUM`, ...).
    NotInBlock,
    /// Is itself transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, ...).
    Control(TransactionControl),
}

/// Transaction control statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TransactionControl {
    Begin,
    Commit,
    Rollback,
    Other,
}

/// A PostgreSQL server version (major and minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct PgVersion {
    pub major: u32,
    pub minor: u32,
}

/// The lock analysis of one statement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Analysis {
    /// Short kebab-case name of the statement kind, e.g. `create-index`,
    /// `alter-table-add-column`.
    pub kind: &'static str,
    pub effects: Vec<LockEffect>,
    pub transaction: TransactionUse,
    /// Tables and indexes the statement creates.
    pub creates: Vec<RelationName>,
    /// True when the statement runs code pgshift cannot see into (a `DO`
    /// block, a function call), so its locks are unknown.
    pub opaque: bool,
}

impl LockMode {
    /// All modes, weakest first.
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    /// Returns true when two sessions cannot hold `self` and `other` on the
    /// same relation at once.
    pub fn conflicts_with(self, other: LockMode) -> bool {
        let _ = other;
        todo!()
    }

    /// Returns true when holding this lock blocks plain `SELECT`s.
    pub fn blocks_reads(self) -> bool {
        self.conflicts_with(LockMode::AccessShare)
    }

    /// Returns true when holding this lock blocks `INSERT`, `UPDATE` and
    /// `DELETE`.
    pub fn blocks_writes(self) -> bool {
        self.conflicts_with(LockMode::RowExclusive)
    }

    /// The mode as SQL spells it, e.g. `ACCESS EXCLUSIVE`.
    pub fn sql_name(self) -> &'static str {
        todo!()
    }

    /// The mode as `pg_locks.mode` spells it, e.g. `AccessExclusiveLock`.
    pub fn pg_locks_name(self) -> &'static str {
        todo!()
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

impl PgVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        PgVersion { major, minor }
    }

    /// Parses `15`, `15.4`, `11.0` or a `server_version_num` such as `150004`.
    pub fn parse(text: &str) -> Option<PgVersion> {
        let _ = text;
        todo!()
    }
}

/// Analyzes the locks one parsed statement takes on a server of `version`.
pub fn analyze(node: &pg_query::NodeEnum, version: PgVersion) -> Analysis {
    let _ = (node, version);
    todo!()
}
