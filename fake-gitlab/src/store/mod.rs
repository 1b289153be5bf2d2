//! The in-memory GitLab dataset and its lookups.

mod render;
mod seed;

pub(crate) use render::{Render, coerce_hook_flags};

use serde_json::{Map, Value};

/// The old path of the renamed project `acme/backend` (id 101), seeded as a
/// redirect the way GitLab keeps one after a rename.
pub(crate) const RENAMED_FROM: &str = "acme/old-backend";

/// A user.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: u64,
    pub username: String,
    pub name: String,
}

/// A group (namespace of kind `group`).
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub full_path: String,
    pub parent_id: Option<u64>,
}

/// A project.
#[derive(Clone, Debug)]
pub(crate) struct Project {
    pub id: u64,
    pub name: String,
    pub path: String,
    pub namespace_id: u64,
    pub path_with_namespace: String,
}

impl Project {
    /// The user who created the project: alice (2) for even ids, bob (3) for odd.
    pub(crate) fn creator_id(&self) -> u64 {
        if self.id.is_multiple_of(2) { 2 } else { 3 }
    }
}

/// A merge request.
#[derive(Clone, Debug)]
pub(crate) struct MergeRequest {
    pub id: u64,
    pub iid: u64,
    pub project_id: u64,
    pub title: String,
    pub description: String,
    pub state: String,
    pub labels: Vec<String>,
    pub author_id: u64,
    pub source_branch: String,
    pub target_branch: String,
    pub sha: String,
    pub created_at: String,
    pub updated_at: String,
    pub merged_at: Option<String>,
}

/// What a label or a hook belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    Group(u64),
    Project(u64),
}

/// A group or project label.
#[derive(Clone, Debug)]
pub(crate) struct Label {
    pub id: u64,
    pub owner: Owner,
    pub name: String,
    pub color: String,
    pub description: String,
    pub priority: Option<i64>,
}

/// A group or project webhook; `fields` holds everything the client gave
/// (including `url` and a `token`, which is never rendered).
#[derive(Clone, Debug)]
pub(crate) struct Hook {
    pub id: u64,
    pub owner: Owner,
    pub created_at: String,
    pub fields: Map<String, Value>,
}

/// The whole mutable dataset.
#[derive(Debug)]
pub(crate) struct Store {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub projects: Vec<Project>,
    pub merge_requests: Vec<MergeRequest>,
    pub labels: Vec<Label>,
    pub hooks: Vec<Hook>,
    /// Old project paths (lowercase) and the project they now lead to, as
    /// GitLab keeps them after a rename or a transfer.
    pub redirects: Vec<(String, u64)>,
    next_label_id: u64,
    next_hook_id: u64,
}

impl Store {
    /// The fixed initial dataset.
    pub(crate) fn seeded() -> Store {
        Store {
            users: seed::users(),
            groups: seed::groups(),
            projects: seed::projects(),
            merge_requests: seed::merge_requests(),
            labels: seed::labels(),
            hooks: Vec::new(),
            redirects: vec![(RENAMED_FROM.to_owned(), 101)],
            next_label_id: seed::FIRST_NEW_LABEL_ID,
            next_hook_id: seed::FIRST_HOOK_ID,
        }
    }

    /// A fresh label id.
    pub(crate) fn new_label_id(&mut self) -> u64 {
        let id = self.next_label_id;
        self.next_label_id += 1;
        id
    }

    /// A fresh hook id.
    pub(crate) fn new_hook_id(&mut self) -> u64 {
        let id = self.next_hook_id;
        self.next_hook_id += 1;
        id
    }

    /// A user by numeric id.
    pub(crate) fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// A user by numeric id or username.
    pub(crate) fn find_user(&self, key: &str) -> Option<&User> {
        match key.parse::<u64>() {
            Ok(id) => self.user(id),
            Err(_) => self.users.iter().find(|u| u.username == key),
        }
    }

    /// A group by numeric id.
    pub(crate) fn group(&self, id: u64) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// A project by numeric id.
    pub(crate) fn project(&self, id: u64) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    /// A group by `:id` (numeric id or full path, case-insensitive).
    pub(crate) fn find_group(&self, key: &str) -> Option<&Group> {
        match key.parse::<u64>() {
            Ok(id) => self.group(id),
            Err(_) => self
                .groups
                .iter()
                .find(|g| g.full_path.eq_ignore_ascii_case(key)),
        }
    }

    /// A project by `:id` (numeric id or full path, case-insensitive).
    pub(crate) fn find_project(&self, key: &str) -> Option<&Project> {
        match key.parse::<u64>() {
            Ok(id) => self.project(id),
            Err(_) => self
                .projects
                .iter()
                .find(|p| p.path_with_namespace.eq_ignore_ascii_case(key)),
        }
    }

