//! Scope on the way in: every project, group or namespace a request names
//! (a template param `{project}`, `{group}` or `{namespace}`, or a parameter
//! such as `target_project_id`) is resolved to GitLab's canonical object and
//! checked against the client's scope before anything is forwarded.

use super::error::ProxyError;
use crate::canonical::{FORMAT_SUFFIXES, Param, ParamValue, RequestHead};
use crate::policy::Permit;
use crate::scope::filter::LookupCounts;
use crate::scope::resolve::{Freshness, Lookup, Resolver, Source};
use crate::scope::{Kind, OBJECT_PARAMS, Scope};
use crate::upstream::Upstream;

/// One client's scope, with what it takes to resolve ids.
pub struct Checker<'a> {
    /// The client's scope.
    pub scope: &'a Scope,
    /// The resolution cache.
    pub resolver: &'a Resolver,
    /// GitLab, for resolutions.
    pub upstream: &'a Upstream,
}

impl Checker<'_> {
    /// Refuses the request unless every object it names is in scope: 404
    /// exactly as GitLab answers for an object the caller cannot see, or 503
    /// when GitLab cannot say (fail closed). Writes are checked on a fresh
    /// resolution, so a transfer out of scope is never missed by one.
    pub async fn check_request(
        &self,
        permit: &Permit,
        head: &RequestHead,
        body: &[Param],
        counts: &mut LookupCounts,
    ) -> Result<(), ProxyError> {
        let freshness = if head.method().is_read() {
            Freshness::Cached
        } else {
            Freshness::Fresh
        };
        for binding in permit.bindings() {
            if let Some(kind) = Kind::from_param(&binding.name) {
                self.check(kind, &binding.value, freshness, counts).await?;
            }
        }
        for param in head.query().iter().chain(body) {
            let Some(&(_, kind)) = OBJECT_PARAMS.iter().find(|(name, _)| *name == param.name)
            else {
                continue;
            };
            let values: &[String] = match &param.value {
                ParamValue::Scalar(value) => std::slice::from_ref(value),
                ParamValue::List(values) => values,
                ParamValue::Null => &[],
            };
            for value in values.iter().filter(|v| !v.is_empty()) {
                self.check(kind, value, freshness, counts).await?;
            }
        }
        Ok(())
    }

    async fn check(
        &self,
        kind: Kind,
        id: &str,
        freshness: Freshness,
        counts: &mut LookupCounts,
    ) -> Result<(), ProxyError> {
        // GitLab may read a trailing `.json` as a response format when the id
        // ends the path (as in glgate's own lookup) but not when it does not
        // (as in the forwarded request): the two would name different objects.
        let lower = id.to_ascii_lowercase();
        if FORMAT_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix)) {
            return Err(ProxyError::OutOfScope {
                kind,
                exists: false,
            });
        }
        let (lookup, source) = self
            .resolver
            .resolve(self.upstream, kind, id, freshness)
            .await
            .map_err(|error| {
                tracing::warn!(%kind, %error, "scope check failed");
                ProxyError::ScopeUnavailable
            })?;
        match source {
            Source::Hit => counts.hits += 1,
            Source::Miss => counts.misses += 1,
        }
        match lookup {
            Lookup::Found(object) if self.scope.allows(kind, &object.path) => Ok(()),
            Lookup::Found(_) => Err(ProxyError::OutOfScope { kind, exists: true }),
            Lookup::NotFound => Err(ProxyError::OutOfScope {
                kind,
                exists: false,
            }),
        }
    }
}
