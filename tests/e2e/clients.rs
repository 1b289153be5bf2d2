//! What mainstream GitLab clients do that glgate must answer as GitLab would
//! (issue 15): go-gitlab's escaped dots, a distinct answer when GitLab rejects
//! glgate's own token, GitLab's request id kept for support, totals on
//! filtered lists, and the API root go-gitlab probes. Each over real sockets,
//! through a real glgate in front of the recording fake GitLab.

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use http::Version;

/// Requests the fake GitLab received for the client (not glgate's own checks).
fn relayed(sb: &Sandbox) -> Vec<String> {
    sb.fake
        .requests()
        .into_iter()
        .filter(|r| {
            !r.header("user-agent")
                .is_some_and(|ua| ua.starts_with("glgate/"))
        })
        .map(|r| r.target)
        .collect()
}

async fn metrics_text(sb: &Sandbox) -> String {
    let admin = format!("http://{}/metrics", sb.server.admin_addr.unwrap());
    let reply = send(Version::HTTP_11, "GET", &admin, &[], b"").await;
    assert_eq!(reply.status, 200);
    String::from_utf8_lossy(&reply.body).into_owned()
}

// ---------------------------------------------------------------------------
// Item 1: go-gitlab escapes every '.' as %2E

/// go-gitlab sends `GetProject("acme/docs.site")` as
/// `/projects/acme%2Fdocs%2Esite` and a label `echoes/effort: v1.0` as
/// `echoes%2Feffort%3A%20v1%2E0`: read once, checked on the decoding and
/// forwarded byte for byte. A dot segment, an empty part or a format suffix
/// spelled with escapes is still refused, and GitLab receives nothing.
#[tokio::test]
async fn escaped_dots_reach_gitlab_as_sent() {
    let sb = Sandbox::start().await;
    let token = &sb.client_token;

    // A project path with a dot: allowed, forwarded as sent (the fake knows
    // no such project, so GitLab's own 404 comes back).
    let reply = get(&sb.url("/api/v4/projects/acme%2Fdocs%2Esite"), token).await;
    assert_eq!(
        reply.status,
        404,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["message"], "404 Project Not Found");
    assert_eq!(relayed(&sb), ["/api/v4/projects/acme%2Fdocs%2Esite"]);
    sb.fake.clear_requests();

    // A label with a dot, created then read by its escaped name.
    let reply = send(
        Version::HTTP_11,
        "POST",
        &sb.url("/api/v4/groups/acme/labels"),
        &[
            ("private-token", token),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        b"name=echoes%2Feffort%3A+v1.0&color=%23428BCA",
    )
    .await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let target = "/api/v4/groups/acme/labels/echoes%2Feffort%3A%20v1%2E0";
    let reply = get(&sb.url(target), token).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["name"], "echoes/effort: v1.0");
    assert_eq!(relayed(&sb).last().map(String::as_str), Some(target));
    sb.fake.clear_requests();

    // Escapes are decoded before the path checks, never after them.
    for target in [
        "/api/v4/projects/%2E%2E",
        "/api/v4/projects/acme%2F%2E%2E%2Fbackend",
        "/api/v4/projects/acme%2F%2E%2Fbackend",
        "/api/v4/projects/acme%2F%2E",
        "/api/v4/projects/101%2Ejson",
        "/api/v4/projects/acme%2Fbackend%2Egit",
        "/api/v4/groups/acme/labels/echoes%2Fx%2Ejson",
        // A route name spelled with escapes: GitLab reads `%70rojects` as
        // `projects`, glgate compares route names as sent.
        "/api/v4/%70rojects/101",
        "/api/v4/projects/101/%6Derge_requests",
    ] {
        let reply = get(&sb.url(target), token).await;
        assert_eq!(reply.status, 400, "{target}");
        assert_eq!(reply.json()["reason"], "ambiguous_target", "{target}");
    }
    assert!(relayed(&sb).is_empty(), "{:?}", relayed(&sb));
}

// ---------------------------------------------------------------------------
// Items 3 and 4: glgate's own credential, GitLab's request id

