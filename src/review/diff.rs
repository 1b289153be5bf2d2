//! `glgate policy diff OLD NEW`: what becomes allowed, what becomes refused,
//! and how the constraints change, by (method, path template).
//!
//! Requests are compared by the template that would match them, so a change
//! is reported where GitLab's routes are: `+ PUT /projects/{project}/…` is a
//! route the new policy opens, `- DELETE …` one it closes, and `~` a route
//! both allow whose rule, parameters, body limit or conditions differ.
//! Descriptions are not compared: they change nothing that is allowed.
//!
//! (Writing to a `String` cannot fail, hence the `let _ = writeln!`.)

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::show::describe_param;
use crate::canonical::Method;
use crate::policy::{Check, FieldMatch, ParamSpec, Policy, Rule};

/// One route: a method on a path template.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Route {
    /// The template as written, e.g. `/projects/{project}/hooks`.
    pub template: String,
    /// The method.
    pub method: Method,
}

/// What changed on one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Only the new policy allows it.
    Allowed {
        /// The route.
        route: Route,
        /// The new rule that allows it.
        rule: String,
    },
    /// Only the old policy allows it.
    Refused {
        /// The route.
        route: Route,
        /// The old rule that allowed it.
        rule: String,
    },
    /// Both allow it, differently.
    Changed {
        /// The route.
        route: Route,
        /// The old rule.
        old_rule: String,
        /// The new rule.
        new_rule: String,
        /// What differs, one line each (`+ param x: …`, `~ max_body_bytes: …`).
        details: Vec<String>,
    },
}

/// All the changes between two policies, in a deterministic order: newly
/// allowed routes, then newly refused ones, then changed ones, each sorted by
/// template and method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PolicyDiff {
    /// The changes.
    pub changes: Vec<Change>,
}

impl PolicyDiff {
    /// Whether the two policies allow exactly the same.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The report, `diff`-style.
    pub(crate) fn render(&self, old: &Policy, new: &Policy) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "--- {} (policy {})",
            old.source().display(),
            old.name()
        );
        let _ = writeln!(
            out,
            "+++ {} (policy {})",
            new.source().display(),
            new.name()
        );
        if self.is_empty() {
            out.push_str("no difference in what the two policies allow\n");
            return out;
        }
        let (mut allowed, mut refused, mut changed) = (0, 0, 0);
        for change in &self.changes {
            match change {
                Change::Allowed { route, rule } => {
                    allowed += 1;
                    let _ = writeln!(out, "+ {} {}  (rule {rule})", route.method, route.template);
                }
                Change::Refused { route, rule } => {
                    refused += 1;
                    let _ = writeln!(out, "- {} {}  (rule {rule})", route.method, route.template);
                }
                Change::Changed {
                    route,
                    old_rule,
                    new_rule,
                    details,
                } => {
                    changed += 1;
                    let rule = if old_rule == new_rule {
                        old_rule.clone()
                    } else {
                        format!("{old_rule} → {new_rule}")
                    };
                    let _ = writeln!(out, "~ {} {}  (rule {rule})", route.method, route.template);
                    for detail in details {
                        let _ = writeln!(out, "    {detail}");
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "{allowed} newly allowed, {refused} no longer allowed, {changed} changed"
        );
        out
    }
}

/// Compares what `old` and `new` allow.
pub(crate) fn compare(old: &Policy, new: &Policy) -> PolicyDiff {
    let old_routes = routes(old);
    let new_routes = routes(new);
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    let mut changed = Vec::new();
    for (route, new_rule) in &new_routes {
        match old_routes.get(route) {
            None => allowed.push(Change::Allowed {
                route: route.clone(),
                rule: new_rule.id().to_owned(),
            }),
            Some(old_rule) => {
                let old_side = Side { rule: old_rule };
                let new_side = Side { rule: new_rule };
                let details = rule_changes(&route.template, &old_side, &new_side);
                if !details.is_empty() || old_rule.id() != new_rule.id() {
                    changed.push(Change::Changed {
                        route: route.clone(),
                        old_rule: old_rule.id().to_owned(),
                        new_rule: new_rule.id().to_owned(),
                        details,
                    });
                }
            }
        }
    }
    for (route, old_rule) in &old_routes {
        if !new_routes.contains_key(route) {
            refused.push(Change::Refused {
                route: route.clone(),
                rule: old_rule.id().to_owned(),
            });
        }
    }
    let mut changes = allowed;
    changes.append(&mut refused);
    changes.append(&mut changed);
    PolicyDiff { changes }
}

/// Every (template, method) a policy allows, with the rule that allows it.
/// `HEAD` is left out where the same rule allows `GET` (it always comes with it).
fn routes(policy: &Policy) -> BTreeMap<Route, &Rule> {
    let mut routes = BTreeMap::new();
    for rule in policy.rules() {
        let get = rule.methods().contains(&Method::Get);
        for template in rule.templates() {
            for method in rule.methods() {
                if *method == Method::Head && get {
                    continue;
                }
                routes.insert(
                    Route {
                        template: template.text().to_owned(),
                        method: *method,
                    },
                    rule,
                );
            }
        }
    }
    routes
}

struct Side<'a> {
    rule: &'a Rule,
}

