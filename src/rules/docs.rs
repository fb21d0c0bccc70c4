//! Rule documentation for `pgshift explain`, `pgshift rules --markdown`
//! and `docs/rules.md`, all generated from the rule modules.

use super::{Rule, RULES};

/// The documentation of one rule as Markdown, headed by its id.
pub fn explain(rule: &Rule) -> String {
    format!(
        "# {}\n\n{}\n\nSeverity: {}.\n\n{}",
        rule.id,
        rule.summary,
        rule.severity.name(),
        rule.docs
            .replace("\n## ", "\n### ")
            .replacen("## ", "### ", 1)
    )
}

/// The whole rule reference, as committed in `docs/rules.md`.
pub fn markdown() -> String {
    let mut text = String::from(
        "# Lint rules\n\n\
         Generated from the rule modules in `src/rules/` by `pgshift rules --markdown`; \
         do not edit by hand. `tests/lint_docs.rs` fails when this file is stale \
         (regenerate with `PGSHIFT_REGENERATE_DOCS=1 cargo test --test lint_docs`).\n\n\
         | Rule | Severity | Flags |\n|---|---|---|\n",
    );
    for rule in RULES {
        text.push_str(&format!(
            "| [`{}`](#{}) | {} | {} |\n",
            rule.id,
            rule.id,
            rule.severity.name(),
            rule.summary
        ));
    }
    for rule in RULES {
        text.push('\n');
        text.push_str(
            &explain(rule)
                .replacen("# ", "## ", 1)
                .replace("\n### ", "\n#### ")
                .replacen("### ", "#### ", 1),
        );
    }
    text
}
