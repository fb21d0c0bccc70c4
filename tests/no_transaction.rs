//! Files marked `-- pgshift:no-transaction`: each statement commits on its
//! own, and an explicit `BEGIN ... COMMIT` block stays one transaction.

use std::path::PathBuf;

use pgshift::locks::PgVersion;
use pgshift::plan::Migration;
use pgshift::rewrite::{plan_migration, StepKind};

const FILE: &str = "-- pgshift:no-transaction\n\
                    INSERT INTO t VALUES (1);\n\
                    BEGIN;\n\
                    INSERT INTO t VALUES (2);\n\
                    UPDATE t SET id = 3 WHERE id = 2;\n\
                    COMMIT;\n\
                    VACUUM t;\n";

#[test]
fn explicit_block_stays_one_step() {
    let migration = Migration {
        id: "2".to_string(),
        name: "dml".to_string(),
        path: PathBuf::from("V2__dml.sql"),
        autocommit: false,
        checksum: String::new(),
        sql: FILE.to_string(),
    };
    let steps = plan_migration(&migration, PgVersion::new(15, 0)).unwrap();

    let shape: Vec<(StepKind, Vec<usize>)> = steps
        .iter()
        .map(|s| {
            (
                s.kind.clone(),
                s.statements.iter().map(|st| st.line).collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (StepKind::Autocommit, vec![2]),
            (StepKind::Transaction, vec![4, 5]),
            (StepKind::Autocommit, vec![7]),
        ]
    );
}
