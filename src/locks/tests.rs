//! Unit tests of the lock facts that need no server. `tests/locks_pg.rs`
//! checks the same analyses against `pg_locks` of a real server.

use std::collections::HashMap;

use super::*;
use Hold::*;
use LockMode::*;

const PG15: PgVersion = PgVersion::new(15, 0);

fn parse(sql: &str) -> pg_query::NodeEnum {
    let result = pg_query::parse(sql, 0).unwrap_or_else(|e| panic!("cannot parse {sql}: {e}"));
    result.protobuf.stmts[0]
        .stmt
        .as_ref()
        .unwrap()
        .node
        .clone()
        .unwrap()
}

fn run(sql: &str) -> Analysis {
    analyze(&parse(sql), PG15)
}

fn run_at(sql: &str, major: u32) -> Analysis {
    analyze(&parse(sql), PgVersion::new(major, 0))
}

fn rel(name: &str) -> RelationName {
    match name.split_once('.') {
        Some((schema, name)) => RelationName {
            schema: Some(schema.into()),
            name: name.into(),
        },
        None => RelationName {
            schema: None,
            name: name.into(),
        },
    }
}

/// The (relation, mode, hold) triples of an analysis, in order.
fn effects(analysis: &Analysis) -> Vec<(String, LockMode, Hold)> {
    analysis
        .effects
        .iter()
        .map(|e| (e.relation.to_string(), e.mode, e.hold))
        .collect()
}

fn one(sql: &str) -> (String, LockMode, Hold) {
    let analysis = run(sql);
    assert_eq!(analysis.effects.len(), 1, "{sql}: {:?}", analysis.effects);
    effects(&analysis).remove(0)
}

fn e(name: &str, mode: LockMode, hold: Hold) -> (String, LockMode, Hold) {
    (name.to_string(), mode, hold)
}

#[test]
fn matrix_is_symmetric() {
    for a in LockMode::ALL {
        for b in LockMode::ALL {
            assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a} vs {b}");
        }
    }
}

