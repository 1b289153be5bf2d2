//! Merge requests of a project (`/projects/:id/merge_requests/...`) and of a
//! group (`/groups/:id/merge_requests`).

use http::StatusCode;
use serde_json::{Value, json};

use super::pagination::paginate;
use super::{Ctx, order_by, parse_id, sort_desc};
use crate::reply::{Reply, Result};
use crate::store::{Label, MergeRequest, Owner, Store};

/// `updated_at` of merge requests changed through the API.
const UPDATED_AT: &str = "2024-07-01T00:00:00.000Z";
/// GitLab's colour for labels created implicitly.
const DEFAULT_LABEL_COLOR: &str = "#6699cc";
/// Parameters of `PUT .../merge_requests/:iid`; at least one is required.
const UPDATABLE: &[&str] = &[
    "title",
    "description",
    "labels",
    "add_labels",
    "remove_labels",
    "state_event",
    "target_branch",
    "assignee_id",
    "assignee_ids",
    "reviewer_ids",
    "milestone_id",
    "discussion_locked",
    "squash",
    "remove_source_branch",
    "allow_collaboration",
    "allow_maintainer_to_push",
];

/// Dispatches `/projects/:id/merge_requests/...`.
pub(crate) fn route(ctx: &Ctx<'_>, store: &mut Store, pid: u64, rest: &[&str]) -> Reply {
    let (iid, tail) = match (ctx.method, rest) {
        ("GET", []) => return list(ctx, store, &[pid]),
        (_, [iid, tail @ ..]) => match parse_id(iid, "merge_request_iid") {
            Ok(iid) => (iid, tail),
            Err(reply) => return reply,
        },
        _ => return Reply::route_not_found(),
    };
    if store.merge_request_mut(pid, iid).is_none() {
        return Reply::message(StatusCode::NOT_FOUND, "404 Not found");
    }
    match (ctx.method, tail) {
        ("GET", []) => show(ctx, store, pid, iid),
        ("PUT", []) => update(ctx, store, pid, iid),
        ("GET", ["commits"]) => commits(ctx, store, pid, iid),
        ("GET", ["resource_label_events"]) => label_events(ctx, store, pid, iid),
        ("GET", ["closes_issues" | "discussions" | "notes" | "participants"]) => {
            paginate(ctx, Vec::new())
        }
        _ => Reply::route_not_found(),
    }
}

/// `GET /groups/:id/merge_requests`: merge requests of the group's projects
/// and of its subgroups' projects.
pub(crate) fn group_list(ctx: &Ctx<'_>, store: &Store, gid: u64) -> Reply {
    let projects: Vec<u64> = store
        .group_projects(gid, true)
        .iter()
        .map(|p| p.id)
        .collect();
    list(ctx, store, &projects)
}

fn find(store: &Store, pid: u64, iid: u64) -> Option<&MergeRequest> {
    store
        .merge_requests
        .iter()
        .find(|m| m.project_id == pid && m.iid == iid)
}

fn show(ctx: &Ctx<'_>, store: &Store, pid: u64, iid: u64) -> Reply {
    match find(store, pid, iid) {
        Some(m) => Reply::ok(ctx.render(store).merge_request(m)),
        None => Reply::message(StatusCode::NOT_FOUND, "404 Not found"),
    }
}

/// A list of the merge requests of `projects`, filtered, sorted, paginated.
fn list(ctx: &Ctx<'_>, store: &Store, projects: &[u64]) -> Reply {
    let filter = match Filter::from_ctx(ctx) {
        Ok(filter) => filter,
        Err(reply) => return reply,
    };
    let mut mrs: Vec<&MergeRequest> = store
        .merge_requests
        .iter()
        .filter(|m| projects.contains(&m.project_id) && filter.matches(m, store))
        .collect();
    match filter.order.as_str() {
        "title" => mrs.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id))),
        // created_at and updated_at grow with the id.
        _ => mrs.sort_by_key(|m| m.id),
    }
    if filter.desc {
        mrs.reverse();
    }
    let render = ctx.render(store);
    paginate(
        ctx,
        mrs.into_iter().map(|m| render.merge_request(m)).collect(),
    )
}

