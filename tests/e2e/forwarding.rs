//! End to end: what reaches GitLab is exactly what the policy checked, with
//! glgate's token and nothing of the client's. Every assertion reads the fake
//! GitLab's record, not only the status the client saw.

use crate::support::client::{get, next_link, raw, raw_status, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use http::Version;

#[tokio::test]
async fn missing_or_unknown_client_tokens_get_401_and_reach_nothing() {
    let sb = Sandbox::start().await;
    let url = sb.url("/api/v4/user");
    for headers in [
        vec![],
        vec![("private-token", "glg_wrong")],
        vec![("authorization", "Bearer glg_wrong")],
        vec![("authorization", "Basic Z2xnOnNlY3JldA==")],
        vec![("private-token", sb.gitlab_token.as_str())],
    ] {
        let reply = send(Version::HTTP_11, "GET", &url, &headers, b"").await;
        assert_eq!(reply.status, 401, "{headers:?}");
        assert!(
            reply.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("401 Unauthorized")
        );
    }
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn private_token_and_bearer_both_authenticate() {
    let sb = Sandbox::start().await;
    let bearer = format!("Bearer {}", sb.client_token);
    for header in [
        ("private-token", sb.client_token.as_str()),
        ("authorization", bearer.as_str()),
    ] {
        let reply = send(
            Version::HTTP_11,
            "GET",
            &sb.url("/api/v4/user"),
            &[header],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["username"], "glgate-bot");
    }
    assert_eq!(sb.fake.requests().len(), 2);
}

#[tokio::test]
async fn the_forwarded_request_is_exactly_the_checked_one() {
    let sb = Sandbox::start().await;
    let target =
        "/api/v4/projects/acme%2Fbackend/merge_requests?state=opened&labels=a%2Cb&per_page=5";
    let reply = send(
        Version::HTTP_11,
        "GET",
        &sb.url(target),
        &[
            ("private-token", &sb.client_token),
            ("accept", "application/json"),
            ("user-agent", "python-gitlab/test"),
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=10.9.9.9;host=evil.example"),
            ("x-real-ip", "10.9.9.9"),
            ("x-original-url", "/api/v4/projects/301"),
            ("x-rewrite-url", "/api/v4/projects/301"),
            ("connection", "x-secret"),
            ("x-secret", "hop"),
            ("cookie", "AWSALB=affinity; _gitlab_session=stolen"),
        ],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.all_text());
    let received = sb.fake.requests();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.target, target, "forwarded byte for byte");
    assert_eq!(
        request.header("private-token"),
        Some(sb.gitlab_token.as_str())
    );
    assert_eq!(
        request.header("host"),
        Some(sb.fake.addr().to_string().as_str())
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some("python-gitlab/test"));
    for absent in [
        "authorization",
        "x-forwarded-for",
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-secret",
        "cookie",
    ] {
        assert_eq!(
            request.header(absent),
            None,
            "{absent} must not reach GitLab"
        );
    }
    let everything = format!("{:?}", request.headers);
    assert!(!everything.contains(&sb.client_token));
}

#[tokio::test]
async fn encoded_project_paths_work_in_every_letter_case() {
    let sb = Sandbox::start().await;
    for target in [
        "/api/v4/projects/acme%2Fbackend",
        "/api/v4/projects/acme%2fbackend",
        "/api/v4/projects/ACME%2FBackend",
        "/api/v4/projects/101",
    ] {
        let reply = get(&sb.url(target), &sb.client_token).await;
        assert_eq!(reply.status, 200, "{target}");
        assert_eq!(reply.json()["id"], 101, "{target}");
    }
    let targets: Vec<String> = sb.fake.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets[2], "/api/v4/projects/ACME%2FBackend",
        "never re-encoded or decoded"
    );
}

