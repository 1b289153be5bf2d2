use std::path::Path;

use serde_json::{Value, json};

use super::*;

const ECHOES: &str = include_str!("../../../policies/echoes.webhooks.yaml");

/// Every fixture: file, the header GitLab sends it with, the kind.
const FIXTURES: &[(&str, &str, &str)] = &[
    ("push.json", "Push Hook", "push"),
    ("tag_push.json", "Tag Push Hook", "tag_push"),
    ("merge_request.json", "Merge Request Hook", "merge_request"),
    ("note_merge_request.json", "Note Hook", "note"),
    ("note_commit.json", "Note Hook", "note"),
    ("pipeline.json", "Pipeline Hook", "pipeline"),
    ("job.json", "Job Hook", "job"),
    ("deployment.json", "Deployment Hook", "deployment"),
    ("release.json", "Release Hook", "release"),
    ("issue.json", "Issue Hook", "issue"),
    ("member.json", "Member Hook", "member"),
    ("subgroup.json", "Subgroup Hook", "subgroup"),
    ("project_create.json", "Project Hook", "project"),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn echoes() -> PayloadPolicy {
    PayloadPolicy::compile(Path::new("policies/echoes.webhooks.yaml"), ECHOES).unwrap()
}

fn policy(text: &str) -> PayloadPolicy {
    PayloadPolicy::compile(Path::new("w.yaml"), text).unwrap()
}

fn problems(text: &str) -> String {
    PayloadPolicy::compile(Path::new("w.yaml"), text)
        .unwrap_err()
        .to_string()
}

fn body(minimized: &Minimized) -> Value {
    serde_json::from_slice(&minimized.body).unwrap()
}

fn remove(paths: &[&str], value: Value) -> (Value, Vec<String>) {
    let mut value = value;
    let mut removed = Removed::default();
    for path in paths {
        FieldPath::parse(path)
            .unwrap()
            .remove_from(&mut value, &mut removed);
    }
    (value, removed.into_list(100))
}

fn keep(paths: &[&str], value: Value) -> (Value, Vec<String>) {
    let paths: Vec<FieldPath> = paths.iter().map(|p| FieldPath::parse(p).unwrap()).collect();
    let mut removed = Removed::default();
    let kept = keep_only(value, &paths, &mut removed);
    (kept, removed.into_list(100))
}

/// Every key anywhere in `value`, with its concrete path.
fn keys(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                out.push((key.clone(), path.clone()));
                keys(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                keys(item, &format!("{at}[*]"), out);
            }
        }
        _ => {}
    }
}

// --- paths ---------------------------------------------------------------------------

#[test]
fn paths_parse_keys_wildcards_and_lists() {
    for good in [
        "user_email",
        "commits[*].author.email",
        "object_attributes.variables",
        "labels[*]",
        "changes.*.previous",
        "**.email",
        "**.*_email",
        "user_*",
        "a[*][*].b",
        "build-name",
    ] {
        assert!(FieldPath::parse(good).is_ok(), "{good}");
    }
    for (bad, says) in [
        ("", "empty"),
        ("a..b", "empty segment"),
        (".a", "empty segment"),
        ("a.", "empty segment"),
        ("commits[0].id", "[0]"),
        ("commits[].id", "only [*]"),
        ("[*].id", "follows a field name"),
        ("a b", "not a field name"),
        ("a*b*c", "at most one '*'"),
        ("**", "ends with **"),
        ("a.**", "ends with **"),
        ("**.a.**.b", "more than once"),
        ("**[*].a", "already reaches into lists"),
        ("a/b", "not a field name"),
    ] {
        let error = FieldPath::parse(bad).unwrap_err();
        assert!(error.message.contains(says), "{bad}: {}", error.message);
    }
}

