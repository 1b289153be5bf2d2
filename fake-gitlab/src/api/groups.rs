//! `/groups` and `/groups/:id/...`.

use super::pagination::paginate;
use super::{Ctx, hooks, labels, merge_requests, order_by, projects, sort_desc, users};
use crate::reply::{Reply, Result};
use crate::store::{Group, Owner, Store};

/// Dispatches `/groups/:id/...`.
pub(crate) fn route(ctx: &Ctx<'_>, store: &mut Store, id: &str, rest: &[&str]) -> Reply {
    let Some(gid) = store.find_group(id).map(|g| g.id) else {
        return Reply::not_found("Group");
    };
    match (ctx.method, rest) {
        ("GET", []) => show(ctx, store, gid),
        ("GET", ["descendant_groups"]) => below(ctx, store, gid, false),
        ("GET", ["subgroups"]) => below(ctx, store, gid, true),
        ("GET", ["projects"]) => projects::group_projects(ctx, store, gid),
        ("GET", ["members"] | ["members", "all"]) => users::members(ctx, store),
        ("GET", ["merge_requests"]) => merge_requests::group_list(ctx, store, gid),
        (_, ["labels", rest @ ..]) => labels::route(ctx, store, Owner::Group(gid), rest),
        (_, ["hooks", rest @ ..]) => hooks::route(ctx, store, Owner::Group(gid), rest),
        _ => Reply::route_not_found(),
    }
}

/// `GET /groups` (filters `top_level_only`, `search`; `order_by`, `sort`).
pub(crate) fn list(ctx: &Ctx<'_>, store: &Store) -> Reply {
    let top_level_only = ctx.params.flag("top_level_only");
    let groups: Vec<&Group> = store
        .groups
        .iter()
        .filter(|g| !top_level_only || g.parent_id.is_none())
        .collect();
    respond_groups(ctx, store, groups)
}

/// `GET /groups/:id`.
fn show(ctx: &Ctx<'_>, store: &Store, gid: u64) -> Reply {
    match store.group(gid) {
        Some(g) => Reply::ok(ctx.render(store).group(g)),
        None => Reply::not_found("Group"),
    }
}

/// `descendant_groups` (all levels) or `subgroups` (`direct_only`).
fn below(ctx: &Ctx<'_>, store: &Store, gid: u64, direct_only: bool) -> Reply {
    let groups = store
        .descendants(gid)
        .into_iter()
        .filter(|g| !direct_only || g.parent_id == Some(gid))
        .collect();
    respond_groups(ctx, store, groups)
}

/// Applies `search`, `order_by`, `sort` and pagination to `groups`.
fn respond_groups(ctx: &Ctx<'_>, store: &Store, groups: Vec<&Group>) -> Reply {
    match sorted_groups(ctx, groups) {
        Ok(groups) => {
            let render = ctx.render(store);
            paginate(ctx, groups.into_iter().map(|g| render.group(g)).collect())
        }
        Err(reply) => reply,
    }
}

fn sorted_groups<'s>(ctx: &Ctx<'_>, mut groups: Vec<&'s Group>) -> Result<Vec<&'s Group>> {
    let order = order_by(ctx, "name", &["name", "path", "id", "similarity"])?;
    let desc = sort_desc(ctx, false)?;
    if let Some(search) = ctx.params.str("search").map(|s| s.to_lowercase()) {
        groups.retain(|g| {
            g.name.to_lowercase().contains(&search) || g.full_path.to_lowercase().contains(&search)
        });
    }
    match order {
        "name" => groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        "path" => groups.sort_by(|a, b| a.path.cmp(&b.path).then(a.id.cmp(&b.id))),
        _ => groups.sort_by_key(|g| g.id),
    }
    if desc {
        groups.reverse();
    }
    Ok(groups)
}