/// When GitLab rejects glgate's token, the client must not read "your token
/// is wrong": 503 `upstream_credential_rejected`, a message naming glgate's
/// credential, a warning in the log with GitLab's request id, a counter that
/// was there from the start, and the audit line carrying GitLab's id.
#[tokio::test]
async fn a_rejected_gitlab_token_is_glgates_problem_not_the_clients() {
    let sb = Sandbox::start().await;
    let before = metrics_text(&sb).await;
    assert!(
        before.contains("glgate_upstream_credential_rejections_total 0"),
        "{before}"
    );

    sb.fake.revoke(&sb.gitlab_token);
    let reply = get(&sb.url("/api/v4/projects/101"), &sb.client_token).await;
    assert_eq!(
        reply.status,
        503,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["reason"], "upstream_credential_rejected");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("glgate's own GitLab credential") && message.contains("your token"),
        "{message}"
    );
    assert!(
        !reply
            .header("x-request-id")
            .unwrap()
            .starts_with("01FAKEGITLAB"),
        "the client gets glgate's request id"
    );
    // GitLab was asked once: nothing was acted upon, nothing sent again.
    assert_eq!(relayed(&sb), ["/api/v4/projects/101"]);

    let events = sb.audit_events(1).await;
    let event = &events[0];
    assert_eq!(event["reason"], "upstream_credential_rejected");
    assert_eq!(event["status"], 503);
    let upstream_id = event["upstream_request_id"].as_str().unwrap();
    assert!(upstream_id.starts_with("01FAKEGITLAB"), "{event}");

    let after = metrics_text(&sb).await;
    assert!(
        after.contains("glgate_upstream_credential_rejections_total 1"),
        "{after}"
    );
    assert!(
        after.contains(r#"reason="upstream_credential_rejected",status="503"} 1"#),
        "{after}"
    );
    let logs = crate::support::logs::captured();
    assert!(
        logs.lines().any(|line| line.contains("WARN")
            && line.contains("rejected glgate's own GitLab token")
            && line.contains(upstream_id)),
        "{logs}"
    );

    // The client's own bad token is still GitLab's plain 401 answer shape,
    // given by glgate: the two are told apart.
    let reply = get(&sb.url("/api/v4/projects/101"), "glg_wrong").await;
    assert_eq!(reply.status, 401);
    assert_ne!(reply.json()["reason"], "upstream_credential_rejected");
}

/// GitLab's `X-Request-Id` is replaced by glgate's towards the client, and
/// kept in the audit line for a support case to follow into GitLab's logs.
#[tokio::test]
async fn the_audit_line_keeps_gitlabs_request_id() {
    let sb = Sandbox::start().await;
    let reply = get(&sb.url("/api/v4/projects/101"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    let ours = reply.header("x-request-id").unwrap().to_owned();
    get(&sb.url("/api/v4/projects/101/variables"), &sb.client_token).await;
    let events = sb.audit_events(2).await;
    assert_eq!(events[0]["request_id"], ours.as_str());
    let theirs = events[0]["upstream_request_id"].as_str().unwrap();
    assert!(theirs.starts_with("01FAKEGITLAB"), "{}", events[0]);
    assert_ne!(theirs, ours);
    // Refused before GitLab: no upstream id.
    assert_eq!(events[1]["reason"], "no_rule");
    assert!(
        events[1].get("upstream_request_id").is_none(),
        "{}",
        events[1]
    );
}

// ---------------------------------------------------------------------------
// Item 5: totals on filtered lists

/// A scoped client's lists carry no `X-Total`, `X-Total-Pages` or
/// `rel="last"` on any page, including a page that hid nothing: whether this
/// page hid something says nothing of the others, so a total would still
/// count items hidden elsewhere. `X-Next-Page` and `rel="next"` stay, and
/// following them reaches every visible item.
#[tokio::test]
async fn filtered_lists_page_by_next_page_without_totals() {
    let scope = "    rate_limit: { per_second: 1000, burst: 1000 }\n    scope:\n      groups: [acme, partners/team]\n      exclude: [acme/secret-stuff]\n";
    let sb = Sandbox::with(SandboxOptions {
        client_extra: scope.into(),
        ..SandboxOptions::default()
    })
    .await;
    let mut page = Some("1".to_owned());
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(number) = page {
        let reply = get(
            &sb.url(&format!(
                "/api/v4/groups?order_by=id&per_page=2&page={number}"
            )),
            &sb.client_token,
        )
        .await;
        assert_eq!(reply.status, 200);
        pages += 1;
        let items: Vec<String> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["full_path"].as_str().unwrap().to_owned())
            .collect();
        if number == "1" {
            // acme and acme/platform: nothing hidden on this page.
            assert_eq!(items, ["acme", "acme/platform"]);
        }
        assert!(reply.header("x-total").is_none(), "page {number}");
        assert!(reply.header("x-total-pages").is_none(), "page {number}");
        let link = reply.header("link").unwrap_or_default();
        assert!(!link.contains("rel=\"last\""), "page {number}: {link}");
        assert_eq!(reply.header("x-page"), Some(number.as_str()));
        assert_eq!(reply.header("x-per-page"), Some("2"));
        seen.extend(items);
        page = reply
            .header("x-next-page")
            .filter(|next| !next.is_empty())
            .map(str::to_owned);
        if page.is_some() {
            assert!(link.contains("rel=\"next\""), "page {number}: {link}");
        }
    }
    assert_eq!(seen, ["acme", "acme/platform", "partners/team"]);
    assert!(pages >= 3, "the walk crossed pages that hid items");
}

// ---------------------------------------------------------------------------
// Item 6: the API root go-gitlab probes

/// go-gitlab reads `RateLimit-Limit` from `GET /api/v4/` to size its own
/// limiter. glgate answers that probe itself, before authentication, and
/// carries no `RateLimit-*` header: GitLab's numbers count glgate's token
/// (all clients together), glgate's own limit is per client and the probe
/// names none. go-gitlab then leaves its limiter open and relies on 429 with
/// `Retry-After`, which glgate sends. GitLab is not asked.
#[tokio::test]
async fn the_api_root_carries_no_rate_limit_headers() {
    let sb = Sandbox::start().await;
    for token in ["", sb.client_token.as_str()] {
        for target in ["/api/v4/", "/api/v4"] {
            let reply = get(&sb.url(target), token).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.body.as_ref(), b"{}");
            let names: Vec<&str> = reply.headers.keys().map(|n| n.as_str()).collect();
            assert!(
                !names.iter().any(|n| n.starts_with("ratelimit")),
                "{names:?}"
            );
        }
    }
    assert!(sb.fake.requests().is_empty());
}

