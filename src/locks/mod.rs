//! Table-level lock facts for every statement kind pgshift understands.
//!
//! This is the single source of lock knowledge: lint rules, rewrites, the
//! dry-run report and the executor all read [`analyze`] and never derive lock
//! facts themselves. Facts that changed between server versions are keyed by
//! [`PgVersion`].

use std::fmt;

mod alter_table;
mod builder;
mod statements;
mod types;
pub mod volatility;

pub use types::SqlType;

#[cfg(test)]
mod tests;

/// The eight table-level lock modes, weakest first, as listed in the
/// PostgreSQL documentation chapter "Explicit Locking".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
#[serde(rename_all = "lowercase")]
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

/// The kind of relation a lock is taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelationKind {
    Table,
    Index,
    Sequence,
    View,
    MaterializedView,
    /// Cannot be determined from the statement alone (e.g. `DROP INDEX` names
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
    /// True for an `UPDATE` or `DELETE` without `WHERE`: it scans the whole
    /// table and holds a row lock on every row until the transaction ends.
    pub locks_all_rows: bool,
    /// The kind of each `ALTER TABLE` subcommand in order, e.g.
    /// `["add-column", "set-not-null"]`; empty for other statements.
    pub subcommands: Vec<&'static str>,
    /// True when an `ADD COLUMN` subcommand itself rewrites the table (a
    /// volatile default, serial, identity or stored generated column), as
    /// opposed to another subcommand of the same statement.
    pub add_column_rewrites: bool,
    /// True when an `ALTER COLUMN ... TYPE` subcommand itself rewrites the
    /// table, as opposed to another subcommand of the same statement.
    pub type_change_rewrites: bool,
    /// True when that rewrite is assumed because the old or new type is
    /// not known.
    pub type_change_assumed: bool,
    /// Locks the statement takes that cannot be named without the catalog
    /// (the table of a `DROP INDEX`, the referenced table of a validated
    /// foreign key, ...), and version requirements.
    pub notes: Vec<String>,
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
        CONFLICTS[self as usize] & (1 << other as usize) != 0
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
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The mode as `pg_locks.mode` spells it, e.g. `AccessExclusiveLock`.
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// Parses a `pg_locks.mode` value such as `ShareLock`.
    pub fn from_pg_locks_name(name: &str) -> Option<LockMode> {
        LockMode::ALL
            .into_iter()
            .find(|m| m.pg_locks_name() == name)
    }

    /// Maps the lock number of a `LockStmt` parse node (the server's
    /// `LOCKMODE`, 1 = ACCESS SHARE ... 8 = ACCESS EXCLUSIVE).
    pub fn from_lockmode_number(number: i32) -> Option<LockMode> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        LockMode::ALL.get(index).copied()
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
    ///
    /// A `server_version_num` is recognized by having five or more digits and
    /// no dot: `150004` is 15.4 and `90624` is 9.6.24. Returns `None` for
    /// anything else, and for versions before 9.0, whose locking the
    /// verdicts do not model.
    pub fn parse(text: &str) -> Option<PgVersion> {
        Self::parse_any(text).filter(|version| version.major >= 9)
    }

    fn parse_any(text: &str) -> Option<PgVersion> {
        let text = text.trim();
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        if !text.contains('.') && text.len() >= 5 {
            let number: u32 = text.parse().ok()?;
            return Some(if number >= 100_000 {
                PgVersion::new(number / 10_000, number % 10_000)
            } else {
                // Before 10 the number is major * 10000 + minor * 100 + patch,
                // with a two-part major version (9.6); the minor kept here is
                // the patch level.
                PgVersion::new(number / 10_000, number % 100)
            });
        }
        let mut parts = text.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = match parts.next() {
            Some(part) => part.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() && major >= 10 {
            return None;
        }
        Some(PgVersion::new(major, minor))
    }

    /// Returns true when this version is `major` or newer.
    pub fn at_least(self, major: u32) -> bool {
        self.major >= major
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Bit `j` of row `i` is set when mode `i` conflicts with mode `j`, both in
/// the order of [`LockMode::ALL`]. The rows are table 13.2 "Conflicting Lock
/// Modes" of the PostgreSQL 15 documentation.
const CONFLICTS: [u8; 8] = [
    0b1000_0000, // ACCESS SHARE: ACCESS EXCLUSIVE
    0b1100_0000, // ROW SHARE: EXCLUSIVE and up
    0b1111_0000, // ROW EXCLUSIVE: SHARE and up
    0b1111_1000, // SHARE UPDATE EXCLUSIVE: itself and up
    0b1110_1100, // SHARE: ROW EXCLUSIVE, SHARE UPDATE EXCLUSIVE, and above SHARE
    0b1111_1100, // SHARE ROW EXCLUSIVE: ROW EXCLUSIVE and up
    0b1111_1110, // EXCLUSIVE: ROW SHARE and up
    0b1111_1111, // ACCESS EXCLUSIVE: every mode
];

/// Column types of existing tables, as the catalog has them.
///
/// pgshift implements this over a live connection; tests implement it over a
/// map. Without it, a type change is assumed to rewrite the table.
pub trait ColumnTypes {
    /// Returns the column's type as `format_type()` prints it, e.g.
    /// `character varying(20)` or `numeric(10,2)`, or `None` when unknown.
    fn column_type(&self, table: &RelationName, column: &str) -> Option<String>;

    /// Returns whether `table` is a partitioned table, or `None` when
    /// unknown.
    fn is_partitioned(&self, _table: &RelationName) -> Option<bool> {
        None
    }
}

/// What the analysis may know beyond the statement itself.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub version: PgVersion,
    pub column_types: Option<&'a dyn ColumnTypes>,
}

impl<'a> Context<'a> {
    /// A context with only a server version and no catalog.
    pub fn new(version: PgVersion) -> Context<'a> {
        Context {
            version,
            column_types: None,
        }
    }
}

/// Analyzes the locks one parsed statement takes on a server of `version`.
pub fn analyze(node: &pg_query::NodeEnum, version: PgVersion) -> Analysis {
    analyze_in(node, &Context::new(version))
}

/// Analyzes the locks one parsed statement takes, using what `context`
/// knows about the server and its catalog.
pub fn analyze_in(node: &pg_query::NodeEnum, context: &Context<'_>) -> Analysis {
    statements::analyze(node, context)
}
