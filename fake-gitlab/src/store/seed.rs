//! The fixed initial dataset.

use super::{Group, Label, MergeRequest, Owner, Project, User};

/// Ids given to labels created through the API start here.
pub(super) const FIRST_NEW_LABEL_ID: u64 = 7003;
/// Ids given to hooks created through the API start here.
pub(super) const FIRST_HOOK_ID: u64 = 9001;
/// Number of generated `acme/svc-NN` projects.
const GENERATED_SERVICES: u64 = 45;

/// A timestamp that grows with `n` (seconds after midnight of `day`), so that
/// ordering by `created_at` equals ordering by id.
pub(crate) fn timestamp(day: &str, n: u64) -> String {
    let (h, m, s) = ((n / 3600) % 24, (n / 60) % 60, n % 60);
    format!("{day}T{h:02}:{m:02}:{s:02}.000Z")
}

pub(super) fn users() -> Vec<User> {
    [
        (1, "glgate-bot", "glgate bot"),
        (2, "alice", "Alice Example"),
        (3, "bob", "Bob Example"),
    ]
    .into_iter()
    .map(|(id, username, name)| User {
        id,
        username: username.into(),
        name: name.into(),
    })
    .collect()
}

pub(super) fn groups() -> Vec<Group> {
    [
        (10, "acme", None),
        (11, "acme/platform", Some(10)),
        (12, "acme/secret-stuff", Some(10)),
        (20, "partners", None),
        (21, "partners/team", Some(20)),
        (30, "secret", None),
        (40, "tools", None),
    ]
    .into_iter()
    .map(|(id, full_path, parent_id): (u64, &str, Option<u64>)| {
        let path = full_path.rsplit('/').next().unwrap_or(full_path);
        Group {
            id,
            name: path.into(),
            path: path.into(),
            full_path: full_path.into(),
            parent_id,
        }
    })
    .collect()
}

fn project(id: u64, namespace_id: u64, namespace: &str, path: &str) -> Project {
    Project {
        id,
        name: path.into(),
        path: path.into(),
        namespace_id,
        path_with_namespace: format!("{namespace}/{path}"),
    }
}

pub(super) fn projects() -> Vec<Project> {
    let mut projects = vec![
        project(101, 10, "acme", "backend"),
        project(102, 10, "acme", "frontend"),
        project(103, 11, "acme/platform", "api"),
        project(104, 12, "acme/secret-stuff", "keys"),
        project(201, 20, "partners", "shared"),
        project(202, 21, "partners/team", "sdk"),
        project(301, 30, "secret", "vault"),
        project(401, 40, "tools", "ci-templates"),
        project(402, 40, "tools", "scripts"),
    ];
    projects.extend(
        (1..=GENERATED_SERVICES).map(|n| project(1000 + n, 10, "acme", &format!("svc-{n:02}"))),
    );
    projects
}

/// A deterministic 40-hex-digit sha for merge request `id`.
fn sha_for(id: u64) -> String {
    format!("{id:08x}").repeat(5)
}

struct MrSeed {
    id: u64,
    iid: u64,
    project_id: u64,
    title: &'static str,
    state: &'static str,
    labels: &'static [&'static str],
    author_id: u64,
    source_branch: &'static str,
}

pub(super) fn merge_requests() -> Vec<MergeRequest> {
    let seeds = [
        MrSeed {
            id: 5001,
            iid: 1,
            project_id: 101,
            title: "Fix login redirect loop",
            state: "opened",
            labels: &["bug"],
            author_id: 2,
            source_branch: "fix-login-redirect",
        },
        MrSeed {
            id: 5002,
            iid: 2,
            project_id: 101,
            title: "Add metrics endpoint",
            state: "opened",
            labels: &[],
            author_id: 3,
            source_branch: "feature-metrics",
        },
        MrSeed {
            id: 5003,
            iid: 3,
            project_id: 101,
            title: "Upgrade dependencies",
            state: "merged",
            labels: &[],
            author_id: 1,
            source_branch: "deps-upgrade",
        },
        MrSeed {
            id: 5004,
            iid: 1,
            project_id: 102,
            title: "Redesign landing page",
            state: "opened",
            labels: &[],
            author_id: 2,
            source_branch: "landing-redesign",
        },
        MrSeed {
            id: 5005,
            iid: 1,
            project_id: 103,
            title: "API v2 schema",
            state: "opened",
            labels: &[],
            author_id: 3,
            source_branch: "api-v2",
        },
        MrSeed {
            id: 5006,
            iid: 1,
            project_id: 104,
            title: "Rotate signing keys",
            state: "opened",
            labels: &[],
            author_id: 2,
            source_branch: "rotate-keys",
        },
        MrSeed {
            id: 5007,
            iid: 1,
            project_id: 301,
            title: "Secret vault change",
            state: "opened",
            labels: &[],
            author_id: 3,
            source_branch: "vault-change",
        },
        MrSeed {
            id: 5008,
            iid: 1,
            project_id: 401,
            title: "Faster CI template",
            state: "opened",
            labels: &[],
            author_id: 2,
            source_branch: "faster-ci",
        },
    ];
    seeds.into_iter().map(merge_request).collect()
}

fn merge_request(s: MrSeed) -> MergeRequest {
    let created_at = timestamp("2024-05-01", s.id - 5000);
    let updated_at = timestamp("2024-05-02", s.id - 5000);
    let merged_at = (s.state == "merged").then(|| updated_at.clone());
    MergeRequest {
        id: s.id,
        iid: s.iid,
        project_id: s.project_id,
        title: s.title.into(),
        description: format!("{} (fake merge request {})", s.title, s.id),
        state: s.state.into(),
        labels: s.labels.iter().map(|l| l.to_string()).collect(),
        author_id: s.author_id,
        source_branch: s.source_branch.into(),
        target_branch: "main".into(),
        sha: sha_for(s.id),
        created_at,
        updated_at,
        merged_at,
    }
}

pub(super) fn labels() -> Vec<Label> {
    vec![
        Label {
            id: 7001,
            owner: Owner::Group(10),
            name: "bug".into(),
            color: "#d9534f".into(),
            description: "Something is broken".into(),
            priority: None,
        },
        Label {
            id: 7002,
            owner: Owner::Group(10),
            name: "echoes/intent: feature".into(),
            color: "#428bca".into(),
            description: String::new(),
            priority: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_sort_like_ids() {
        assert_eq!(timestamp("2024-03-01", 1045), "2024-03-01T00:17:25.000Z");
        assert!(timestamp("d", 999) < timestamp("d", 1001));
        assert_eq!(sha_for(5001).len(), 40);
    }
}
