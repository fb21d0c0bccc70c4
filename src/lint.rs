//! Linting migration files: parse, analyze, run the rules.
