//! pgshift: schema changes for live PostgreSQL databases without downtime.
//!
//! The library holds every layer; the `pgshift` binary only parses arguments
//! and prints. Data flows one way: a [`plan`] names versions and their
//! migration files, [`sql`] splits and parses each file with the PostgreSQL
//! grammar, [`locks`] maps every statement to the table locks it takes,
//! [`rules`] turns those facts into lint diagnostics, [`rewrite`] turns
//! statements into their online forms and groups them into steps, and
//! [`exec`] runs the steps against a live server, journaling them in the
//! `pgshift` schema managed by [`state`].

pub mod analysis;
pub mod bluegreen;
pub mod config;
pub mod db;
pub mod diagnostics;
pub mod exec;
pub mod kill_point;
pub mod lint;
pub mod locks;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rewrite;
pub mod rules;
pub mod sql;
pub mod state;
