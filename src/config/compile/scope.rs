//! A client's `scope:` and the `scope_cache:` section: paths well formed,
//! the whole consistent, and the client's policy checkable against it.

use std::sync::Arc;

use serde_saphyr::Spanned;

use super::Compiler;
use crate::config::CacheSettings;
use crate::config::raw::{RawScope, RawScopeCache};
use crate::policy::Policy;
use crate::scope::{FullPath, Scope};

impl Compiler<'_> {
    /// A client's scope: every path well formed, the whole neither empty nor
    /// contradictory.
    pub(super) fn scope(&mut self, raw: &Spanned<RawScope>, key: &str) -> Option<Arc<Scope>> {
        let mut lists = Vec::with_capacity(3);
        let mut valid = true;
        for (name, entries) in [
            ("groups", &raw.value.groups),
            ("projects", &raw.value.projects),
            ("exclude", &raw.value.exclude),
        ] {
            let mut paths = Vec::with_capacity(entries.len());
            for entry in entries {
                match FullPath::parse(entry.value.trim()) {
                    Ok(path) => paths.push((path, entry)),
                    Err(message) => {
                        valid = false;
                        self.problem(
                            entry,
                            &format!("{key}.{name}"),
                            message,
                            Some("a full path as GitLab shows it, e.g. acme/platform"),
                        );
                    }
                }
            }
            lists.push(paths);
        }
        if !valid {
            return None;
        }
        let plain = |list: &[(FullPath, &Spanned<String>)]| -> Vec<FullPath> {
            list.iter().map(|(path, _)| path.clone()).collect()
        };
        match Scope::new(plain(&lists[0]), plain(&lists[1]), plain(&lists[2])) {
            Ok(scope) => Some(Arc::new(scope)),
            Err(error) => {
                // Point at the entry the error names, else at `scope:` itself.
                let named = match &error {
                    crate::scope::ScopeError::Duplicate(p)
                    | crate::scope::ScopeError::NestedGroup(p, _)
                    | crate::scope::ScopeError::ProjectInGroup(p, _)
                    | crate::scope::ScopeError::ExcludesNothing(p) => Some(p),
                    crate::scope::ScopeError::IncludedAndExcluded(_, excluded) => Some(excluded),
                    crate::scope::ScopeError::Empty => None,
                };
                // A duplicate is reported at its second appearance.
                let names = ["groups", "projects", "exclude"];
                let at = named.and_then(|path| {
                    lists
                        .iter()
                        .zip(names)
                        .flat_map(|(list, name)| list.iter().map(move |entry| (entry, name)))
                        .rfind(|((p, _), _)| p == path)
                        .map(|((_, entry), name)| (*entry, name))
                });
                let hint = Some(error.hint());
                match at {
                    Some((entry, name)) => {
                        self.problem(entry, &format!("{key}.{name}"), error.to_string(), hint)
                    }
                    None => self.problem(raw, key, error.to_string(), hint),
                }
                None
            }
        }
    }

    /// A scoped client's policy must bind every project, group or namespace
    /// position to the param scope checks.
    pub(super) fn scope_checkable(&mut self, raw: &Spanned<RawScope>, key: &str, policy: &Policy) {
        for rule in policy.rules() {
            for template in rule.templates() {
                if let Some(problem) = crate::scope::unchecked_position(template) {
                    self.problem(
                        raw,
                        key,
                        format!("policy {} rule {}: {problem}", policy.source().display(), rule.id()),
                        Some("a scoped client's policy names projects as {project}, groups as {group}, namespaces as {namespace}"),
                    );
                }
            }
        }
    }

    pub(super) fn scope_cache(&mut self, raw: Option<&Spanned<RawScopeCache>>) -> CacheSettings {
        let defaults = CacheSettings::default();
        let Some(raw) = raw else {
            return defaults;
        };
        CacheSettings {
            ttl: self.duration(raw.value.ttl.as_ref(), "scope_cache.ttl", defaults.ttl),
            max_entries: self.positive(
                raw.value.max_entries.as_ref(),
                "scope_cache.max_entries",
                defaults.max_entries as u64,
            ) as usize,
        }
    }
}
