use std::path::Path;

use super::*;
use crate::canonical::{ParamSource, ParamValue};

const ECHOES: &str = include_str!("../../policies/echoes.yaml");

fn echoes() -> Policy {
    Policy::compile(Path::new("policies/echoes.yaml"), ECHOES).unwrap()
}

fn decide(policy: &Policy, method: &str, target: &str, body: &[(&str, &str)]) -> Decision {
    let head = RequestHead::parse(method, target).unwrap();
    let body: Vec<Param> = body
        .iter()
        .map(|(name, value)| Param {
            name: (*name).into(),
            value: ParamValue::Scalar((*value).into()),
            source: ParamSource::Body,
        })
        .collect();
    policy.evaluate(&head, &body)
}

fn allowed_rule(decision: &Decision) -> &str {
    match decision {
        Decision::Allow(permit) => permit.rule(),
        Decision::Deny(denial) => panic!("expected allow, got {denial}"),
    }
}

fn denied_code(decision: &Decision) -> &'static str {
    match decision {
        Decision::Deny(denial) => denial.reason.code(),
        Decision::Allow(permit) => panic!("expected deny, got allow by {}", permit.rule()),
    }
}

#[test]
fn echoes_allows_what_echoes_needs() {
    let p = echoes();
    for (method, target, rule) in [
        ("GET", "/api/v4/user", "self.read"),
        ("HEAD", "/api/v4/user", "self.read"),
        (
            "GET",
            "/api/v4/groups?top_level_only=true&min_access_level=40",
            "groups.read",
        ),
        (
            "GET",
            "/api/v4/groups/acme%2Fplatform/projects?page=2",
            "groups.read",
        ),
        ("GET", "/api/v4/projects/acme%2Fbackend", "projects.read"),
        (
            "GET",
            "/api/v4/projects/101/repository/commits/deadbeef",
            "projects.read",
        ),
        (
            "GET",
            "/api/v4/projects/101/merge_requests/3/discussions",
            "merge-requests.read",
        ),
        (
            "GET",
            "/api/v4/groups/10/labels/echoes%2Fintent%3A%20feature",
            "group-labels.read",
        ),
    ] {
        assert_eq!(
            allowed_rule(&decide(&p, method, target, &[])),
            rule,
            "{method} {target}"
        );
    }
}

#[test]
fn echoes_bindings_are_decoded_once() {
    let p = echoes();
    let decision = decide(
        &p,
        "GET",
        "/api/v4/projects/acme%2Fbackend/merge_requests/7",
        &[],
    );
    let Decision::Allow(permit) = decision else {
        panic!("allowed")
    };
    assert_eq!(
        permit.template(),
        "/projects/{project}/merge_requests/{iid}"
    );
    let bound: Vec<(&str, &str)> = permit
        .bindings()
        .iter()
        .map(|b| (&*b.name, b.value.as_str()))
        .collect();
    assert_eq!(bound, [("project", "acme/backend"), ("iid", "7")]);
}

/// go-gitlab escapes every '.' as %2E: a project or label with a dot in its
/// name is bound to its single decoding, the bytes forwarded as sent.
#[test]
fn escaped_dots_in_params_are_bound_decoded() {
    let p = echoes();
    let Decision::Allow(permit) = decide(&p, "GET", "/api/v4/projects/other%2Fdocs%2Esite", &[])
    else {
        panic!("allowed")
    };
    assert_eq!(permit.bindings()[0].value, "other/docs.site");
    assert_eq!(
        allowed_rule(&decide(&p, "GET", "/api/v4/projects/%31%30%31", &[])),
        "projects.read"
    );
}

/// GitLab's router reads `%70rojects` as the literal `projects` (Grape's
/// Mustermann patterns match a literal character or its escape): a segment
/// that spells a route name with escapes is refused, never read as a param.
#[test]
fn an_escaped_route_name_is_refused_not_read_as_a_param() {
    let p = Policy::compile(
        Path::new("t.yaml"),
        r#"
version: 1
name: t
rules:
  - id: shared
    methods: [GET]
    paths: ["/groups/shared/projects"]
  - id: any
    methods: [GET]
    paths: ["/groups/{group}/projects", "/projects/{project}"]
"#,
    )
    .unwrap();
    for target in [
        "/api/v4/groups/%73hared/projects",
        "/api/v4/groups/share%64/projects",
        "/api/v4/groups/shared/%70rojects",
        "/api/v4/%70rojects/5",
    ] {
        let decision = decide(&p, "GET", target, &[]);
        assert_eq!(denied_code(&decision), "ambiguous_target", "{target}");
        let Decision::Deny(denial) = decision else {
            unreachable!()
        };
        assert!(denial.reason.is_bad_request(), "{target}");
    }
    // Escapes that spell no route name at that position are values.
    assert_eq!(
        allowed_rule(&decide(&p, "GET", "/api/v4/groups/%61cme/projects", &[])),
        "any"
    );
    // Upper case is another name to GitLab too: no route, not ambiguous.
    assert_eq!(
        denied_code(&decide(&p, "GET", "/api/v4/Projects/5", &[])),
        "no_rule"
    );
}