#[test]
fn remove_reaches_nested_fields_through_lists() {
    let payload = json!({
        "user_email": "a@x", "user_name": "A",
        "commits": [
            {"id": 1, "author": {"name": "B", "email": "b@x"}},
            {"id": 2, "author": {"name": "C", "email": "c@x"}},
            {"id": 3, "author": null}
        ]
    });
    let (out, removed) = remove(&["commits[*].author.email", "user_email"], payload.clone());
    assert_eq!(
        out,
        json!({"user_name": "A", "commits": [
            {"id": 1, "author": {"name": "B"}},
            {"id": 2, "author": {"name": "C"}},
            {"id": 3, "author": null}
        ]})
    );
    assert_eq!(removed, ["commits[*].author.email", "user_email"]);
    // Without [*], a field step meeting a list reaches into its elements too.
    let (implicit, _) = remove(&["commits.author.email", "user_email"], payload);
    assert_eq!(implicit, out);
}

#[test]
fn remove_of_a_missing_field_is_no_change() {
    let payload = json!({"a": {"b": 1}, "list": [1, 2], "s": "x"});
    let (out, removed) = remove(
        &["a.c", "nope", "a.b.c", "s.t", "list[*].x", "a[*]", "**.zzz"],
        payload.clone(),
    );
    assert_eq!(out, payload);
    assert!(removed.is_empty(), "{removed:?}");
}

#[test]
fn remove_with_wildcards_globs_and_any_depth() {
    let payload = json!({
        "changes": {"title": {"previous": "a", "current": "b"}, "labels": {"previous": [], "current": [1]}},
        "user": {"email": "u@x", "name": "U"},
        "user_email": "u@x", "author_email": "a@x", "email_count": 3,
        "builds": [{"user": {"email": "b@x", "id": 1}}, {"runner": {"tags": ["x"]}}],
        "labels": [1, 2, 3]
    });
    let (out, removed) = remove(
        &["changes.*.previous", "**.email", "*_email", "labels[*]"],
        payload,
    );
    assert_eq!(
        out,
        json!({
            "changes": {"title": {"current": "b"}, "labels": {"current": [1]}},
            "user": {"name": "U"},
            "email_count": 3,
            "builds": [{"user": {"id": 1}}, {"runner": {"tags": ["x"]}}],
            "labels": []
        })
    );
    assert_eq!(
        removed,
        [
            "changes.labels.previous",
            "changes.title.previous",
            "builds[*].user.email",
            "user.email",
            "author_email",
            "user_email",
            "labels[*]"
        ]
    );
    // `*` alone removes every field of the object it names.
    let (out, _) = remove(&["user.*"], json!({"user": {"a": 1, "b": 2}, "c": 3}));
    assert_eq!(out, json!({"user": {}, "c": 3}));
}

#[test]
fn keep_leaves_only_the_named_fields_and_their_containers() {
    let payload = json!({
        "object_kind": "push",
        "user_email": "a@x",
        "project": {"id": 1, "path_with_namespace": "g/p", "web_url": "http://x"},
        "commits": [
            {"id": "c1", "message": "m", "author": {"name": "B", "email": "b@x"}},
            {"id": "c2", "message": "m2", "author": {"name": "C", "email": "c@x"}}
        ],
        "repository": {"name": "r", "url": "u"}
    });
    let (out, removed) = keep(
        &[
            "object_kind",
            "project.path_with_namespace",
            "commits[*].id",
            "commits.author.name",
            "nothing.here",
        ],
        payload,
    );
    assert_eq!(
        out,
        json!({
            "object_kind": "push",
            "project": {"path_with_namespace": "g/p"},
            "commits": [
                {"id": "c1", "author": {"name": "B"}},
                {"id": "c2", "author": {"name": "C"}}
            ]
        })
    );
    // Recorded at the highest level removed, each once.
    assert_eq!(
        removed,
        [
            "commits[*].author.email",
            "commits[*].message",
            "project.id",
            "project.web_url",
            "repository",
            "user_email"
        ]
    );
}