#[test]
fn matrix_documented_rows() {
    // Each row lists the modes the documentation marks as conflicting.
    let rows: [(LockMode, &[LockMode]); 8] = [
        (AccessShare, &[AccessExclusive]),
        (RowShare, &[Exclusive, AccessExclusive]),
        (
            RowExclusive,
            &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
        ),
        (
            ShareUpdateExclusive,
            &[
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
        ),
        (
            Share,
            &[
                RowExclusive,
                ShareUpdateExclusive,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
        ),
        (
            ShareRowExclusive,
            &[
                RowExclusive,
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
        ),
        (
            Exclusive,
            &[
                RowShare,
                RowExclusive,
                ShareUpdateExclusive,
                Share,
                ShareRowExclusive,
                Exclusive,
                AccessExclusive,
            ],
        ),
        (AccessExclusive, &LockMode::ALL),
    ];
    for (mode, conflicting) in rows {
        for other in LockMode::ALL {
            assert_eq!(
                mode.conflicts_with(other),
                conflicting.contains(&other),
                "{mode} vs {other}"
            );
        }
    }
}

#[test]
fn matrix_reads_and_writes() {
    assert!(AccessExclusive.blocks_reads());
    assert!(!Exclusive.blocks_reads());
    assert!(Share.blocks_writes());
    assert!(!ShareUpdateExclusive.blocks_writes());
    assert!(!RowExclusive.blocks_writes());
}

#[test]
fn mode_names_round_trip() {
    for mode in LockMode::ALL {
        assert_eq!(
            LockMode::from_pg_locks_name(mode.pg_locks_name()),
            Some(mode)
        );
    }
    assert_eq!(ShareRowExclusive.sql_name(), "SHARE ROW EXCLUSIVE");
    assert_eq!(AccessExclusive.pg_locks_name(), "AccessExclusiveLock");
    assert_eq!(LockMode::from_lockmode_number(1), Some(AccessShare));
    assert_eq!(LockMode::from_lockmode_number(8), Some(AccessExclusive));
    assert_eq!(LockMode::from_lockmode_number(9), None);
    assert_eq!(LockMode::from_lockmode_number(0), None);
}

#[test]
fn version_parse_forms() {
    assert_eq!(PgVersion::parse("11"), Some(PgVersion::new(11, 0)));
    assert_eq!(PgVersion::parse("11"), PgVersion::parse("11.0"));
    assert_eq!(PgVersion::parse("14.3"), Some(PgVersion::new(14, 3)));
    assert_eq!(PgVersion::parse("150004"), Some(PgVersion::new(15, 4)));
    assert_eq!(PgVersion::parse("90624"), Some(PgVersion::new(9, 24)));
    assert_eq!(PgVersion::parse("9.6"), Some(PgVersion::new(9, 6)));
    assert_eq!(PgVersion::parse("0"), None);
    assert_eq!(PgVersion::parse("8.4"), None);
    assert_eq!(PgVersion::parse("80400"), None);
    assert_eq!(PgVersion::parse(" 16.1 "), Some(PgVersion::new(16, 1)));
}

#[test]
fn version_parse_rejects() {
    for bad in ["", "abc", "15beta1", "1.2.3.4x", "15.", "-1", "15.3.1"] {
        assert_eq!(PgVersion::parse(bad), None, "{bad}");
    }
    assert!(PgVersion::new(14, 3) < PgVersion::new(15, 0));
}

#[test]
fn create_index_plain_and_concurrent() {
    let plain = run("CREATE UNIQUE INDEX i ON s.t (a)");
    assert_eq!(plain.kind, "create-index");
    assert_eq!(effects(&plain), [e("s.t", Share, Scan)]);
    assert_eq!(plain.transaction, TransactionUse::Any);
    assert_eq!(plain.creates, [rel("s.i")]);

    let online = run("CREATE INDEX CONCURRENTLY i ON t (a)");
    assert_eq!(effects(&online), [e("t", ShareUpdateExclusive, Scan)]);
    assert_eq!(online.transaction, TransactionUse::NotInBlock);
}

#[test]
fn drop_index_plain_and_concurrent() {
    let plain = run("DROP INDEX i");
    assert_eq!(effects(&plain), [e("i", AccessExclusive, Brief)]);
    assert_eq!(plain.effects[0].kind, RelationKind::Index);
    assert!(
        plain.notes[0].contains("ACCESS EXCLUSIVE"),
        "{:?}",
        plain.notes
    );

    let online = run("DROP INDEX CONCURRENTLY IF EXISTS s.i");
    assert_eq!(effects(&online), [e("s.i", ShareUpdateExclusive, Brief)]);
    assert_eq!(online.transaction, TransactionUse::NotInBlock);
}

#[test]
fn add_column_defaults() {
    let brief = [
        "ALTER TABLE t ADD COLUMN c int",
        "ALTER TABLE t ADD COLUMN c int DEFAULT 0",
        "ALTER TABLE t ADD COLUMN c timestamptz NOT NULL DEFAULT now()",
        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT current_timestamp",
        "ALTER TABLE t ADD COLUMN c text DEFAULT current_setting('app.tier')",
        "ALTER TABLE t ADD COLUMN c jsonb NOT NULL DEFAULT '{}'::jsonb",
        "ALTER TABLE t ADD COLUMN c text DEFAULT NULL",
    ];
    for sql in brief {
        assert_eq!(one(sql), e("t", AccessExclusive, Brief), "{sql}");
    }
    let rewrite = [
        "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE t ADD COLUMN c smallint DEFAULT (floor(random() * 16))::smallint",
        "ALTER TABLE t ADD COLUMN c text DEFAULT 'x' || clock_timestamp()::text",
        "ALTER TABLE t ADD COLUMN c bigint DEFAULT 1 + nextval('s')",
        "ALTER TABLE t ADD COLUMN c int DEFAULT my_function()",
        "ALTER TABLE t ADD COLUMN c int DEFAULT RANDOM()::int",
        "ALTER TABLE t ADD COLUMN c bigserial",
        "ALTER TABLE t ADD COLUMN c serial",
        "ALTER TABLE t ADD COLUMN c smallserial",
        "ALTER TABLE t ADD COLUMN c bigint GENERATED BY DEFAULT AS IDENTITY",
        "ALTER TABLE t ADD COLUMN c int GENERATED ALWAYS AS (a * b) STORED",
    ];
    for sql in rewrite {
        assert_eq!(one(sql), e("t", AccessExclusive, Rewrite), "{sql}");
    }
}

#[test]
fn add_column_before_11_rewrites() {
    let sql = "ALTER TABLE t ADD COLUMN c int DEFAULT 0";
    assert_eq!(
        effects(&run_at(sql, 10)),
        [e("t", AccessExclusive, Rewrite)]
    );
    assert_eq!(effects(&run_at(sql, 11)), [e("t", AccessExclusive, Brief)]);
    let no_default = "ALTER TABLE t ADD COLUMN c int";
    assert_eq!(
        effects(&run_at(no_default, 10)),
        [e("t", AccessExclusive, Brief)]
    );
}

#[test]
fn add_column_not_null_without_default_scans() {
    assert_eq!(
        one("ALTER TABLE t ADD COLUMN c int NOT NULL"),
        e("t", AccessExclusive, Scan)
    );
    let fk = run("ALTER TABLE t ADD COLUMN c int REFERENCES u (id)");
    assert_eq!(
        effects(&fk),
        [
            e("u", ShareRowExclusive, Brief),
            e("t", AccessExclusive, Scan)
        ]
    );
}

#[test]
fn add_foreign_key_locks_both() {
    let fk = run("ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES a (id)");
    assert_eq!(fk.kind, "alter-table-add-constraint");
    assert_eq!(fk.subcommands, ["add-foreign-key"]);
    assert_eq!(
        effects(&fk),
        [
            e("o", ShareRowExclusive, Scan),
            e("a", ShareRowExclusive, Brief)
        ]
    );

    let not_valid = run("ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES a NOT VALID");
    assert_eq!(effects(&not_valid)[0], e("o", ShareRowExclusive, Brief));

    let old = run_at(
        "ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES a",
        9,
    );
    assert_eq!(old.effects[1].mode, AccessExclusive);
}

#[test]
fn add_check_unique_exclude() {
    assert_eq!(
        one("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)"),
        e("t", AccessExclusive, Scan)
    );
    assert_eq!(
        one("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID"),
        e("t", AccessExclusive, Brief)
    );
    assert_eq!(
        one("ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)"),
        e("t", AccessExclusive, Scan)
    );
    assert_eq!(
        one("ALTER TABLE t ADD PRIMARY KEY (a)"),
        e("t", AccessExclusive, Scan)
    );
    assert_eq!(
        one("ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX i"),
        e("t", AccessExclusive, Brief)
    );
    let pk = run("ALTER TABLE t ADD CONSTRAINT k PRIMARY KEY USING INDEX i");
    assert_eq!(pk.subcommands, ["add-primary-key-using-index"]);
    assert_eq!(effects(&pk), [e("t", AccessExclusive, Brief)]);
    assert_eq!(
        one("ALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (r WITH &&)"),
        e("t", AccessExclusive, Scan)
    );
}

#[test]
fn validate_and_not_null() {
    let validate = run("ALTER TABLE t VALIDATE CONSTRAINT f");
    assert_eq!(validate.kind, "alter-table-validate-constraint");
    assert_eq!(effects(&validate), [e("t", ShareUpdateExclusive, Scan)]);
    assert!(validate.notes.iter().any(|n| n.contains("ROW SHARE")));
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
        e("t", AccessExclusive, Scan)
    );
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a DROP NOT NULL"),
        e("t", AccessExclusive, Brief)
    );
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a SET DEFAULT 1"),
        e("t", AccessExclusive, Brief)
    );
    assert_eq!(
        run("ALTER TABLE t ALTER COLUMN a DROP DEFAULT").kind,
        "alter-table-drop-default"
    );
    assert_eq!(
        one("ALTER TABLE t DROP COLUMN a"),
        e("t", AccessExclusive, Brief)
    );
}