#[test]
fn echoes_refuses_the_rest() {
    let p = echoes();
    for (method, target, code) in [
        (
            "GET",
            "/api/v4/projects/5/repository/files/README.md",
            "no_rule",
        ),
        ("GET", "/api/v4/projects/5/repository/archive", "no_rule"),
        ("GET", "/api/v4/projects/5/variables", "no_rule"),
        ("DELETE", "/api/v4/projects/5", "method_not_allowed"),
        ("PATCH", "/api/v4/projects/5", "method_not_allowed"),
        ("POST", "/api/v4/groups/10/members", "method_not_allowed"),
        ("GET", "/api/v4/projects", "no_rule"),
        ("GET", "/api/v4/projects/acme", "no_rule"),
        (
            "GET",
            "/api/v4/projects/5/repository/commits/main",
            "no_rule",
        ),
        (
            "DELETE",
            "/api/v4/groups/10/labels/bug",
            "invalid_path_param",
        ),
        (
            "DELETE",
            "/api/v4/groups/10/labels/7001",
            "invalid_path_param",
        ),
        ("GET", "/api/v4/user?private_token=x", "forbidden_param"),
        ("GET", "/api/v4/user?sudo=root", "forbidden_param"),
    ] {
        assert_eq!(
            denied_code(&decide(&p, method, target, &[])),
            code,
            "{method} {target}"
        );
    }
}

#[test]
fn echoes_write_constraints() {
    let p = echoes();
    let hooks = "/api/v4/projects/101/hooks";
    let ok = decide(
        &p,
        "POST",
        hooks,
        &[
            ("url", "https://api.echoeshq.com/hooks/gitlab/abc"),
            ("push_events", "true"),
        ],
    );
    assert_eq!(allowed_rule(&ok), "project-hooks.create");
    for (body, code) in [
        (
            vec![("url", "https://api.echoeshq.com.evil.example/x")],
            "invalid_param",
        ),
        (
            vec![("url", "https://evil.example/https://api.echoeshq.com/")],
            "invalid_param",
        ),
        (
            vec![
                ("url", "https://api.echoeshq.com/x"),
                ("enable_ssl_verification", "false"),
            ],
            "invalid_param",
        ),
        (
            vec![
                ("url", "https://api.echoeshq.com/x"),
                ("custom_headers", "x"),
            ],
            "unknown_param",
        ),
        (vec![("push_events", "true")], "missing_param"),
    ] {
        assert_eq!(
            denied_code(&decide(&p, "POST", hooks, &body)),
            code,
            "{body:?}"
        );
    }
    let mr = "/api/v4/projects/101/merge_requests/1";
    assert_eq!(
        allowed_rule(&decide(
            &p,
            "PUT",
            mr,
            &[("add_labels", "echoes/intent: feature,echoes/effort: S")]
        )),
        "merge-requests.labels"
    );
    assert_eq!(
        denied_code(&decide(&p, "PUT", mr, &[("add_labels", "echoes/x,bug")])),
        "invalid_param"
    );
    assert_eq!(
        denied_code(&decide(&p, "PUT", mr, &[("title", "pwned")])),
        "unknown_param"
    );
    // `labels` replaces every label: the policy accepts it and leaves the
    // rest to the run-time `changes_only` check against the current set.
    let replaced = decide(&p, "PUT", mr, &[("labels", "bug,echoes/a")]);
    assert!(matches!(replaced, Decision::Allow(_)), "{replaced:?}");
    let Decision::Allow(permit) = replaced else {
        unreachable!()
    };
    assert_eq!(
        permit.changes_only().map(|c| c.to_string()).as_deref(),
        Some("labels matching /echoes/.+/")
    );
    assert_eq!(
        denied_code(&decide(&p, "PUT", mr, &[("add_labels", "")])),
        "invalid_param"
    );
    assert_eq!(
        denied_code(&decide(
            &p,
            "PUT",
            &format!("{mr}?add_labels=echoes/a"),
            &[("add_labels", "echoes/b")]
        )),
        "duplicate_param"
    );
    assert_eq!(
        denied_code(&decide(&p, "GET", "/api/v4/user", &[("x", "y")])),
        "body_not_allowed"
    );
}

#[test]
fn most_specific_template_wins() {
    let p = Policy::compile(
        Path::new("t.yaml"),
        r#"
version: 1
name: t
rules:
  - id: generic
    methods: [GET]
    paths: ["/projects/{project}/hooks/{hook_id}"]
  - id: literal
    methods: [GET]
    paths: ["/projects/{project}/hooks/self"]
  - id: literal-project
    methods: [DELETE]
    paths: ["/projects/starred/hooks/{hook_id}"]
    params: {}
"#,
    )
    .unwrap();
    assert_eq!(
        allowed_rule(&decide(&p, "GET", "/api/v4/projects/5/hooks/3", &[])),
        "generic"
    );
    assert_eq!(
        allowed_rule(&decide(&p, "GET", "/api/v4/projects/5/hooks/self", &[])),
        "literal"
    );
    // The literal template is more specific but allows only DELETE: the method is refused there.
    assert_eq!(
        denied_code(&decide(&p, "GET", "/api/v4/projects/starred/hooks/3", &[])),
        "method_not_allowed"
    );
}

