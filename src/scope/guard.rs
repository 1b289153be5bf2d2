//! One client's scope at work on one request: on the way in, every project,
//! group or namespace the request names is checked before anything is
//! forwarded ([`ScopeGuard::check_request`], here); on the way out, GitLab's
//! answer loses what lies outside ([`ScopeGuard::filter_answer`] and
//! [`ScopeGuard::check_redirect`], in [`super::filter`]).
//!
//! Both directions decide on GitLab's canonical objects through the same
//! resolution cache, and both fail closed: an object that cannot be resolved
//! is refused, never let through unchecked.

use std::sync::Arc;

use futures_util::{StreamExt, stream};

use super::resolve::{Freshness, Lookup, Resolved, Resolver, Source};
use super::{Kind, OBJECT_PARAMS, Scope};
use crate::canonical::{FORMAT_SUFFIXES, Param, ParamValue, RequestHead};
use crate::policy::Permit;
use crate::upstream::Upstream;

/// Decides on objects for one client's scope, resolving ids through the cache.
pub(crate) struct ScopeGuard<'a> {
    /// The client's scope.
    pub(super) scope: &'a Scope,
    /// The resolution cache.
    pub(super) resolver: &'a Resolver,
    /// GitLab, for resolutions.
    pub(super) upstream: &'a Upstream,
    /// Whether the route's answers are projects, groups or namespaces
    /// ([`lists_objects`]): only those tell the cache about moves.
    pub(super) answers_are_objects: bool,
    /// Hooks of this client are relayed through glgate, which scopes every
    /// delivery: a group hook then reaches only what the scope allows.
    pub(super) hooks_relayed: bool,
}

/// Why the scope refuses a request (before anything is forwarded) or an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScopeRefusal {
    /// The object lies outside the scope, or does not exist: the client is
    /// answered exactly as GitLab answers for an object it cannot see.
    #[error("{kind} outside the scope (exists: {exists})")]
    OutOfScope {
        /// Project, group or namespace.
        kind: Kind,
        /// Whether GitLab knows it (for the audit only).
        exists: bool,
    },
    /// GitLab could not say what the object is.
    #[error("scope check failed")]
    Unavailable,
    /// A group hook would be created or changed on a group with something
    /// outside the scope below it: the hook would deliver its events too.
    #[error("group hook on a group not wholly in scope")]
    GroupHookBeyondScope,
    /// A group request asks for something computed over the group's whole
    /// subtree (`statistics`, labels of descendant groups) while something
    /// below the group is excluded.
    #[error("'{0}' over a group not wholly in scope")]
    AggregateBeyondScope(&'static str),
    /// The request names more objects than one request may have checked.
    #[error("more than {MAX_NAMED_OBJECTS} projects, groups or namespaces named")]
    TooManyObjects,
}

/// Counts resolutions by outcome, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LookupCounts {
    /// Answers from the cache.
    pub hits: u64,
    /// Answers fetched from GitLab.
    pub misses: u64,
}

impl LookupCounts {
    pub(super) fn add(&mut self, source: Source) {
        match source {
            Source::Hit => self.hits += 1,
            Source::Miss => self.misses += 1,
        }
    }
}

