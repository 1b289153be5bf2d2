//! Scope on the way out: which project or group a JSON object in GitLab's
//! answer belongs to, and the removal of what lies outside a client's scope
//! (the [`ScopeGuard`] methods for answers).
//!
//! An object is tied to a project or group by GitLab's own fields: a project
//! has `path_with_namespace`, a group `full_path`, a namespace `kind` and
//! `full_path`; anything else that belongs to one (merge requests, issues,
//! hooks, events…) carries `project_id` or `group_id`, which is resolved to
//! the canonical object. Objects with none of these (users, labels, commits)
//! are not tied to a project or group and pass.

use std::collections::HashMap;

use futures_util::{StreamExt, stream};
use serde_json::Value;

use super::guard::{LookupCounts, ScopeGuard};
use super::resolve::{Freshness, Lookup, ResolveError};
use super::{FullPath, Kind};

/// What a JSON object belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tie {
    /// It is a project or group, with its canonical path.
    Object(Kind, FullPath),
    /// It belongs to the project or group with this numeric id.
    ById(Kind, u64),
    /// A user's personal namespace (never in a scope: scopes name groups).
    UserNamespace,
    /// It belongs to no project or group.
    Untied,
}

/// Reads what `item` belongs to from GitLab's field names.
pub(crate) fn classify(item: &Value) -> Tie {
    let Some(object) = item.as_object() else {
        return Tie::Untied;
    };
    let text = |name: &str| object.get(name).and_then(Value::as_str);
    if let Some(path) = text("path_with_namespace") {
        return Tie::Object(Kind::Project, FullPath::from_gitlab(path));
    }
    if let Some(path) = text("full_path") {
        return match text("kind") {
            Some("user") => Tie::UserNamespace,
            _ => Tie::Object(Kind::Group, FullPath::from_gitlab(path)),
        };
    }
    let number = |name: &str| object.get(name).and_then(Value::as_u64);
    if let Some(id) = number("project_id") {
        return Tie::ById(Kind::Project, id);
    }
    if let Some(id) = number("group_id") {
        return Tie::ById(Kind::Group, id);
    }
    // Some objects carry their project or group nested (to-do items, say).
    for (name, kind) in [("project", Kind::Project), ("group", Kind::Group)] {
        if let Some(nested) = object.get(name).filter(|v| v.is_object()) {
            return match classify(nested) {
                Tie::Untied => match nested.get("id").and_then(Value::as_u64) {
                    Some(id) => Tie::ById(kind, id),
                    None => Tie::Untied,
                },
                tie => tie,
            };
        }
    }
    Tie::Untied
}

/// Nested lists of projects or groups inside one object (a group's
/// `projects` and `shared_projects`, a project's `shared_with_groups`), and
/// nested objects that name another project (`forked_from_project`).
const NESTED_LISTS: [&str; 3] = ["projects", "shared_projects", "shared_with_groups"];
const NESTED_OBJECTS: [&str; 1] = ["forked_from_project"];

/// The outcome of filtering one JSON answer.
#[derive(Debug, PartialEq)]
pub(crate) enum Filtered {
    /// The answer as it may be relayed; `hidden` items were removed (if 0,
    /// the value is unchanged).
    Visible {
        /// The filtered value.
        value: Value,
        /// How many items were removed.
        hidden: usize,
    },
    /// The answer is itself a project or group (or belongs to one) outside the scope.
    OutOfScope(Kind),
}

/// Most lookups one answer starts at once.
const MAX_CONCURRENT_LOOKUPS: usize = 8;

