//! `column-type-change-rewrites`: ALTER COLUMN ... TYPE that rewrites the table under ACCESS EXCLUSIVE.

use super::{Check, Checker, Rule, Severity, Violation};

pub static RULE: Rule = Rule {
    id: "column-type-change-rewrites",
    summary: "ALTER COLUMN ... TYPE that rewrites the table under ACCESS EXCLUSIVE",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`ALTER TABLE ... ALTER COLUMN ... TYPE` on a table the file did not
create, unless the change is known not to rewrite: widening a `varchar`,
`varchar` to `text`, `text` to unbounded `varchar`, raising a `numeric`
precision at the same scale. The old type comes from an earlier statement
of the file or, with `--database-url`, from the catalog; when it is unknown
the change is assumed to rewrite. A `USING` clause always rewrites.

## Why it hurts

A rewrite copies the table and rebuilds every index while ACCESS
EXCLUSIVE is held, so reads and writes wait for all of it.

## Lock taken

ACCESS EXCLUSIVE on the table for a full rewrite (catalog-only for the
binary-coercible changes above).

## Safe alternative

Add a new column of the new type, keep both in sync with a trigger,
backfill in batches, switch readers, then drop the old column.

## Example

```sql
-- flagged
ALTER TABLE orders ALTER COLUMN qty TYPE bigint;
-- not flagged when orders.note is varchar(20)
ALTER TABLE orders ALTER COLUMN note TYPE varchar(40);
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    // Only the type change's own hold counts, not that of another
    // subcommand of the same statement (an added serial column, say).
    if !check.analysis.type_change_rewrites || check.target_is_new() {
        return None;
    }
    let table = check.analysis.effects.first()?;
    let locks = check.existing_locks();
    Some(Violation::new(
        format!(
            "the type change rewrites {} and rebuilds its indexes while holding {}, which \
             blocks {}{}",
            super::qualified(&table.relation),
            super::describe_locks(&locks),
            super::describe_blocked(&locks),
            if check.analysis.type_change_assumed {
                " (assumed because the old type is not known)"
            } else {
                ""
            }
        ),
        "add a column of the new type, backfill it in batches and switch over, or pass \
         --database-url so binary-coercible changes are recognised",
        locks,
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "column-type-change-rewrites";

    #[test]
    fn flags_unknown_and_rewriting_changes() {
        let sql = "ALTER TABLE o ALTER COLUMN q TYPE bigint;";
        assert_eq!(flagged_lines(RULE, sql), vec![1]);
    }

    #[test]
    fn only_the_type_change_hold_counts() {
        // Statement 3's added serial column rewrites the table, its type
        // change does not; statement 4's type change rewrites.
        let sql = "CREATE TABLE o (n varchar(20));\nCOMMIT;\n\
                   ALTER TABLE o ADD COLUMN s bigserial, ALTER COLUMN n TYPE varchar(40);\n\
                   ALTER TABLE o ALTER COLUMN n TYPE int;\n";
        let file = analyze_on(sql, pg(15, 0), true);
        assert_eq!(
            file.analyses[2].effects[0].hold,
            crate::locks::Hold::Rewrite
        );
        assert!(!file.analyses[2].type_change_rewrites);
        assert!(file.analyses[3].type_change_rewrites);
        assert!(
            !file.analyses[3].type_change_assumed,
            "both types are known"
        );
    }

    #[test]
    fn says_when_the_rewrite_is_assumed() {
        let sql = "ALTER TABLE o ALTER COLUMN q TYPE bigint;";
        let file = analyze_on(sql, pg(15, 0), true);
        assert!(file.analyses[0].type_change_assumed);
    }

    #[test]
    fn accepts_binary_coercible_change_of_declared_column() {
        let sql = "CREATE TABLE o (n varchar(20), p numeric(10,2));\nCOMMIT;\n\
                   ALTER TABLE o ALTER COLUMN n TYPE varchar(40);\n\
                   ALTER TABLE o ALTER COLUMN n TYPE text;\n\
                   ALTER TABLE o ALTER COLUMN p TYPE numeric(12,2);\n";
        let file = analyze_on(sql, pg(15, 0), true);
        // The table is new, so the rule would skip it anyway: check the hold.
        for i in [2, 3, 4] {
            assert_eq!(
                file.analyses[i].effects[0].hold,
                crate::locks::Hold::Brief,
                "{i}"
            );
        }
    }
}
