//! Group and project labels (`/groups/:id/labels`, `/projects/:id/labels`).

use http::StatusCode;
use serde_json::{Value, json};

use super::Ctx;
use super::pagination::paginate;
use crate::reply::{Reply, Result};
use crate::store::{Label, Owner, Store, label_matches};

/// Dispatches `.../labels[/:label_id]`.
pub(crate) fn route(ctx: &Ctx<'_>, store: &mut Store, owner: Owner, rest: &[&str]) -> Reply {
    let outcome = match (ctx.method, rest) {
        ("GET", []) => Ok(list(ctx, store, owner)),
        ("POST", []) => create(ctx, store, owner),
        ("PUT", []) => name_param(ctx).and_then(|name| update(ctx, store, owner, &name)),
        ("DELETE", []) => name_param(ctx).and_then(|name| delete(store, owner, &name)),
        ("GET", [key]) => show(ctx, store, owner, key),
        ("PUT", [key]) => update(ctx, store, owner, key),
        ("DELETE", [key]) => delete(store, owner, key),
        _ => Err(Reply::route_not_found()),
    };
    outcome.unwrap_or_else(|reply| reply)
}

/// The `name` parameter of the older `PUT/DELETE .../labels?name=` forms.
fn name_param(ctx: &Ctx<'_>) -> Result<String> {
    ctx.params
        .str("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Reply::missing("name"))
}

/// `GET .../labels`: own labels plus ancestor groups' ones unless
/// `include_ancestor_groups=false`; `search` filters; sorted by name.
fn list(ctx: &Ctx<'_>, store: &Store, owner: Owner) -> Reply {
    let with_ancestors = ctx.params.bool("include_ancestor_groups").unwrap_or(true);
    let search = ctx.params.str("search").map(|s| s.to_lowercase());
    let mut labels: Vec<&Label> = store
        .visible_labels(owner, with_ancestors)
        .into_iter()
        .filter(|l| {
            search
                .as_deref()
                .is_none_or(|s| l.name.to_lowercase().contains(s))
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let render = ctx.render(store);
    paginate(
        ctx,
        labels.into_iter().map(|l| render.label(l, owner)).collect(),
    )
}

/// `GET .../labels/:label_id` (own or ancestor group label).
fn show(ctx: &Ctx<'_>, store: &Store, owner: Owner, key: &str) -> Result<Reply> {
    let label = store
        .visible_labels(owner, true)
        .into_iter()
        .find(|l| label_matches(l, key))
        .ok_or_else(|| Reply::not_found("Label"))?;
    Ok(Reply::ok(ctx.render(store).label(label, owner)))
}

/// Index in `store.labels` of `owner`'s own label `key`.
fn own_label(store: &Store, owner: Owner, key: &str) -> Result<usize> {
    store
        .labels
        .iter()
        .position(|l| l.owner == owner && label_matches(l, key))
        .ok_or_else(|| Reply::not_found("Label"))
}

/// Whether `owner` already has a label `name` (other than `except`).
fn name_taken(store: &Store, owner: Owner, name: &str, except: Option<u64>) -> bool {
    store
        .labels
        .iter()
        .any(|l| l.owner == owner && l.name == name && Some(l.id) != except)
}

/// Accepts `#rgb`, `#rrggbb` or a CSS colour name.
fn check_color(color: &str) -> Result<()> {
    let valid = match color.strip_prefix('#') {
        Some(hex) => [3, 6].contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !color.is_empty() && color.bytes().all(|b| b.is_ascii_alphabetic()),
    };
    if valid {
        Ok(())
    } else {
        Err(Reply::json(
            StatusCode::BAD_REQUEST,
            json!({ "message": { "color": ["must be a valid color code"] } }),
        ))
    }
}

/// The optional integer `priority` (`null`/empty clears it).
fn priority(ctx: &Ctx<'_>) -> Result<Option<i64>> {
    match ctx.params.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match crate::params::scalar_text(v).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| Reply::invalid("priority")),
        },
    }
}

