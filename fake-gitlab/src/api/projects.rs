//! `/projects`, `/projects/:id/...` and `/groups/:id/projects`.

use http::StatusCode;
use http::header::LOCATION;

use super::pagination::paginate;
use super::{Ctx, hooks, labels, merge_requests, order_by, parse_id, repository, sort_desc, users};
use crate::params::percent_encode;
use crate::reply::{Reply, Result};
use crate::store::{Owner, Project, Store};

/// Accepted `order_by` values for project lists.
const PROJECT_ORDERS: &[&str] = &[
    "id",
    "name",
    "path",
    "created_at",
    "updated_at",
    "last_activity_at",
    "similarity",
    "star_count",
];

/// Dispatches `/projects/:id/...`; an old path of a renamed or transferred
/// project answers `301` to its new one.
pub(crate) fn route(ctx: &Ctx<'_>, store: &mut Store, id: &str, rest: &[&str]) -> Reply {
    if let Some(project) = store.redirected_project(id) {
        return redirect(ctx, &project.path_with_namespace);
    }
    let Some(pid) = store.find_project(id).map(|p| p.id) else {
        return Reply::not_found("Project");
    };
    match (ctx.method, rest) {
        ("GET", []) => show(ctx, store, pid),
        ("DELETE", []) => Reply::status_message(StatusCode::ACCEPTED),
        ("GET", ["users"]) => users::project_users(ctx, store),
        ("GET", ["members"] | ["members", "all"]) => users::members(ctx, store),
        (_, ["merge_requests", rest @ ..]) => merge_requests::route(ctx, store, pid, rest),
        ("GET", ["issues", iid, "resource_label_events"]) => match parse_id(iid, "issue_iid") {
            Ok(_) => paginate(ctx, Vec::new()),
            Err(reply) => reply,
        },
        (_, ["labels", rest @ ..]) => labels::route(ctx, store, Owner::Project(pid), rest),
        (_, ["hooks", rest @ ..]) => hooks::route(ctx, store, Owner::Project(pid), rest),
        (_, ["repository", rest @ ..]) => repository::route(ctx, store, pid, rest),
        _ => Reply::route_not_found(),
    }
}

/// `301` to the same path and query under the project's new path.
fn redirect(ctx: &Ctx<'_>, new_path: &str) -> Reply {
    let mut location = format!(
        "{}/api/v4/projects/{}",
        ctx.base_url,
        percent_encode(new_path)
    );
    // raw_segments = ["projects", "<old id>", rest...]
    if let Some(rest) = ctx.raw_segments.get(2..).filter(|r| !r.is_empty()) {
        location.push('/');
        location.push_str(&rest.join("/"));
    }
    if let Some(query) = ctx.raw_query {
        location.push('?');
        location.push_str(query);
    }
    Reply::status_message(StatusCode::MOVED_PERMANENTLY).with_header(LOCATION, location)
}

/// `GET /projects/:id`.
fn show(ctx: &Ctx<'_>, store: &Store, pid: u64) -> Reply {
    match store.project(pid) {
        Some(p) => Reply::ok(ctx.render(store).project(p)),
        None => Reply::not_found("Project"),
    }
}

/// `GET /projects`: every project (`search`, `order_by`, `sort`).
pub(crate) fn list(ctx: &Ctx<'_>, store: &Store) -> Reply {
    respond_projects(ctx, store, store.projects.iter().collect())
}

/// `GET /users/:id/projects`: the projects the user created.
pub(crate) fn user_projects(ctx: &Ctx<'_>, store: &Store, user_id: &str) -> Reply {
    let Some(user) = store.find_user(user_id).map(|u| u.id) else {
        return Reply::not_found("User");
    };
    let projects = store
        .projects
        .iter()
        .filter(|p| p.creator_id() == user)
        .collect();
    respond_projects(ctx, store, projects)
}

/// `GET /groups/:id/projects`: direct projects, or with
/// `include_subgroups=true` also those of subgroups.
pub(crate) fn group_projects(ctx: &Ctx<'_>, store: &Store, gid: u64) -> Reply {
    let include_subgroups = ctx.params.flag("include_subgroups");
    respond_projects(ctx, store, store.group_projects(gid, include_subgroups))
}

fn respond_projects(ctx: &Ctx<'_>, store: &Store, projects: Vec<&Project>) -> Reply {
    match sorted_projects(ctx, projects) {
        Ok(projects) => {
            let render = ctx.render(store);
            paginate(
                ctx,
                projects.into_iter().map(|p| render.project(p)).collect(),
            )
        }
        Err(reply) => reply,
    }
}

/// Filters by `search` and sorts (default: newest first, i.e. id desc).
fn sorted_projects<'s>(ctx: &Ctx<'_>, mut projects: Vec<&'s Project>) -> Result<Vec<&'s Project>> {
    let order = order_by(ctx, "created_at", PROJECT_ORDERS)?;
    let desc = sort_desc(ctx, true)?;
    if let Some(search) = ctx.params.str("search").map(|s| s.to_lowercase()) {
        projects.retain(|p| {
            p.name.to_lowercase().contains(&search)
                || p.path_with_namespace.to_lowercase().contains(&search)
        });
    }
    match order {
        "name" => projects.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        "path" => projects.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id))),
        // created_at grows with the id; other timestamps are all equal.
        _ => projects.sort_by_key(|p| p.id),
    }
    if desc {
        projects.reverse();
    }
    Ok(projects)
}
