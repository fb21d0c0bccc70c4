//! `view-with-select-star`: a view defined with SELECT * freezes its column list at creation.

use super::{Check, Checker, Rule, Severity, Violation};
use pg_query::NodeEnum;

pub static RULE: Rule = Rule {
    id: "view-with-select-star",
    summary: "A view defined with SELECT * freezes its column list at creation",
    docs: DOCS,
    severity: Severity::Warning,
    check: Checker::Statement(check),
};

const DOCS: &str = r#"## What it flags

`CREATE VIEW` or `CREATE MATERIALIZED VIEW` whose query uses `*` in its select list.

## Why it hurts

PostgreSQL expands `*` when the view is created. Columns added to the
table later do not appear in the view, and the view blocks `DROP COLUMN`
and type changes on every column it captured, so later migrations fail
with SQLSTATE 2BP01.

## Lock taken

ACCESS SHARE on the tables the view reads.

## Safe alternative

List the columns the view needs explicitly.

## Example

```sql
-- flagged
CREATE VIEW active_tokens AS SELECT * FROM access_tokens WHERE revoked_at IS NULL;
-- safe
CREATE VIEW active_tokens AS SELECT id, subject, expires_at FROM access_tokens WHERE revoked_at IS NULL;
```
"#;

fn check(check: &Check<'_>) -> Option<Violation> {
    let query = match &check.statement.node {
        NodeEnum::ViewStmt(view) => view.query.as_deref(),
        NodeEnum::CreateTableAsStmt(create) => create.query.as_deref(),
        _ => None,
    }?;
    let Some(NodeEnum::SelectStmt(select)) = &query.node else {
        return None;
    };
    let star = select.target_list.iter().any(|target| {
        let Some(NodeEnum::ResTarget(target)) = &target.node else {
            return false;
        };
        let Some(NodeEnum::ColumnRef(column)) = target.val.as_deref().and_then(|v| v.node.as_ref())
        else {
            return false;
        };
        column
            .fields
            .iter()
            .any(|f| matches!(f.node, Some(NodeEnum::AStar(_))))
    });
    if !star {
        return None;
    }
    Some(Violation::new(
        "the view's column list is fixed when it is created: columns added later are missing \
         and the captured columns can no longer be dropped or retyped"
            .to_string(),
        "list the view's columns explicitly",
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "view-with-select-star";

    #[test]
    fn flags_star_views() {
        let sql = "CREATE VIEW v AS SELECT * FROM t;\nCREATE VIEW w AS SELECT t.* FROM t;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![1, 2]);
    }

    #[test]
    fn accepts_column_lists() {
        assert!(flagged_lines(
            RULE,
            "CREATE VIEW v AS SELECT a, count(*) FROM t GROUP BY a;"
        )
        .is_empty());
    }
}
