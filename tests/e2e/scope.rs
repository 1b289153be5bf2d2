//! Scope: a client reaches only the groups and projects the customer
//! selected, whatever the GitLab token behind glgate can see. Decisions are
//! made on GitLab's canonical objects (resolved with glgate's token), lists
//! are filtered on every page, and anything that cannot be checked is refused.

use std::collections::BTreeSet;

use crate::support::client::{Reply, get, next_link, send};
use crate::support::sandbox::{ECHOES_POLICY, Sandbox, SandboxOptions};
use http::Version;

/// The customer's selection in these tests: `acme` (with `acme/platform`)
/// but not `acme/secret-stuff`, the `partners/team` subgroup, and one project
/// of `tools`.
const SCOPE: &str = "    rate_limit: { per_second: 1000, burst: 1000 }\n    scope:\n      groups: [acme, Partners/Team]\n      projects: [tools/ci-templates]\n      exclude: [acme/secret-stuff]\n";

/// The shipped policy plus the two project lists it does not allow.
fn policy() -> String {
    format!(
        "{ECHOES_POLICY}\n  - id: test.project-lists\n    methods: [GET]\n    paths: ['/projects', '/users/{{user_id}}/projects']\n"
    )
}

async fn scoped(config_extra: &str) -> Sandbox {
    Sandbox::with(SandboxOptions {
        policy: policy(),
        client_extra: SCOPE.into(),
        config_extra: config_extra.into(),
        ..SandboxOptions::default()
    })
    .await
}

/// Requests glgate made on its own account (scope lookups), by path.
fn lookups(sb: &Sandbox) -> Vec<String> {
    sb.fake
        .requests()
        .into_iter()
        .filter(|r| {
            r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("glgate/"))
        })
        .map(|r| r.target)
        .collect()
}

/// Requests relayed for the client (not glgate's own lookups).
fn relayed(sb: &Sandbox) -> Vec<String> {
    sb.fake
        .requests()
        .into_iter()
        .filter(|r| {
            !r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("glgate/"))
        })
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

fn assert_not_found(reply: &Reply, noun: &str) {
    assert_eq!(
        reply.status,
        404,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.body.as_ref(),
        format!("{{\"message\":\"404 {noun} Not Found\"}}").as_bytes(),
        "exactly GitLab's answer for an object the caller cannot see"
    );
}

/// Follows `rel="next"` through glgate from `first`, collecting `field` of
/// every item, and checks that no page reveals a total.
async fn all_pages(sb: &Sandbox, first: &str, field: &str) -> (Vec<serde_json::Value>, usize) {
    let mut next = Some(sb.url(first));
    let mut items = Vec::new();
    let mut pages = 0;
    while let Some(url) = next {
        let reply = get(&url, &sb.client_token).await;
        assert_eq!(
            reply.status,
            200,
            "{url}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        pages += 1;
        assert!(
            reply.header("x-total").is_none(),
            "{url}: a total counts hidden items"
        );
        assert!(reply.header("x-total-pages").is_none(), "{url}");
        let link = reply.header("link").unwrap_or_default().to_owned();
        assert!(!link.contains("rel=\"last\""), "{url}: {link}");
        items.extend(
            reply
                .json()
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item[field].clone()),
        );
        next = next_link(&reply);
        if let Some(url) = &next {
            assert!(url.starts_with(&sb.base_url()), "{url}");
        }
    }
    (items, pages)
}

