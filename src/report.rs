//! Dry-run reports.
