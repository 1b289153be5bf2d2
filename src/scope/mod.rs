//! Scope: the groups and projects a client may reach, whatever the GitLab
//! token behind glgate can see.
//!
//! A scope is decided on GitLab's canonical objects, never on the spelling in
//! a request: [`resolve`] turns an id or an encoded path into the object's
//! numeric id and canonical full path (cached, one upstream call per id at a
//! time), [`Scope`] decides on that path, and a [`guard::ScopeGuard`] applies
//! one client's scope to one request: it checks every object the request names
//! ([`guard`]) and removes out-of-scope items from GitLab's answer
//! ([`filter`]). Everything fails closed: an object that cannot be resolved
//! is refused, never forwarded unchecked.

pub(crate) mod filter;
pub(crate) mod guard;
pub(crate) mod resolve;
pub(crate) mod shallow;
pub(crate) mod show;

use std::fmt;

/// The kinds of GitLab object a scope decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// A project (`path_with_namespace`).
    Project,
    /// A group (`full_path`).
    Group,
    /// A namespace (`full_path`): a group's, in scope as the group is, or a
    /// user's, in scope only if listed as a group.
    Namespace,
}

/// Request parameters (query or body) that name another project, group or
/// namespace; a scoped client's values are resolved and checked like path params.
pub(crate) const OBJECT_PARAMS: &[(&str, Kind)] = &[
    ("project_id", Kind::Project),
    ("from_project_id", Kind::Project),
    ("source_project_id", Kind::Project),
    ("target_project_id", Kind::Project),
    ("forked_from_id", Kind::Project),
    ("group_id", Kind::Group),
    ("parent_id", Kind::Group),
    ("namespace_id", Kind::Namespace),
    ("namespace", Kind::Namespace),
];

impl Kind {
    /// The path param name that binds this kind in a policy template.
    pub(crate) fn from_param(name: &str) -> Option<Kind> {
        match name {
            "project" => Some(Kind::Project),
            "group" => Some(Kind::Group),
            "namespace" => Some(Kind::Namespace),
            _ => None,
        }
    }

    /// The word GitLab uses in its 404 message: "Project", "Group" or "Namespace".
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Project => "Project",
            Kind::Group => "Group",
            Kind::Namespace => "Namespace",
        }
    }

    /// The API collection: "projects", "groups" or "namespaces".
    pub(crate) fn collection(self) -> &'static str {
        match self {
            Kind::Project => "projects",
            Kind::Group => "groups",
            Kind::Namespace => "namespaces",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Project => "project",
            Kind::Group => "group",
            Kind::Namespace => "namespace",
        })
    }
}

/// Why a template cannot be used by a scoped client: a position GitLab reads
/// as a project, group or namespace that is not bound to the param scope
/// checks (`/projects/{id}`, `/groups/acme/...`). `None` when it can.
pub(crate) fn unchecked_position(template: &crate::policy::Template) -> Option<String> {
    use crate::policy::TemplateSegment;
    let segments = template.segments();
    for (index, segment) in segments.iter().enumerate() {
        let TemplateSegment::Literal(literal) = segment else {
            continue;
        };
        let expected = match literal.as_str() {
            "projects" => "project",
            "groups" => "group",
            "namespaces" => "namespace",
            _ => continue,
        };
        // A collection at the end is a list (`/projects`, `/users/{user_id}/projects`).
        let Some(next) = segments.get(index + 1) else {
            continue;
        };
        let bound = matches!(next, TemplateSegment::Param { name, .. } if name == expected);
        if !bound {
            return Some(format!(
                "'{}' names a {expected} that scope cannot check: write {{{expected}}} after /{literal}/",
                template.text()
            ));
        }
    }
    None
}

/// A full path as GitLab spells it, compared without regard to letter case
/// (GitLab's routes are case-insensitive and unique).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FullPath(String);

impl FullPath {
    /// Checks the form of a full path: `/`-separated segments of letters,
    /// digits, `_`, `-` and `.`, neither starting nor ending with `/`. The
    /// error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<FullPath, String> {
        if text.contains("://") {
            return Err("give the group or project's full path, not its URL".into());
        }
        if text.is_empty() {
            return Err("an empty path".into());
        }
        for segment in text.split('/') {
            let valid = segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                && segment
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                return Err(format!(
                    "'{text}' is not a GitLab full path (segment '{segment}')"
                ));
            }
        }
        Ok(FullPath(text.to_ascii_lowercase()))
    }

    /// Wraps a path GitLab itself returned (not validated: GitLab's word).
    pub(crate) fn from_gitlab(text: &str) -> FullPath {
        FullPath(text.to_ascii_lowercase())
    }

    /// The path, lowercase.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or lies below it (`acme/platform` is within `acme`).
    pub(crate) fn is_within(&self, other: &FullPath) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'/')
    }
}