/// `POST .../labels` (requires `name` and `color`).
fn create(ctx: &Ctx<'_>, store: &mut Store, owner: Owner) -> Result<Reply> {
    let p = &ctx.params;
    let name = p.str("name").filter(|n| !n.trim().is_empty());
    let name = name.ok_or_else(|| Reply::missing("name"))?;
    let color = p.str("color").ok_or_else(|| Reply::missing("color"))?;
    check_color(&color)?;
    if name_taken(store, owner, &name, None) {
        return Err(Reply::message(StatusCode::CONFLICT, "Label already exists"));
    }
    let label = Label {
        id: store.new_label_id(),
        owner,
        name,
        color,
        description: p.str("description").unwrap_or_default(),
        priority: priority(ctx)?,
    };
    let body = ctx.render(store).label(&label, owner);
    store.labels.push(label);
    Ok(Reply::created(body))
}

/// `PUT .../labels/:label_id` (`new_name`, `color`, `description`,
/// `priority`; at least one).
fn update(ctx: &Ctx<'_>, store: &mut Store, owner: Owner, key: &str) -> Result<Reply> {
    if !["new_name", "color", "description", "priority"]
        .iter()
        .any(|k| ctx.params.has(k))
    {
        return Err(Reply::bad_request(
            "new_name, color, description, priority are missing, at least one parameter must be provided",
        ));
    }
    let index = own_label(store, owner, key)?;
    let change = LabelChange::from_ctx(ctx, store, owner, store.labels[index].id)?;
    let old_name = store.labels[index].name.clone();
    change.apply(&mut store.labels[index]);
    if let Some(name) = &change.name {
        rename_on_merge_requests(store, owner, &old_name, Some(name));
    }
    Ok(Reply::ok(
        ctx.render(store).label(&store.labels[index], owner),
    ))
}

/// A validated label update.
struct LabelChange {
    name: Option<String>,
    color: Option<String>,
    description: Option<String>,
    priority: Option<Option<i64>>,
}

impl LabelChange {
    /// Reads and checks the update of label `id` of `owner`.
    fn from_ctx(ctx: &Ctx<'_>, store: &Store, owner: Owner, id: u64) -> Result<LabelChange> {
        let p = &ctx.params;
        let name = p.str("new_name").filter(|n| !n.trim().is_empty());
        if name
            .as_deref()
            .is_some_and(|n| name_taken(store, owner, n, Some(id)))
        {
            return Err(Reply::message(StatusCode::CONFLICT, "Label already exists"));
        }
        let color = p.str("color");
        if let Some(color) = &color {
            check_color(color)?;
        }
        let priority = if p.has("priority") {
            Some(priority(ctx)?)
        } else {
            None
        };
        Ok(LabelChange {
            name,
            color,
            description: p.str("description"),
            priority,
        })
    }

    fn apply(&self, label: &mut Label) {
        if let Some(name) = &self.name {
            label.name = name.clone();
        }
        if let Some(color) = &self.color {
            label.color = color.clone();
        }
        if let Some(description) = &self.description {
            label.description = description.clone();
        }
        if let Some(priority) = self.priority {
            label.priority = priority;
        }
    }
}

/// `DELETE .../labels/:label_id` → `204`.
fn delete(store: &mut Store, owner: Owner, key: &str) -> Result<Reply> {
    let index = own_label(store, owner, key)?;
    let label = store.labels.remove(index);
    rename_on_merge_requests(store, owner, &label.name, None);
    Ok(Reply::no_content())
}

/// Renames (or with `None` removes) a label on the merge requests that can
/// see `owner`'s labels, since GitLab links merge requests to labels by id.
fn rename_on_merge_requests(store: &mut Store, owner: Owner, old: &str, new: Option<&String>) {
    let projects: Vec<u64> = match owner {
        Owner::Project(id) => vec![id],
        Owner::Group(id) => store
            .group_projects(id, true)
            .iter()
            .map(|p| p.id)
            .collect(),
    };
    for mr in store
        .merge_requests
        .iter_mut()
        .filter(|m| projects.contains(&m.project_id))
    {
        let before = mr.labels.len();
        mr.labels.retain(|l| l != old);
        if let (Some(new), true) = (new, mr.labels.len() != before) {
            mr.labels.push(new.clone());
            mr.labels.sort();
            mr.labels.dedup();
        }
    }
}