impl<'a> ScopeGuard<'a> {
    /// The guard of `scope` for a request that matched `template`.
    pub(crate) fn new(
        scope: &'a Scope,
        resolver: &'a Resolver,
        upstream: &'a Upstream,
        template: &str,
    ) -> ScopeGuard<'a> {
        ScopeGuard {
            scope,
            resolver,
            upstream,
            answers_are_objects: lists_objects(template),
            hooks_relayed: false,
        }
    }

    /// The same guard for a client whose hooks are relayed through glgate
    /// (each delivery is checked against the scope, so a group hook on a
    /// group with exclusions below it leaks nothing).
    pub(crate) fn with_relayed_hooks(mut self, relayed: bool) -> ScopeGuard<'a> {
        self.hooks_relayed = relayed;
        self
    }

    /// Refuses the request unless every object it names is in scope: a
    /// template param `{project}`, `{group}` or `{namespace}`, or a query or
    /// body parameter such as `target_project_id`. Writes are checked on a
    /// fresh resolution, so a transfer out of scope is never missed by one.
    /// Each distinct object is resolved once, a few at a time; a request
    /// naming more than [`MAX_NAMED_OBJECTS`] is refused before any lookup.
    pub(crate) async fn check_request(
        &self,
        permit: &Permit,
        head: &RequestHead,
        body: &[Param],
        counts: &mut LookupCounts,
    ) -> Result<(), ScopeRefusal> {
        let freshness = if head.method().is_read() {
            Freshness::Cached
        } else {
            Freshness::Fresh
        };
        let named = named_objects(permit, head, body);
        if named.len() > MAX_NAMED_OBJECTS {
            return Err(ScopeRefusal::TooManyObjects);
        }
        // The futures are built before the stream, not by a closure inside
        // it: a closure borrowing `named` across the await would not be Send.
        let lookups: Vec<_> = named
            .iter()
            .map(|named| self.check_named(named.kind, named.id, freshness))
            .collect();
        let checked: Vec<_> = stream::iter(lookups)
            .buffered(MAX_CONCURRENT_LOOKUPS)
            .collect()
            .await;
        let mut verdict = Ok(());
        let mut path_group = None;
        for (named, (source, outcome)) in named.iter().zip(checked) {
            if let Some(source) = source {
                counts.add(source);
            }
            match outcome {
                Ok(object) if named.is_path_group => path_group = Some(object),
                Ok(_) => {}
                Err(refusal) if verdict.is_ok() => verdict = Err(refusal),
                Err(_) => {}
            }
        }
        verdict?;
        // What reaches below the path's group must find nothing excluded there.
        let whole_subtree = path_group
            .as_ref()
            .is_some_and(|group| self.scope.allows_subtree(&group.path));
        if writes_group_hook(head, permit.template()) && !whole_subtree && !self.hooks_relayed {
            return Err(ScopeRefusal::GroupHookBeyondScope);
        }
        if let Some(param) = aggregating_param(permit.template(), head.query(), body)
            && self.scope.has_exclusions()
            && !whole_subtree
        {
            return Err(ScopeRefusal::AggregateBeyondScope(param));
        }
        Ok(())
    }

    /// Checks one named object: what it resolved to when it is in scope,
    /// and where the answer came from when a lookup was made.
    async fn check_named(
        &self,
        kind: Kind,
        id: &str,
        freshness: Freshness,
    ) -> (Option<Source>, Result<Arc<Resolved>, ScopeRefusal>) {
        // GitLab may read a trailing `.json` as a response format when the id
        // ends the path (as in glgate's own lookup) but not when it does not
        // (as in the forwarded request): the two would name different objects.
        let lower = id.to_ascii_lowercase();
        if FORMAT_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix)) {
            let refusal = ScopeRefusal::OutOfScope {
                kind,
                exists: false,
            };
            return (None, Err(refusal));
        }
        let (lookup, source) = match self
            .resolver
            .resolve(self.upstream, kind, id, freshness)
            .await
        {
            Ok(resolved) => resolved,
            Err(error) => {
                tracing::warn!(%kind, %error, "scope check failed");
                return (None, Err(ScopeRefusal::Unavailable));
            }
        };
        let outcome = match lookup {
            Lookup::Found(object) if self.scope.allows(kind, &object.path) => Ok(object),
            Lookup::Found(_) => Err(ScopeRefusal::OutOfScope { kind, exists: true }),
            Lookup::NotFound => Err(ScopeRefusal::OutOfScope {
                kind,
                exists: false,
            }),
        };
        (Some(source), outcome)
    }
}

/// Most distinct projects, groups and namespaces one request may name: each
/// may cost a GitLab lookup, so one request cannot make glgate send dozens.
pub(crate) const MAX_NAMED_OBJECTS: usize = 20;

/// Most of one request's lookups in flight at once.
const MAX_CONCURRENT_LOOKUPS: usize = 4;

/// One object a request names, to be checked.
struct Named<'r> {
    kind: Kind,
    id: &'r str,
    /// The `{group}` of the path (what a group hook would be registered on).
    is_path_group: bool,
}

