//! Users, members and namespaces.

use serde_json::Value;

use super::Ctx;
use super::pagination::paginate;
use crate::reply::Reply;
use crate::store::{Store, User};

/// The id of the token's owner.
const CURRENT_USER_ID: u64 = 1;
/// Members of every group and project: (user id, access level).
const MEMBERS: &[(u64, u64)] = &[(1, 50), (2, 30)];

/// `GET /user`.
pub(crate) fn current(ctx: &Ctx<'_>, store: &Store) -> Reply {
    match store.user(CURRENT_USER_ID) {
        Some(u) => Reply::ok(ctx.render(store).current_user(u)),
        None => Reply::not_found("User"),
    }
}

/// Case-insensitive substring match of `search` against a user.
fn user_matches(u: &User, search: Option<&str>) -> bool {
    let Some(search) = search else { return true };
    let search = search.to_lowercase();
    u.username.to_lowercase().contains(&search) || u.name.to_lowercase().contains(&search)
}

/// `GET /users` (filters `username`, `search`).
pub(crate) fn list(ctx: &Ctx<'_>, store: &Store) -> Reply {
    let username = ctx.params.str("username");
    let search = ctx.params.str("search");
    let render = ctx.render(store);
    let items: Vec<Value> = store
        .users
        .iter()
        .filter(|u| {
            username
                .as_deref()
                .is_none_or(|name| u.username.eq_ignore_ascii_case(name))
        })
        .filter(|u| user_matches(u, search.as_deref()))
        .map(|u| render.user(u))
        .collect();
    paginate(ctx, items)
}

/// `GET /users/:id`.
pub(crate) fn show(ctx: &Ctx<'_>, store: &Store, id: &str) -> Reply {
    match id.parse().ok().and_then(|id| store.user(id)) {
        Some(u) => Reply::ok(ctx.render(store).user(u)),
        None => Reply::not_found("User"),
    }
}

/// `GET /projects/:id/users` (filter `search`).
pub(crate) fn project_users(ctx: &Ctx<'_>, store: &Store) -> Reply {
    let search = ctx.params.str("search");
    let render = ctx.render(store);
    let items: Vec<Value> = store
        .users
        .iter()
        .filter(|u| user_matches(u, search.as_deref()))
        .map(|u| render.user(u))
        .collect();
    paginate(ctx, items)
}

/// `GET /groups/:id/members[/all]`, `GET /projects/:id/members[/all]`.
pub(crate) fn members(ctx: &Ctx<'_>, store: &Store) -> Reply {
    let render = ctx.render(store);
    let items: Vec<Value> = MEMBERS
        .iter()
        .filter_map(|(id, level)| store.user(*id).map(|u| render.member(u, *level)))
        .collect();
    paginate(ctx, items)
}

/// `GET /namespaces/:id`: a group's namespace (by id or full path, any
/// case) or a user's (by id or username).
pub(crate) fn namespace(ctx: &Ctx<'_>, store: &Store, id: &str) -> Reply {
    let render = ctx.render(store);
    if let Some(group) = store.find_group(id) {
        return Reply::ok(render.group_namespace(group));
    }
    let user = match id.parse::<u64>() {
        Ok(number) => store.user(number),
        Err(_) => store
            .users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(id)),
    };
    match user {
        Some(user) => Reply::ok(render.user_namespace(user)),
        None => Reply::not_found("Namespace"),
    }
}

/// `GET /namespaces` (filter `search`): the current user's namespace, then
/// every group.
pub(crate) fn namespaces(ctx: &Ctx<'_>, store: &Store) -> Reply {
    let search = ctx.params.str("search").map(|s| s.to_lowercase());
    let matches = |path: &str| {
        search
            .as_deref()
            .is_none_or(|s| path.to_lowercase().contains(s))
    };
    let render = ctx.render(store);
    let mut items: Vec<Value> = store
        .user(CURRENT_USER_ID)
        .filter(|u| matches(&u.username))
        .map(|u| render.user_namespace(u))
        .into_iter()
        .collect();
    items.extend(
        store
            .groups
            .iter()
            .filter(|g| matches(&g.full_path))
            .map(|g| render.group_namespace(g)),
    );
    paginate(ctx, items)
}