/// The supported list filters.
struct Filter {
    state: String,
    labels: Option<Vec<String>>,
    author_id: Option<String>,
    author_username: Option<String>,
    source_branch: Option<String>,
    target_branch: Option<String>,
    search: Option<String>,
    iids: Option<Vec<String>>,
    order: String,
    desc: bool,
}

impl Filter {
    fn from_ctx(ctx: &Ctx<'_>) -> Result<Filter> {
        let p = &ctx.params;
        let state = p.str("state").unwrap_or_else(|| "all".into());
        if !["opened", "closed", "locked", "merged", "all"].contains(&state.as_str()) {
            return Err(Reply::bad_request("state does not have a valid value"));
        }
        let order = order_by(
            ctx,
            "created_at",
            &["created_at", "updated_at", "title", "merged_at"],
        )?;
        Ok(Filter {
            state,
            labels: p.list("labels"),
            author_id: p.str("author_id"),
            author_username: p.str("author_username"),
            source_branch: p.str("source_branch"),
            target_branch: p.str("target_branch"),
            search: p.str("search").map(|s| s.to_lowercase()),
            iids: p.list("iids"),
            order: order.to_string(),
            desc: sort_desc(ctx, true)?,
        })
    }

    fn matches(&self, m: &MergeRequest, store: &Store) -> bool {
        let author = store.user(m.author_id);
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        (self.state == "all" || self.state == m.state)
            && self
                .labels
                .as_deref()
                .is_none_or(|l| labels_match(l, &m.labels))
            && eq(&self.author_id, &m.author_id.to_string())
            && eq(
                &self.author_username,
                author.map_or("", |u| u.username.as_str()),
            )
            && eq(&self.source_branch, &m.source_branch)
            && eq(&self.target_branch, &m.target_branch)
            && self.search.as_deref().is_none_or(|s| {
                m.title.to_lowercase().contains(s) || m.description.to_lowercase().contains(s)
            })
            && self
                .iids
                .as_deref()
                .is_none_or(|iids| iids.contains(&m.iid.to_string()))
    }
}

/// GitLab's `labels` filter: `None`, `Any`, or all of the given labels.
fn labels_match(wanted: &[String], have: &[String]) -> bool {
    match wanted {
        [one] if one.eq_ignore_ascii_case("none") => have.is_empty(),
        [one] if one.eq_ignore_ascii_case("any") => !have.is_empty(),
        _ => wanted.iter().all(|w| have.contains(w)),
    }
}

/// `PUT /projects/:id/merge_requests/:iid`.
fn update(ctx: &Ctx<'_>, store: &mut Store, pid: u64, iid: u64) -> Reply {
    if let Err(reply) = validate_update(ctx) {
        return reply;
    }
    let labels = find(store, pid, iid).map(|m| new_labels(ctx, &m.labels));
    if let Some(labels) = &labels {
        create_missing_labels(store, pid, labels);
    }
    let Some(mr) = store.merge_request_mut(pid, iid) else {
        return Reply::message(StatusCode::NOT_FOUND, "404 Not found");
    };
    apply_update(ctx, mr, labels);
    show(ctx, store, pid, iid)
}

fn validate_update(ctx: &Ctx<'_>) -> Result<()> {
    let p = &ctx.params;
    if !UPDATABLE.iter().any(|k| p.has(k)) {
        return Err(Reply::bad_request(format!(
            "{} are missing, at least one parameter must be provided",
            UPDATABLE.join(", ")
        )));
    }
    if p.str("title").is_some_and(|t| t.trim().is_empty()) {
        return Err(Reply::json(
            StatusCode::BAD_REQUEST,
            json!({ "message": { "title": ["can't be blank"] } }),
        ));
    }
    match p.str("state_event").as_deref() {
        None | Some("close" | "reopen") => Ok(()),
        Some(_) => Err(Reply::bad_request(
            "state_event does not have a valid value",
        )),
    }
}