#[tokio::test]
async fn bodies_are_checked_then_forwarded_byte_for_byte() {
    let sb = Sandbox::start().await;
    let json = br#"{"add_labels": ["echoes/intent: feature", "echoes/effort: S"]}"#;
    let reply = send(
        Version::HTTP_11,
        "PUT",
        &sb.url("/api/v4/projects/101/merge_requests/1"),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        json,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.all_text());
    let labels = reply.json()["labels"].clone();
    assert!(
        labels
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "echoes/effort: S")
    );
    let form = b"name=echoes%2Finitiative%3A+Q4&color=%23428BCA&description=from+the+test";
    let reply = send(
        Version::HTTP_11,
        "POST",
        &sb.url("/api/v4/groups/acme/labels"),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        form,
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.all_text());
    assert_eq!(reply.json()["name"], "echoes/initiative: Q4");
    let received = sb.fake.requests();
    assert_eq!(received[0].body, json);
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert_eq!(
        received[0].header("content-length"),
        Some(json.len().to_string().as_str())
    );
    assert_eq!(received[1].body, form);
    assert_eq!(
        received[1].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn credential_and_override_headers_are_refused_by_name() {
    let sb = Sandbox::start().await;
    for name in [
        "job-token",
        "deploy-token",
        "sudo",
        "x-csrf-token",
        "dpop",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        let reply = send(
            Version::HTTP_11,
            "GET",
            &sb.url("/api/v4/user"),
            &[("private-token", &sb.client_token), (name, "x")],
            b"",
        )
        .await;
        assert_eq!(reply.status, 400, "{name}");
        let body = reply.json();
        assert_eq!(body["reason"], "forbidden_header");
        assert!(body["message"].as_str().unwrap().contains(name), "{body}");
    }
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn a_repeated_content_type_is_refused() {
    let sb = Sandbox::start().await;
    let body = r#"{"add_labels":"echoes/a"}"#;
    let request = format!(
        "PUT /api/v4/projects/101/merge_requests/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\
         Content-Type: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sb.client_token,
        body.len()
    );
    let response = raw(sb.server.addr, request.as_bytes()).await;
    assert_eq!(raw_status(&response), 400, "{response}");
    assert!(response.contains("repeated_header"), "{response}");
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn credential_and_override_params_are_refused_in_query_and_body() {
    let sb = Sandbox::start().await;
    for param in [
        "private_token",
        "access_token",
        "bearer_token",
        "job_token",
        "sudo",
        "_method",
        "SUDO",
    ] {
        let reply = get(
            &sb.url(&format!("/api/v4/user?{param}=x")),
            &sb.client_token,
        )
        .await;
        assert_eq!(reply.status, 400, "{param}");
        assert_eq!(reply.json()["reason"], "forbidden_param");
        let body = format!(r#"{{"add_labels":"echoes/a","{param}":"x"}}"#);
        let reply = send(
            Version::HTTP_11,
            "PUT",
            &sb.url("/api/v4/projects/101/merge_requests/1"),
            &[
                ("private-token", &sb.client_token),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await;
        assert_eq!(reply.status, 400, "{param} in body");
        assert_eq!(reply.json()["reason"], "forbidden_param");
    }
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn policy_refusals_say_why_and_reach_nothing() {
    let sb = Sandbox::start().await;
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "GET",
            "/api/v4/projects/101/repository/files/README.md?ref=main",
            "",
            403,
            "no_rule",
        ),
        (
            "GET",
            "/api/v4/projects/101/repository/archive",
            "",
            403,
            "no_rule",
        ),
        ("GET", "/api/v4/projects/101/variables", "", 403, "no_rule"),
        (
            "DELETE",
            "/api/v4/projects/101",
            "",
            403,
            "method_not_allowed",
        ),
        (
            "PATCH",
            "/api/v4/projects/101/merge_requests/1",
            "",
            403,
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/v4/groups/10/members",
            r#"{"user_id":2,"access_level":50}"#,
            403,
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/101/hooks",
            r#"{"url":"https://attacker.example/x"}"#,
            403,
            "invalid_param",
        ),
        (
            "POST",
            "/api/v4/projects/101/hooks",
            r#"{"url":"https://api.echoeshq.com/x","enable_ssl_verification":false}"#,
            403,
            "invalid_param",
        ),
        (
            "POST",
            "/api/v4/projects/101/hooks",
            r#"{"url":"https://api.echoeshq.com/x","custom_webhook_template":"{}"}"#,
            403,
            "unknown_param",
        ),
        (
            "PUT",
            "/api/v4/projects/101/merge_requests/1",
            r#"{"title":"pwned"}"#,
            403,
            "unknown_param",
        ),
        (
            "PUT",
            "/api/v4/projects/101/merge_requests/1",
            r#"{"add_labels":["echoes/a","bug"]}"#,
            403,
            "invalid_param",
        ),
        (
            "PUT",
            "/api/v4/projects/101/merge_requests/1",
            r#"{"labels":"echoes/a","labels":"bug"}"#,
            400,
            "duplicate_param",
        ),
        (
            "POST",
            "/api/v4/groups/10/labels",
            r##"{"name":"release","color":"#ffffff"}"##,
            403,
            "invalid_param",
        ),
        (
            "DELETE",
            "/api/v4/groups/10/labels/bug",
            "",
            403,
            "invalid_path_param",
        ),
        ("GET", "/api/v4/user", r#"{"x":1}"#, 403, "body_not_allowed"),
    ];
    for (method, target, body, status, reason) in cases {
        let mut headers = vec![("private-token", sb.client_token.as_str())];
        if !body.is_empty() {
            headers.push(("content-type", "application/json"));
        }
        let reply = send(
            Version::HTTP_11,
            method,
            &sb.url(target),
            &headers,
            body.as_bytes(),
        )
        .await;
        assert_eq!(
            reply.status,
            *status,
            "{method} {target} {body}: {}",
            reply.all_text()
        );
        let json = reply.json();
        assert_eq!(json["reason"], *reason, "{method} {target}: {json}");
        assert!(
            json["message"].as_str().unwrap().contains("glgate"),
            "{json}"
        );
    }
    assert!(sb.fake.requests().is_empty(), "{:?}", sb.fake.requests());
}

#[tokio::test]
async fn unsupported_bodies_and_oversized_bodies_are_refused() {
    let sb = Sandbox::start().await;
    let url = sb.url("/api/v4/projects/101/merge_requests/1");
    let reply = send(
        Version::HTTP_11,
        "PUT",
        &url,
        &[
            ("private-token", &sb.client_token),
            ("content-type", "multipart/form-data; boundary=x"),
        ],
        b"--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\npwned\r\n--x--\r\n",
    )
    .await;
    assert_eq!(reply.status, 415);
    let big = format!(r#"{{"add_labels":"echoes/{}"}}"#, "a".repeat(70 * 1024));
    let reply = send(
        Version::HTTP_11,
        "PUT",
        &url,
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        big.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["reason"], "body_too_large");
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn confusing_targets_are_refused_over_a_raw_socket() {
    let sb = Sandbox::start().await;
    let token = &sb.client_token;
    for (target, status) in [
        ("/api/v4/projects/acme%2F..%2Fsecret%2Fvault", 400),
        ("/api/v4/projects/101/../301", 400),
        ("/api/v4/projects/101/./merge_requests", 400),
        ("/api/v4/projects//101", 400),
        ("/api/v4/projects/101/", 400),
        ("/api/v4/projects/101;x=1", 400),
        ("/api/v4/projects/acme%252Fbackend", 400),
        ("/api/v4/projects/101.json", 400),
        ("/api/v4/projects/%2e%2e", 400),
        ("/api/v4/projects/101%00", 400),
        ("/api/v4/projects/%c0%af", 400),
        ("/API/V4/projects/101", 404),
        ("/api/v4/Projects/101", 403),
        ("/api/v4/projects/101?labels[a]=b", 400),
        ("http://evil.example/api/v4/projects/101", 400),
    ] {
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {token}\r\nConnection: close\r\n\r\n"
        );
        let response = raw(sb.server.addr, request.as_bytes()).await;
        assert_eq!(raw_status(&response), status, "{target}: {response}");
    }
    assert!(sb.fake.requests().is_empty(), "{:?}", sb.fake.requests());
}

#[tokio::test]
async fn unsupported_methods_get_405() {
    let sb = Sandbox::start().await;
    for method in ["OPTIONS", "TRACE", "PROPFIND"] {
        let request = format!(
            "{method} /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\nConnection: close\r\n\r\n",
            sb.client_token
        );
        let response = raw(sb.server.addr, request.as_bytes()).await;
        assert_eq!(raw_status(&response), 405, "{method}: {response}");
    }
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn api_root_is_answered_locally() {
    let sb = Sandbox::start().await;
    for target in ["/api/v4/", "/api/v4"] {
        for method in ["GET", "HEAD"] {
            for version in [Version::HTTP_11, Version::HTTP_2] {
                let reply = send(version, method, &sb.url(target), &[], b"").await;
                assert_eq!(reply.status, 200, "{method} {target} {version:?}");
            }
        }
    }
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn link_headers_lead_through_glgate_across_pages() {
    let sb = Sandbox::start().await;
    let mut next = Some(sb.url("/api/v4/groups/acme/projects?per_page=20&order_by=id&sort=asc"));
    let mut ids = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let reply = get(&url, &sb.client_token).await;
        assert_eq!(reply.status, 200, "{url}");
        pages += 1;
        ids.extend(
            reply
                .json()
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_u64().unwrap()),
        );
        let link = reply.header("link").unwrap_or_default().to_owned();
        assert!(
            !link.contains(&sb.fake.addr().to_string()),
            "upstream host leaked: {link}"
        );
        next = next_link(&reply);
        if let Some(url) = &next {
            assert!(url.starts_with(&sb.base_url()), "{url}");
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 47);
}

#[tokio::test]
async fn relative_url_installs_keep_their_prefix_upstream_only() {
    let sb = Sandbox::with(SandboxOptions {
        path_prefix: "/gitlab".into(),
        ..SandboxOptions::default()
    })
    .await;
    let reply = get(&sb.url("/api/v4/groups?per_page=2"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        sb.fake.requests()[0].target,
        "/gitlab/api/v4/groups?per_page=2"
    );
    let link = reply.header("link").unwrap();
    assert!(
        link.contains(&format!("<{}/api/v4/groups?", sb.base_url())),
        "{link}"
    );
    assert!(!link.contains("/gitlab"), "{link}");
}

#[tokio::test]
async fn moved_projects_redirect_through_glgate_and_cookies_are_dropped() {
    let sb = Sandbox::start().await;
    let reply = get(
        &sb.url("/api/v4/projects/acme%2Fold-backend"),
        &sb.client_token,
    )
    .await;
    assert_eq!(reply.status, 301);
    assert_eq!(
        reply.header("location"),
        Some(sb.url("/api/v4/projects/acme%2Fbackend").as_str())
    );
    assert!(reply.header("set-cookie").is_none());
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert!(reply.header("set-cookie").is_none());
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn http2_clients_are_served_and_checked_the_same_way() {
    let sb = Sandbox::start().await;
    let token = sb.client_token.as_str();
    let reply = send(
        Version::HTTP_2,
        "GET",
        &sb.url("/api/v4/projects/acme%2Fbackend"),
        &[("private-token", token)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = send(
        Version::HTTP_2,
        "DELETE",
        &sb.url("/api/v4/projects/101"),
        &[("private-token", token)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 403);
    let reply = send(
        Version::HTTP_2,
        "GET",
        &sb.url("/api/v4/user"),
        &[("private-token", token), ("sudo", "root")],
        b"",
    )
    .await;
    assert_eq!(reply.status, 400);
    let received = sb.fake.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].target, "/api/v4/projects/acme%2Fbackend");
}
