//! Server versions that change a verdict, kept as data.
//!
//! Each [`Feature`] names a behaviour that exists from one release on (and,
//! for a bug, until the release that fixed it). Rules ask
//! [`Feature::available`] instead of comparing version numbers inline, so
//! every version-dependent verdict is listed here with its source.

use crate::locks::PgVersion;

/// A behaviour of the server that depends on its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `ADD COLUMN` with a constant or STABLE default only changes the
    /// catalog (PostgreSQL 11 release notes).
    InstantAddColumnDefault,
    /// `SET NOT NULL` skips its scan when a valid `CHECK (col IS NOT NULL)`
    /// proves it (PostgreSQL 12 release notes).
    SetNotNullUsesCheck,
    /// `REINDEX ... CONCURRENTLY` exists (PostgreSQL 12).
    ReindexConcurrently,
    /// `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY` exists
    /// (PostgreSQL 14).
    DetachConcurrently,
    /// Concurrent index builds are free of the 14.0 to 14.3 bug that could
    /// miss rows (fixed in 14.4).
    SafeConcurrentBuild,
}

/// `(feature, first version with it, first version without it)`.
pub const FEATURES: &[(Feature, PgVersion, Option<PgVersion>)] = &[
    (
        Feature::InstantAddColumnDefault,
        PgVersion::new(11, 0),
        None,
    ),
    (Feature::SetNotNullUsesCheck, PgVersion::new(12, 0), None),
    (Feature::ReindexConcurrently, PgVersion::new(12, 0), None),
    (Feature::DetachConcurrently, PgVersion::new(14, 0), None),
];

/// Releases in which concurrent builds could corrupt an index.
const CONCURRENT_BUILD_BUG: (PgVersion, PgVersion) = (PgVersion::new(14, 0), PgVersion::new(14, 4));

impl Feature {
    /// Returns true when a server of `version` has the feature.
    pub fn available(self, version: PgVersion) -> bool {
        if self == Feature::SafeConcurrentBuild {
            let (from, fixed) = CONCURRENT_BUILD_BUG;
            return !(version >= from && version < fixed);
        }
        FEATURES
            .iter()
            .find(|(feature, _, _)| *feature == self)
            .is_some_and(|(_, since, until)| {
                version >= *since && until.is_none_or(|until| version < until)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        let v = |major, minor| PgVersion::new(major, minor);
        assert!(!Feature::InstantAddColumnDefault.available(v(10, 23)));
        assert!(Feature::InstantAddColumnDefault.available(v(11, 0)));
        assert!(!Feature::SetNotNullUsesCheck.available(v(11, 22)));
        assert!(Feature::SetNotNullUsesCheck.available(v(12, 0)));
        assert!(!Feature::ReindexConcurrently.available(v(11, 0)));
        assert!(Feature::ReindexConcurrently.available(v(12, 0)));
        assert!(!Feature::DetachConcurrently.available(v(13, 9)));
        assert!(Feature::DetachConcurrently.available(v(14, 0)));
        assert!(Feature::SafeConcurrentBuild.available(v(13, 9)));
        assert!(!Feature::SafeConcurrentBuild.available(v(14, 0)));
        assert!(!Feature::SafeConcurrentBuild.available(v(14, 3)));
        assert!(Feature::SafeConcurrentBuild.available(v(14, 4)));
    }

    #[test]
    fn major_only_equals_dot_zero() {
        assert_eq!(PgVersion::parse("11"), PgVersion::parse("11.0"));
        assert_eq!(PgVersion::parse("11"), Some(PgVersion::new(11, 0)));
    }
}