    /// `id` and the ids of all its ancestors, nearest first.
    pub(crate) fn group_and_ancestors(&self, id: u64) -> Vec<u64> {
        let mut chain = Vec::new();
        let mut current = self.group(id);
        while let Some(group) = current {
            if chain.contains(&group.id) {
                break; // defensive: a cycle would otherwise loop forever
            }
            chain.push(group.id);
            current = group.parent_id.and_then(|p| self.group(p));
        }
        chain
    }

    /// All groups below `id` (children, grandchildren, ...), by id.
    pub(crate) fn descendants(&self, id: u64) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|g| g.id != id && self.group_and_ancestors(g.id).contains(&id))
            .collect()
    }

    /// Projects directly in group `id`, or also in its subgroups.
    pub(crate) fn group_projects(&self, id: u64, include_subgroups: bool) -> Vec<&Project> {
        let mut groups = vec![id];
        if include_subgroups {
            groups.extend(self.descendants(id).iter().map(|g| g.id));
        }
        self.projects
            .iter()
            .filter(|p| groups.contains(&p.namespace_id))
            .collect()
    }

    /// The merge request `iid` of project `project_id`, mutably.
    pub(crate) fn merge_request_mut(
        &mut self,
        project_id: u64,
        iid: u64,
    ) -> Option<&mut MergeRequest> {
        self.merge_requests
            .iter_mut()
            .find(|m| m.project_id == project_id && m.iid == iid)
    }

    /// Labels visible from `owner`: its own, then those of ancestor groups
    /// when `with_ancestors`.
    pub(crate) fn visible_labels(&self, owner: Owner, with_ancestors: bool) -> Vec<&Label> {
        let mut owners = vec![owner];
        if with_ancestors {
            let group = match owner {
                Owner::Group(id) => self.group(id).and_then(|g| g.parent_id),
                Owner::Project(id) => self.project(id).map(|p| p.namespace_id),
            };
            if let Some(group) = group {
                owners.extend(
                    self.group_and_ancestors(group)
                        .into_iter()
                        .map(Owner::Group),
                );
            }
        }
        owners
            .iter()
            .flat_map(|o| self.labels.iter().filter(move |l| l.owner == *o))
            .collect()
    }
}

impl Store {
    /// The project an old path now leads to, if `key` is one (any case) and
    /// no current project has that path.
    pub(crate) fn redirected_project(&self, key: &str) -> Option<&Project> {
        if self.find_project(key).is_some() {
            return None;
        }
        let (_, id) = self
            .redirects
            .iter()
            .rev()
            .find(|(old, _)| old.eq_ignore_ascii_case(key))?;
        self.project(*id)
    }

    /// Moves project `id` to `namespace` (a group's full path) under the
    /// name `path`, keeping a redirect from its old path. Returns false if
    /// the project or group does not exist or the new path is taken.
    pub(crate) fn move_project(&mut self, id: u64, namespace: &str, path: &str) -> bool {
        let Some(group) = self
            .find_group(namespace)
            .map(|g| (g.id, g.full_path.clone()))
        else {
            return false;
        };
        let new_full = format!("{}/{path}", group.1);
        if self.find_project(&new_full).is_some_and(|p| p.id != id) {
            return false;
        }
        let Some(project) = self.projects.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        let old = std::mem::replace(&mut project.path_with_namespace, new_full);
        project.namespace_id = group.0;
        project.path = path.to_owned();
        project.name = path.to_owned();
        self.redirects.push((old.to_lowercase(), id));
        true
    }
}

/// A label `:label_id` matches: numeric id, else exact name.
pub(crate) fn label_matches(label: &Label, key: &str) -> bool {
    match key.parse::<u64>() {
        Ok(id) => label.id == id || label.name == key,
        Err(_) => label.name == key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let s = Store::seeded();
        assert_eq!(s.find_project("ACME/Backend").map(|p| p.id), Some(101));
        assert_eq!(s.find_project("101").map(|p| p.id), Some(101));
        assert_eq!(s.find_group("acme/PLATFORM").map(|g| g.id), Some(11));
        assert!(s.find_project("nope").is_none());
        assert_eq!(s.group_projects(10, false).len(), 47);
        assert_eq!(s.group_projects(10, true).len(), 49);
        assert_eq!(s.descendants(10).len(), 2);
        assert_eq!(
            s.redirected_project("ACME/old-backend").map(|p| p.id),
            Some(101)
        );
        assert!(s.redirected_project("acme/backend").is_none());
        assert_eq!(s.visible_labels(Owner::Project(103), true).len(), 2);
        assert_eq!(s.visible_labels(Owner::Project(103), false).len(), 0);
    }

    #[test]
    fn moves_keep_a_redirect() {
        let mut s = Store::seeded();
        assert!(s.move_project(102, "secret", "frontend"));
        assert_eq!(s.find_project("secret/frontend").map(|p| p.id), Some(102));
        assert_eq!(
            s.redirected_project("acme/frontend").map(|p| p.id),
            Some(102)
        );
        assert!(!s.move_project(102, "nope", "x"), "no such group");
        assert!(!s.move_project(101, "secret", "vault"), "path taken");
        assert!(!s.move_project(9, "acme", "x"), "no such project");
    }
}
