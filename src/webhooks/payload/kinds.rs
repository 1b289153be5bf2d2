//! GitLab's webhook event kinds: the `X-Gitlab-Event` header each is sent
//! with, the body field that must agree with it, and where the project or
//! group the event belongs to is named.
//!
//! GitLab sets `X-Gitlab-Event` to the hook scope's name, singular and
//! titleized (`push_hooks` → `Push Hook`), and names the kind in the body:
//! `object_kind` for project-level events (`build` for job events), and
//! `event_name` for the group-only events (member, subgroup, project), which
//! have no `object_kind`. A delivery is of a kind only when both agree.
//!
//! Confidential issues and comments on them come with their own headers
//! (`Confidential Issue Hook`, `Confidential Note Hook`) but the same
//! `object_kind` as the others: they are kinds of their own here
//! (`confidential_issue`, `confidential_note`), so a policy that passes
//! `issue` or `note` never passes confidential content by accident.
//! Work items other than issues (`object_kind: work_item`) come with the
//! issue headers and are the kinds `work_item` and `confidential_issue`.
//!
//! Source: GitLab's "Webhook events" documentation
//! (`doc/user/project/integrations/webhook_events.md`) and its hook service
//! (`X-Gitlab-Event` is `hook_name.singularize.titleize`).

use serde_json::{Map, Value};

use crate::scope::Kind;

use super::EventObject;

/// One event kind a payload policy can name.
#[derive(Debug)]
pub(crate) struct EventKind {
    /// The name a policy uses (`kind: push`).
    pub(crate) name: &'static str,
    /// The `X-Gitlab-Event` header GitLab sends it with.
    pub(crate) header: &'static str,
    /// The body field that names the kind (`object_kind` or `event_name`).
    pub(crate) field: &'static str,
    /// The values of that field this kind has.
    pub(crate) values: &'static [&'static str],
    /// What the event belongs to, for `webhooks show`.
    pub(crate) belongs_to: &'static str,
}

const fn kind(
    name: &'static str,
    header: &'static str,
    field: &'static str,
    values: &'static [&'static str],
    belongs_to: &'static str,
) -> EventKind {
    EventKind {
        name,
        header,
        field,
        values,
        belongs_to,
    }
}

const PROJECT: &str = "project";
const OBJECT_KIND: &str = "object_kind";
const EVENT_NAME: &str = "event_name";

/// Every kind, in the order of GitLab's documentation.
pub(crate) const KINDS: &[EventKind] = &[
    kind("push", "Push Hook", OBJECT_KIND, &["push"], PROJECT),
    kind(
        "tag_push",
        "Tag Push Hook",
        OBJECT_KIND,
        &["tag_push"],
        PROJECT,
    ),
    kind("issue", "Issue Hook", OBJECT_KIND, &["issue"], PROJECT),
    kind(
        "work_item",
        "Issue Hook",
        OBJECT_KIND,
        &["work_item"],
        "project or group",
    ),
    kind(
        "confidential_issue",
        "Confidential Issue Hook",
        OBJECT_KIND,
        &["issue", "work_item"],
        "project or group",
    ),
    kind("note", "Note Hook", OBJECT_KIND, &["note"], PROJECT),
    kind(
        "confidential_note",
        "Confidential Note Hook",
        OBJECT_KIND,
        &["note"],
        PROJECT,
    ),
    kind(
        "merge_request",
        "Merge Request Hook",
        OBJECT_KIND,
        &["merge_request"],
        PROJECT,
    ),
    kind(
        "wiki_page",
        "Wiki Page Hook",
        OBJECT_KIND,
        &["wiki_page"],
        PROJECT,
    ),
    kind(
        "pipeline",
        "Pipeline Hook",
        OBJECT_KIND,
        &["pipeline"],
        PROJECT,
    ),
    kind("job", "Job Hook", OBJECT_KIND, &["build"], PROJECT),
    kind(
        "deployment",
        "Deployment Hook",
        OBJECT_KIND,
        &["deployment"],
        PROJECT,
    ),
    kind(
        "feature_flag",
        "Feature Flag Hook",
        OBJECT_KIND,
        &["feature_flag"],
        PROJECT,
    ),
    kind(
        "release",
        "Release Hook",
        OBJECT_KIND,
        &["release"],
        PROJECT,
    ),
    kind(
        "milestone",
        "Milestone Hook",
        OBJECT_KIND,
        &["milestone"],
        PROJECT,
    ),
    kind("emoji", "Emoji Hook", OBJECT_KIND, &["emoji"], PROJECT),
    kind(
        "access_token",
        "Resource Access Token Hook",
        OBJECT_KIND,
        &["access_token"],
        "project or group",
    ),
    kind(
        "vulnerability",
        "Vulnerability Hook",
        OBJECT_KIND,
        &["vulnerability"],
        "project (by id only)",
    ),
    kind(
        "member",
        "Member Hook",
        EVENT_NAME,
        &[
            "user_add_to_group",
            "user_update_for_group",
            "user_remove_from_group",
            "user_access_request_to_group",
            "user_access_request_denied_for_group",
        ],
        "group (by id only)",
    ),
    kind(
        "subgroup",
        "Subgroup Hook",
        EVENT_NAME,
        &["subgroup_create", "subgroup_destroy"],
        "group (the subgroup)",
    ),
    kind(
        "project",
        "Project Hook",
        EVENT_NAME,
        &["project_create", "project_destroy"],
        PROJECT,
    ),
];

