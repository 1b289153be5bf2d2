//! Resources the client may touch only if they are its own (`owned_if`), and
//! list items it may see only if they are its own (`response_filter`): in the
//! Echoes policy, webhooks whose url is Echoes' API. Other integrations'
//! hooks (whose URLs often carry secrets) stay invisible and untouchable.

use crate::support::client::{get, send};
use crate::support::sandbox::Sandbox;
use http::Version;

const JENKINS: &str = "https://jenkins.acme.internal/project/backend?token=s3cret";

/// Creates a hook directly at the fake GitLab (as the customer would), returning its id.
async fn customer_hook(sb: &Sandbox, url: &str) -> u64 {
    let body = serde_json::json!({ "url": url, "push_events": true }).to_string();
    let reply = send(
        Version::HTTP_11,
        "POST",
        &format!("{}/api/v4/projects/101/hooks", sb.fake.base_url()),
        &[
            ("private-token", sb.fake.token()),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 201);
    reply.json()["id"].as_u64().unwrap()
}

async fn call(
    sb: &Sandbox,
    method: &str,
    target: &str,
    body: &str,
) -> crate::support::client::Reply {
    send(
        Version::HTTP_11,
        method,
        &sb.url(target),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn lists_show_only_the_clients_own_hooks() {
    let sb = Sandbox::start().await;
    customer_hook(&sb, JENKINS).await;
    let echoes = customer_hook(&sb, "https://api.echoeshq.com/hooks/gitlab/acme").await;
    let reply = get(&sb.url("/api/v4/projects/101/hooks"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    let ids: Vec<u64> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [echoes]);
    assert!(
        !reply.all_text().contains("jenkins"),
        "nothing of the other hook leaks"
    );
    assert!(
        reply.header("x-total").is_none(),
        "totals would count hidden hooks"
    );
    let forwarded = sb.fake.requests().into_iter().last().unwrap();
    assert_eq!(forwarded.header("accept-encoding"), Some("identity"));
}

#[tokio::test]
async fn other_hooks_cannot_be_read_changed_or_deleted() {
    let sb = Sandbox::start().await;
    let jenkins = customer_hook(&sb, JENKINS).await;
    sb.fake.clear_requests();
    let target = format!("/api/v4/projects/101/hooks/{jenkins}");
    for (method, body) in [
        ("GET", ""),
        ("PUT", r#"{"url":"https://api.echoeshq.com/x"}"#),
        ("PUT", r#"{"confidential_issues_events":true}"#),
        ("DELETE", ""),
    ] {
        let reply = call(&sb, method, &target, body).await;
        assert_eq!(reply.status, 403, "{method} {body}");
        assert_eq!(reply.json()["reason"], "not_owned");
        assert!(!reply.all_text().contains("jenkins"));
    }
    let received = sb.fake.requests();
    assert_eq!(received.len(), 4, "only glgate's own reads reached GitLab");
    assert!(
        received
            .iter()
            .all(|r| r.method == "GET" && r.target == target)
    );
    let still = send(
        Version::HTTP_11,
        "GET",
        &format!("{}{target}", sb.fake.base_url()),
        &[("private-token", sb.fake.token())],
        b"",
    )
    .await;
    assert_eq!(
        still.json()["url"],
        JENKINS,
        "the customer's hook is untouched"
    );
}

#[tokio::test]
async fn the_clients_own_hooks_can_be_updated_and_deleted() {
    let sb = Sandbox::start().await;
    let created = call(
        &sb,
        "POST",
        "/api/v4/projects/101/hooks",
        r#"{"url":"https://api.echoeshq.com/hooks/gitlab/acme","merge_requests_events":true}"#,
    )
    .await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_u64().unwrap();
    let target = format!("/api/v4/projects/101/hooks/{id}");
    let reply = call(&sb, "PUT", &target, r#"{"push_events":false}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.all_text());
    let reply = call(
        &sb,
        "PUT",
        &target,
        r#"{"url":"https://attacker.example/x"}"#,
    )
    .await;
    assert_eq!(reply.status, 403, "cannot be repointed elsewhere");
    assert_eq!(reply.json()["reason"], "invalid_param");
    assert_eq!(call(&sb, "GET", &target, "").await.status, 200);
    assert_eq!(call(&sb, "DELETE", &target, "").await.status, 204);
    assert_eq!(call(&sb, "DELETE", &target, "").await.status, 404, "gone");
    let methods: Vec<String> = sb
        .fake
        .requests()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(
        methods,
        ["POST", "GET", "PUT", "GET", "GET", "GET", "DELETE", "GET"]
    );
}

#[tokio::test]
async fn an_ownership_check_that_cannot_be_made_refuses_the_request() {
    let sb = Sandbox::start().await;
    let echoes = customer_hook(&sb, "https://api.echoeshq.com/hooks/gitlab/acme").await;
    sb.fake.clear_requests();
    sb.fake.set_fail_next(500);
    let reply = call(
        &sb,
        "DELETE",
        &format!("/api/v4/projects/101/hooks/{echoes}"),
        "",
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["reason"], "ownership_check_failed");
    assert_eq!(sb.fake.requests().len(), 1, "the DELETE was never sent");
}

#[tokio::test]
async fn filtered_lists_reveal_no_count_of_hidden_items() {
    let sb = Sandbox::start().await;
    customer_hook(&sb, JENKINS).await;
    customer_hook(&sb, "https://ci.acme.internal/hook").await;
    customer_hook(&sb, "https://api.echoeshq.com/hooks/gitlab/acme").await;
    for method in ["GET", "HEAD"] {
        let reply = send(
            Version::HTTP_11,
            method,
            &sb.url("/api/v4/projects/101/hooks?per_page=1"),
            &[("private-token", &sb.client_token)],
            b"",
        )
        .await;
        assert!(
            reply.header("x-total").is_none() && reply.header("x-total-pages").is_none(),
            "{method}"
        );
        assert!(
            !reply
                .header("link")
                .unwrap_or_default()
                .contains("rel=\"last\""),
            "{method}"
        );
    }
}