struct Catalog(HashMap<(&'static str, &'static str), &'static str>);

impl ColumnTypes for Catalog {
    fn column_type(&self, table: &RelationName, column: &str) -> Option<String> {
        self.0
            .iter()
            .find_map(|((t, c), ty)| (table.name == *t && column == *c).then(|| ty.to_string()))
    }
}

#[test]
fn alter_column_type_with_catalog() {
    let catalog = Catalog(HashMap::from([
        (("t", "v"), "character varying(10)"),
        (("t", "x"), "text"),
        (("t", "n"), "numeric(5,2)"),
        (("t", "i"), "integer"),
    ]));
    let context = Context {
        version: PG15,
        column_types: Some(&catalog),
    };
    let hold = |sql: &str| analyze_in(&parse(sql), &context).effects[0].hold;

    assert_eq!(hold("ALTER TABLE t ALTER COLUMN v TYPE varchar(20)"), Brief);
    assert_eq!(hold("ALTER TABLE t ALTER COLUMN v TYPE varchar(10)"), Brief);
    assert_eq!(hold("ALTER TABLE t ALTER COLUMN v TYPE varchar"), Brief);
    assert_eq!(hold("ALTER TABLE t ALTER COLUMN v TYPE text"), Brief);
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN v TYPE varchar(5)"),
        Rewrite
    );
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN x TYPE character varying"),
        Brief
    );
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN x TYPE varchar(5)"),
        Rewrite
    );
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN n TYPE numeric(8,2)"),
        Brief
    );
    assert_eq!(hold("ALTER TABLE t ALTER COLUMN n TYPE decimal"), Brief);
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN n TYPE numeric(8,3)"),
        Rewrite
    );
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN n TYPE numeric(4,2)"),
        Rewrite
    );
    assert_eq!(hold("ALTER TABLE t ALTER COLUMN i TYPE int4"), Brief);
    assert_eq!(hold("ALTER TABLE t ALTER COLUMN i TYPE bigint"), Rewrite);
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN i TYPE integer USING i + 0"),
        Rewrite
    );
    assert_eq!(
        hold("ALTER TABLE t ALTER COLUMN unknown TYPE text"),
        Rewrite
    );
}

