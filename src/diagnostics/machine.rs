//! Renderers for CI systems: SARIF 2.1.0, GitHub workflow commands and the
//! GitLab code quality report.
//!
//! Silenced findings appear in SARIF with an in-source suppression and are
//! left out of the GitHub and GitLab output, which have no such notion.

use std::io::{self, Write};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{describe_input_error, Diagnostic};
use crate::lint::LintReport;
use crate::rules::{self, Severity};

const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Returns the path as reports print it, with `/` separators. Only Windows
/// paths have `\\` separators; elsewhere it is a character of the name.
fn path_text(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    if cfg!(windows) {
        text.replace('\\', "/")
    } else {
        text.into_owned()
    }
}

/// Bytes that a SARIF URI reference percent-encodes: everything but RFC
/// 3986's unreserved characters, sub-delimiters, `:`, `@` and `/`.
const URI_ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/');

/// The path as a relative or absolute URI reference for SARIF, with the
/// bytes of each character that a URI cannot hold percent-encoded.
fn uri(path: &std::path::Path) -> String {
    let text = path_text(path);
    let encoded = percent_encoding::utf8_percent_encode(&text, URI_ENCODED).to_string();
    // A first segment with `:` would read as a scheme: `./` keeps it a path.
    match encoded.split('/').next() {
        Some(first) if first.contains(':') => format!("./{encoded}"),
        _ => encoded,
    }
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Writes one SARIF 2.1.0 log with one run. Every registered rule is listed
/// in the driver so `ruleIndex` is stable across runs.
pub fn render_sarif(report: &LintReport, items: &[Vec<u8>], out: &mut dyn Write) -> io::Result<()> {
    let driver_rules: Vec<Value> = rules::RULES
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "shortDescription": { "text": rule.summary },
                "help": { "text": rule.docs, "markdown": rule.docs },
                "defaultConfiguration": { "level": sarif_level(rule.severity) },
            })
        })
        .collect();
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|error| {
            let mut region = json!({});
            if let (Some(line), Some(column)) = (error.line, error.column) {
                region = json!({ "startLine": line, "startColumn": column });
            }
            json!({
                "level": "error",
                "message": { "text": describe_input_error(error) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&error.path) },
                        "region": region,
                    }
                }],
            })
        })
        .collect();
    // The log is written around the results, which come rendered from
    // `items`. The fields are in the sorted order that a
    // `serde_json::Value` object writes.
    let invocations = json!([{
        "executionSuccessful": report.errors.is_empty(),
        "toolExecutionNotifications": notifications,
    }]);
    let tool = json!({
        "driver": {
            "name": "pgshift",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": driver_rules,
        }
    });
    write!(out, "{{\"$schema\":")?;
    serde_json::to_writer(&mut *out, SARIF_SCHEMA)?;
    write!(out, ",\"runs\":[{{\"invocations\":")?;
    serde_json::to_writer(&mut *out, &invocations)?;
    write!(out, ",\"results\":[")?;
    super::write_items(super::Format::Sarif, items, out)?;
    write!(out, "],\"tool\":")?;
    serde_json::to_writer(&mut *out, &tool)?;
    writeln!(out, "}}],\"version\":\"2.1.0\"}}")
}

/// Builds the SARIF result of one finding.
pub(super) fn sarif_result(d: &Diagnostic) -> Value {
    let rule_index = rules::RULES.iter().position(|r| r.id == d.rule);
    let mut result = json!({
        "ruleId": d.rule,
        "level": sarif_level(d.severity),
        "message": { "text": format!("{} Fix: {}.", d.message, d.help) },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri(&d.path) },
                "region": {
                    "startLine": d.line,
                    "startColumn": d.column,
                    "endLine": d.end_line,
                    "endColumn": d.end_column,
                }
            }
        }],
        "properties": { "locks": d.locks },
    });
    if let Some(bytes) = d.locked_bytes {
        result["properties"]["lockedBytes"] = json!(bytes);
    }
    if let Some(index) = rule_index {
        result["ruleIndex"] = json!(index);
    }
    if let Some(suppressed) = &d.suppressed {
        let mut suppression = json!({ "kind": "inSource" });
        if let Some(reason) = &suppressed.reason {
            suppression["justification"] = json!(reason);
        }
        result["suppressions"] = json!([suppression]);
    }
    result
}

/// Escapes the message part of a workflow command.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Writes one GitHub Actions workflow command per finding, so the findings
/// show as annotations on the pull request.
pub fn render_github(
    report: &LintReport,
    items: &[Vec<u8>],
    out: &mut dyn Write,
) -> io::Result<()> {
    for error in &report.errors {
        let mut properties = format!("file={}", escape_property(&path_text(&error.path)));
        if let (Some(line), Some(column)) = (error.line, error.column) {
            properties.push_str(&format!(",line={line},col={column}"));
        }
        writeln!(
            out,
            "::error {properties},title=pgshift::{}",
            escape_data(&error.message)
        )?;
    }
    super::write_items(super::Format::Github, items, out)?;
    Ok(())
}

/// Writes the workflow command of one finding.
pub(super) fn write_github_command(d: &Diagnostic, out: &mut Vec<u8>) -> io::Result<()> {
    let command = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    };
    let mut message = d.message.clone();
    for lock in &d.locks {
        message.push_str(&format!("\nlock: {} on {}", lock.mode, lock.relation));
    }
    message.push_str(&format!("\nhelp: {}", d.help));
    writeln!(
        out,
        "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}",
        escape_property(&path_text(&d.path)),
        d.line,
        d.column,
        d.end_line,
        d.end_column,
        escape_property(&format!("pgshift {}", d.rule)),
        escape_data(&message)
    )
}

fn gitlab_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "critical",
        Severity::Warning => "major",
        Severity::Info => "info",
    }
}

/// Writes a GitLab code quality report: a JSON array of issues, each with a
/// fingerprint that stays the same while the finding does.
pub fn render_gitlab(
    report: &LintReport,
    items: &[Vec<u8>],
    out: &mut dyn Write,
) -> io::Result<()> {
    write!(out, "[")?;
    for (i, error) in report.errors.iter().enumerate() {
        if i > 0 {
            write!(out, ",")?;
        }
        let path = path_text(&error.path);
        // Errors with a position come from parsing; the others from reading
        // the path.
        let check = if error.line.is_some() {
            "syntax-error"
        } else {
            "read-error"
        };
        serde_json::to_writer(
            &mut *out,
            &json!({
                "description": describe_input_error(error),
                "check_name": check,
                "fingerprint": fingerprint(&[check, &path, &error.message]),
                "severity": "blocker",
                "location": { "path": path, "lines": { "begin": error.line.unwrap_or(1) } },
            }),
        )?;
    }
    if !report.errors.is_empty() && items.iter().any(|item| !item.is_empty()) {
        write!(out, ",")?;
    }
    super::write_items(super::Format::Gitlab, items, out)?;
    writeln!(out, "]")
}

/// Builds the code quality issue of one finding.
pub(super) fn gitlab_issue(d: &Diagnostic) -> Value {
    let path = path_text(&d.path);
    let line = d.line.to_string();
    json!({
        "description": format!("{} Fix: {}.", d.message, d.help),
        "check_name": d.rule,
        "fingerprint": fingerprint(&[&d.rule, &path, &line, &d.message]),
        "severity": gitlab_severity(d.severity),
        "location": {
            "path": path,
            "lines": { "begin": d.line, "end": d.end_line },
        },
    })
}

fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}