impl Side<'_> {
    fn nullable(&self, param: &str) -> bool {
        self.rule
            .params()
            .and_then(|params| params.specs().get(param))
            .is_some_and(|spec| spec.nullable())
    }
}

/// What differs between two rules on one template.
fn rule_changes(template: &str, old: &Side<'_>, new: &Side<'_>) -> Vec<String> {
    let mut details = Vec::new();
    path_param_changes(template, old.rule, new.rule, &mut details);
    match (old.rule.params(), new.rule.params()) {
        (None, None) => {}
        (None, Some(params)) => details.push(format!(
            "~ params: any query parameter, no body → {}",
            names(params.specs().keys())
        )),
        (Some(params), None) => details.push(format!(
            "~ params: {} → any query parameter, no body",
            names(params.specs().keys())
        )),
        (Some(old_params), Some(new_params)) => {
            let all: BTreeSet<&String> = old_params
                .specs()
                .keys()
                .chain(new_params.specs().keys())
                .collect();
            for name in all {
                match (old_params.specs().get(name), new_params.specs().get(name)) {
                    (None, Some(spec)) => {
                        let (presence, constraint) = describe_param(spec, new.nullable(name));
                        details.push(format!("+ param {name}: {presence}, {constraint}"));
                    }
                    (Some(spec), None) => {
                        let (presence, constraint) = describe_param(spec, old.nullable(name));
                        details.push(format!("- param {name} (was {presence}, {constraint})"));
                    }
                    (Some(before), Some(after)) => spec_changes(
                        &format!("param {name}"),
                        (before, old.nullable(name)),
                        (after, new.nullable(name)),
                        &mut details,
                    ),
                    (None, None) => {}
                }
            }
            if old.rule.max_body_bytes() != new.rule.max_body_bytes() {
                details.push(format!(
                    "~ max_body_bytes: {} → {}",
                    old.rule.max_body_bytes(),
                    new.rule.max_body_bytes()
                ));
            }
        }
    }
    condition_changes(
        "owned_if",
        old.rule.owned_if(),
        new.rule.owned_if(),
        &mut details,
    );
    condition_changes(
        "changes_only",
        old.rule.changes_only(),
        new.rule.changes_only(),
        &mut details,
    );
    condition_changes(
        "response_filter",
        old.rule.response_filter(),
        new.rule.response_filter(),
        &mut details,
    );
    details
}

/// Constraints on the path params of `template` (other params of the rule
/// belong to its other templates).
fn path_param_changes(template: &str, old: &Rule, new: &Rule, details: &mut Vec<String>) {
    let Some(names) = new
        .templates()
        .iter()
        .find(|t| t.text() == template)
        .map(|t| t.param_names().map(str::to_owned).collect::<Vec<_>>())
    else {
        return;
    };
    for name in names {
        match (old.path_params().get(&name), new.path_params().get(&name)) {
            (None, None) => {}
            (None, Some(spec)) => details.push(format!(
                "+ path param {name}: {} (was any {{{name}}})",
                spec.describe()
            )),
            (Some(spec), None) => details.push(format!(
                "- path param {name}: any {{{name}}} (was {})",
                spec.describe()
            )),
            (Some(before), Some(after)) => spec_changes(
                &format!("path param {name}"),
                (before, false),
                (after, false),
                details,
            ),
        }
    }
}

fn spec_changes(
    what: &str,
    (old, old_nullable): (&ParamSpec, bool),
    (new, new_nullable): (&ParamSpec, bool),
    details: &mut Vec<String>,
) {
    if constraint_key(old) != constraint_key(new) {
        details.push(format!("~ {what}: {} → {}", old.describe(), new.describe()));
    }
    if old.required() != new.required() {
        let word = |required: bool| if required { "required" } else { "optional" };
        details.push(format!(
            "~ {what}: {} → {}",
            word(old.required()),
            word(new.required())
        ));
    }
    if old_nullable != new_nullable {
        let word = |nullable: bool| {
            if nullable {
                "null accepted"
            } else {
                "null refused"
            }
        };
        details.push(format!(
            "~ {what}: {} → {}",
            word(old_nullable),
            word(new_nullable)
        ));
    }
}

