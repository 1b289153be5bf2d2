//! GitLab-shaped JSON for the dataset's entities.

use serde_json::{Map, Value, json};

use super::{Group, Hook, Label, MergeRequest, Owner, Project, Store, User};
use crate::params::as_bool;

/// Fixed creation time of groups and hooks.
const GROUP_CREATED_AT: &str = "2024-01-15T10:00:00.000Z";
/// Fixed last activity time of projects.
const LAST_ACTIVITY_AT: &str = "2024-06-01T12:00:00.000Z";

/// Hook event flags and their defaults, for both kinds of hooks.
const HOOK_EVENTS: &[(&str, bool)] = &[
    ("push_events", true),
    ("tag_push_events", false),
    ("merge_requests_events", false),
    ("repository_update_events", false),
    ("issues_events", false),
    ("confidential_issues_events", false),
    ("note_events", false),
    ("confidential_note_events", false),
    ("pipeline_events", false),
    ("wiki_page_events", false),
    ("job_events", false),
    ("deployment_events", false),
    ("releases_events", false),
    ("feature_flag_events", false),
    ("emoji_events", false),
    ("resource_access_token_events", false),
    ("enable_ssl_verification", true),
];
/// Extra event flags of group hooks.
const GROUP_HOOK_EVENTS: &[(&str, bool)] = &[("subgroup_events", false), ("member_events", false)];

/// Whether `key` is a boolean hook attribute (coerced when stored).
pub(crate) fn is_hook_flag(key: &str) -> bool {
    HOOK_EVENTS
        .iter()
        .chain(GROUP_HOOK_EVENTS)
        .any(|(k, _)| *k == key)
}

/// Renders entities to JSON; `base` is the external URL (with prefix).
pub(crate) struct Render<'a> {
    pub store: &'a Store,
    pub base: &'a str,
}

