//! The executor: runs the steps of a plan against a live database.
