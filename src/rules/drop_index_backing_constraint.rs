//! `drop-index-backing-constraint`: DROP INDEX of an index that backs a UNIQUE or PRIMARY KEY constraint fails.

use std::collections::HashMap;

use super::{Check, Checker, FilePass, Finding, Rule, Severity, Violation};
use pg_query::protobuf::ConstrType;
use pg_query::NodeEnum;

pub static RULE: Rule = Rule {
    id: "drop-index-backing-constraint",
    summary: "DROP INDEX of an index that backs a UNIQUE or PRIMARY KEY constraint fails",
    docs: DOCS,
    severity: Severity::Error,
    check: Checker::File(pass),
};

const DOCS: &str = r#"## What it flags

`DROP INDEX` of an index that a constraint owns: one created by `ADD
CONSTRAINT ... UNIQUE` or `PRIMARY KEY` (the index carries the constraint's
name), or attached with `USING INDEX` (which renames it to the constraint's
name), earlier in the file, or one that the database's catalog lists as
backing a constraint when lint runs with `--database-url`.

## Why it hurts

The server rejects the drop (SQLSTATE 2BP01, "cannot drop index ...
because constraint ... requires it"), and `DROP INDEX CONCURRENTLY` is
rejected the same way, so the migration fails. Dropping the constraint
drops its index.

## Lock taken

None: the statement fails. `ALTER TABLE ... DROP CONSTRAINT` takes ACCESS EXCLUSIVE on the table, brief.

## Safe alternative

`ALTER TABLE ... DROP CONSTRAINT`, which drops the index with it. To replace the index, build the new one concurrently first and swap constraints.

## Example

```sql
-- flagged
ALTER TABLE accounts ADD CONSTRAINT accounts_handle_key UNIQUE USING INDEX accounts_handle_idx;
DROP INDEX accounts_handle_key;
-- safe
ALTER TABLE accounts DROP CONSTRAINT accounts_handle_key;
```
"#;

fn pass() -> Box<dyn FilePass> {
    Box::new(KeyConstraints::default())
}

/// The UNIQUE and PRIMARY KEY constraints added so far: constraint name to
/// the table and the 1-based line that added it.
#[derive(Default)]
struct KeyConstraints {
    constraints: HashMap<String, (String, usize)>,
}

impl FilePass for KeyConstraints {
    fn statement(&mut self, check: &Check<'_>, found: &mut Vec<Finding>) {
        let (statement, analysis) = (check.statement, check.analysis);
        if analysis.kind == "drop-index" && matches!(statement.node, NodeEnum::DropStmt(_)) {
            let constraints = &self.constraints;
            let backing = analysis.effects.iter().find_map(|effect| {
                constraints
                    .get(&effect.relation.name)
                    .map(|(table, line)| (&effect.relation, table, *line))
            });
            let in_catalog = || {
                let catalog = check.catalog?;
                analysis
                    .effects
                    .iter()
                    .map(|effect| &effect.relation)
                    .find(|index| catalog.backs_constraint(index))
            };
            if backing.is_none() {
                if let Some(index) = in_catalog() {
                    found.push(Finding {
                        statement: None,
                        violation: Violation {
                            message: format!(
                                "index {} backs a constraint in the database's catalog; the \
                                 server rejects the drop with SQLSTATE 2BP01",
                                super::qualified(index),
                            ),
                            help: "drop the constraint that owns the index instead: ALTER \
                                   TABLE ... DROP CONSTRAINT"
                                .to_string(),
                            locks: analysis.effects.clone(),
                            span: Some(statement.span.clone()),
                        },
                    });
                }
            }
            if let Some((index, table, line)) = backing {
                let constraint = &index.name;
                found.push(Finding {
                    statement: None,
                    violation: Violation {
                        message: format!(
                            "index {} backs constraint {constraint} on {table} (line {line}); \
                             the server rejects the drop with SQLSTATE 2BP01",
                            super::qualified(index),
                        ),
                        help: format!(
                            "drop the constraint instead: ALTER TABLE {table} DROP CONSTRAINT \
                             {constraint}"
                        ),
                        locks: analysis.effects.clone(),
                        span: Some(statement.span.clone()),
                    },
                });
            }
        }
        for (table, constraint) in key_constraints(&statement.node) {
            self.constraints.insert(constraint, (table, statement.line));
        }
    }
}

fn key_constraints(node: &NodeEnum) -> Vec<(String, String)> {
    let NodeEnum::AlterTableStmt(alter) = node else {
        return Vec::new();
    };
    let Some(table) = &alter.relation else {
        return Vec::new();
    };
    alter
        .cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => match cmd.def.as_ref()?.node.as_ref()? {
                NodeEnum::Constraint(c)
                    if !c.conname.is_empty()
                        && (c.contype == ConstrType::ConstrUnique as i32
                            || c.contype == ConstrType::ConstrPrimary as i32) =>
                {
                    Some((table.relname.clone(), c.conname.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;

    const RULE: &str = "drop-index-backing-constraint";

    #[test]
    fn flags_drop_of_constraint_index() {
        let sql = "ALTER TABLE a ADD CONSTRAINT k UNIQUE USING INDEX i;\nDROP INDEX k;\n";
        assert_eq!(flagged_lines(RULE, sql), vec![2]);
    }

    #[test]
    fn accepts_other_indexes() {
        let sql = "ALTER TABLE a ADD CONSTRAINT k UNIQUE USING INDEX i;\nDROP INDEX other;\n";
        assert!(flagged_lines(RULE, sql).is_empty());
    }
}