#[test]
fn alter_column_type_without_catalog() {
    let analysis = run("ALTER TABLE t ALTER COLUMN v TYPE text");
    assert_eq!(analysis.kind, "alter-table-alter-column-type");
    assert_eq!(effects(&analysis), [e("t", AccessExclusive, Rewrite)]);
}

#[test]
fn renames_are_told_apart() {
    let cases = [
        ("ALTER TABLE t RENAME TO u", "rename-table"),
        ("ALTER TABLE t RENAME COLUMN a TO b", "rename-column"),
        (
            "ALTER TABLE t RENAME CONSTRAINT a TO b",
            "rename-constraint",
        ),
    ];
    for (sql, kind) in cases {
        let analysis = run(sql);
        assert_eq!(analysis.kind, kind, "{sql}");
        assert_eq!(
            effects(&analysis),
            [e("t", AccessExclusive, Brief)],
            "{sql}"
        );
    }
    let index = run("ALTER INDEX i RENAME TO j");
    assert_eq!(index.kind, "rename-index");
    assert_eq!(effects(&index), [e("i", ShareUpdateExclusive, Brief)]);
    assert_eq!(
        effects(&run_at("ALTER INDEX i RENAME TO j", 11))[0].1,
        AccessExclusive
    );
}

#[test]
fn logged_and_partitions() {
    assert_eq!(
        one("ALTER TABLE t SET UNLOGGED"),
        e("t", AccessExclusive, Rewrite)
    );
    assert_eq!(
        one("ALTER TABLE t SET LOGGED"),
        e("t", AccessExclusive, Rewrite)
    );

    let attach = run("ALTER TABLE p ATTACH PARTITION p1 FOR VALUES FROM (1) TO (2)");
    assert_eq!(
        effects(&attach),
        [
            e("p", ShareUpdateExclusive, Brief),
            e("p1", AccessExclusive, Scan)
        ]
    );
    let attach_11 = run_at(
        "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES FROM (1) TO (2)",
        11,
    );
    assert_eq!(attach_11.effects[0].mode, AccessExclusive);

    let detach = run("ALTER TABLE p DETACH PARTITION p1");
    assert_eq!(
        effects(&detach),
        [
            e("p", AccessExclusive, Brief),
            e("p1", AccessExclusive, Brief)
        ]
    );
    assert_eq!(detach.transaction, TransactionUse::Any);

    let online = run("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY");
    assert_eq!(online.transaction, TransactionUse::NotInBlock);
    assert_eq!(
        effects(&online),
        [
            e("p", ShareUpdateExclusive, Brief),
            e("p1", AccessExclusive, Brief)
        ]
    );
    assert!(run_at("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", 13).notes[0].contains("14"));
}

#[test]
fn multiple_subcommands_merge() {
    let analysis = run("ALTER TABLE t ADD COLUMN a int, VALIDATE CONSTRAINT c, \
         ALTER COLUMN b TYPE bigint, ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u NOT VALID");
    assert_eq!(analysis.kind, "alter-table");
    assert_eq!(
        analysis.subcommands,
        [
            "add-column",
            "validate-constraint",
            "alter-column-type",
            "add-foreign-key"
        ]
    );
    assert_eq!(
        effects(&analysis),
        [
            e("t", AccessExclusive, Rewrite),
            e("u", ShareRowExclusive, Brief)
        ]
    );
}