fn strings(values: &[serde_json::Value]) -> BTreeSet<String> {
    values
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn numbers(values: &[serde_json::Value]) -> BTreeSet<u64> {
    values.iter().map(|v| v.as_u64().unwrap()).collect()
}

#[tokio::test]
async fn every_spelling_of_a_project_gets_the_same_decision() {
    let sb = scoped("").await;
    for target in [
        "/api/v4/projects/101",
        "/api/v4/projects/acme%2Fbackend",
        "/api/v4/projects/ACME%2FBackend",
        "/api/v4/projects/acme%2fBACKEND",
        "/api/v4/projects/103",
        "/api/v4/projects/acme%2Fplatform%2Fapi",
        "/api/v4/projects/partners%2Fteam%2Fsdk",
        "/api/v4/projects/Tools%2FCI-Templates",
    ] {
        let reply = get(&sb.url(target), &sb.client_token).await;
        assert_eq!(reply.status, 200, "{target}");
    }
    for target in [
        "/api/v4/projects/301",
        "/api/v4/projects/secret%2Fvault",
        "/api/v4/projects/SECRET%2FVault",
        "/api/v4/projects/201",
        "/api/v4/projects/partners%2Fshared",
        "/api/v4/projects/402",
        "/api/v4/projects/tools%2Fscripts",
        "/api/v4/projects/999999",
        "/api/v4/projects/no%2Fsuch-project",
    ] {
        let reply = get(&sb.url(target), &sb.client_token).await;
        assert_not_found(&reply, "Project");
    }
    // Only glgate's own lookups reached GitLab for the refused ones.
    let forwarded = relayed(&sb);
    assert_eq!(forwarded.len(), 8, "{forwarded:#?}");
    assert!(
        forwarded
            .iter()
            .all(|r| !r.contains("secret") && !r.contains("301"))
    );
}

#[tokio::test]
async fn out_of_scope_requests_never_reach_gitlab_even_writes() {
    let sb = scoped("").await;
    let refused = [
        ("GET", "/api/v4/projects/301/merge_requests", "", "Project"),
        (
            "GET",
            "/api/v4/projects/secret%2Fvault/hooks",
            "",
            "Project",
        ),
        ("GET", "/api/v4/groups/secret/labels", "", "Group"),
        (
            "POST",
            "/api/v4/groups/secret/labels",
            r##"{"name":"echoes/x","color":"#ffffff"}"##,
            "Group",
        ),
        (
            "POST",
            "/api/v4/projects/acme%2Fsecret-stuff%2Fkeys/hooks",
            r#"{"url":"https://api.echoeshq.com/hooks/x"}"#,
            "Project",
        ),
        (
            "PUT",
            "/api/v4/projects/104/merge_requests/1",
            r#"{"add_labels":"echoes/x"}"#,
            "Project",
        ),
    ];
    for (method, target, body, noun) in refused {
        let reply = send(
            Version::HTTP_11,
            method,
            &sb.url(target),
            &[
                ("private-token", &sb.client_token),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
        assert_not_found(&reply, noun);
    }
    assert!(relayed(&sb).is_empty(), "{:#?}", relayed(&sb));
    // What did reach GitLab: reads of the named objects, with glgate's token.
    for request in sb.fake.requests() {
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.header("private-token"),
            Some(sb.gitlab_token.as_str())
        );
        assert!(
            request.target.starts_with("/api/v4/projects/")
                || request.target.starts_with("/api/v4/groups/"),
            "{}",
            request.target
        );
    }
    let events = sb.audit_events(refused.len()).await;
    for event in &events {
        assert_eq!(event["decision"], "deny", "{event}");
        assert_eq!(event["reason"], "out_of_scope", "{event}");
        assert_eq!(event["status"], 404, "{event}");
    }
}

#[tokio::test]
async fn groups_include_their_subgroups_minus_exclusions() {
    let sb = scoped("").await;
    for target in [
        "/api/v4/groups/acme",
        "/api/v4/groups/10",
        "/api/v4/groups/acme%2Fplatform",
        "/api/v4/groups/ACME%2FPlatform",
        "/api/v4/groups/11/projects",
        "/api/v4/groups/partners%2Fteam",
        "/api/v4/groups/21/merge_requests",
    ] {
        let reply = get(&sb.url(target), &sb.client_token).await;
        assert_eq!(reply.status, 200, "{target}");
    }
    for target in [
        "/api/v4/groups/partners",
        "/api/v4/groups/20",
        "/api/v4/groups/tools",
        "/api/v4/groups/secret/projects",
        "/api/v4/groups/acme%2Fsecret-stuff",
        "/api/v4/groups/12/merge_requests",
        "/api/v4/groups/nope",
    ] {
        let reply = get(&sb.url(target), &sb.client_token).await;
        assert_not_found(&reply, "Group");
    }
    assert_not_found(
        &get(&sb.url("/api/v4/projects/104"), &sb.client_token).await,
        "Project",
    );
}

#[tokio::test]
async fn every_list_is_filtered_on_every_page() {
    let sb = scoped("").await;
    let in_scope_groups: BTreeSet<String> = ["acme", "acme/platform", "partners/team"]
        .map(String::from)
        .into();

    let (paths, pages) = all_pages(&sb, "/api/v4/groups?per_page=2", "full_path").await;
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(strings(&paths), in_scope_groups);

    let (paths, _) = all_pages(
        &sb,
        "/api/v4/groups/acme/descendant_groups?per_page=1",
        "full_path",
    )
    .await;
    assert_eq!(strings(&paths), ["acme/platform".to_owned()].into());

    let (paths, _) = all_pages(&sb, "/api/v4/namespaces?per_page=3", "full_path").await;
    assert_eq!(
        strings(&paths),
        in_scope_groups,
        "no user namespace, no hidden group"
    );

    let (ids, pages) = all_pages(&sb, "/api/v4/projects?per_page=20", "id").await;
    assert!(pages >= 3);
    let mut expected: BTreeSet<u64> = (1001..=1045).collect();
    expected.extend([101, 102, 103, 202, 401]);
    assert_eq!(numbers(&ids), expected);
    assert_eq!(ids.len(), expected.len(), "no duplicates");

    let (ids, _) = all_pages(
        &sb,
        "/api/v4/groups/acme/projects?include_subgroups=true&per_page=10",
        "id",
    )
    .await;
    let mut acme: BTreeSet<u64> = (1001..=1045).collect();
    acme.extend([101, 102, 103]);
    assert_eq!(numbers(&ids), acme, "acme/secret-stuff/keys (104) hidden");

    let (ids, _) = all_pages(&sb, "/api/v4/users/2/projects?per_page=7", "id").await;
    let alice: BTreeSet<u64> = expected.iter().copied().filter(|id| id % 2 == 0).collect();
    assert_eq!(
        numbers(&ids),
        alice,
        "alice creates even ids; 104 and 402 hidden"
    );

    let (ids, _) = all_pages(&sb, "/api/v4/groups/acme/merge_requests?per_page=2", "id").await;
    assert_eq!(
        numbers(&ids),
        [5001, 5002, 5003, 5004, 5005].into(),
        "the merge request of acme/secret-stuff/keys (5006) is hidden"
    );

    // The audit line says how many items were hidden.
    let reply = get(
        &sb.url("/api/v4/groups/acme/merge_requests?per_page=100"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.json().as_array().unwrap().len(), 5);
    let request_id = reply.header("x-request-id").unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let line = loop {
        let audit = std::fs::read_to_string(&sb.audit_path).unwrap_or_default();
        if let Some(line) = audit.lines().find(|l| l.contains(&request_id)) {
            break line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit line for {request_id}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(line.contains("\"hidden_items\":1"), "{line}");
}

#[tokio::test]
async fn a_renamed_project_is_followed_and_a_transferred_one_is_re_resolved() {
    let sb = scoped("").await;
    let path = "/api/v4/projects/acme%2Fbackend/merge_requests";
    assert_eq!(get(&sb.url(path), &sb.client_token).await.status, 200);

    // Renamed within acme: GitLab redirects the old path; glgate relays the
    // redirect through itself and the new path is in scope.
    assert!(sb.fake.rename_project(101, "backend-v2"));
    let reply = get(&sb.url(path), &sb.client_token).await;
    assert_eq!(reply.status, 301);
    let location = reply.header("location").unwrap().to_owned();
    assert!(location.starts_with(&sb.base_url()), "{location}");
    assert!(location.contains("acme%2Fbackend-v2"), "{location}");
    assert_eq!(get(&location, &sb.client_token).await.status, 200);

    // Transferred out of scope: seen at once on the project itself...
    assert_eq!(
        get(&sb.url("/api/v4/projects/102"), &sb.client_token)
            .await
            .status,
        200
    );
    assert!(sb.fake.transfer_project(102, "secret"));
    assert_not_found(
        &get(&sb.url("/api/v4/projects/102"), &sb.client_token).await,
        "Project",
    );
    // ...and from then on under every spelling, well within the cache's life.
    assert_not_found(
        &get(
            &sb.url("/api/v4/projects/102/merge_requests"),
            &sb.client_token,
        )
        .await,
        "Project",
    );
    // The old path redirects to the new one, which must not be revealed.
    let reply = get(
        &sb.url("/api/v4/projects/acme%2Ffrontend/merge_requests"),
        &sb.client_token,
    )
    .await;
    assert_not_found(&reply, "Project");
    assert!(!reply.all_text().contains("secret"), "{}", reply.all_text());
}

#[tokio::test]
async fn a_write_after_a_transfer_is_refused_even_with_a_warm_cache() {
    let sb = scoped("").await;
    let labels = "/api/v4/projects/103/merge_requests/1";
    assert_eq!(get(&sb.url(labels), &sb.client_token).await.status, 200);
    assert!(sb.fake.transfer_project(103, "secret"));
    let reply = send(
        Version::HTTP_11,
        "PUT",
        &sb.url(labels),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        br#"{"add_labels":"echoes/x"}"#,
    )
    .await;
    assert_not_found(&reply, "Project");
    assert!(
        relayed(&sb).iter().all(|r| !r.starts_with("PUT")),
        "{:#?}",
        relayed(&sb)
    );
}

#[tokio::test]
async fn resolutions_are_cached_until_they_expire() {
    let sb = scoped("scope_cache:\n  ttl: 1s\n  max_entries: 100\n").await;
    let target = "/api/v4/projects/102/merge_requests";
    for _ in 0..3 {
        assert_eq!(get(&sb.url(target), &sb.client_token).await.status, 200);
    }
    assert_eq!(
        lookups(&sb),
        ["/api/v4/projects/102"],
        "one lookup for three requests"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get(&sb.url(target), &sb.client_token).await.status, 200);
    assert_eq!(lookups(&sb).len(), 2, "looked up again after the ttl");
}

#[tokio::test]
async fn a_hundred_concurrent_requests_share_one_lookup() {
    let sb = scoped("").await;
    let url = sb.url("/api/v4/projects/acme%2Fplatform%2Fapi/merge_requests");
    let token = sb.client_token.clone();
    let replies = futures_util::future::join_all((0..100).map(|_| {
        let (url, token) = (url.clone(), token.clone());
        tokio::spawn(async move { get(&url, &token).await.status })
    }))
    .await;
    assert!(replies.into_iter().all(|status| status.unwrap() == 200));
    assert_eq!(lookups(&sb), ["/api/v4/projects/acme%2Fplatform%2Fapi"]);
    assert_eq!(relayed(&sb).len(), 100);
}

#[tokio::test]
async fn a_failed_lookup_refuses_with_503_and_forwards_nothing() {
    let sb = scoped("").await;
    sb.fake.set_fail_next(500);
    let reply = get(
        &sb.url("/api/v4/projects/102/merge_requests"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["reason"], "scope_check_failed");
    assert!(relayed(&sb).is_empty());
    // Failures are not cached: the next request tries again and passes.
    let reply = get(
        &sb.url("/api/v4/projects/102/merge_requests"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 200);

    // GitLab down altogether.
    let down = Sandbox::with(SandboxOptions {
        policy: policy(),
        client_extra: SCOPE.into(),
        upstream_url: Some(format!(
            "http://{}",
            crate::support::upstreams::refused_address().await
        )),
        ..SandboxOptions::default()
    })
    .await;
    let reply = get(&down.url("/api/v4/groups/acme"), &down.client_token).await;
    assert_eq!(reply.status, 503);
    assert!(reply.json()["message"].as_str().unwrap().contains("scope"));
}

#[tokio::test]
async fn a_lookup_failure_in_a_list_refuses_the_page() {
    let sb = scoped("").await;
    // The merge request list names its projects by id; the lookup of one of
    // them fails after GitLab has answered the list itself.
    sb.fake.set_fail_target("/api/v4/projects/102", 502);
    let reply = get(
        &sb.url("/api/v4/groups/acme/merge_requests"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 503, "{}", reply.all_text());
    assert_eq!(reply.json()["reason"], "scope_check_failed");
    assert!(
        !reply.all_text().contains("Redesign"),
        "no item of the page is relayed"
    );
    let reply = get(
        &sb.url("/api/v4/groups/acme/merge_requests"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_reload_applies_a_new_scope_to_the_next_request() {
    let sb = scoped("").await;
    assert_not_found(
        &get(
            &sb.url("/api/v4/groups/partners%2Fshared-not"),
            &sb.client_token,
        )
        .await,
        "Group",
    );
    assert_not_found(
        &get(&sb.url("/api/v4/projects/201"), &sb.client_token).await,
        "Project",
    );
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    let widened = config.replace(
        "projects: [tools/ci-templates]",
        "projects: [tools/ci-templates, partners/shared]",
    );
    assert_ne!(config, widened);
    std::fs::write(&sb.config_path, widened).unwrap();
    sb.server.reload().unwrap();
    assert_eq!(
        get(&sb.url("/api/v4/projects/201"), &sb.client_token)
            .await
            .status,
        200
    );
    let narrowed = std::fs::read_to_string(&sb.config_path)
        .unwrap()
        .replace("groups: [acme, Partners/Team]", "groups: [Partners/Team]")
        .replace("      exclude: [acme/secret-stuff]\n", "");
    std::fs::write(&sb.config_path, narrowed).unwrap();
    sb.server.reload().unwrap();
    assert_not_found(
        &get(&sb.url("/api/v4/projects/101"), &sb.client_token).await,
        "Project",
    );
}

#[tokio::test]
async fn clients_without_a_scope_see_everything_the_token_sees() {
    let sb = Sandbox::with(SandboxOptions {
        policy: policy(),
        other_client: Some(SCOPE.into()),
        ..SandboxOptions::default()
    })
    .await;
    let reply = get(&sb.url("/api/v4/projects/301"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    let reply = get(&sb.url("/api/v4/groups?per_page=100"), &sb.client_token).await;
    assert_eq!(reply.json().as_array().unwrap().len(), 7);
    assert!(
        reply.header("x-total").is_some(),
        "an unscoped list keeps its totals"
    );
    assert!(lookups(&sb).is_empty(), "no lookups for an unscoped client");
    // The scoped one, on the same glgate, does not.
    let reply = get(&sb.url("/api/v4/projects/301"), &sb.other_token).await;
    assert_not_found(&reply, "Project");
}

#[tokio::test]
async fn scope_refusals_are_counted_in_metrics() {
    let sb = scoped("").await;
    assert_not_found(
        &get(&sb.url("/api/v4/projects/301"), &sb.client_token).await,
        "Project",
    );
    let reply = get(&sb.url("/api/v4/groups?per_page=100"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    let admin = sb.server.admin_addr.unwrap();
    let metrics = get(&format!("http://{admin}/metrics"), "").await.all_text();
    assert!(metrics.contains("reason=\"out_of_scope\""), "{metrics}");
    assert!(
        metrics.contains("glgate_scope_lookups_total{result=\"miss\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("glgate_scope_hidden_items_total{client=\"echoes\"} 4"),
        "{metrics}"
    );
}

/// Runs the real binary (off the runtime: the fake GitLab lives on it).
async fn glgate(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn scope_show_lists_what_each_client_reaches_via_gitlab() {
    let sb = scoped("").await;
    let config = sb.config_path.to_str().unwrap().to_owned();
    let out = glgate(&["scope", "show", "--config", &config, "--client", "echoes"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let section = |title: &str| -> Vec<String> {
        text.split(&format!("  {title}:\n"))
            .nth(1)
            .unwrap_or_default()
            .lines()
            .take_while(|l| l.starts_with("    "))
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let in_scope = section("in scope");
    assert_eq!(in_scope.len(), 3 + 50, "{text}");
    for expected in [
        "group acme",
        "group acme/platform",
        "group partners/team",
        "project acme/backend",
        "project acme/platform/api",
        "project partners/team/sdk",
        "project tools/ci-templates",
    ] {
        assert!(
            in_scope.contains(&expected.to_owned()),
            "{expected} in\n{text}"
        );
    }
    assert_eq!(
        section("excluded"),
        ["group acme/secret-stuff", "project acme/secret-stuff/keys"],
        "{text}"
    );
    assert!(
        text.contains("3 group(s) and 50 project(s) in scope"),
        "{text}"
    );
    assert!(
        !text.contains("secret/vault") && !text.contains("tools/scripts"),
        "{text}"
    );

    // A typo in the scope is pointed out, with a failing exit code.
    let config_text = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config_text.replace("tools/ci-templates", "tools/ci-templtes"),
    )
    .unwrap();
    let out = glgate(&["scope", "show", "--config", &config]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ scope.projects: 'tools/ci-templtes' is not known to GitLab"),
        "{text}"
    );
    // So is an old path: scope decides on current paths.
    std::fs::write(&sb.config_path, &config_text).unwrap();
    assert!(sb.fake.rename_project(401, "ci-templates-v2"));
    let out = glgate(&["scope", "show", "--config", &config]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("'tools/ci-templates' is an old path"),
        "{text}"
    );
    let out = glgate(&["scope", "show", "--config", &config, "--client", "nobody"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("clients: echoes"));
}

/// `scope show` changes nothing: it reads the token once and starts no task
/// that keeps a credential current (no expiry check, no reload, no
/// rotation), and it never refreshes an OAuth token, since a refresh
/// replaces the refresh token the running glgate holds.
#[tokio::test]
async fn scope_show_reads_the_token_once_and_never_refreshes_an_oauth_token() {
    let sb = scoped("").await;
    let config = sb.config_path.to_str().unwrap().to_owned();
    sb.fake.clear_requests();
    let out = glgate(&["scope", "show", "--config", &config, "--client", "echoes"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = sb.fake.requests();
    assert!(!requests.is_empty(), "scope show asked GitLab nothing");
    for request in &requests {
        assert_eq!(request.method, "GET", "{}", request.target);
        assert!(
            request
                .header("user-agent")
                .is_some_and(|ua| ua.starts_with("glgate/")),
            "only scope lookups, nothing from a credential task: {} {}",
            request.method,
            request.target
        );
    }

    // The same config on OAuth, with an application GitLab would refresh for.
    sb.fake.oauth_client(
        "glgate-app",
        "app-secret-123",
        "http://127.0.0.1:7171/callback",
    );
    let (access, refresh) = sb.fake.oauth_grant();
    for secret in [&access, &refresh] {
        sb.remember_secret(secret);
    }
    std::fs::write(sb.dir.path().join("oauth-secret"), "app-secret-123\n").unwrap();
    let refresh_path = sb.dir.path().join("oauth-refresh");
    std::fs::write(&refresh_path, format!("{refresh}\n")).unwrap();
    let oauth_config = sb.dir.path().join("oauth.yaml");
    std::fs::write(
        &oauth_config,
        std::fs::read_to_string(&sb.config_path).unwrap().replace(
            "  token_file: gitlab-token\n",
            "  oauth:\n    client_id: glgate-app\n    client_secret_file: oauth-secret\n    refresh_token_file: oauth-refresh\n",
        ),
    )
    .unwrap();
    sb.fake.clear_requests();
    let started = std::time::Instant::now();
    let out = glgate(&[
        "scope",
        "show",
        "--config",
        oauth_config.to_str().unwrap(),
        "--client",
        "echoes",
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("client echoes: cannot read the scope from GitLab")
            && stderr.contains("never refreshes"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "no wait for a token that will not come: {:?}",
        started.elapsed()
    );
    assert_eq!(sb.fake.oauth_refresh_calls(), 0);
    assert!(
        sb.fake.requests().is_empty(),
        "{:?}",
        sb.fake
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.target))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        std::fs::read_to_string(&refresh_path).unwrap(),
        format!("{refresh}\n"),
        "the refresh token is untouched"
    );
    assert!(sb.fake.valid_refresh_tokens().contains(&refresh));
}

#[tokio::test]
async fn answers_too_large_to_filter_are_refused_not_relayed_unchecked() {
    let sb = scoped("limits:\n  max_filtered_response_bytes: 2000\n").await;
    let reply = get(
        &sb.url("/api/v4/groups/acme/projects?per_page=5"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 502, "{}", reply.all_text());
    assert_eq!(reply.json()["reason"], "response_too_large_to_filter");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("per_page")
    );
    // A small page passes.
    let reply = get(
        &sb.url("/api/v4/groups/acme/descendant_groups"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 200);
    // Over HTTP/2 too, and HEAD carries no total.
    let reply = send(
        Version::HTTP_2,
        "HEAD",
        &sb.url("/api/v4/groups/acme/descendant_groups"),
        &[("private-token", &sb.client_token)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("x-total").is_none());
}

/// The shipped policy plus namespace reads and a write naming another project.
fn policy_with_namespaces() -> String {
    format!(
        "{}\n  - id: test.namespaces\n    methods: [GET]\n    paths: ['/namespaces/{{namespace}}']\n",
        policy()
    )
}

#[tokio::test]
async fn namespaces_are_scoped_like_groups() {
    let sb = Sandbox::with(SandboxOptions {
        policy: policy_with_namespaces(),
        client_extra: SCOPE.into(),
        ..SandboxOptions::default()
    })
    .await;
    for target in [
        "/api/v4/namespaces/acme",
        "/api/v4/namespaces/11",
        "/api/v4/namespaces/Partners%2FTeam",
    ] {
        assert_eq!(
            get(&sb.url(target), &sb.client_token).await.status,
            200,
            "{target}"
        );
    }
    for target in [
        "/api/v4/namespaces/secret",
        "/api/v4/namespaces/30",
        "/api/v4/namespaces/acme%2Fsecret-stuff",
        "/api/v4/namespaces/glgate-bot",
        "/api/v4/namespaces/nope",
    ] {
        assert_not_found(&get(&sb.url(target), &sb.client_token).await, "Namespace");
    }
    assert_eq!(relayed(&sb).len(), 3, "{:#?}", relayed(&sb));
}

#[tokio::test]
async fn parameters_naming_other_projects_or_groups_are_checked_too() {
    let sb = scoped("").await;
    for (target, noun) in [
        (
            "/api/v4/projects/101/merge_requests?target_project_id=301",
            "Project",
        ),
        (
            "/api/v4/projects/101/merge_requests?source_project_id=secret%2Fvault",
            "Project",
        ),
        ("/api/v4/groups/acme/projects?namespace_id=30", "Namespace"),
        ("/api/v4/groups/acme/projects?group_id=12", "Group"),
    ] {
        assert_not_found(&get(&sb.url(target), &sb.client_token).await, noun);
    }
    assert!(relayed(&sb).is_empty(), "{:#?}", relayed(&sb));
    let reply = get(
        &sb.url("/api/v4/projects/101/merge_requests?target_project_id=102"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn an_id_gitlab_could_read_as_a_format_suffix_is_refused() {
    let sb = scoped("").await;
    for target in [
        "/api/v4/projects/tools%2Fci-templates.json/merge_requests",
        "/api/v4/groups/acme.json/projects",
    ] {
        let reply = get(&sb.url(target), &sb.client_token).await;
        assert_eq!(reply.status, 404, "{target}");
    }
    assert!(sb.fake.requests().is_empty(), "nothing reached GitLab");
}

#[tokio::test]
async fn a_scoped_clients_policy_must_let_scope_see_every_object() {
    let sb = scoped("").await;
    let bad = format!(
        "{}\n  - id: test.by-id\n    methods: [GET]\n    paths: ['/projects/{{id}}/forks']\n",
        policy()
    );
    std::fs::write(&sb.policy_path, bad).unwrap();
    let error = sb.server.reload().unwrap_err().to_string();
    assert!(error.contains("/projects/{id}/forks"), "{error}");
    assert!(error.contains("{project}"), "{error}");
}

/// Scope alone is judged without building the answer (`src/scope/shallow.rs`);
/// an answer that path could read differently from the full one (a key given
/// twice: the full path keeps the last) is judged by the full path, and
/// what is kept is GitLab's own bytes.
#[tokio::test]
async fn answers_are_judged_as_the_full_parse_reads_them() {
    let sb = scoped("").await;
    let list = "/api/v4/projects?per_page=4";
    sb.fake.set_answer_target(
        list,
        r#"[ {"id": 101, "path_with_namespace": "acme/backend", "description": "kept \u00e9 as sent"},
            {"id": 301, "path_with_namespace": "acme/backend", "path_with_namespace": "secret/vault"},
            {"id": 9, "path_with_namespace": "secret/vault"},
            {"id": 102, "path_with_namespace": "acme/frontend"} ]"#,
    );
    let reply = get(&sb.url(list), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(!text.contains("secret"), "{text}");
    // The full path built it: its own serialization, same content.
    assert!(text.contains("kept é as sent"), "{text}");
    let ids: Vec<u64> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [101, 102]);

    // Without a key given twice, the fast path keeps the same items, and
    // relays them as GitLab wrote them (escapes and spacing included).
    sb.fake.set_answer_target(
        list,
        r#"[{"id": 101, "path_with_namespace": "acme/backend", "description": "kept \u00e9"}, {"id": 9, "path_with_namespace": "secret/vault"}]"#,
    );
    let reply = get(&sb.url(list), &sb.client_token).await;
    assert_eq!(
        reply.body.as_ref(),
        br#"[{"id": 101, "path_with_namespace": "acme/backend", "description": "kept \u00e9"}]"#
    );

    // A single object whose last path lies outside is refused whole. The
    // project's own lookup is warmed first, so the crafted answer is the
    // relayed request's.
    assert_eq!(
        get(&sb.url("/api/v4/projects/101"), &sb.client_token)
            .await
            .status,
        200
    );
    sb.fake.set_answer_target(
        "/api/v4/projects/101",
        r#"{"id": 101, "path_with_namespace": "acme/backend", "path_with_namespace": "secret/vault"}"#,
    );
    let reply = get(&sb.url("/api/v4/projects/101"), &sb.client_token).await;
    assert_not_found(&reply, "Project");
}