/// The labels after `labels` (replace), `add_labels` and `remove_labels`,
/// sorted and without duplicates like GitLab returns them.
fn new_labels(ctx: &Ctx<'_>, current: &[String]) -> Vec<String> {
    let p = &ctx.params;
    let mut labels = p.list("labels").unwrap_or_else(|| current.to_vec());
    labels.extend(p.list("add_labels").unwrap_or_default());
    let remove = p.list("remove_labels").unwrap_or_default();
    labels.retain(|l| !remove.contains(l));
    labels.sort();
    labels.dedup();
    labels
}

/// Like GitLab, assigning an unknown label creates it in the project.
fn create_missing_labels(store: &mut Store, pid: u64, labels: &[String]) {
    for name in labels {
        let known = store
            .visible_labels(Owner::Project(pid), true)
            .iter()
            .any(|l| &l.name == name);
        if !known {
            let id = store.new_label_id();
            store.labels.push(Label {
                id,
                owner: Owner::Project(pid),
                name: name.clone(),
                color: DEFAULT_LABEL_COLOR.into(),
                description: String::new(),
                priority: None,
            });
        }
    }
}

fn apply_update(ctx: &Ctx<'_>, mr: &mut MergeRequest, labels: Option<Vec<String>>) {
    let p = &ctx.params;
    if let Some(title) = p.str("title") {
        mr.title = title;
    }
    if let Some(description) = p.str("description") {
        mr.description = description;
    }
    if let Some(target) = p.str("target_branch") {
        mr.target_branch = target;
    }
    match (p.str("state_event").as_deref(), mr.state.as_str()) {
        (Some("close"), "opened") => mr.state = "closed".into(),
        (Some("reopen"), "closed") => mr.state = "opened".into(),
        _ => {}
    }
    if let Some(labels) = labels {
        mr.labels = labels;
    }
    mr.updated_at = UPDATED_AT.into();
}

/// `GET .../merge_requests/:iid/commits`: one commit, the MR's head.
fn commits(ctx: &Ctx<'_>, store: &Store, pid: u64, iid: u64) -> Reply {
    let (Some(project), Some(mr)) = (store.project(pid), find(store, pid, iid)) else {
        return Reply::message(StatusCode::NOT_FOUND, "404 Not found");
    };
    let commit = ctx.render(store).commit(project, &mr.sha, &mr.title);
    paginate(ctx, vec![commit])
}

/// `GET .../merge_requests/:iid/resource_label_events`: one `add` event per
/// label currently on the merge request.
fn label_events(ctx: &Ctx<'_>, store: &Store, pid: u64, iid: u64) -> Reply {
    let Some(mr) = find(store, pid, iid) else {
        return Reply::message(StatusCode::NOT_FOUND, "404 Not found");
    };
    let render = ctx.render(store);
    let visible = store.visible_labels(Owner::Project(pid), true);
    let author = store
        .user(mr.author_id)
        .map_or(Value::Null, |u| render.user(u));
    let events: Vec<Value> = mr
        .labels
        .iter()
        .filter_map(|name| visible.iter().find(|l| &l.name == name))
        .zip(1..)
        .map(|(label, n)| {
            json!({
                "id": mr.id * 100 + n,
                "user": author,
                "created_at": mr.created_at,
                "resource_type": "MergeRequest",
                "resource_id": mr.id,
                "label": {
                    "id": label.id,
                    "name": label.name,
                    "color": label.color,
                    "description": label.description,
                },
                "action": "add",
            })
        })
        .collect();
    paginate(ctx, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filter() {
        let have = vec!["bug".to_string()];
        assert!(labels_match(&["Any".into()], &have));
        assert!(!labels_match(&["None".into()], &have));
        assert!(labels_match(&["bug".into()], &have));
        assert!(!labels_match(&["bug".into(), "x".into()], &have));
    }
}