#[test]
fn create_and_drop_tables() {
    let create = run(
        "CREATE TABLE r (id int PRIMARY KEY, o int REFERENCES o (id), \
         a int, FOREIGN KEY (a) REFERENCES s.a (id))",
    );
    assert_eq!(create.kind, "create-table");
    assert_eq!(create.creates, [rel("r")]);
    assert_eq!(
        effects(&create),
        [
            e("o", ShareRowExclusive, Brief),
            e("s.a", ShareRowExclusive, Brief)
        ]
    );

    let plain = run("CREATE TABLE r (id int)");
    assert!(plain.effects.is_empty());

    let part = run("CREATE TABLE p3 PARTITION OF p FOR VALUES FROM (1) TO (2)");
    assert_eq!(part.kind, "create-table-partition-of");
    assert_eq!(effects(&part), [e("p", AccessExclusive, Brief)]);

    let drop = run("DROP TABLE a, s.b");
    assert_eq!(drop.kind, "drop-table");
    assert_eq!(
        effects(&drop),
        [
            e("a", AccessExclusive, Brief),
            e("s.b", AccessExclusive, Brief)
        ]
    );
}

#[test]
fn triggers() {
    let create = run("CREATE TRIGGER g BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()");
    assert_eq!(create.kind, "create-trigger");
    assert_eq!(effects(&create), [e("t", ShareRowExclusive, Brief)]);
    assert!(!create.opaque);
    let drop = run("DROP TRIGGER g ON s.t");
    assert_eq!(drop.kind, "drop-trigger");
    assert_eq!(effects(&drop), [e("s.t", AccessExclusive, Brief)]);
}

#[test]
fn maintenance_commands() {
    assert_eq!(one("TRUNCATE t"), e("t", AccessExclusive, Brief));

    let vacuum = run("VACUUM (ANALYZE) t");
    assert_eq!(effects(&vacuum), [e("t", ShareUpdateExclusive, Scan)]);
    assert_eq!(vacuum.transaction, TransactionUse::NotInBlock);
    let full = run("VACUUM FULL t");
    assert_eq!(full.kind, "vacuum-full");
    assert_eq!(effects(&full), [e("t", AccessExclusive, Rewrite)]);
    assert_eq!(full.transaction, TransactionUse::NotInBlock);
    assert_eq!(run("VACUUM (FULL false) t").kind, "vacuum");

    assert_eq!(one("CLUSTER t USING i"), e("t", AccessExclusive, Rewrite));
    assert_eq!(run("CLUSTER").transaction, TransactionUse::NotInBlock);

    let index = run("REINDEX INDEX i");
    assert_eq!(effects(&index), [e("i", AccessExclusive, Rewrite)]);
    assert_eq!(index.effects[0].kind, RelationKind::Index);
    assert_eq!(one("REINDEX TABLE t"), e("t", Share, Scan));
    let online = run("REINDEX TABLE CONCURRENTLY t");
    assert_eq!(effects(&online), [e("t", ShareUpdateExclusive, Scan)]);
    assert_eq!(online.transaction, TransactionUse::NotInBlock);
    assert!(run_at("REINDEX INDEX CONCURRENTLY i", 11)
        .notes
        .iter()
        .any(|n| n.contains("12")));

    assert_eq!(
        one("REFRESH MATERIALIZED VIEW m"),
        e("m", AccessExclusive, Rewrite)
    );
    assert_eq!(
        one("REFRESH MATERIALIZED VIEW CONCURRENTLY m"),
        e("m", Exclusive, Scan)
    );
}

#[test]
fn lock_table_modes() {
    assert_eq!(one("LOCK TABLE t"), e("t", AccessExclusive, Brief));
    assert_eq!(
        one("LOCK t IN SHARE ROW EXCLUSIVE MODE"),
        e("t", ShareRowExclusive, Brief)
    );
    assert_eq!(
        one("LOCK TABLE t IN ACCESS SHARE MODE"),
        e("t", AccessShare, Brief)
    );
}

