//! Checks every lock claim of `pgshift::locks` against `pg_locks` of the
//! real server.
//!
//! A statement that may run in a transaction block runs inside `BEGIN` on
//! one session, which then reads its own relation locks from `pg_locks` and
//! rolls back. A statement that cannot (CONCURRENTLY, VACUUM) is made to
//! wait behind a second session, and a third session reads its locks while
//! it waits. For each analyzed effect, the backend's strongest lock on that
//! relation must equal the analyzed mode; a table, view or materialized
//! view locked without an analyzed effect fails the test unless the case
//! lists it as a known extra (a lock the statement does not name, such as
//! the table of `DROP INDEX`). Indexes locked in passing are not checked:
//! the server routinely takes ACCESS SHARE or stronger on a table's indexes
//! (planning, rebuilds, index renames), and those are listed nowhere.
//! `Rewrite` claims must change `pg_class.relfilenode`; `Brief` and `Scan`
//! claims must not.

mod common;

use std::collections::HashMap;

use pgshift::locks::{
    analyze, analyze_in, Analysis, ColumnTypes, Context, Hold, LockMode, PgVersion, RelationName,
    TransactionUse,
};
use tokio_postgres::Client;

use LockMode::*;

const PG15: PgVersion = PgVersion::new(15, 0);

const SCHEMA: &str = r#"
CREATE TABLE accounts (id int PRIMARY KEY, login text, v varchar(10), n numeric(5,2), i int);
CREATE UNIQUE INDEX accounts_login_idx ON accounts (login);
CREATE TABLE orders (id int PRIMARY KEY, account_id int, note text, qty int, unit_cents int);
CREATE INDEX orders_note_idx ON orders (note);
INSERT INTO accounts VALUES (1, 'a', 'b', 1, 1), (2, 'b', 'c', 2, 2);
INSERT INTO orders VALUES (1, 1, 'n', 1, 1), (2, 2, 'm', 2, 2);
ALTER TABLE orders ADD CONSTRAINT orders_account_fk
    FOREIGN KEY (account_id) REFERENCES accounts NOT VALID;
ALTER TABLE orders ADD CONSTRAINT orders_qty_pos CHECK (qty > 0) NOT VALID;
CREATE TABLE events (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10);
CREATE TABLE events_2 (id int, k int);
INSERT INTO events_2 VALUES (1, 25);
CREATE MATERIALIZED VIEW order_totals AS
    SELECT account_id, count(*) AS n FROM orders GROUP BY account_id;
CREATE UNIQUE INDEX order_totals_key ON order_totals (account_id);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION bump() RETURNS void LANGUAGE sql AS $$UPDATE orders SET qty = qty + 1$$;
CREATE TYPE mood AS ENUM ('ok');
CREATE TABLE parent_inh (id int);
CREATE TABLE scratch (id int);
CREATE UNLOGGED TABLE scratch_unlogged (id int);
"#;

/// A statement and the locks the server takes that its analysis cannot
/// name (see each analysis' notes), as (relation, strongest mode).
struct Case {
    sql: &'static str,
    extra: &'static [(&'static str, LockMode)],
    /// Relations that get new storage without a rewrite of their rows.
    new_storage: &'static [&'static str],
}

const fn case(sql: &'static str) -> Case {
    Case {
        sql,
        extra: &[],
        new_storage: &[],
    }
}