fn errors(policy: &str) -> String {
    Policy::compile(Path::new("bad.yaml"), policy)
        .unwrap_err()
        .to_string()
}

#[test]
fn load_errors_are_located_and_all_reported() {
    let text = errors(
        r#"version: 1
name: bad
rules:
  - id: a
    methods: [GETT]
    paths: ["/projects/{proj}"]
  - id: a
    methods: [POST]
    paths: ["/projects"]
"#,
    );
    assert!(text.contains("bad.yaml:5:"), "{text}");
    assert!(text.contains("unknown method 'GETT'"), "{text}");
    assert!(text.contains("did you mean GET"), "{text}");
    assert!(text.contains("bad.yaml:6:"), "{text}");
    assert!(text.contains("unknown path param '{proj}'"), "{text}");
    assert!(text.contains("rule id 'a' is used twice"), "{text}");
    assert!(
        text.contains("must list the parameters it accepts"),
        "{text}"
    );
}

#[test]
fn unknown_keys_name_the_valid_ones() {
    let text =
        errors("version: 1\nname: x\nrules:\n  - id: a\n    method: [GET]\n    paths: [/user]\n");
    assert!(text.contains("bad.yaml:5:5"), "{text}");
    assert!(text.contains("unknown field `method`"), "{text}");
    assert!(text.contains("methods"), "{text}");
}

#[test]
fn every_unknown_key_of_a_policy_is_reported_at_once() {
    let text = errors(
        "version: 1\nname: x\ndescriptoin: d\nrules:\n  - id: a\n    method: [GET]\n    paths: [/user]\n  - id: b\n    methods: [GET]\n    paths: ['/projects/{project}']\n    path_params:\n      project: {typ: any}\n",
    );
    for expected in [
        "bad.yaml:3:1: unknown field `descriptoin`",
        "did you mean `description`?",
        "bad.yaml:6:5: rules[0]: unknown field `method`",
        "did you mean `methods`?",
        "bad.yaml:12:17: rules[1].path_params.project: unknown field `typ`",
        "did you mean `type`?",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn a_list_item_indented_too_far_is_named_by_the_hint() {
    // `- /users/{user_id}` one space further than the item above is valid
    // YAML: it continues that item's text. The error is about the value
    // (line 7); the hint names the line to fix (line 8).
    let text = errors(
        "version: 1\nname: x\nrules:\n  - id: a\n    methods: [GET]\n    paths:\n      - /users\n       - /users/{user_id}\n  - id: b\n    methods: [GET]\n    paths: [/user]\n",
    );
    assert!(text.starts_with("bad.yaml:7:"), "{text}");
    assert!(
        text.contains(
            "hint: line 8 is indented 7 spaces where the other lines are indented in steps of 2"
        ),
        "{text}"
    );
}

#[test]
fn ambiguous_rules_are_load_errors() {
    let same_method = errors(
        "version: 1\nname: x\nrules:\n  - {id: a, methods: [GET], paths: [/user]}\n  - {id: b, methods: [GET], paths: [/user]}\n",
    );
    assert!(
        same_method.contains("rule 'a' already allows GET"),
        "{same_method}"
    );
    let overlapping_types = errors(
        "version: 1\nname: x\nrules:\n  - {id: a, methods: [GET], paths: ['/x/{project}']}\n  - {id: b, methods: [GET], paths: ['/x/{iid}']}\n",
    );
    assert!(
        overlapping_types.contains("overlaps"),
        "{overlapping_types}"
    );
    let forbidden = errors(
        "version: 1\nname: x\nrules:\n  - {id: a, methods: [POST], paths: [/user], params: {sudo: {type: any}}}\n",
    );
    assert!(forbidden.contains("can never be accepted"), "{forbidden}");
}

#[test]
fn matcher_cost_does_not_depend_on_rule_count() {
    // 2,000 rules on distinct literal paths: lookup still walks one path.
    let mut text = String::from("version: 1\nname: big\nrules:\n");
    for i in 0..2000 {
        text.push_str(&format!(
            "  - {{id: r{i}, methods: [GET], paths: ['/projects/{{project}}/r{i}/{{iid}}']}}\n"
        ));
    }
    let p = Policy::compile(Path::new("big.yaml"), &text).unwrap();
    assert_eq!(
        allowed_rule(&decide(&p, "GET", "/api/v4/projects/1/r1999/5", &[])),
        "r1999"
    );
    assert_eq!(
        denied_code(&decide(&p, "GET", "/api/v4/projects/1/r2000/5", &[])),
        "no_rule"
    );
}