#[test]
fn dml_locks() {
    let insert = run("INSERT INTO t SELECT * FROM u");
    assert_eq!(
        effects(&insert),
        [e("t", RowExclusive, Brief), e("u", AccessShare, Brief)]
    );

    let update = run("UPDATE t SET a = 1 WHERE id = 2");
    assert_eq!(effects(&update), [e("t", RowExclusive, Brief)]);
    assert!(!update.locks_all_rows);
    let update_all = run("UPDATE t SET a = 1");
    assert_eq!(effects(&update_all), [e("t", RowExclusive, Scan)]);
    assert!(update_all.locks_all_rows);
    let delete_all = run("DELETE FROM t");
    assert!(delete_all.locks_all_rows);
    assert_eq!(delete_all.kind, "delete");

    let select = run("WITH c AS (SELECT * FROM a) SELECT * FROM c JOIN s.b ON true");
    assert_eq!(
        effects(&select),
        [e("s.b", AccessShare, Brief), e("a", AccessShare, Brief)]
    );
    assert!(!select.opaque);
    assert_eq!(one("SELECT * FROM t FOR UPDATE"), e("t", RowShare, Brief));
}

#[test]
fn function_calls_are_opaque() {
    assert!(run("SELECT my_migration()").opaque);
    assert!(run("SELECT app.backfill(10)").opaque);
    assert!(!run("SELECT now(), count(*) FROM t").opaque);
    assert!(run("DO $$ BEGIN PERFORM 1; END $$").opaque);
    assert!(run("CALL p()").opaque);
    let function = run("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'");
    assert_eq!(function.kind, "create-function");
    assert!(function.effects.is_empty());
    assert!(!function.opaque);
}

#[test]
fn catalog_only_statements() {
    let view = run("CREATE VIEW v AS SELECT * FROM t");
    assert_eq!(view.kind, "create-view");
    assert_eq!(view.creates, [rel("v")]);
    assert_eq!(effects(&view), [e("t", AccessShare, Brief)]);

    let enum_value = run("ALTER TYPE mood ADD VALUE 'meh'");
    assert_eq!(enum_value.kind, "alter-type-add-value");
    assert!(enum_value.effects.is_empty());
    assert_eq!(enum_value.transaction, TransactionUse::Any);
    assert_eq!(
        run_at("ALTER TYPE mood ADD VALUE 'meh'", 11).transaction,
        TransactionUse::NotInBlock
    );

    assert_eq!(
        one("COMMENT ON TABLE t IS 'x'"),
        e("t", ShareUpdateExclusive, Brief)
    );
    assert_eq!(
        one("COMMENT ON COLUMN s.t.c IS 'x'"),
        e("s.t", ShareUpdateExclusive, Brief)
    );
    assert!(run("GRANT SELECT ON t TO PUBLIC").effects.is_empty());
    assert_eq!(run("SET lock_timeout = '1s'").kind, "set");
    assert_eq!(run("RESET lock_timeout").kind, "reset");
    assert!(run("SET lock_timeout = '1s'").effects.is_empty());
}

#[test]
fn transaction_control() {
    let cases = [
        ("BEGIN", TransactionControl::Begin),
        ("START TRANSACTION", TransactionControl::Begin),
        ("COMMIT", TransactionControl::Commit),
        ("ROLLBACK", TransactionControl::Rollback),
        ("SAVEPOINT s", TransactionControl::Other),
    ];
    for (sql, control) in cases {
        assert_eq!(
            run(sql).transaction,
            TransactionUse::Control(control),
            "{sql}"
        );
    }
    let database = run("CREATE DATABASE d");
    assert_eq!(database.kind, "create-database");
    assert_eq!(database.transaction, TransactionUse::NotInBlock);
}

#[test]
fn unknown_statement_is_other() {
    let analysis = run("CREATE EXTENSION hstore");
    assert_eq!(analysis.kind, "other");
    assert!(analysis.effects.is_empty());
    assert!(!analysis.opaque);
}

#[test]
fn volatility_data_from_server() {
    use volatility::{builtin_volatility, Volatility};
    assert_eq!(builtin_volatility("now"), Some(Volatility::Stable));
    assert_eq!(builtin_volatility("NOW"), Some(Volatility::Stable));
    assert_eq!(
        builtin_volatility("current_setting"),
        Some(Volatility::Stable)
    );
    assert_eq!(
        builtin_volatility("clock_timestamp"),
        Some(Volatility::Volatile)
    );
    assert_eq!(builtin_volatility("random"), Some(Volatility::Volatile));
    assert_eq!(
        builtin_volatility("gen_random_uuid"),
        Some(Volatility::Volatile)
    );
    assert_eq!(builtin_volatility("nextval"), Some(Volatility::Volatile));
    assert_eq!(builtin_volatility("lower"), Some(Volatility::Immutable));
    assert_eq!(builtin_volatility("no_such_function_here"), None);
}