#[test]
fn keep_whole_subtrees_lists_and_any_depth() {
    let payload = json!({
        "object_kind": "note",
        "labels": [{"id": 1, "title": "a"}],
        "user": {"id": 7, "name": "N"},
        "nested": {"deep": {"id": 9, "x": 1}},
        "empty": {"x": 1}
    });
    let (out, removed) = keep(&["labels", "user", "**.id"], payload);
    assert_eq!(
        out,
        json!({
            "labels": [{"id": 1, "title": "a"}],
            "user": {"id": 7, "name": "N"},
            "nested": {"deep": {"id": 9}}
        })
    );
    assert_eq!(removed, ["empty", "nested.deep.x", "object_kind"]);
}

#[test]
fn the_removed_list_is_bounded() {
    let mut big = serde_json::Map::new();
    for i in 0..100 {
        big.insert(format!("f{i:03}"), json!(i));
    }
    let mut value = Value::Object(big);
    let mut removed = Removed::default();
    FieldPath::parse("*")
        .unwrap()
        .remove_from(&mut value, &mut removed);
    let list = removed.into_list(MAX_REMOVED_RECORDED);
    assert_eq!(list.len(), MAX_REMOVED_RECORDED);
    assert_eq!(list.last().unwrap(), "(and 69 more)");
    assert_eq!(value, json!({}));
}

// --- kinds and objects -----------------------------------------------------------------

#[test]
fn every_fixture_is_of_its_kind_with_its_object() {
    let all = policy(
        &std::iter::once("version: 1\nevents:\n".to_owned())
            .chain(KINDS.iter().map(|k| format!("  - kind: {}\n", k.name)))
            .collect::<String>(),
    );
    let expected: &[(&str, Kind, Option<&str>, Option<u64>)] = &[
        ("push.json", Kind::Project, Some("mike/diaspora"), Some(15)),
        (
            "tag_push.json",
            Kind::Project,
            Some("jsmith/example"),
            Some(1),
        ),
        (
            "merge_request.json",
            Kind::Project,
            Some("gitlabhq/gitlab-test"),
            Some(1),
        ),
        (
            "note_merge_request.json",
            Kind::Project,
            Some("gitlab-org/gitlab-test"),
            Some(5),
        ),
        (
            "note_commit.json",
            Kind::Project,
            Some("gitlabhq/gitlab-test"),
            Some(5),
        ),
        (
            "pipeline.json",
            Kind::Project,
            Some("gitlab-org/gitlab-test"),
            Some(1),
        ),
        (
            "job.json",
            Kind::Project,
            Some("gitlab-org/gitlab-test"),
            Some(380),
        ),
        (
            "deployment.json",
            Kind::Project,
            Some("root/test-deployment-webhooks"),
            Some(30),
        ),
        (
            "release.json",
            Kind::Project,
            Some("gitlab-org/release-webhook-example"),
            Some(2),
        ),
        (
            "issue.json",
            Kind::Project,
            Some("gitlabhq/gitlab-test"),
            Some(1),
        ),
        // Member events name the group's last path segment only: id, no path.
        ("member.json", Kind::Group, None, Some(100)),
        // Subgroup events belong to the subgroup, by its full path.
        (
            "subgroup.json",
            Kind::Group,
            Some("group1/subgroup1"),
            Some(10),
        ),
        (
            "project_create.json",
            Kind::Project,
            Some("group1/project1"),
            Some(22),
        ),
    ];
    for ((file, header, kind), (file2, object_kind, path, id)) in FIXTURES.iter().zip(expected) {
        assert_eq!(file, file2);
        let body = fixture(file);
        let passed = all.apply(Some(header), &body).unwrap();
        assert_eq!(passed.kind, *kind, "{file}");
        assert!(passed.removed.is_empty(), "{file}");
        assert_eq!(
            serde_json::from_slice::<Value>(&passed.body).unwrap(),
            serde_json::from_slice::<Value>(&body).unwrap(),
            "{file}: a kind listed with neither remove nor keep passes unchanged"
        );
        assert_eq!(
            passed.object,
            Some(EventObject {
                kind: *object_kind,
                path: path.map(str::to_owned),
                id: *id
            }),
            "{file}"
        );
        assert_eq!(infer_header(&body), Some(*header), "{file}");
    }
}