const fn with_extra(sql: &'static str, extra: &'static [(&'static str, LockMode)]) -> Case {
    Case {
        sql,
        extra,
        new_storage: &[],
    }
}

/// One relation lock of a backend, with the name the relation had before
/// the statement (or has after it, for a new relation).
#[derive(Debug)]
struct HeldLock {
    name: String,
    relkind: String,
    mode: LockMode,
}

/// Name, kind and storage of every relation in schema `public`, by OID.
async fn relations(client: &Client) -> HashMap<u32, (String, String, u32)> {
    let rows = client
        .query(
            "SELECT c.oid, c.relname::text, c.relkind::text, c.relfilenode \
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| (r.get::<_, u32>(0), (r.get(1), r.get(2), r.get::<_, u32>(3))))
        .collect()
}

async fn locks_of(
    reader: &Client,
    pid: i32,
    known: &[&HashMap<u32, (String, String, u32)>],
) -> Vec<HeldLock> {
    let rows = reader
        .query(
            "SELECT relation, mode FROM pg_locks \
             WHERE locktype = 'relation' AND pid = $1 AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[&pid],
        )
        .await
        .unwrap();
    rows.iter()
        .filter_map(|r| {
            let oid: u32 = r.get(0);
            let mode: String = r.get(1);
            let (name, relkind, _) = known.iter().find_map(|m| m.get(&oid))?;
            let mode = LockMode::from_pg_locks_name(&mode)
                .unwrap_or_else(|| panic!("unknown pg_locks mode {mode}"));
            Some(HeldLock {
                name: name.clone(),
                relkind: relkind.clone(),
                mode,
            })
        })
        .collect()
}

fn strongest(locks: &[HeldLock]) -> HashMap<&str, (LockMode, &str)> {
    let mut by_name: HashMap<&str, (LockMode, &str)> = HashMap::new();
    for lock in locks {
        let entry = by_name
            .entry(lock.name.as_str())
            .or_insert((lock.mode, &lock.relkind));
        entry.0 = entry.0.max(lock.mode);
    }
    by_name
}

fn public_name(relation: &RelationName) -> String {
    match relation.schema.as_deref() {
        None | Some("public") => relation.name.clone(),
        Some(other) => panic!("test statements use schema public, not {other}"),
    }
}

/// Compares the server's locks with the analysis and returns nothing;
/// panics naming the statement and the relation on any mismatch.
fn compare_locks(sql: &str, analysis: &Analysis, locks: &[HeldLock], extra: &[(&str, LockMode)]) {
    let held = strongest(locks);
    for effect in &analysis.effects {
        let name = public_name(&effect.relation);
        let Some((mode, _)) = held.get(name.as_str()) else {
            panic!(
                "{sql}: analysis claims {} on {name}, server holds nothing; {locks:?}",
                effect.mode
            );
        };
        assert_eq!(*mode, effect.mode, "{sql}: strongest lock on {name}");
    }
    for (name, mode) in extra {
        let held_mode = held.get(name).map(|h| h.0);
        assert_eq!(held_mode, Some(*mode), "{sql}: known extra lock on {name}");
    }
    let claimed: Vec<String> = analysis
        .effects
        .iter()
        .map(|e| public_name(&e.relation))
        .chain(analysis.creates.iter().map(public_name))
        .chain(extra.iter().map(|(n, _)| n.to_string()))
        .collect();
    for (name, (mode, relkind)) in &held {
        let user_relation = matches!(*relkind, "r" | "p" | "m" | "v");
        assert!(
            !user_relation || claimed.iter().any(|c| c == name),
            "{sql}: server holds {mode} on {name}, which the analysis leaves out"
        );
    }
}

fn compare_storage(
    sql: &str,
    analysis: &Analysis,
    before: &HashMap<u32, (String, String, u32)>,
    after: &HashMap<u32, (String, String, u32)>,
    new_storage: &[&str],
) {
    for effect in &analysis.effects {
        let name = public_name(&effect.relation);
        let Some((oid, (_, _, old))) = before.iter().find(|(_, (n, _, _))| *n == name) else {
            continue;
        };
        // Dropped relations and relations without storage tell nothing.
        let Some((_, _, new)) = after.get(oid) else {
            continue;
        };
        if *old == 0 {
            continue;
        }
        match effect.hold {
            Hold::Rewrite => {
                assert_ne!(old, new, "{sql}: {name} claimed Rewrite, same relfilenode")
            }
            Hold::Brief | Hold::Scan if new_storage.contains(&name.as_str()) => {
                assert_ne!(old, new, "{sql}: {name} expected new storage")
            }
            Hold::Brief | Hold::Scan => {
                assert_eq!(
                    old, new,
                    "{sql}: {name} claimed {:?}, relfilenode changed",
                    effect.hold
                )
            }
        }
    }
}

fn parse_one(sql: &str) -> pg_query::NodeEnum {
    let parsed = pg_query::parse(sql, 0).unwrap_or_else(|e| panic!("cannot parse {sql}: {e}"));
    parsed.protobuf.stmts[0]
        .stmt
        .as_ref()
        .unwrap()
        .node
        .clone()
        .unwrap()
}

/// Column types read from the server with `format_type`, and the names of
/// the tables and partitioned tables.
struct ServerColumns(HashMap<(String, String), String>, HashMap<String, bool>);

impl ColumnTypes for ServerColumns {
    fn column_type(&self, table: &RelationName, column: &str) -> Option<String> {
        self.0
            .get(&(table.name.clone(), column.to_string()))
            .cloned()
    }

    fn is_partitioned(&self, table: &RelationName) -> Option<bool> {
        self.1.get(&table.name).copied()
    }
}

async fn server_columns(client: &Client) -> ServerColumns {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 \
               AND NOT a.attisdropped",
            &[],
        )
        .await
        .unwrap();
    let tables = client
        .query(
            "SELECT relname::text, relkind = 'p' FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')",
            &[],
        )
        .await
        .unwrap();
    ServerColumns(
        rows.iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect(),
        tables.iter().map(|r| (r.get(0), r.get(1))).collect(),
    )
}

/// Runs each case inside BEGIN ... ROLLBACK on a fresh database and
/// compares locks and storage with the analysis.
async fn check_in_block(tag: &str, cases: &[Case]) {
    let db = common::TestDb::new(tag).await;
    db.exec(SCHEMA).await;
    let session = db.client().await;
    let columns = server_columns(&session).await;
    let context = Context {
        version: PG15,
        column_types: Some(&columns),
    };

    for case in cases {
        let analysis = analyze_in(&parse_one(case.sql), &context);
        assert_eq!(analysis.transaction, TransactionUse::Any, "{}", case.sql);
        let before = relations(&session).await;
        session.batch_execute("BEGIN").await.unwrap();
        if let Err(e) = session.batch_execute(case.sql).await {
            panic!("{} failed on the server: {e:?}", case.sql);
        }
        let pid: i32 = session
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let after = relations(&session).await;
        let locks = locks_of(&session, pid, &[&before, &after]).await;
        session.batch_execute("ROLLBACK").await.unwrap();

        if analysis.opaque {
            assert!(analysis.effects.is_empty(), "{}", case.sql);
            continue;
        }
        compare_locks(case.sql, &analysis, &locks, case.extra);
        compare_storage(case.sql, &analysis, &before, &after, case.new_storage);
    }
}

#[tokio::test]
async fn indexes_and_drops() {
    check_in_block(
        "locks_indexes",
        &[
            case("CREATE INDEX orders_qty_idx ON orders (qty)"),
            case("CREATE INDEX events_k_idx ON ONLY events (k)"),
            case("CREATE INDEX scratch_id_idx ON ONLY scratch (id)"),
            case("CREATE UNIQUE INDEX accounts_v_key ON accounts (v)"),
            with_extra("DROP INDEX orders_note_idx", &[("orders", AccessExclusive)]),
            case("DROP TABLE scratch"),
            with_extra(
                "DROP TABLE orders CASCADE",
                &[("accounts", AccessExclusive), ("order_totals", AccessExclusive)],
            ),
            with_extra("REINDEX INDEX orders_note_idx", &[("orders", Share)]),
            case("REINDEX TABLE orders"),
            case("CLUSTER accounts USING accounts_pkey"),
            Case { sql: "TRUNCATE events_2", extra: &[], new_storage: &["events_2"] },
            with_extra("REFRESH MATERIALIZED VIEW order_totals", &[("orders", AccessShare)]),
            with_extra(
                "REFRESH MATERIALIZED VIEW CONCURRENTLY order_totals",
                &[("orders", AccessShare)],
            ),
            case("LOCK TABLE orders IN SHARE MODE"),
            case("LOCK TABLE accounts"),
            case("CREATE TRIGGER orders_touch2 AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch()"),
            case("DROP TRIGGER orders_touch ON orders"),
        ],
    )
    .await;
}

#[tokio::test]
async fn add_column_forms() {
    check_in_block(
        "locks_add_column",
        &[
            case("ALTER TABLE accounts ADD COLUMN c int"),
            case("ALTER TABLE accounts ADD COLUMN c int DEFAULT 0"),
            case("ALTER TABLE accounts ADD COLUMN c timestamptz NOT NULL DEFAULT now()"),
            case("ALTER TABLE accounts ADD COLUMN c text DEFAULT current_setting('server_version')"),
            case("ALTER TABLE scratch ADD COLUMN c int NOT NULL"),
            case("ALTER TABLE accounts ADD COLUMN c uuid DEFAULT gen_random_uuid()"),
            case("ALTER TABLE accounts ADD COLUMN c smallint DEFAULT (floor(random() * 16))::smallint"),
            case("ALTER TABLE accounts ADD COLUMN c text DEFAULT 'at ' || clock_timestamp()::text"),
            case("ALTER TABLE orders ADD COLUMN c bigserial"),
            case("ALTER TABLE orders ADD COLUMN c bigint GENERATED BY DEFAULT AS IDENTITY"),
            case("ALTER TABLE orders ADD COLUMN c int GENERATED ALWAYS AS (qty * unit_cents) STORED"),
            case("ALTER TABLE orders ADD COLUMN c int REFERENCES accounts (id)"),
        ],
    )
    .await;
}

#[tokio::test]
async fn constraints() {
    check_in_block(
        "locks_constraints",
        &[
            case("ALTER TABLE orders ADD CONSTRAINT f2 FOREIGN KEY (account_id) REFERENCES accounts (id)"),
            case("ALTER TABLE orders ADD CONSTRAINT f2 FOREIGN KEY (account_id) REFERENCES accounts NOT VALID"),
            case("ALTER TABLE orders ADD CONSTRAINT c2 CHECK (qty < 1000)"),
            case("ALTER TABLE orders ADD CONSTRAINT c2 CHECK (qty < 1000) NOT VALID"),
            case("ALTER TABLE accounts ADD CONSTRAINT accounts_v_key UNIQUE (v)"),
            case("ALTER TABLE events_2 ADD PRIMARY KEY (id)"),
            case("ALTER TABLE accounts ADD CONSTRAINT accounts_login_key UNIQUE USING INDEX accounts_login_idx"),
            case("ALTER TABLE orders ADD CONSTRAINT orders_ex EXCLUDE USING btree (id WITH =)"),
            with_extra(
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk",
                &[("accounts", RowShare)],
            ),
            case("ALTER TABLE orders VALIDATE CONSTRAINT orders_qty_pos"),
            with_extra(
                "ALTER TABLE orders DROP CONSTRAINT orders_account_fk",
                &[("accounts", AccessExclusive)],
            ),
            case("ALTER TABLE orders DROP CONSTRAINT orders_qty_pos"),
        ],
    )
    .await;
}

#[tokio::test]
async fn column_changes() {
    check_in_block(
        "locks_columns",
        &[
            case("ALTER TABLE orders ALTER COLUMN account_id SET NOT NULL"),
            case("ALTER TABLE orders ALTER COLUMN qty DROP NOT NULL"),
            case("ALTER TABLE orders ALTER COLUMN qty SET DEFAULT 1"),
            case("ALTER TABLE orders ALTER COLUMN qty DROP DEFAULT"),
            case("ALTER TABLE accounts ALTER COLUMN v TYPE varchar(20)"),
            case("ALTER TABLE accounts ALTER COLUMN v TYPE text"),
            case("ALTER TABLE accounts ALTER COLUMN login TYPE varchar"),
            case("ALTER TABLE accounts ALTER COLUMN n TYPE numeric(8,2)"),
            case("ALTER TABLE accounts ALTER COLUMN v TYPE varchar(5)"),
            case("ALTER TABLE accounts ALTER COLUMN i TYPE bigint"),
            case("ALTER TABLE accounts ALTER COLUMN i TYPE int USING i + 0"),
            case("ALTER TABLE orders RENAME TO purchase_orders"),
            case("ALTER TABLE orders RENAME COLUMN note TO remark"),
            case("ALTER TABLE orders RENAME CONSTRAINT orders_qty_pos TO orders_qty_positive"),
            case("ALTER TABLE orders DROP COLUMN note"),
            case("ALTER TABLE events_2 SET UNLOGGED"),
            case("ALTER TABLE scratch_unlogged SET LOGGED"),
            case("ALTER TABLE events ATTACH PARTITION events_2 FOR VALUES FROM (20) TO (30)"),
            case("ALTER TABLE events DETACH PARTITION events_1"),
            case(
                "ALTER TABLE orders ADD COLUMN z int, ALTER COLUMN qty SET NOT NULL, \
                 ADD CONSTRAINT f3 FOREIGN KEY (account_id) REFERENCES accounts NOT VALID",
            ),
            case("ALTER TABLE accounts ADD COLUMN z int, ALTER COLUMN i TYPE bigint"),
        ],
    )
    .await;
}

#[tokio::test]
async fn creates_and_dml() {
    check_in_block(
        "locks_creates_dml",
        &[
            case("CREATE TABLE refunds (id int PRIMARY KEY, order_id int REFERENCES orders (id))"),
            case("CREATE TABLE refunds (id int, account_id int, FOREIGN KEY (account_id) REFERENCES accounts)"),
            case("CREATE TABLE notes (id int, body text)"),
            case("CREATE TABLE events_3 PARTITION OF events FOR VALUES FROM (10) TO (20)"),
            case("CREATE TABLE inh_child (extra int) INHERITS (parent_inh)"),
            case("CREATE TABLE like_copy (LIKE accounts)"),
            case("CREATE VIEW order_view AS SELECT o.id, a.login FROM orders o JOIN accounts a ON a.id = o.account_id"),
            case("CREATE MATERIALIZED VIEW account_logins AS SELECT login FROM accounts"),
            case("INSERT INTO accounts (id, login) SELECT id + 100, note FROM orders"),
            case("UPDATE orders SET note = 'x' WHERE id = 1"),
            case("UPDATE accounts SET login = login"),
            case("DELETE FROM events_2"),
            case("SELECT * FROM orders JOIN accounts ON accounts.id = orders.account_id"),
            case("SELECT * FROM accounts WHERE id = 1 FOR UPDATE"),
            case("WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent"),
            case("COPY accounts TO '/dev/null'"),
            case("COPY scratch FROM '/dev/null'"),
            case("SELECT bump()"),
            case("DO $$BEGIN UPDATE orders SET qty = 2; END$$"),
        ],
    )
    .await;
}

/// `CREATE INDEX ... ON ONLY` builds nothing on a partitioned table (the
/// parent's index is INVALID, without storage, and no partition gets an
/// index) and builds the index as usual on a plain table. With the
/// server's catalog, the analysis separates the two cases.
#[tokio::test]
async fn on_only_index_builds_only_on_plain_table() {
    let db = common::TestDb::new("locks_on_only").await;
    db.exec(SCHEMA).await;
    let session = db.client().await;
    let catalog = server_columns(&session).await;
    let context = Context {
        version: PG15,
        column_types: Some(&catalog),
    };
    let parent = "CREATE INDEX events_k_idx ON ONLY events (k)";
    let plain = "CREATE INDEX scratch_id_idx ON ONLY scratch (id)";
    assert_eq!(
        analyze_in(&parse_one(parent), &context).effects[0].hold,
        Hold::Brief
    );
    assert_eq!(
        analyze_in(&parse_one(plain), &context).effects[0].hold,
        Hold::Scan
    );
    // Without a catalog, ON ONLY is taken as the partitioned case.
    assert_eq!(
        analyze(&parse_one(plain), PG15).effects[0].hold,
        Hold::Brief
    );

    session.batch_execute(parent).await.unwrap();
    session.batch_execute(plain).await.unwrap();
    let index = |name: &'static str| {
        let session = &session;
        async move {
            let row = session
                .query_one(
                    "SELECT i.indisvalid, c.relfilenode FROM pg_index i \
                     JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1",
                    &[&name],
                )
                .await
                .unwrap();
            (row.get::<_, bool>(0), row.get::<_, u32>(1))
        }
    };
    let (parent_valid, parent_storage) = index("events_k_idx").await;
    assert!(!parent_valid, "the parent's ON ONLY index is INVALID");
    assert_eq!(parent_storage, 0, "the parent's index has no storage");
    let partition_indexes: i64 = session
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'events_1'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(partition_indexes, 0, "ON ONLY built no partition index");
    let (plain_valid, plain_storage) = index("scratch_id_idx").await;
    assert!(plain_valid, "ON ONLY of a plain table builds a valid index");
    assert_ne!(plain_storage, 0, "the plain table's index has storage");
}

#[tokio::test]
async fn catalog_only() {
    check_in_block(
        "locks_catalog",
        &[
            case("ALTER TYPE mood ADD VALUE 'meh'"),
            case("COMMENT ON TABLE orders IS 'purchase orders'"),
            case("COMMENT ON COLUMN orders.note IS 'free text'"),
            case("GRANT SELECT ON orders TO PUBLIC"),
            case("SET lock_timeout = '1s'"),
            case("RESET lock_timeout"),
            case("CREATE FUNCTION f2() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
            case("ALTER INDEX orders_note_idx RENAME TO orders_remark_idx"),
        ],
    )
    .await;
}

#[tokio::test]
async fn policies_rules_and_storage_parameters() {
    check_in_block(
        "locks_policies",
        &[
            case("ALTER TABLE orders SET (fillfactor = 70)"),
            case("ALTER TABLE orders SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"),
            case("ALTER TABLE orders SET (user_catalog_table = true)"),
            case("ALTER TABLE orders SET (fillfactor = 70, user_catalog_table = true)"),
            case("ALTER TABLE orders RESET (fillfactor)"),
            case("CREATE POLICY orders_own ON orders USING (true)"),
            case("CREATE RULE orders_ignore AS ON INSERT TO orders DO INSTEAD NOTHING"),
        ],
    )
    .await;
}

/// A statement that cannot run in a transaction block, the session setup
/// that makes it wait, and the locks it does not name.
struct Waiting {
    sql: &'static str,
    blocker: &'static str,
    extra: &'static [(&'static str, LockMode)],
}