/// python-gitlab labels a merge request by sending the whole new set
/// (`mr.labels = [...]; mr.save()` sends `labels`). glgate reads the merge
/// request first and forwards only when the set changes by echoes/ labels:
/// the team's own labels can be neither removed nor added.
#[tokio::test]
async fn labels_replacing_the_set_may_change_only_echoes_labels() {
    let sb = crate::support::sandbox::Sandbox::start().await;
    let put = |labels: &'static str| {
        let body = format!(r#"{{"labels":"{labels}"}}"#);
        let url = sb.url("/api/v4/projects/101/merge_requests/1");
        let token = sb.client_token.clone();
        async move {
            crate::support::client::send(
                http::Version::HTTP_11,
                "PUT",
                &url,
                &[
                    ("private-token", token.as_str()),
                    ("content-type", "application/json"),
                ],
                body.as_bytes(),
            )
            .await
        }
    };
    let writes = |sb: &crate::support::sandbox::Sandbox| {
        sb.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT")
            .count()
    };
    // MR !1 of project 101 carries the team's label `bug`.
    let added = put("bug,echoes/intent: feature").await;
    assert_eq!(
        added.status,
        200,
        "{}",
        String::from_utf8_lossy(&added.body)
    );
    assert_eq!(
        added.json()["labels"],
        serde_json::json!(["bug", "echoes/intent: feature"])
    );
    assert_eq!(writes(&sb), 1);

    for (labels, named) in [
        ("echoes/intent: feature", "'bug'"),
        ("bug,echoes/intent: feature,team/urgent", "'team/urgent'"),
    ] {
        let refused = put(labels).await;
        assert_eq!(
            refused.status,
            403,
            "{labels}: {}",
            String::from_utf8_lossy(&refused.body)
        );
        assert_eq!(refused.json()["reason"], "change_not_allowed", "{labels}");
        let message = refused.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(named), "{labels}: {message}");
    }
    // An empty set would clear every label: refused by the parameter rule.
    assert_eq!(put("").await.status, 403);
    assert_eq!(writes(&sb), 1, "no refused change reached GitLab");
    let now = crate::support::client::get(
        &sb.url("/api/v4/projects/101/merge_requests/1"),
        &sb.client_token,
    )
    .await;
    assert_eq!(
        now.json()["labels"],
        serde_json::json!(["bug", "echoes/intent: feature"])
    );
}
