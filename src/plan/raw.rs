//! The plan file as written: serde types that mirror the YAML one to one,
//! before paths are resolved and versions are checked against each other.
//!
//! Every struct rejects unknown keys, so a misspelt key fails with its name
//! and line (serde_yaml appends the location) instead of being ignored.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{Backfill, Settings, Strategy};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlan {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub settings: RawSettings,
    pub versions: Vec<RawVersion>,
    pub phases: Vec<RawPhase>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSettings {
    pub lock_timeout: Option<PlanDuration>,
    pub statement_timeout: Option<PlanDuration>,
    pub concurrent_lock_timeout: Option<PlanDuration>,
    pub retries: Option<u32>,
    pub retry_backoff: Option<PlanDuration>,
    pub retry_backoff_max: Option<PlanDuration>,
    pub backfill: Option<RawBackfill>,
    pub backfill_batch_size: Option<u32>,
}

/// The `backfill` setting as spelt in YAML.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawBackfill {
    Atomic,
    Batched,
}

impl From<RawBackfill> for Backfill {
    fn from(raw: RawBackfill) -> Backfill {
        match raw {
            RawBackfill::Atomic => Backfill::Atomic,
            RawBackfill::Batched => Backfill::Batched,
        }
    }
}

impl RawSettings {
    /// Returns `base` with every key set here replacing the one in `base`.
    pub fn apply_to(&self, base: &Settings) -> Settings {
        let pick = |value: &Option<PlanDuration>, fallback: Duration| {
            value.as_ref().map_or(fallback, |d| d.0)
        };
        Settings {
            lock_timeout: pick(&self.lock_timeout, base.lock_timeout),
            statement_timeout: pick(&self.statement_timeout, base.statement_timeout),
            concurrent_lock_timeout: pick(
                &self.concurrent_lock_timeout,
                base.concurrent_lock_timeout,
            ),
            retries: self.retries.unwrap_or(base.retries),
            retry_backoff: pick(&self.retry_backoff, base.retry_backoff),
            retry_backoff_max: pick(&self.retry_backoff_max, base.retry_backoff_max),
            backfill: self.backfill.map_or(base.backfill, Backfill::from),
            backfill_batch_size: self.backfill_batch_size.unwrap_or(base.backfill_batch_size),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVersion {
    pub version: VersionName,
    pub path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPhase {
    pub name: String,
    pub to: VersionName,
    #[serde(default)]
    pub from: Option<VersionName>,
    pub strategy: RawStrategy,
    #[serde(default)]
    pub settings: RawSettings,
    #[serde(default)]
    pub blue_green: Option<super::bluegreen::RawBlueGreen>,
}

/// The strategy as spelt in YAML. Kept apart from [`Strategy`] so the
/// public type's JSON form does not depend on the file format.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum RawStrategy {
    InPlace,
    BlueGreen,
}

impl From<RawStrategy> for Strategy {
    fn from(raw: RawStrategy) -> Strategy {
        match raw {
            RawStrategy::InPlace => Strategy::InPlace,
            RawStrategy::BlueGreen => Strategy::BlueGreen,
        }
    }
}

/// A version name, which must be a YAML string. An unquoted `1.10` is the
/// float 1.1 to a YAML parser, so numbers are rejected rather than
/// converted back into a name that may differ from what was written.
#[derive(Debug, Clone)]
pub(super) struct VersionName(pub String);

impl<'de> Deserialize<'de> for VersionName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(VersionNameVisitor)
    }
}

const QUOTE_VERSION_HINT: &str = "quote version names, e.g. \"1.10\", because YAML reads an \
     unquoted 1.10 as the number 1.1";

struct VersionNameVisitor;

impl Visitor<'_> for VersionNameVisitor {
    type Value = VersionName;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quoted version name such as \"1.0\"")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<VersionName, E> {
        if value.trim().is_empty() {
            return Err(E::custom("version name is empty"));
        }
        Ok(VersionName(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<VersionName, E> {
        Err(E::custom(format!(
            "version {value} is a number: {QUOTE_VERSION_HINT}"
        )))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<VersionName, E> {
        Err(E::custom(format!(
            "version {value} is a number: {QUOTE_VERSION_HINT}"
        )))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<VersionName, E> {
        Err(E::custom(format!(
            "version {value} is a number: {QUOTE_VERSION_HINT}"
        )))
    }
}

/// A duration written as `"500ms"`, `"2s"`, `"1m"`, `"1h"`, a sum of
/// those such as `"1m30s"`, or `0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanDuration(pub Duration);

impl<'de> Deserialize<'de> for PlanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = PlanDuration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"500ms\", \"2s\", \"1m\" or 0")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<PlanDuration, E> {
        parse_duration(value).map(PlanDuration).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<PlanDuration, E> {
        if value == 0 {
            return Ok(PlanDuration(Duration::ZERO));
        }
        Err(E::custom(format!(
            "duration {value} has no unit: write e.g. \"{value}ms\" or \"{value}s\""
        )))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<PlanDuration, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(format!("duration {value} is negative"))),
        }
    }
}

/// Parses `"0"` or one or more `<digits><unit>` terms, unit being `ms`,
/// `s`, `m` or `h`, each unit at most once and from the largest down.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = || {
        format!(
            "invalid duration {text:?}: write a number and a unit (ms, s, m or h), \
             e.g. \"500ms\", \"2s\", \"1m30s\", or 0 for none"
        )
    };
    if text.is_empty() {
        return Err(invalid());
    }

    let mut total = Duration::ZERO;
    let mut rest = text;
    let mut previous_unit = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(invalid());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];

        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        if millis_per_unit >= previous_unit {
            return Err(format!(
                "invalid duration {text:?}: give each unit once, from the largest down, \
                 e.g. \"1h30m\" or \"1m30s\""
            ));
        }
        previous_unit = millis_per_unit;

        let millis = amount.checked_mul(millis_per_unit).ok_or_else(invalid)?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(invalid)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_units() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn duration_rejects_bad_forms() {
        for bad in [
            "",
            "2",
            "s",
            "2x",
            "1.5s",
            "-1s",
            "2 s",
            "ms500",
            "99999999999999999999h",
            "1h1h",
            "1s1m",
            "500ms1s",
        ] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }
}