/// The kind of this name.
pub(crate) fn by_name(name: &str) -> Option<&'static EventKind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Why a delivery has no kind.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unclassified {
    /// The reason code.
    pub(super) reason: &'static str,
    /// The kind the header alone names, when it names one.
    pub(super) header_kind: Option<&'static EventKind>,
}

/// Reason: the delivery has no `X-Gitlab-Event` header.
pub(crate) const EVENT_HEADER_MISSING: &str = "event_header_missing";
/// Reason: the `X-Gitlab-Event` header names no kind glgate knows.
pub(crate) const EVENT_KIND_UNKNOWN: &str = "event_kind_unknown";
/// Reason: the body's `object_kind`/`event_name` is missing or disagrees with the header.
pub(crate) const EVENT_KIND_MISMATCH: &str = "event_kind_mismatch";

/// The kind of a delivery: its header and its body must agree.
pub(super) fn classify(
    header: Option<&str>,
    body: &Map<String, Value>,
) -> Result<&'static EventKind, Unclassified> {
    let Some(header) = header else {
        return Err(Unclassified {
            reason: EVENT_HEADER_MISSING,
            header_kind: None,
        });
    };
    let mut candidates = KINDS.iter().filter(|k| k.header == header).peekable();
    let Some(first) = candidates.peek().copied() else {
        return Err(Unclassified {
            reason: EVENT_KIND_UNKNOWN,
            header_kind: None,
        });
    };
    candidates
        .find(|k| {
            body.get(k.field)
                .and_then(Value::as_str)
                .is_some_and(|v| k.values.contains(&v))
        })
        .ok_or(Unclassified {
            reason: EVENT_KIND_MISMATCH,
            header_kind: Some(first),
        })
}

/// The header a body most likely came with, from its `object_kind` or
/// `event_name` (for `webhooks test` without `--event`); never used to
/// decide a real delivery, which must carry its header.
pub(crate) fn infer_header(body: &[u8]) -> Option<&'static str> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    KINDS
        .iter()
        .find(|k| {
            object
                .get(k.field)
                .and_then(Value::as_str)
                .is_some_and(|v| k.values.contains(&v))
        })
        .map(|k| k.header)
}

fn id(value: Option<&Value>) -> Option<u64> {
    value.and_then(Value::as_u64)
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The project or group a payload belongs to, read before anything is
/// removed. A project decides when both are named. In order:
///
/// 1. `project.path_with_namespace` (every project-level event), id
///    `project.id` or the top-level `project_id`;
/// 2. a top-level `path_with_namespace` (group hook "project" events), id `project_id`;
/// 3. `group.full_path` (group access-token events since GitLab 17.4), or
///    only `group.group_id` before that;
/// 4. a top-level `full_path` (subgroup events: the subgroup), id `group_id`;
/// 5. a top-level `group_id` (member events): GitLab gives the group's own
///    `group_path` segment there, not its full path, so only the id is
///    returned, with no path;
/// 6. `object_attributes.project_id` or a top-level `project_id` alone
///    (vulnerability events): the id only.
///
/// `None` when none is found: the caller drops the delivery.
pub(super) fn event_object(body: &Map<String, Value>) -> Option<EventObject> {
    let project = |path: Option<String>, id: Option<u64>| {
        (path.is_some() || id.is_some()).then_some(EventObject {
            kind: Kind::Project,
            path,
            id,
        })
    };
    let group = |path: Option<String>, id: Option<u64>| {
        (path.is_some() || id.is_some()).then_some(EventObject {
            kind: Kind::Group,
            path,
            id,
        })
    };
    if let Some(p) = body.get("project").and_then(Value::as_object)
        && let Some(path) = text(p.get("path_with_namespace"))
    {
        return project(
            Some(path),
            id(p.get("id")).or_else(|| id(body.get("project_id"))),
        );
    }
    if let Some(path) = text(body.get("path_with_namespace")) {
        return project(Some(path), id(body.get("project_id")));
    }
    if let Some(g) = body.get("group").and_then(Value::as_object)
        && let Some(found) = group(
            text(g.get("full_path")),
            id(g.get("group_id")).or_else(|| id(g.get("id"))),
        )
    {
        return Some(found);
    }
    if let Some(path) = text(body.get("full_path")) {
        return group(Some(path), id(body.get("group_id")));
    }
    if let Some(found) = group(None, id(body.get("group_id"))) {
        return Some(found);
    }
    let attributes = body.get("object_attributes").and_then(Value::as_object);
    project(
        None,
        id(attributes.and_then(|a| a.get("project_id"))).or_else(|| id(body.get("project_id"))),
    )
}