impl ScopeGuard<'_> {
    /// Filters GitLab's JSON answer: a list loses its out-of-scope items; an
    /// object out of scope is refused whole; an object in scope loses
    /// out-of-scope entries of its nested lists.
    pub(crate) async fn filter_answer(
        &self,
        value: Value,
        counts: &mut LookupCounts,
    ) -> Result<Filtered, ResolveError> {
        match value {
            Value::Array(items) => {
                let (kept, hidden) = self.retain(items, counts).await?;
                Ok(Filtered::Visible {
                    value: Value::Array(kept),
                    hidden,
                })
            }
            value @ Value::Object(_) => {
                let tie = classify(&value);
                self.observe(&value, &tie);
                let Value::Object(mut object) = value else {
                    return Ok(Filtered::Visible { value, hidden: 0 });
                };
                let ties = self.decide(std::slice::from_ref(&tie), counts).await?;
                if !ties[0] {
                    return Ok(Filtered::OutOfScope(tie_kind(&tie)));
                }
                let mut hidden = 0;
                for name in NESTED_LISTS {
                    if let Some(Value::Array(items)) = object.get_mut(name) {
                        let (kept, removed) = self.retain(std::mem::take(items), counts).await?;
                        *items = kept;
                        hidden += removed;
                    }
                }
                for name in NESTED_OBJECTS {
                    if let Some(nested) = object.get(name)
                        && nested.is_object()
                    {
                        let visible = self.decide(&[classify(nested)], counts).await?;
                        if !visible[0] {
                            object.insert(name.to_owned(), Value::Null);
                            hidden += 1;
                        }
                    }
                }
                Ok(Filtered::Visible {
                    value: Value::Object(object),
                    hidden,
                })
            }
            other => Ok(Filtered::Visible {
                value: other,
                hidden: 0,
            }),
        }
    }

    async fn retain(
        &self,
        items: Vec<Value>,
        counts: &mut LookupCounts,
    ) -> Result<(Vec<Value>, usize), ResolveError> {
        let ties: Vec<Tie> = items.iter().map(nested_or_top_tie).collect();
        for (item, tie) in items.iter().zip(&ties) {
            self.observe(item, tie);
        }
        let visible = self.decide(&ties, counts).await?;
        let before = items.len();
        let kept: Vec<Value> = items
            .into_iter()
            .zip(visible)
            .filter_map(|(item, visible)| visible.then_some(item))
            .collect();
        let hidden = before - kept.len();
        Ok((kept, hidden))
    }

    /// Whether a redirect GitLab sent (a moved project) leads into the scope:
    /// its `Location` names the object's new path, which must not be revealed
    /// when it lies outside. `None` when the redirect names no project or
    /// group (the caller refuses it: it cannot be checked).
    pub(crate) async fn redirect_allowed(
        &self,
        location: &str,
        counts: &mut LookupCounts,
    ) -> Result<Option<(Kind, bool)>, ResolveError> {
        for kind in [Kind::Project, Kind::Group, Kind::Namespace] {
            let Some(segment) = super::resolve::redirect_segment(kind, location) else {
                continue;
            };
            let Some(id) = percent_decode(&segment) else {
                return Ok(Some((kind, false)));
            };
            let (lookup, source) = self
                .resolver
                .resolve(self.upstream, kind, &id, Freshness::Fresh)
                .await?;
            counts.add(source);
            let allowed = match lookup {
                Lookup::Found(object) => self.scope.allows(kind, &object.path),
                Lookup::NotFound => false,
            };
            return Ok(Some((kind, allowed)));
        }
        Ok(None)
    }

    /// Whether each tie is in scope. Ids are resolved once each, concurrently.
    pub(super) async fn decide(
        &self,
        ties: &[Tie],
        counts: &mut LookupCounts,
    ) -> Result<Vec<bool>, ResolveError> {
        let mut ids: Vec<(Kind, u64)> = ties
            .iter()
            .filter_map(|tie| match tie {
                Tie::ById(kind, id) => Some((*kind, *id)),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let lookups: Vec<_> = stream::iter(ids.clone().into_iter().map(|(kind, id)| async move {
            let text = id.to_string();
            self.resolver
                .resolve(self.upstream, kind, &text, Freshness::Cached)
                .await
        }))
        .buffered(MAX_CONCURRENT_LOOKUPS)
        .collect()
        .await;
        let mut resolved: HashMap<(Kind, u64), bool> = HashMap::with_capacity(ids.len());
        for ((kind, id), lookup) in ids.into_iter().zip(lookups) {
            let (lookup, source) = lookup?;
            counts.add(source);
            let visible = match lookup {
                Lookup::Found(object) => self.scope.allows(kind, &object.path),
                Lookup::NotFound => false,
            };
            resolved.insert((kind, id), visible);
        }
        Ok(ties
            .iter()
            .map(|tie| match tie {
                Tie::Object(kind, path) => self.scope.allows(*kind, path),
                Tie::ById(kind, id) => resolved.get(&(*kind, *id)).copied().unwrap_or(false),
                Tie::UserNamespace => false,
                Tie::Untied => true,
            })
            .collect())
    }
}

impl ScopeGuard<'_> {
    /// Tells the cache what GitLab just said about a project or group, on
    /// routes whose answers are projects, groups or namespaces (never on
    /// routes that could relay JSON someone else wrote).
    pub(super) fn observe(&self, item: &Value, tie: &Tie) {
        if !self.answers_are_objects {
            return;
        }
        if let (Tie::Object(kind, path), Some(id)) = (tie, item.get("id").and_then(Value::as_u64))
            && item.get("group_full_path").is_none()
        {
            self.resolver.invalidate_if_moved(*kind, id, path);
        }
    }
}