/// The objects a request names, in request order (path first), each
/// distinct spelling once.
fn named_objects<'r>(
    permit: &'r Permit,
    head: &'r RequestHead,
    body: &'r [Param],
) -> Vec<Named<'r>> {
    let mut named: Vec<Named<'r>> = Vec::new();
    let mut add = |kind: Kind, id: &'r str, is_path_group: bool| {
        if let Some(seen) = named.iter_mut().find(|n| n.kind == kind && n.id == id) {
            seen.is_path_group |= is_path_group;
        } else {
            named.push(Named {
                kind,
                id,
                is_path_group,
            });
        }
    };
    for binding in permit.bindings() {
        if let Some(kind) = Kind::from_param(&binding.name) {
            add(kind, &binding.value, kind == Kind::Group);
        }
    }
    for param in head.query().iter().chain(body) {
        let Some(&(_, kind)) = OBJECT_PARAMS.iter().find(|(name, _)| *name == param.name) else {
            continue;
        };
        let values: &[String] = match &param.value {
            ParamValue::Scalar(value) => std::slice::from_ref(value),
            ParamValue::List(values) => values,
            ParamValue::Null => &[],
        };
        for value in values.iter().filter(|v| !v.is_empty()) {
            add(kind, value, false);
        }
    }
    named
}

/// Whether the request creates or changes a group hook (`POST
/// /groups/{group}/hooks`, `PUT /groups/{group}/hooks/{hook_id}`): the hook
/// would deliver the events of every project below the group.
fn writes_group_hook(head: &RequestHead, template: &str) -> bool {
    !head.method().is_read()
        && head.method() != crate::canonical::Method::Delete
        && matches!(
            template,
            "/groups/{group}/hooks" | "/groups/{group}/hooks/{hook_id}"
        )
}

/// Group parameters whose answer is computed over the group's whole subtree:
/// storage and repository sizes of every project below (`statistics`), the
/// labels of every descendant group (`include_descendant_groups`). Items of
/// such answers name no project or group the filter could check.
const AGGREGATING_PARAMS: &[&str] = &["statistics", "include_descendant_groups"];

/// The aggregating parameter a group request turns on, if any. Only an
/// explicit `false` or `0` turns one off.
fn aggregating_param(template: &str, query: &[Param], body: &[Param]) -> Option<&'static str> {
    if !template.starts_with("/groups") {
        return None;
    }
    query.iter().chain(body).find_map(|param| {
        let name = AGGREGATING_PARAMS
            .iter()
            .find(|name| param.name.eq_ignore_ascii_case(name))?;
        let off = matches!(&param.value, ParamValue::Scalar(v) if v.eq_ignore_ascii_case("false") || v == "0");
        (!off).then_some(*name)
    })
}

/// Whether a template's answers are projects, groups or namespaces: a
/// collection of them (`/projects`, `/groups/{group}/descendant_groups`), or
/// one of them (`/projects/{project}`).
pub(crate) fn lists_objects(template: &str) -> bool {
    let mut segments = template.rsplit('/');
    let last = segments.next().unwrap_or_default();
    let before = segments.next().unwrap_or_default();
    matches!(
        last,
        "projects"
            | "groups"
            | "namespaces"
            | "descendant_groups"
            | "subgroups"
            | "shared_projects"
    ) || matches!(
        (before, last),
        ("projects", "{project}") | ("groups", "{group}") | ("namespaces", "{namespace}")
    )
}

#[cfg(test)]
mod tests {
    use super::lists_objects;

    #[test]
    fn routes_that_answer_projects_or_groups() {
        for template in [
            "/projects",
            "/groups",
            "/namespaces",
            "/groups/{group}/descendant_groups",
            "/groups/{group}/projects",
            "/users/{user_id}/projects",
            "/projects/{project}",
            "/groups/{group}",
            "/namespaces/{namespace}",
        ] {
            assert!(lists_objects(template), "{template}");
        }
        for template in [
            "/projects/{project}/merge_requests",
            "/projects/{project}/hooks",
            "/user",
            "/groups/{group}/labels",
        ] {
            assert!(!lists_objects(template), "{template}");
        }
    }
}
