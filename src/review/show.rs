//! `glgate policy show FILE`: every rule as a readable, aligned table.
//!
//! (Writing to a `String` cannot fail, hence the `let _ = writeln!`.)

use std::fmt::Write as _;

use crate::canonical::Method;
use crate::policy::{ParamSpec, Policy, Rule};

/// Width of the left column of a rule's table.
const LABEL_WIDTH: usize = 17;

/// The whole listing, one table per rule in file order.
pub(crate) fn render(policy: &Policy) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "policy {} ({})",
        policy.name(),
        policy.source().display()
    );
    if let Some(description) = policy.description() {
        let _ = writeln!(out, "{}", one_line(description));
    }
    let _ = writeln!(
        out,
        "{} rules; a request no rule allows is refused.",
        policy.rules().len()
    );
    for rule in policy.rules() {
        out.push('\n');
        render_rule(&mut out, rule);
    }
    out
}

fn render_rule(out: &mut String, rule: &Rule) {
    let _ = writeln!(out, "{}", rule.id());
    let mut table = Table::default();
    if let Some(description) = rule.description() {
        table.row("description", vec![one_line(description)]);
    }
    table.row("methods", vec![methods(rule.methods())]);
    table.row(
        "paths",
        rule.templates()
            .iter()
            .map(|t| t.text().to_owned())
            .collect(),
    );
    if !rule.path_params().is_empty() {
        let width = name_width(rule.path_params().keys());
        let lines = rule
            .path_params()
            .iter()
            .map(|(name, spec)| format!("{name:<width$}  {}", spec.describe()))
            .collect();
        table.row("path_params", lines);
    }
    match rule.params() {
        None => table.row(
            "params",
            vec!["any query parameter; no body (read-only rule)".to_owned()],
        ),
        Some(params) if params.specs().is_empty() => {
            table.row("params", vec!["none accepted".to_owned()]);
        }
        Some(params) => {
            let width = name_width(params.specs().keys());
            let lines = params
                .specs()
                .iter()
                .map(|(name, spec)| {
                    let (presence, constraint) = describe_param(spec, spec.nullable());
                    format!("{name:<width$}  {presence:<8}  {constraint}")
                })
                .collect();
            table.row("params", lines);
        }
    }
    if rule.params().is_some() {
        table.row(
            "body",
            vec![format!(
                "JSON object or form, at most {} bytes",
                rule.max_body_bytes()
            )],
        );
    }
    if let Some(condition) = rule.owned_if() {
        table.row(
            "owned_if",
            vec![format!(
                "glgate reads the resource first; forwarded only if its {condition}"
            )],
        );
    }
    if let Some(condition) = rule.changes_only() {
        table.row(
            "changes_only",
            vec![format!(
                "glgate reads the resource first; `{}` may add or remove only {condition}",
                condition.field()
            )],
        );
    }
    if let Some(condition) = rule.response_filter() {
        table.row(
            "response_filter",
            vec![format!(
                "list items relayed only if their {condition} (X-Total dropped)"
            )],
        );
    }
    table.render(out);
}

/// `required`/`optional`, and the constraint in words (with `or null` when
/// JSON `null` is accepted).
pub(crate) fn describe_param(spec: &ParamSpec, nullable: bool) -> (&'static str, String) {
    let presence = if spec.required() {
        "required"
    } else {
        "optional"
    };
    let mut constraint = spec.describe();
    if nullable {
        constraint.push_str(", or null");
    }
    (presence, constraint)
}

/// The methods, with `HEAD` left out where `GET` implies it.
pub(crate) fn methods(methods: &[Method]) -> String {
    let shown: Vec<&str> = methods
        .iter()
        .filter(|m| **m != Method::Head || !methods.contains(&Method::Get))
        .map(|m| m.as_str())
        .collect();
    let mut text = shown.join(", ");
    if methods.contains(&Method::Get) {
        text.push_str(" (and HEAD)");
    }
    text
}

fn name_width<'a>(names: impl Iterator<Item = &'a String>) -> usize {
    names.map(|n| n.chars().count()).max().unwrap_or(0)
}

/// Folds a multi-line description (YAML `>` or `|`) onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A two-column table: a label, then one or more lines of values.
#[derive(Default)]
struct Table {
    rows: Vec<(&'static str, Vec<String>)>,
}

impl Table {
    fn row(&mut self, label: &'static str, lines: Vec<String>) {
        self.rows.push((label, lines));
    }

    fn render(&self, out: &mut String) {
        for (label, lines) in &self.rows {
            for (i, line) in lines.iter().enumerate() {
                let label = if i == 0 { *label } else { "" };
                let _ = writeln!(out, "  {label:<LABEL_WIDTH$}{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_folded_into_get() {
        assert_eq!(methods(&[Method::Get, Method::Head]), "GET (and HEAD)");
        assert_eq!(methods(&[Method::Head]), "HEAD");
        assert_eq!(methods(&[Method::Put, Method::Delete]), "PUT, DELETE");
    }

    #[test]
    fn renders_every_part_of_a_rule() {
        let policy = Policy::compile(
            std::path::Path::new("inline.yaml"),
            r#"version: 1
name: inline
rules:
  - id: labels.update
    description: >
      Rename
      a label.
    methods: [PUT]
    paths: ["/groups/{group}/labels/{label_id}"]
    path_params:
      label_id: { pattern: 'echoes/.+' }
    max_body_bytes: 100
    owned_if: { field: url, pattern: 'https://x/.*' }
    params:
      new_name: { pattern: 'echoes/.+', required: true, max_length: 9 }
  - id: hooks.list
    methods: [GET]
    paths: ["/projects/{project}/hooks"]
    response_filter: { field: url, pattern: 'https://x/.*' }
"#,
        )
        .unwrap();
        let text = render(&policy);
        for expected in [
            "policy inline (inline.yaml)\n",
            "labels.update\n",
            "  description      Rename a label.\n",
            "  methods          PUT\n",
            "  paths            /groups/{group}/labels/{label_id}\n",
            "  path_params      label_id  a value matching /echoes/.+/\n",
            "  params           new_name  required  a value matching /echoes/.+/ of at most 9 characters\n",
            "  body             JSON object or form, at most 100 bytes\n",
            "  owned_if         glgate reads the resource first; forwarded only if its url matching /https://x/.*/\n",
            "  methods          GET (and HEAD)\n",
            "  params           any query parameter; no body (read-only rule)\n",
            "  response_filter  list items relayed only if their url matching /https://x/.*/",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }
}