/// What a constraint accepts, as comparable text: its description (which
/// holds the pattern as written, the length cap and the list flag), plus the
/// exact values of an enum (a value may itself hold ", ").
fn constraint_key(spec: &ParamSpec) -> String {
    match spec.check() {
        Check::OneOf(values) => format!("{} {values:?}", spec.describe()),
        _ => spec.describe(),
    }
}

fn condition_changes(
    what: &str,
    old: Option<&FieldMatch>,
    new: Option<&FieldMatch>,
    details: &mut Vec<String>,
) {
    match (old, new) {
        (None, Some(condition)) => details.push(format!("+ {what}: {condition}")),
        (Some(condition), None) => details.push(format!("- {what}: {condition}")),
        (Some(before), Some(after)) if before != after => {
            details.push(format!("~ {what}: {before} → {after}"));
        }
        _ => {}
    }
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "no parameter accepted".to_owned()
    } else {
        format!("only {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &str) -> Policy {
        Policy::compile(
            std::path::Path::new("p.yaml"),
            &format!("version: 1\nname: p\nrules:\n{rules}"),
        )
        .unwrap()
    }

    const BASE: &str = r#"  - id: mr.read
    methods: [GET]
    paths: ["/projects/{project}/merge_requests/{iid}"]
  - id: mr.labels
    methods: [PUT]
    paths: ["/projects/{project}/merge_requests/{iid}"]
    params:
      add_labels: { pattern: 'echoes/.+', list: true }
  - id: labels.delete
    methods: [DELETE]
    paths: ["/groups/{group}/labels/{label_id}"]
    path_params:
      label_id: { pattern: 'echoes/.+' }
    params: {}
"#;

    #[test]
    fn identical_policies_have_no_diff() {
        assert!(compare(&policy(BASE), &policy(BASE)).is_empty());
    }

    #[test]
    fn routes_params_and_conditions() {
        let new = BASE
            .replace("methods: [GET]", "methods: [GET, POST]\n    params: {}")
            .replace(
                "add_labels: { pattern: 'echoes/.+', list: true }",
                "add_labels: { pattern: 'echoes/[^,]+', list: true, required: true }\n      title: { type: any }",
            )
            .replace(
                "label_id: { pattern: 'echoes/.+' }\n    params: {}",
                "label_id: { pattern: 'x/.+' }\n    params: {}\n    max_body_bytes: 10\n    owned_if: { field: name, pattern: 'x/.*' }",
            );
        let diff = compare(&policy(BASE), &policy(&new));
        let text = diff.render(&policy(BASE), &policy(&new));
        for expected in [
            "+ POST /projects/{project}/merge_requests/{iid}  (rule mr.read)\n",
            "~ GET /projects/{project}/merge_requests/{iid}  (rule mr.read)\n    ~ params: any query parameter, no body → no parameter accepted\n",
            "~ PUT /projects/{project}/merge_requests/{iid}  (rule mr.labels)\n",
            "    ~ param add_labels: a value matching /echoes/.+/ (or a list of them) → a value matching /echoes/[^,]+/ (or a list of them)\n",
            "    ~ param add_labels: optional → required\n",
            "    + param title: optional, any value\n",
            "~ DELETE /groups/{group}/labels/{label_id}  (rule labels.delete)\n",
            "    ~ path param label_id: a value matching /echoes/.+/ → a value matching /x/.+/\n",
            "    ~ max_body_bytes: 65536 → 10\n",
            "    + owned_if: name matching /x/.*/\n",
            "1 newly allowed, 0 no longer allowed, 3 changed\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        let back = compare(&policy(&new), &policy(BASE));
        let text = back.render(&policy(&new), &policy(BASE));
        assert!(
            text.contains("- POST /projects/{project}/merge_requests/{iid}  (rule mr.read)\n"),
            "{text}"
        );
        assert!(text.contains("    - param title (was optional, any value)\n"));
        assert!(text.contains("    - owned_if: name matching /x/.*/\n"));
    }

    #[test]
    fn a_route_moving_to_another_rule_is_a_change() {
        let new = BASE.replace("id: mr.labels", "id: mr.write");
        let diff = compare(&policy(BASE), &policy(&new));
        assert_eq!(diff.changes.len(), 1);
        let text = diff.render(&policy(BASE), &policy(&new));
        assert!(text.contains("(rule mr.labels → mr.write)"), "{text}");
    }
}