#[test]
fn objects_of_group_level_and_id_only_payloads() {
    let all = policy(
        "version: 1\nevents:\n  - kind: access_token\n  - kind: vulnerability\n  - kind: milestone\n",
    );
    // Documented group form of an access-token event (GitLab 17.4+: full_path).
    let token = json!({"object_kind": "access_token", "group": {"group_name": "Twitter", "group_path": "twitter", "group_id": 35, "full_path": "twitter"}, "event_name": "expiring_access_token"});
    let out = all
        .apply(
            Some("Resource Access Token Hook"),
            token.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(
        out.object,
        Some(EventObject {
            kind: Kind::Group,
            path: Some("twitter".into()),
            id: Some(35)
        })
    );
    // Before 17.4 the group had no full_path: its id only.
    let old = json!({"object_kind": "access_token", "group": {"group_name": "T", "group_path": "t", "group_id": 35}});
    let out = all
        .apply(
            Some("Resource Access Token Hook"),
            old.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(
        out.object,
        Some(EventObject {
            kind: Kind::Group,
            path: None,
            id: Some(35)
        })
    );
    // A vulnerability names its project by id only.
    let vulnerability = json!({"object_kind": "vulnerability", "object_attributes": {"project_id": 50, "title": "x"}});
    let out = all
        .apply(
            Some("Vulnerability Hook"),
            vulnerability.to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(
        out.object,
        Some(EventObject {
            kind: Kind::Project,
            path: None,
            id: Some(50)
        })
    );
    // A project decides over a group when both are named.
    let both = json!({"object_kind": "milestone", "project": {"id": 1, "path_with_namespace": "g/p"}, "group": {"full_path": "g", "group_id": 2}});
    let out = all
        .apply(Some("Milestone Hook"), both.to_string().as_bytes())
        .unwrap();
    assert_eq!(out.object.unwrap().kind, Kind::Project);
    // Nothing named: no object (the caller drops it).
    let none = json!({"object_kind": "milestone", "object_attributes": {"title": "x"}});
    let out = all
        .apply(Some("Milestone Hook"), none.to_string().as_bytes())
        .unwrap();
    assert_eq!(out.object, None);
}

#[test]
fn header_and_body_must_agree() {
    let all = policy(
        "version: 1\nevents:\n  - kind: push\n  - kind: note\n  - kind: job\n  - kind: member\n  - kind: issue\n  - kind: work_item\n",
    );
    let push = fixture("push.json");
    let dropped = |header: Option<&str>, body: &[u8]| all.apply(header, body).unwrap_err();

    let d = dropped(Some("Tag Push Hook"), &push);
    assert_eq!(
        (d.kind.as_str(), d.reason),
        ("tag_push", EVENT_KIND_MISMATCH)
    );
    assert_eq!(d.object.unwrap().path.as_deref(), Some("mike/diaspora"));
    let d = dropped(Some("Note Hook"), &push);
    assert_eq!((d.kind.as_str(), d.reason), ("note", EVENT_KIND_MISMATCH));
    let d = dropped(None, &push);
    assert_eq!((d.kind.as_str(), d.reason), ("-", EVENT_HEADER_MISSING));
    let d = dropped(Some("push hook"), &push);
    assert_eq!((d.kind.as_str(), d.reason), ("-", EVENT_KIND_UNKNOWN));
    let d = dropped(Some("System Hook"), &push);
    assert_eq!(d.reason, EVENT_KIND_UNKNOWN);
    // Job events are object_kind build.
    assert_eq!(
        all.apply(Some("Job Hook"), &fixture("job.json"))
            .unwrap()
            .kind,
        "job"
    );
    let d = dropped(
        Some("Job Hook"),
        br#"{"object_kind": "job", "project": {"path_with_namespace": "a/b"}}"#,
    );
    assert_eq!(d.reason, EVENT_KIND_MISMATCH);
    // Member events are told by event_name; an unknown one does not pass.
    let d = dropped(
        Some("Member Hook"),
        br#"{"event_name": "user_add_to_project", "group_id": 1}"#,
    );
    assert_eq!((d.kind.as_str(), d.reason), ("member", EVENT_KIND_MISMATCH));
    // No discriminator at all.
    let d = dropped(
        Some("Push Hook"),
        br#"{"project": {"path_with_namespace": "a/b"}}"#,
    );
    assert_eq!(d.reason, EVENT_KIND_MISMATCH);
    // A non-string object_kind.
    let d = dropped(Some("Push Hook"), br#"{"object_kind": ["push"]}"#);
    assert_eq!(d.reason, EVENT_KIND_MISMATCH);
    // The issue header carries issues and other work items.
    let work_item = br#"{"object_kind": "work_item", "project": {"path_with_namespace": "a/b"}}"#;
    assert_eq!(
        all.apply(Some("Issue Hook"), work_item).unwrap().kind,
        "work_item"
    );
}

#[test]
fn confidential_events_are_kinds_of_their_own() {
    let p = policy("version: 1\nevents:\n  - kind: issue\n  - kind: note\n");
    let issue = fixture("issue.json");
    let d = p
        .apply(Some("Confidential Issue Hook"), &issue)
        .unwrap_err();
    assert_eq!(
        (d.kind.as_str(), d.reason),
        ("confidential_issue", EVENT_KIND_NOT_ALLOWED)
    );
    let d = p
        .apply(Some("Confidential Note Hook"), &fixture("note_commit.json"))
        .unwrap_err();
    assert_eq!(
        (d.kind.as_str(), d.reason),
        ("confidential_note", EVENT_KIND_NOT_ALLOWED)
    );
    let p = policy("version: 1\nevents:\n  - kind: confidential_issue\n");
    assert_eq!(
        p.apply(Some("Confidential Issue Hook"), &issue)
            .unwrap()
            .kind,
        "confidential_issue"
    );
}

#[test]
fn a_body_that_is_not_a_json_object_is_dropped() {
    let p = policy("version: 1\nevents:\n  - kind: push\n");
    for (body, reason) in [
        (&b"not json"[..], PAYLOAD_NOT_JSON),
        (b"", PAYLOAD_NOT_JSON),
        (b"{\"object_kind\": \"push\"", PAYLOAD_NOT_JSON),
        (b"[1, 2]", PAYLOAD_NOT_OBJECT),
        (b"\"push\"", PAYLOAD_NOT_OBJECT),
        (b"null", PAYLOAD_NOT_OBJECT),
    ] {
        let d = p.apply(Some("Push Hook"), body).unwrap_err();
        assert_eq!(
            (d.kind.as_str(), d.reason, d.object),
            ("push", reason, None)
        );
    }
    // Deeper than serde_json's recursion limit: not JSON we read.
    let deep = format!(
        "{{\"object_kind\":\"push\",\"a\":{}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(
        p.apply(Some("Push Hook"), deep.as_bytes())
            .unwrap_err()
            .reason,
        PAYLOAD_NOT_JSON
    );
}

#[test]
fn a_kind_not_listed_is_dropped() {
    let p = policy("version: 1\nevents:\n  - kind: push\n");
    let d = p
        .apply(Some("Merge Request Hook"), &fixture("merge_request.json"))
        .unwrap_err();
    assert_eq!(
        (d.kind.as_str(), d.reason),
        ("merge_request", EVENT_KIND_NOT_ALLOWED)
    );
    assert_eq!(
        d.object.unwrap().path.as_deref(),
        Some("gitlabhq/gitlab-test")
    );
}

#[test]
fn keep_always_keeps_the_kind_field() {
    let p = policy(
        "version: 1\nevents:\n  - kind: push\n    keep: [project.path_with_namespace]\n  - kind: member\n    keep: [group_id]\n",
    );
    let out = p.apply(Some("Push Hook"), &fixture("push.json")).unwrap();
    assert_eq!(
        body(&out),
        json!({"object_kind": "push", "project": {"path_with_namespace": "mike/diaspora"}})
    );
    assert!(
        out.removed.contains(&"commits".to_owned()),
        "{:?}",
        out.removed
    );
    // The object is read before anything is removed.
    assert_eq!(out.object.unwrap().id, Some(15));
    let out = p
        .apply(Some("Member Hook"), &fixture("member.json"))
        .unwrap();
    assert_eq!(
        body(&out),
        json!({"group_id": 100, "event_name": "user_add_to_group"})
    );
}

// --- located errors ---------------------------------------------------------------------

#[test]
fn a_bad_path_is_located_with_its_key() {
    let text = "version: 1\nevents:\n  - kind: push\n    remove:\n      - user_email\n      - commits[0].author.email\n";
    let shown = problems(text);
    assert!(
        shown.starts_with(
            "w.yaml:6:9: events[0].remove[1]: 'commits[0]' in 'commits[0].author.email': only [*]"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("6 |       - commits[0].author.email"),
        "{shown}"
    );
    assert!(shown.contains("hint: dot-separated field names"), "{shown}");
}

#[test]
fn an_unknown_key_is_located_with_a_suggestion() {
    let shown = problems("version: 1\nevents:\n  - kind: push\n    remvoe: [user_email]\n");
    assert!(
        shown.starts_with("w.yaml:4:5: unknown field `remvoe`"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `remove`?"), "{shown}");
    let shown = problems("version: 1\nevent:\n  - kind: push\n");
    assert!(shown.contains("did you mean `events`?"), "{shown}");
}

#[test]
fn an_unknown_kind_is_located_with_a_suggestion() {
    let shown = problems("version: 1\nevents:\n  - kind: push\n  - kind: merge_requst\n");
    assert!(
        shown.starts_with("w.yaml:4:11: events[1].kind: unknown event kind 'merge_requst'"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `merge_request`?"), "{shown}");
    // GitLab's object_kind for jobs is not the policy's kind name.
    let shown = problems("version: 1\nevents:\n  - kind: build\n");
    assert!(
        shown.contains("build events are `kind: job` here"),
        "{shown}"
    );
    let shown = problems("version: 1\nevents:\n  - kind: zzzzzzzz\n");
    assert!(shown.contains("one of push, tag_push, issue"), "{shown}");
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let text = "version: 2\nevents:\n  - kind: push\n    remove: [a..b]\n    keep: [c]\n  - kind: push\n  - kind: note\n    keep: []\n";
    let shown = problems(text);
    for expected in [
        "w.yaml:1:10: version: unsupported webhook policy version 2",
        "w.yaml:4:14: events[0].remove[0]: 'a..b' has an empty segment",
        "w.yaml:5:11: events[0].keep: an event lists 'remove' or 'keep', not both",
        "w.yaml:6:11: events[1].kind: event kind 'push' is listed twice",
        "w.yaml:8:11: events[2].keep: 'keep' lists no field",
    ] {
        assert!(
            shown.contains(expected),
            "missing {expected:?} in:\n{shown}"
        );
    }
    let shown = problems("version: 1\nevents: []\n");
    assert!(
        shown.contains("events: a webhook policy needs at least one event kind"),
        "{shown}"
    );
}

#[test]
fn load_names_the_file_when_it_cannot_be_read() {
    let shown = PayloadPolicy::load(Path::new("/nonexistent/w.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        shown.starts_with("/nonexistent/w.yaml: cannot read the webhook payload policy file"),
        "{shown}"
    );
}

// --- the shipped Echoes policy ------------------------------------------------------------

#[test]
fn echoes_passes_what_echoes_needs_and_drops_the_rest() {
    let p = echoes();
    let passed: Vec<&str> = p.events().iter().map(|e| e.kind().name).collect();
    assert_eq!(
        passed,
        [
            "merge_request",
            "push",
            "tag_push",
            "note",
            "pipeline",
            "deployment",
            "release"
        ]
    );
    for (file, header, kind) in FIXTURES {
        let result = p.apply(Some(header), &fixture(file));
        if passed.contains(kind) {
            let out = result.unwrap_or_else(|d| panic!("{file}: dropped {d:?}"));
            assert_eq!(out.kind, *kind);
            assert!(!out.removed.is_empty(), "{file}: nothing removed");
        } else {
            let d = result.unwrap_err();
            assert_eq!(
                (d.kind.as_str(), d.reason),
                (*kind, EVENT_KIND_NOT_ALLOWED),
                "{file}"
            );
        }
    }
}

#[test]
fn echoes_output_has_no_email_no_variables_and_no_gravatar_anywhere() {
    let p = echoes();
    let mut checked = 0;
    for (file, header, _) in FIXTURES {
        let Ok(out) = p.apply(Some(header), &fixture(file)) else {
            continue;
        };
        checked += 1;
        let value = body(&out);
        let mut found = Vec::new();
        keys(&value, "", &mut found);
        for (key, path) in &found {
            assert!(
                key != "email" && !key.ends_with("_email"),
                "{file}: {path} survived"
            );
            assert!(key != "variables", "{file}: {path} survived");
            assert!(
                key != "avatar_url" && key != "user_avatar",
                "{file}: {path} survived"
            );
        }
        let text = String::from_utf8(out.body.clone()).unwrap();
        assert!(!text.contains("gravatar"), "{file}: {text}");
        // What stays is what Echoes reads.
        assert_eq!(
            out.object.as_ref().map(|o| o.kind),
            Some(Kind::Project),
            "{file}"
        );
        assert!(value.get("object_kind").is_some(), "{file}");
    }
    assert_eq!(checked, 8);
}

#[test]
fn echoes_removes_each_listed_field_from_the_real_payloads() {
    let p = echoes();
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "push.json",
            "Push Hook",
            &[
                "user_email",
                "commits[*].author.email",
                "user_avatar",
                "project.avatar_url",
                "commits[*].message",
            ],
            &[
                "commits[*].title",
                "commits[*].id",
                "user_username",
                "project.path_with_namespace",
            ],
        ),
        (
            "merge_request.json",
            "Merge Request Hook",
            &[
                "user.email",
                "object_attributes.last_commit.author.email",
                "object_attributes.last_commit.message",
                "user.avatar_url",
                "assignees[*].avatar_url",
                "reviewers[*].avatar_url",
            ],
            &[
                "object_attributes.title",
                "object_attributes.last_commit.title",
                "labels[*].title",
                "changes",
            ],
        ),
        (
            "note_commit.json",
            "Note Hook",
            &[
                "user.email",
                "commit.author.email",
                "object_attributes.st_diff",
                "commit.message",
            ],
            &["object_attributes.note", "commit.id"],
        ),
        (
            "note_merge_request.json",
            "Note Hook",
            &[
                "user.email",
                "merge_request.last_commit.author.email",
                "merge_request.last_commit.message",
            ],
            &["merge_request.title", "merge_request.iid"],
        ),
        (
            "pipeline.json",
            "Pipeline Hook",
            &[
                "object_attributes.variables",
                "user.email",
                "builds[*].user.email",
                "commit.author.email",
                "commit.message",
                "builds[*].user.avatar_url",
            ],
            &[
                "object_attributes.status",
                "object_attributes.duration",
                "builds[*].stage",
                "builds[*].status",
            ],
        ),
        (
            "deployment.json",
            "Deployment Hook",
            &["user.email", "user.avatar_url"],
            &["status", "environment"],
        ),
        (
            "release.json",
            "Release Hook",
            &["commit.author.email", "commit.message"],
            &["tag", "commit.title", "action"],
        ),
        (
            "tag_push.json",
            "Tag Push Hook",
            &["user_avatar"],
            &["ref", "checkout_sha"],
        ),
    ];
    for (file, header, removed, kept) in cases {
        let out = p.apply(Some(header), &fixture(file)).unwrap();
        for path in *removed {
            assert!(
                out.removed.iter().any(|r| r == path),
                "{file}: {path} not in {:?}",
                out.removed
            );
        }
        let value = body(&out);
        let mut found = Vec::new();
        keys(&value, "", &mut found);
        for path in *kept {
            assert!(
                found.iter().any(|(_, p)| p == path),
                "{file}: {path} was removed"
            );
        }
        for path in *removed {
            assert!(
                !found.iter().any(|(_, p)| p == path),
                "{file}: {path} survived"
            );
        }
    }
}

#[test]
fn echoes_source_passes_its_own_schema_kinds() {
    // Every kind name the schema offers is one the compiler accepts.
    let schema = json_schema();
    let names = schema["$defs"]["EventKind"]["enum"].as_array().unwrap();
    assert_eq!(names.len(), KINDS.len());
    for name in names {
        let text = format!(
            "version: 1\nevents:\n  - kind: {}\n",
            name.as_str().unwrap()
        );
        assert!(
            PayloadPolicy::compile(Path::new("w.yaml"), &text).is_ok(),
            "{name}"
        );
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["RawEvent"]["additionalProperties"], false);
    assert_eq!(
        schema["$defs"]["RawEvent"]["not"],
        json!({"required": ["remove", "keep"]})
    );
}

// --- properties -------------------------------------------------------------------------

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::super::path::{FieldPath, Removed, keep_only};

    const KEYS: &[&str] = &["a", "b", "email", "user_email", "list"];
    const PATHS: &[&str] = &[
        "a",
        "a.b",
        "**.email",
        "**.*_email",
        "*_email",
        "list[*].a",
        "list[*]",
        "a.*",
        "b.list.email",
        "**.a.b",
        "list.list[*].email",
    ];

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0u32..5).prop_map(Value::from),
            "[a-z@.]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(
                    |entries| {
                        Value::Object(
                            entries
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v))
                                .collect::<Map<String, Value>>(),
                        )
                    }
                ),
            ]
        })
    }

    fn paths() -> impl Strategy<Value = Vec<FieldPath>> {
        prop::collection::vec(prop::sample::select(PATHS), 1..4).prop_map(|ps| {
            ps.into_iter()
                .map(|p| FieldPath::parse(p).unwrap())
                .collect()
        })
    }

    proptest! {
        /// After `remove`, the path names nothing: removal is complete,
        /// whatever the shape (lists of lists, nested matches, globs).
        #[test]
        fn removal_is_complete_and_recorded(value in json(), paths in paths()) {
            let mut out = value.clone();
            let mut removed = Removed::default();
            for path in &paths {
                path.remove_from(&mut out, &mut removed);
            }
            for path in &paths {
                prop_assert!(!path.matches(&out), "{} still matches {}", path.as_str(), out);
            }
            let removed = removed.into_list(usize::MAX);
            prop_assert_eq!(removed.is_empty(), out == value);
        }

        /// `keep` is idempotent, records something exactly when it drops
        /// something, and never invents a field.
        #[test]
        fn keep_is_idempotent(value in json(), paths in paths()) {
            let Value::Object(_) = value else { return Ok(()); };
            let mut removed = Removed::default();
            let once = keep_only(value.clone(), &paths, &mut removed);
            let mut again_removed = Removed::default();
            let twice = keep_only(once.clone(), &paths, &mut again_removed);
            prop_assert_eq!(&twice, &once);
            prop_assert!(again_removed.into_list(usize::MAX).is_empty());
            prop_assert_eq!(removed.into_list(usize::MAX).is_empty(), once == value);
            prop_assert!(once.to_string().len() <= value.to_string().len());
        }
    }
}