impl fmt::Display for FullPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client's scope: what it may reach. Built only by the config compiler,
/// which refuses empty and contradictory scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scope {
    groups: Vec<FullPath>,
    projects: Vec<FullPath>,
    exclude: Vec<FullPath>,
}

/// Why a scope is refused at load time.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScopeError {
    /// Neither groups nor projects.
    #[error("an empty scope allows nothing")]
    Empty,
    /// An entry appears twice.
    #[error("'{0}' is listed twice")]
    Duplicate(FullPath),
    /// A group lies inside another included group.
    #[error("group '{0}' is already in scope through group '{1}'")]
    NestedGroup(FullPath, FullPath),
    /// A project lies inside an included group.
    #[error("project '{0}' is already in scope through group '{1}'")]
    ProjectInGroup(FullPath, FullPath),
    /// An included project or group is also excluded.
    #[error("'{0}' is both included and excluded (by exclude '{1}')")]
    IncludedAndExcluded(FullPath, FullPath),
    /// An exclusion carves nothing out of the included groups.
    #[error("exclude '{0}' is not inside any of scope.groups, so it excludes nothing")]
    ExcludesNothing(FullPath),
}

impl ScopeError {
    /// What would be valid.
    pub(crate) fn hint(&self) -> &'static str {
        match self {
            ScopeError::Empty => {
                "list groups and/or projects, or remove `scope` to allow everything the token can see"
            }
            ScopeError::Duplicate(_) => "list each group or project once",
            ScopeError::NestedGroup(..) | ScopeError::ProjectInGroup(..) => {
                "remove it: a group includes its subgroups and their projects"
            }
            ScopeError::IncludedAndExcluded(..) => {
                "remove it from one of the lists; exclude only carves out of scope.groups"
            }
            ScopeError::ExcludesNothing(_) => {
                "exclude only subgroups or projects of a group listed in scope.groups"
            }
        }
    }
}

impl Scope {
    /// Builds a scope, refusing an empty or contradictory one.
    pub(crate) fn new(
        groups: Vec<FullPath>,
        projects: Vec<FullPath>,
        exclude: Vec<FullPath>,
    ) -> Result<Scope, ScopeError> {
        if groups.is_empty() && projects.is_empty() {
            return Err(ScopeError::Empty);
        }
        let mut seen: Vec<&FullPath> = Vec::new();
        for path in groups.iter().chain(&projects).chain(&exclude) {
            if seen.contains(&path) {
                return Err(ScopeError::Duplicate(path.clone()));
            }
            seen.push(path);
        }
        for group in &groups {
            if let Some(outer) = groups.iter().find(|g| *g != group && group.is_within(g)) {
                return Err(ScopeError::NestedGroup(group.clone(), outer.clone()));
            }
        }
        for project in &projects {
            if let Some(outer) = groups.iter().find(|g| project.is_within(g)) {
                return Err(ScopeError::ProjectInGroup(project.clone(), outer.clone()));
            }
        }
        for excluded in &exclude {
            if let Some(included) = groups
                .iter()
                .chain(&projects)
                .find(|p| p.is_within(excluded))
            {
                return Err(ScopeError::IncludedAndExcluded(
                    included.clone(),
                    excluded.clone(),
                ));
            }
            if !groups.iter().any(|g| excluded.is_within(g)) {
                return Err(ScopeError::ExcludesNothing(excluded.clone()));
            }
        }
        Ok(Scope {
            groups,
            projects,
            exclude,
        })
    }

    /// The included groups (each with its subgroups and their projects).
    pub(crate) fn groups(&self) -> &[FullPath] {
        &self.groups
    }

    /// The individually included projects.
    pub(crate) fn projects(&self) -> &[FullPath] {
        &self.projects
    }

    /// The groups and projects carved out of the included groups.
    pub(crate) fn exclude(&self) -> &[FullPath] {
        &self.exclude
    }

    /// Whether an object of `kind` at canonical `path` is in scope.
    pub(crate) fn allows(&self, kind: Kind, path: &FullPath) -> bool {
        let excluded = self.exclude.iter().any(|e| path.is_within(e));
        if excluded {
            return false;
        }
        let in_group = self.groups.iter().any(|g| path.is_within(g));
        match kind {
            Kind::Group | Kind::Namespace => in_group,
            Kind::Project => in_group || self.projects.contains(path),
        }
    }

    /// Whether anything is carved out of the included groups.
    pub(crate) fn has_exclusions(&self) -> bool {
        !self.exclude.is_empty()
    }

