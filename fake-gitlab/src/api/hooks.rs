//! Group and project webhooks (`/groups/:id/hooks`, `/projects/:id/hooks`).

use serde_json::{Map, Value};

use super::pagination::paginate;
use super::{Ctx, parse_id};
use crate::reply::{Reply, Result};
use crate::store::{Hook, Owner, Store, coerce_hook_flags};

/// Fixed creation time of hooks created through the API.
const CREATED_AT: &str = "2024-06-01T12:00:00.000Z";
/// Parameters never stored as hook attributes.
const NOT_STORED: &[&str] = &["id", "hook_id", "created_at", "project_id", "group_id"];

/// Dispatches `.../hooks[/:hook_id]`.
pub(crate) fn route(ctx: &Ctx<'_>, store: &mut Store, owner: Owner, rest: &[&str]) -> Reply {
    let outcome = match (ctx.method, rest) {
        ("GET", []) => Ok(list(ctx, store, owner)),
        ("POST", []) => create(ctx, store, owner),
        ("GET", [id]) => find(store, owner, id).map(|i| Reply::ok(render(ctx, store, i))),
        ("PUT", [id]) => update(ctx, store, owner, id),
        ("DELETE", [id]) => find(store, owner, id).map(|i| {
            store.hooks.remove(i);
            Reply::no_content()
        }),
        _ => Err(Reply::route_not_found()),
    };
    outcome.unwrap_or_else(|reply| reply)
}

fn render(ctx: &Ctx<'_>, store: &Store, index: usize) -> Value {
    ctx.render(store).hook(&store.hooks[index])
}

/// Index in `store.hooks` of `owner`'s hook `id`.
fn find(store: &Store, owner: Owner, id: &str) -> Result<usize> {
    let id = parse_id(id, "hook_id")?;
    store
        .hooks
        .iter()
        .position(|h| h.owner == owner && h.id == id)
        .ok_or_else(|| Reply::not_found("Hook"))
}

/// `GET .../hooks`.
fn list(ctx: &Ctx<'_>, store: &Store, owner: Owner) -> Reply {
    let render = ctx.render(store);
    let items = store
        .hooks
        .iter()
        .filter(|h| h.owner == owner)
        .map(|h| render.hook(h))
        .collect();
    paginate(ctx, items)
}

/// The given parameters to store on a hook (`url` must not be blank).
fn given_fields(ctx: &Ctx<'_>) -> Result<Map<String, Value>> {
    if ctx
        .params
        .str("url")
        .is_some_and(|url| url.trim().is_empty())
    {
        return Err(Reply::missing("url"));
    }
    let mut fields: Map<String, Value> = ctx
        .params
        .iter()
        .filter(|(k, _)| !NOT_STORED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    coerce_hook_flags(&mut fields);
    Ok(fields)
}

/// `POST .../hooks` (requires `url`) → `201`.
fn create(ctx: &Ctx<'_>, store: &mut Store, owner: Owner) -> Result<Reply> {
    if ctx.params.str("url").is_none() {
        return Err(Reply::missing("url"));
    }
    let fields = given_fields(ctx)?;
    let hook = Hook {
        id: store.new_hook_id(),
        owner,
        created_at: CREATED_AT.into(),
        fields,
    };
    let body = ctx.render(store).hook(&hook);
    store.hooks.push(hook);
    Ok(Reply::created(body))
}

/// `PUT .../hooks/:hook_id`: merges the given attributes.
fn update(ctx: &Ctx<'_>, store: &mut Store, owner: Owner, id: &str) -> Result<Reply> {
    let index = find(store, owner, id)?;
    let fields = given_fields(ctx)?;
    store.hooks[index].fields.extend(fields);
    Ok(Reply::ok(render(ctx, store, index)))
}