impl Render<'_> {
    /// The `GET /user` representation of the token's owner.
    pub(crate) fn current_user(&self, u: &User) -> Value {
        json!({
            "id": u.id,
            "username": u.username,
            "name": u.name,
            "state": "active",
            "is_admin": false,
            "bot": false,
            "web_url": format!("{}/{}", self.base, u.username),
            "avatar_url": null,
        })
    }

    /// The basic user representation (lists, authors).
    pub(crate) fn user(&self, u: &User) -> Value {
        json!({
            "id": u.id,
            "username": u.username,
            "name": u.name,
            "state": "active",
            "locked": false,
            "avatar_url": null,
            "web_url": format!("{}/{}", self.base, u.username),
        })
    }

    /// A user by id, or `null`.
    fn user_by_id(&self, id: u64) -> Value {
        self.store.user(id).map_or(Value::Null, |u| self.user(u))
    }

    /// A group or project member.
    pub(crate) fn member(&self, u: &User, access_level: u64) -> Value {
        let mut v = self.user(u);
        if let Value::Object(obj) = &mut v {
            obj.insert("access_level".into(), json!(access_level));
            obj.insert("expires_at".into(), Value::Null);
            obj.insert("membership_state".into(), json!("active"));
        }
        v
    }

    /// `"acme / platform"` for group 11.
    fn group_full_name(&self, g: &Group) -> String {
        let mut names: Vec<&str> = self
            .store
            .group_and_ancestors(g.id)
            .iter()
            .filter_map(|id| self.store.group(*id))
            .map(|g| g.name.as_str())
            .collect();
        names.reverse();
        names.join(" / ")
    }

    /// A group.
    pub(crate) fn group(&self, g: &Group) -> Value {
        json!({
            "id": g.id,
            "web_url": format!("{}/groups/{}", self.base, g.full_path),
            "name": g.name,
            "path": g.path,
            "description": "",
            "visibility": "private",
            "full_name": self.group_full_name(g),
            "full_path": g.full_path,
            "parent_id": g.parent_id,
            "created_at": GROUP_CREATED_AT,
            "avatar_url": null,
        })
    }

    /// A group as a namespace.
    pub(crate) fn group_namespace(&self, g: &Group) -> Value {
        json!({
            "id": g.id,
            "name": g.name,
            "path": g.path,
            "kind": "group",
            "full_path": g.full_path,
            "parent_id": g.parent_id,
            "avatar_url": null,
            "web_url": format!("{}/groups/{}", self.base, g.full_path),
        })
    }

    /// A user's personal namespace (its id is the user's id).
    pub(crate) fn user_namespace(&self, u: &User) -> Value {
        json!({
            "id": u.id,
            "name": u.name,
            "path": u.username,
            "kind": "user",
            "full_path": u.username,
            "parent_id": null,
            "avatar_url": null,
            "web_url": format!("{}/{}", self.base, u.username),
        })
    }

    /// A project.
    pub(crate) fn project(&self, p: &Project) -> Value {
        let group = self.store.group(p.namespace_id);
        let namespace = group.map_or(Value::Null, |g| self.group_namespace(g));
        let ns_name = group.map(|g| self.group_full_name(g)).unwrap_or_default();
        let pwn = &p.path_with_namespace;
        json!({
            "id": p.id,
            "description": "",
            "name": p.name,
            "name_with_namespace": format!("{ns_name} / {}", p.name),
            "path": p.path,
            "path_with_namespace": pwn,
            "creator_id": p.creator_id(),
            "created_at": super::seed::timestamp("2024-03-01", p.id),
            "default_branch": "main",
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": format!("git@127.0.0.1:{pwn}.git"),
            "http_url_to_repo": format!("{}/{pwn}.git", self.base),
            "web_url": format!("{}/{pwn}", self.base),
            "readme_url": null,
            "avatar_url": null,
            "forks_count": 0,
            "star_count": 0,
            "last_activity_at": LAST_ACTIVITY_AT,
            "namespace": namespace,
            "visibility": "private",
            "archived": false,
            "empty_repo": false,
        })
    }

    /// A merge request.
    pub(crate) fn merge_request(&self, m: &MergeRequest) -> Value {
        let pwn = self
            .store
            .project(m.project_id)
            .map(|p| p.path_with_namespace.clone())
            .unwrap_or_default();
        json!({
            "id": m.id,
            "iid": m.iid,
            "project_id": m.project_id,
            "title": m.title,
            "description": m.description,
            "state": m.state,
            "created_at": m.created_at,
            "updated_at": m.updated_at,
            "merged_at": m.merged_at,
            "closed_at": null,
            "target_branch": m.target_branch,
            "source_branch": m.source_branch,
            "source_project_id": m.project_id,
            "target_project_id": m.project_id,
            "author": self.user_by_id(m.author_id),
            "assignees": [],
            "reviewers": [],
            "labels": m.labels,
            "draft": false,
            "work_in_progress": false,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "sha": m.sha,
            "merge_commit_sha": null,
            "references": {
                "short": format!("!{}", m.iid),
                "relative": format!("!{}", m.iid),
                "full": format!("{pwn}!{}", m.iid),
            },
            "web_url": format!("{}/{pwn}/-/merge_requests/{}", self.base, m.iid),
        })
    }

    /// A label, seen from `viewer` (sets `is_project_label` for projects).
    pub(crate) fn label(&self, l: &Label, viewer: Owner) -> Value {
        let mut v = json!({
            "id": l.id,
            "name": l.name,
            "color": l.color,
            "description": l.description,
            "description_html": l.description,
            "text_color": text_color(&l.color),
            "priority": l.priority,
            "subscribed": false,
        });
        if let (Owner::Project(_), Value::Object(obj)) = (viewer, &mut v) {
            obj.insert(
                "is_project_label".into(),
                json!(matches!(l.owner, Owner::Project(_))),
            );
        }
        v
    }

    /// A hook: defaults, then the stored fields; never the `token`.
    pub(crate) fn hook(&self, h: &Hook) -> Value {
        let mut obj = Map::new();
        obj.insert("id".into(), json!(h.id));
        let (owner_key, owner_id, extra) = match h.owner {
            Owner::Group(id) => ("group_id", id, GROUP_HOOK_EVENTS),
            Owner::Project(id) => ("project_id", id, &[][..]),
        };
        obj.insert(owner_key.into(), json!(owner_id));
        obj.insert("created_at".into(), json!(h.created_at));
        for (key, default) in HOOK_EVENTS.iter().chain(extra) {
            obj.insert((*key).into(), json!(*default));
        }
        for (key, value) in &h.fields {
            if key != "token" {
                obj.insert(key.clone(), value.clone());
            }
        }
        Value::Object(obj)
    }

    /// A commit of project `p`.
    pub(crate) fn commit(&self, p: &Project, sha: &str, title: &str) -> Value {
        json!({
            "id": sha,
            "short_id": sha.get(..8).unwrap_or(sha),
            "created_at": LAST_ACTIVITY_AT,
            "parent_ids": [],
            "title": title,
            "message": format!("{title}\n"),
            "author_name": "Alice Example",
            "author_email": "alice@example.com",
            "authored_date": LAST_ACTIVITY_AT,
            "committer_name": "Alice Example",
            "committer_email": "alice@example.com",
            "committed_date": LAST_ACTIVITY_AT,
            "trailers": {},
            "web_url": format!("{}/{}/-/commit/{sha}", self.base, p.path_with_namespace),
        })
    }
}

/// Coerces the known boolean hook attributes in `fields`.
pub(crate) fn coerce_hook_flags(fields: &mut Map<String, Value>) {
    for (_, value) in fields.iter_mut().filter(|(k, _)| is_hook_flag(k)) {
        if let Some(b) = as_bool(value) {
            *value = Value::Bool(b);
        }
    }
}

/// GitLab's label text colour: dark text on light backgrounds.
fn text_color(color: &str) -> &'static str {
    let hex = color.strip_prefix('#').unwrap_or_default();
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map(f64::from)
    };
    match (hex.len(), channel(0), channel(2), channel(4)) {
        (6, Some(r), Some(g), Some(b)) if 0.299 * r + 0.587 * g + 0.114 * b > 186.0 => "#1F1E24",
        _ => "#FFFFFF",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_colors() {
        assert_eq!(text_color("#d9534f"), "#FFFFFF");
        assert_eq!(text_color("#ffffff"), "#1F1E24");
        assert_eq!(text_color("red"), "#FFFFFF");
        assert_eq!(text_color("#é"), "#FFFFFF");
    }
}