/// Decodes `%XX` escapes; `None` if the result is not UTF-8 or an escape is broken.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An item's tie; a `shared_with_groups` entry names its group by
/// `group_full_path` rather than `full_path`.
pub(super) fn nested_or_top_tie(item: &Value) -> Tie {
    if let Some(path) = item.get("group_full_path").and_then(Value::as_str) {
        return Tie::Object(Kind::Group, FullPath::from_gitlab(path));
    }
    classify(item)
}

/// The kind an object's tie names (a user namespace counts as a namespace).
pub(super) fn tie_kind(tie: &Tie) -> Kind {
    match tie {
        Tie::Object(kind, _) | Tie::ById(kind, _) => *kind,
        Tie::UserNamespace => Kind::Namespace,
        Tie::Untied => Kind::Group,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ties_come_from_gitlab_field_names() {
        assert_eq!(
            classify(
                &json!({"id": 1, "path_with_namespace": "Acme/Backend", "namespace": {"full_path": "acme"}})
            ),
            Tie::Object(Kind::Project, FullPath::from_gitlab("acme/backend"))
        );
        assert_eq!(
            classify(&json!({"id": 10, "full_path": "acme", "parent_id": null})),
            Tie::Object(Kind::Group, FullPath::from_gitlab("acme"))
        );
        assert_eq!(
            classify(&json!({"id": 10, "kind": "group", "full_path": "acme"})),
            Tie::Object(Kind::Group, FullPath::from_gitlab("acme"))
        );
        assert_eq!(
            classify(&json!({"id": 2, "kind": "user", "full_path": "alice"})),
            Tie::UserNamespace
        );
        assert_eq!(
            classify(&json!({"iid": 1, "project_id": 101})),
            Tie::ById(Kind::Project, 101)
        );
        assert_eq!(
            classify(&json!({"id": 9, "group_id": 10})),
            Tie::ById(Kind::Group, 10)
        );
        assert_eq!(
            classify(&json!({"id": 2, "username": "alice"})),
            Tie::Untied
        );
        assert_eq!(classify(&json!("text")), Tie::Untied);
        assert_eq!(
            classify(
                &json!({"id": 7, "project": {"id": 301, "path_with_namespace": "secret/vault"}})
            ),
            Tie::Object(Kind::Project, FullPath::from_gitlab("secret/vault"))
        );
        assert_eq!(
            classify(&json!({"id": 7, "project": {"id": 301}})),
            Tie::ById(Kind::Project, 301)
        );
        assert_eq!(
            classify(&json!({"id": 7, "group": {"id": 30, "full_path": "secret"}})),
            Tie::Object(Kind::Group, FullPath::from_gitlab("secret"))
        );
        assert_eq!(
            nested_or_top_tie(&json!({"group_id": 30, "group_full_path": "secret"})),
            Tie::Object(Kind::Group, FullPath::from_gitlab("secret"))
        );
    }
}