/// Runs a CONCURRENTLY or VACUUM statement while another session blocks it,
/// reads its locks (granted and awaited) from a third session, then lets
/// it finish and checks storage.
async fn check_waiting(tag: &str, case: Waiting) {
    let db = common::TestDb::new(tag).await;
    db.exec(SCHEMA).await;
    let analysis = analyze(&parse_one(case.sql), PG15);
    assert_eq!(
        analysis.transaction,
        TransactionUse::NotInBlock,
        "{}",
        case.sql
    );

    // The server rejects it inside a block, as the analysis says.
    let session = db.client().await;
    session.batch_execute("BEGIN").await.unwrap();
    let err = session.batch_execute(case.sql).await.unwrap_err();
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("25001"),
        "{}: {err:?}",
        case.sql
    );
    session.batch_execute("ROLLBACK").await.unwrap();

    let reader = db.client().await;
    let before = relations(&reader).await;
    let blocker = db.client().await;
    blocker.batch_execute(case.blocker).await.unwrap();
    let pid: i32 = session
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let sql = case.sql;
    let running = tokio::spawn(async move { session.batch_execute(sql).await });

    // Wait until the statement waits for a lock (a relation, a virtual xid
    // or a transaction id) held by the blocker.
    let mut polls = 0;
    loop {
        let waiting: i64 = reader
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        polls += 1;
        assert!(
            polls < 3000,
            "{sql} never waited behind the blocker: {}",
            case.blocker
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let now = relations(&reader).await;
    let locks = locks_of(&reader, pid, &[&before, &now]).await;
    blocker.batch_execute("COMMIT").await.unwrap();
    running
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{sql} failed: {e:?}"));

    compare_locks(sql, &analysis, &locks, case.extra);
    let after = relations(&reader).await;
    compare_storage(sql, &analysis, &before, &after, &[]);
}

const INSERTING: &str =
    "BEGIN; INSERT INTO scratch VALUES (1); INSERT INTO orders VALUES (10, 1, 'w', 1, 1)";
const READING: &str = "BEGIN; SELECT count(*) FROM orders";

#[tokio::test]
async fn create_index_concurrently() {
    let sql = "CREATE INDEX CONCURRENTLY orders_qty_idx ON orders (qty)";
    check_waiting(
        "locks_cic",
        Waiting {
            sql,
            blocker: INSERTING,
            extra: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn drop_index_concurrently() {
    let sql = "DROP INDEX CONCURRENTLY orders_note_idx";
    let extra = &[("orders", ShareUpdateExclusive)];
    check_waiting(
        "locks_dic",
        Waiting {
            sql,
            blocker: READING,
            extra,
        },
    )
    .await;
}

#[tokio::test]
async fn reindex_index_concurrently() {
    let sql = "REINDEX INDEX CONCURRENTLY orders_note_idx";
    let extra = &[("orders", ShareUpdateExclusive)];
    check_waiting(
        "locks_ric",
        Waiting {
            sql,
            blocker: INSERTING,
            extra,
        },
    )
    .await;
}

#[tokio::test]
async fn reindex_table_concurrently() {
    let sql = "REINDEX TABLE CONCURRENTLY orders";
    check_waiting(
        "locks_rtc",
        Waiting {
            sql,
            blocker: INSERTING,
            extra: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn detach_partition_concurrently() {
    // The partition lock is taken in the second of the statement's two
    // transactions; a reader of the partition makes it wait there.
    let sql = "ALTER TABLE events DETACH PARTITION events_1 CONCURRENTLY";
    let blocker = "BEGIN; LOCK TABLE events_1 IN ACCESS SHARE MODE";
    check_waiting(
        "locks_detach",
        Waiting {
            sql,
            blocker,
            extra: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn vacuum_waits_for_share_update_exclusive() {
    let blocker = "BEGIN; LOCK TABLE orders IN SHARE UPDATE EXCLUSIVE MODE";
    check_waiting(
        "locks_vacuum",
        Waiting {
            sql: "VACUUM orders",
            blocker,
            extra: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn vacuum_full_rewrites() {
    let sql = "VACUUM FULL orders";
    check_waiting(
        "locks_vacuum_full",
        Waiting {
            sql,
            blocker: READING,
            extra: &[],
        },
    )
    .await;
}

#[tokio::test]
async fn create_database_not_in_block() {
    let db = common::TestDb::new("locks_createdb").await;
    let analysis = analyze(&parse_one("CREATE DATABASE never_created"), PG15);
    assert_eq!(analysis.transaction, TransactionUse::NotInBlock);
    let session = db.client().await;
    session.batch_execute("BEGIN").await.unwrap();
    let err = session
        .batch_execute("CREATE DATABASE never_created")
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("25001"), "{err:?}");
}
