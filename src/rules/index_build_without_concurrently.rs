//! `index-build-without-concurrently`: a plain `CREATE INDEX` on an existing
//! table.

use pg_query::NodeEnum;

use super::{describe_blocked, describe_locks, Check, Checker, Rule, Severity, Violation};
use crate::analysis::contains_relation;
use crate::locks::{Hold, RelationName};

pub static RULE: Rule = Rule {
    id: "index-build-without-concurrently",
    summary: "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`CREATE INDEX` or `CREATE UNIQUE INDEX` without `CONCURRENTLY` on a table
that the same migration did not create.

`CREATE INDEX ... ON ONLY parent` of a partitioned table is not flagged:
it creates the parent's index INVALID without building anything, and the
partitions' indexes are built and attached on their own. It is flagged
when the migration or the catalog (`--database-url`) shows that the table
is not partitioned, because there ONLY changes nothing and the index is
built. Without either, pgshift takes ON ONLY as the partitioned case.

## Why it hurts

The build reads the whole table and sorts it while holding its lock, so on a
large table every `INSERT`, `UPDATE` and `DELETE` waits for minutes.

## Lock taken

SHARE on the table for the whole build: reads go on, writes wait.

## Safe alternative

`CREATE INDEX CONCURRENTLY`, which takes SHARE UPDATE EXCLUSIVE and lets
writes continue. It cannot run inside a transaction block, and a failed build
leaves an INVALID index that must be dropped before a retry. `pgshift apply`
rewrites the statement, runs it as its own step and handles the leftover.
An index on a table created earlier in the same migration is not flagged:
the table is empty, so the plain build is instant.

## Example

```sql
-- flagged
CREATE INDEX orders_status_idx ON orders (status);
-- safe
CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let NodeEnum::IndexStmt(index) = &check.statement.node else {
        return None;
    };
    if index.concurrent {
        return None;
    }
    let range = index.relation.as_ref()?;
    let table = RelationName {
        schema: (!range.schemaname.is_empty()).then(|| range.schemaname.clone()),
        name: range.relname.clone(),
    };
    if contains_relation(&check.context.created_in_file, &table) {
        return None;
    }
    // `ON ONLY` of a partitioned table builds nothing; the lock analysis
    // decides whether the table is one.
    if !range.inh && check.analysis.effects.iter().all(|e| e.hold == Hold::Brief) {
        return None;
    }
    let locks = check.analysis.effects.clone();
    Some(Violation {
        message: format!(
            "CREATE INDEX takes {} for the whole build, which blocks {}",
            describe_locks(&locks),
            describe_blocked(&locks)
        ),
        help: "build the index with CREATE INDEX CONCURRENTLY outside a transaction block \
               (pgshift apply does this)"
            .to_string(),
        locks,
        span: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::locks::Hold;
    use crate::rules::test_support::{analyze_on, flagged_lines, pg};

    #[test]
    fn flags_plain_build_on_existing_table() {
        let sql = "CREATE INDEX a_idx ON a (x);\nCREATE UNIQUE INDEX b_idx ON b (y);\n";
        assert_eq!(
            flagged_lines("index-build-without-concurrently", sql),
            vec![1, 2]
        );
    }

    #[test]
    fn accepts_concurrent_build() {
        let sql = "CREATE INDEX CONCURRENTLY a_idx ON a (x);";
        assert!(flagged_lines("index-build-without-concurrently", sql).is_empty());
    }

    #[test]
    fn accepts_build_on_table_created_in_file() {
        let sql = "CREATE TABLE w (id int);\nCREATE INDEX w_idx ON w (id);\n";
        assert!(flagged_lines("index-build-without-concurrently", sql).is_empty());
    }

    #[test]
    fn schema_qualified_table_created_in_file() {
        let sql = "CREATE TABLE app.w (id int);\nCREATE INDEX w_idx ON app.w (id);\n\
                   CREATE INDEX o_idx ON other.w (id);\n";
        assert_eq!(
            flagged_lines("index-build-without-concurrently", sql),
            vec![3]
        );
    }

    #[test]
    fn accepts_on_only_of_partitioned_parent() {
        let sql = "CREATE INDEX p_idx ON ONLY p (at);\n";
        assert!(flagged_lines("index-build-without-concurrently", sql).is_empty());
    }

    #[test]
    fn on_only_builds_on_table_known_unpartitioned() {
        // The rule skips tables the file created, so this checks the hold
        // that the rule reads.
        let sql = "CREATE TABLE r (id int);\nCREATE INDEX r_idx ON ONLY r (id);\n\
                   CREATE TABLE p (at date) PARTITION BY RANGE (at);\n\
                   CREATE INDEX p_idx ON ONLY p (at);\n";
        let file = analyze_on(sql, pg(15, 0), true);
        assert_eq!(file.analyses[1].effects[0].hold, Hold::Scan);
        assert_eq!(file.analyses[3].effects[0].hold, Hold::Brief);
    }
}