    /// Whether the group at canonical `path` is in scope with everything
    /// below it: no subgroup or project under it is excluded. A group hook
    /// delivers events of every project below its group, so only such a
    /// group may carry one.
    pub(crate) fn allows_subtree(&self, path: &FullPath) -> bool {
        self.allows(Kind::Group, path) && !self.exclude.iter().any(|e| e.is_within(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<FullPath> {
        list.iter().map(|p| FullPath::parse(p).unwrap()).collect()
    }

    fn scope(groups: &[&str], projects: &[&str], exclude: &[&str]) -> Result<Scope, ScopeError> {
        Scope::new(paths(groups), paths(projects), paths(exclude))
    }

    fn path(text: &str) -> FullPath {
        FullPath::from_gitlab(text)
    }

    #[test]
    fn a_subtree_is_whole_only_without_exclusions_below() {
        let scope = scope(&["acme"], &["tools/ci"], &["acme/secret"]).unwrap();
        assert!(
            !scope.allows_subtree(&path("acme")),
            "acme/secret lies below"
        );
        assert!(scope.allows_subtree(&path("acme/platform")));
        assert!(scope.allows_subtree(&path("Acme/Platform/Deep")));
        assert!(!scope.allows_subtree(&path("acme/secret")));
        assert!(!scope.allows_subtree(&path("acme/secret/inner")));
        assert!(
            !scope.allows_subtree(&path("tools")),
            "only a project of tools is in scope"
        );
        assert!(!scope.allows_subtree(&path("other")));
    }

    #[test]
    fn full_paths_are_checked_and_case_folded() {
        assert_eq!(
            FullPath::parse("Acme/Platform").unwrap().as_str(),
            "acme/platform"
        );
        assert_eq!(FullPath::parse("a_b/c-d.e").unwrap().as_str(), "a_b/c-d.e");
        for bad in [
            "",
            "/acme",
            "acme/",
            "acme//x",
            "acme/../x",
            "https://gitlab.com/acme",
            "a b",
            ".hidden",
            "acme/-x",
        ] {
            assert!(FullPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn within_is_by_whole_segments() {
        assert!(path("acme/platform").is_within(&path("acme")));
        assert!(path("acme").is_within(&path("acme")));
        assert!(!path("acme-evil").is_within(&path("acme")));
        assert!(!path("acme").is_within(&path("acme/platform")));
        assert!(!path("acmeplatform/x").is_within(&path("acme")));
    }

    #[test]
    fn groups_include_subgroups_and_their_projects_minus_exclusions() {
        let s = scope(
            &["acme", "partners/shared"],
            &["tools/ci-templates"],
            &["acme/secret-stuff"],
        )
        .unwrap();
        assert!(s.allows(Kind::Group, &path("acme")));
        assert!(s.allows(Kind::Group, &path("acme/platform")));
        assert!(s.allows(Kind::Project, &path("acme/platform/api")));
        assert!(s.allows(Kind::Project, &path("partners/shared/sdk")));
        assert!(s.allows(Kind::Project, &path("tools/ci-templates")));
        assert!(
            !s.allows(Kind::Group, &path("tools")),
            "a listed project does not open its group"
        );
        assert!(!s.allows(Kind::Project, &path("tools/other")));
        assert!(
            !s.allows(Kind::Group, &path("partners")),
            "an ancestor is not in scope"
        );
        assert!(!s.allows(Kind::Project, &path("partners/other")));
        assert!(!s.allows(Kind::Group, &path("acme/secret-stuff")));
        assert!(!s.allows(Kind::Group, &path("acme/secret-stuff/deeper")));
        assert!(!s.allows(Kind::Project, &path("acme/secret-stuff/vault")));
        assert!(!s.allows(Kind::Project, &path("acme-evil/x")));
    }

    #[test]
    fn empty_and_contradictory_scopes_are_refused() {
        assert_eq!(scope(&[], &[], &[]), Err(ScopeError::Empty));
        assert_eq!(scope(&[], &[], &["acme/x"]), Err(ScopeError::Empty));
        assert!(matches!(
            scope(&["acme", "ACME"], &[], &[]),
            Err(ScopeError::Duplicate(_))
        ));
        assert!(matches!(
            scope(&["acme", "acme/platform"], &[], &[]),
            Err(ScopeError::NestedGroup(..))
        ));
        assert!(matches!(
            scope(&["acme"], &["acme/backend"], &[]),
            Err(ScopeError::ProjectInGroup(..))
        ));
        assert!(matches!(
            scope(&["acme"], &[], &["acme"]),
            Err(ScopeError::Duplicate(_))
        ));
        assert!(matches!(
            scope(&["acme/platform"], &[], &["acme"]),
            Err(ScopeError::IncludedAndExcluded(..))
        ));
        assert!(matches!(
            scope(&["acme"], &["tools/x"], &["tools"]),
            Err(ScopeError::IncludedAndExcluded(..))
        ));
        assert!(matches!(
            scope(&["acme"], &[], &["partners/x"]),
            Err(ScopeError::ExcludesNothing(_))
        ));
        assert!(scope(&[], &["tools/ci-templates"], &[]).is_ok());
    }
}
