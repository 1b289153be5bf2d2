//! End to end: audit, metrics, health, upstream faults, reload and shutdown,
//! and the GitLab token never leaving glgate.

use std::time::Duration;

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::upstreams::{refused_address, slow_upstream};
use http::Version;

#[tokio::test]
async fn one_audit_line_per_request_with_fixed_fields() {
    let sb = Sandbox::start().await;
    get(
        &sb.url("/api/v4/projects/acme%2Fbackend?private_x=1"),
        &sb.client_token,
    )
    .await;
    get(
        &sb.url("/api/v4/projects/101/repository/files/a"),
        &sb.client_token,
    )
    .await;
    get(&sb.url("/api/v4/user"), "glg_wrong").await;
    let events = sb.audit_events(3).await;
    assert_eq!(events.len(), 3);
    let allow = &events[0];
    for field in [
        "time",
        "request_id",
        "client",
        "remote",
        "method",
        "path",
        "template",
        "rule",
        "decision",
        "reason",
        "status",
        "upstream_ms",
        "duration_ms",
        "bytes_in",
        "bytes_out",
    ] {
        assert!(allow.get(field).is_some(), "missing {field}: {allow}");
    }
    assert_eq!(allow["client"], "echoes");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["rule"], "projects.read");
    assert_eq!(allow["template"], "/projects/{project}");
    assert_eq!(
        allow["path"], "/api/v4/projects/acme%2Fbackend",
        "no query in the audit line"
    );
    assert_eq!(allow["status"], 200);
    assert!(allow["bytes_out"].as_u64().unwrap() > 100);
    assert_eq!(events[1]["decision"], "deny");
    assert_eq!(events[1]["reason"], "no_rule");
    assert_eq!(events[1]["status"], 403);
    assert!(events[1].get("upstream_ms").is_none());
    assert_eq!(events[2]["client"], "-");
    assert_eq!(events[2]["reason"], "unknown_token");
    assert_eq!(events[2]["status"], 401);
}

#[tokio::test]
async fn admin_endpoints_report_liveness_readiness_and_metrics() {
    let sb = Sandbox::start().await;
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    assert_eq!(
        send(Version::HTTP_11, "GET", &format!("{admin}/live"), &[], b"")
            .await
            .status,
        200
    );
    let ready = send(Version::HTTP_11, "GET", &format!("{admin}/ready"), &[], b"").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["upstream"], "token accepted");
    get(&sb.url("/api/v4/user"), &sb.client_token).await;
    get(&sb.url("/api/v4/projects/101"), "nope").await;
    sb.audit_events(2).await;
    let text = metrics_text(&admin).await;
    assert!(
        text.contains(r#"glgate_requests_total{client="echoes",rule="self.read",decision="allow",reason="allowed",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"reason="unknown_token",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("glgate_upstream_latency_seconds_count 1"),
        "{text}"
    );
    assert!(!text.contains(&sb.gitlab_token) && !text.contains(&sb.client_token));
}

#[tokio::test]
async fn readiness_fails_when_gitlab_rejects_the_token() {
    let sb = Sandbox::start().await;
    std::fs::write(sb.dir.path().join("gitlab-token"), "glpat-revoked").unwrap();
    sb.server.reload().unwrap();
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    let ready = send(Version::HTTP_11, "GET", &format!("{admin}/ready"), &[], b"").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["upstream"], "token rejected");
}

#[tokio::test]
async fn gitlab_down_is_a_clear_502_and_glgate_stays_up() {
    let down = refused_address().await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{down}")),
        ..SandboxOptions::default()
    })
    .await;
    for _ in 0..3 {
        let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
        assert_eq!(reply.status, 502);
        let body = reply.json();
        assert_eq!(body["reason"], "upstream_unavailable");
        assert!(
            !reply.all_text().contains(&down.port().to_string()),
            "no upstream address: {body}"
        );
    }
    let events = sb.audit_events(3).await;
    assert_eq!(events[0]["decision"], "allow");
    assert_eq!(events[0]["status"], 502);
    // The capture is shared with every test of the process: only lines of
    // this sandbox's requests count.
    let why = events.iter().any(|event| {
        crate::support::logs::lines_with(event["request_id"].as_str().unwrap())
            .iter()
            .any(|l| l.contains("upstream failure"))
    });
    assert!(
        why,
        "the operator log says why (and the sandbox checks it holds no token)"
    );
}

#[tokio::test]
async fn slow_gitlab_is_a_clear_504() {
    let slow = slow_upstream(Duration::from_secs(5)).await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{slow}")),
        upstream_extra: "  response_timeout: 300ms\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.json()["reason"], "upstream_timeout");
}

#[tokio::test]
async fn gitlab_errors_pass_through_unchanged() {
    let sb = Sandbox::start().await;
    let reply = get(&sb.url("/api/v4/projects/acme%2Fmissing"), &sb.client_token).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["message"], "404 Project Not Found");
    sb.fake.set_fail_next(500);
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 500);
}

#[tokio::test]
async fn reload_applies_a_valid_policy_and_keeps_the_old_one_otherwise() {
    let sb = Sandbox::start().await;
    let tags = "/api/v4/projects/101/repository/tags";
    assert_eq!(get(&sb.url(tags), &sb.client_token).await.status, 200);

    let narrower =
        "version: 1\nname: narrow\nrules:\n  - {id: me, methods: [GET], paths: [/user]}\n";
    std::fs::write(&sb.policy_path, narrower).unwrap();
    sb.server.reload().unwrap();
    assert_eq!(get(&sb.url(tags), &sb.client_token).await.status, 403);
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );

    std::fs::write(
        &sb.policy_path,
        "version: 1\nname: broken\nrules:\n  - {id: me, methods: [GRT], paths: [/user]}\n",
    )
    .unwrap();
    let error = sb.server.reload().unwrap_err().to_string();
    assert!(
        error.contains("policy.yaml:4:") && error.contains("unknown method 'GRT'"),
        "{error}"
    );
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200,
        "old policy kept"
    );
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    let text = metrics_text(&admin).await;
    assert!(
        text.contains(r#"glgate_policy_reloads_total{result="success"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"glgate_policy_reloads_total{result="failure"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_stops_listening() {
    let slow = slow_upstream(Duration::from_millis(700)).await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{slow}")),
        ..SandboxOptions::default()
    })
    .await;
    let url = sb.url("/api/v4/user");
    let token = sb.client_token.clone();
    let in_flight = tokio::spawn(async move { get(&url, &token).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = sb.server.addr;
    sb.server.shutdown().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the in-flight request finished");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn a_missing_gitlab_token_is_a_clear_start_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    let config = dir.path().join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: https://gitlab.example.com\n  token_env: GLGATE_TEST_UNSET_VARIABLE_7731\nclients:\n  - {{name: a, token_sha256: \"{}\", policy: p.yaml}}\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let error = glgate::server::Server::start(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("GLGATE_TEST_UNSET_VARIABLE_7731"), "{error}");
    let with_file = std::fs::read_to_string(&config).unwrap().replace(
        "token_env: GLGATE_TEST_UNSET_VARIABLE_7731",
        "token_file: missing-token",
    );
    std::fs::write(&config, with_file).unwrap();
    let error = glgate::server::Server::start(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing-token"), "{error}");
}

/// Drives every kind of traffic (allowed, refused, malformed, faults) and
/// checks that the GitLab token appears in no response and no audit line.
#[tokio::test]
async fn the_gitlab_token_never_reaches_a_client_or_the_audit_log() {
    let sb = Sandbox::start().await;
    let token = sb.client_token.as_str();
    let mut seen = String::new();
    let requests: &[(&str, &str, &[u8])] = &[
        ("GET", "/api/v4/user", b""),
        ("GET", "/api/v4/personal_access_tokens/self", b""),
        ("GET", "/api/v4/groups/acme/projects?per_page=5", b""),
        ("GET", "/api/v4/projects/acme%2Fold-backend", b""),
        (
            "GET",
            "/api/v4/projects/101/repository/files/x?ref=main",
            b"",
        ),
        ("GET", "/api/v4/user?private_token=glpat-guess", b""),
        ("PUT", "/api/v4/projects/101/merge_requests/1", b"{not json"),
        (
            "POST",
            "/api/v4/projects/101/hooks",
            br#"{"url":"https://api.echoeshq.com/h","token":"hook-secret"}"#,
        ),
        ("GET", "/api/v4/projects/acme%252Fbackend", b""),
        ("GET", "/api/v4/", b""),
    ];
    for (method, target, body) in requests {
        for version in [Version::HTTP_11, Version::HTTP_2] {
            let reply = send(
                version,
                method,
                &sb.url(target),
                &[
                    ("private-token", token),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
            seen.push_str(&reply.all_text());
        }
    }
    sb.fake.set_fail_next(503);
    seen.push_str(&get(&sb.url("/api/v4/user"), token).await.all_text());
    sb.audit_events(requests.len() * 2 + 1).await;
    let audit = std::fs::read_to_string(&sb.audit_path).unwrap();
    assert!(
        !seen.contains(&sb.gitlab_token),
        "GitLab token in a response"
    );
    assert!(
        !audit.contains(&sb.gitlab_token),
        "GitLab token in the audit log"
    );
    assert!(!audit.contains(token), "client token in the audit log");
    assert!(!audit.contains("hook-secret"), "a body in the audit log");
    let received = sb.fake.requests();
    assert!(
        received
            .iter()
            .all(|r| r.header("private-token") == Some(sb.gitlab_token.as_str()))
    );
}

#[tokio::test]
async fn reload_of_a_start_only_setting_says_a_restart_is_pending() {
    let sb = Sandbox::start().await;
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    assert!(
        metrics_text(&admin)
            .await
            .contains("glgate_restart_pending 0\n")
    );

    // A policy change alone is applied: nothing pending.
    let narrower =
        "version: 1\nname: narrow\nrules:\n  - {id: me, methods: [GET], paths: [/user]}\n";
    std::fs::write(&sb.policy_path, narrower).unwrap();
    sb.server.reload().unwrap();
    assert!(
        metrics_text(&admin)
            .await
            .contains("glgate_restart_pending 0\n")
    );

    // The connection limits are read at start: the reload succeeds, applies
    // the rest, and says a restart is pending.
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        format!("{config}limits:\n  idle_timeout: 7s\n"),
    )
    .unwrap();
    sb.server.reload().unwrap();
    let text = metrics_text(&admin).await;
    assert!(text.contains("glgate_restart_pending 1\n"), "{text}");
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    // Still ready (the running settings serve), and /ready says so too.
    let ready = send(Version::HTTP_11, "GET", &format!("{admin}/ready"), &[], b"").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["restart_pending"], true);
}

#[tokio::test]
async fn reload_reopens_the_audit_file_for_log_rotation_and_applies_a_new_path() {
    let sb = Sandbox::start().await;
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    let paths = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect()
    };
    get(&sb.url("/api/v4/user"), &sb.client_token).await;
    sb.audit_events(1).await;

    // Log rotation: the file is moved away, then glgate reloads.
    let rotated = sb.audit_path.with_extension("log.1");
    std::fs::rename(&sb.audit_path, &rotated).unwrap();
    sb.server.reload().unwrap();
    get(&sb.url("/api/v4/version"), &sb.client_token).await;
    let events = sb.audit_events(1).await;
    assert_eq!(
        paths(&events),
        ["/api/v4/version"],
        "a new file at the path"
    );
    assert_eq!(
        paths(&audit_file(&rotated, 1).await),
        ["/api/v4/user"],
        "the moved file keeps its lines"
    );

    // A new path is applied too: the audit output is not a start-only setting.
    let moved = sb.audit_path.with_file_name("audit-2.log");
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace("output: audit.log", "output: audit-2.log"),
    )
    .unwrap();
    sb.server.reload().unwrap();
    get(
        &sb.url("/api/v4/projects/101/repository/tags"),
        &sb.client_token,
    )
    .await;
    assert_eq!(
        paths(&audit_file(&moved, 1).await),
        ["/api/v4/projects/101/repository/tags"]
    );
    assert_eq!(
        sb.audit_events(1).await.len(),
        1,
        "nothing more at the old path"
    );
    assert!(
        metrics_text(&admin)
            .await
            .contains("glgate_restart_pending 0\n")
    );
    let ready = send(Version::HTTP_11, "GET", &format!("{admin}/ready"), &[], b"").await;
    assert_eq!(ready.json()["restart_pending"], false);

    // An output that cannot be opened refuses the reload; the running one stays.
    std::fs::write(
        &sb.config_path,
        config.replace("output: audit.log", "output: missing-folder/audit.log"),
    )
    .unwrap();
    let error = sb.server.reload().unwrap_err().to_string();
    assert!(
        error.starts_with("cannot open the audit log ") && error.contains("missing-folder"),
        "{error}"
    );
    get(&sb.url("/api/v4/user"), &sb.client_token).await;
    let events = audit_file(&moved, 2).await;
    assert_eq!(events.len(), 2, "still written to the running output");
}

/// The audit events in the file at `path`, waiting (a while) until there
/// are at least `count`.
async fn audit_file(path: &std::path::Path, count: usize) -> Vec<serde_json::Value> {
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    for _ in 0..200 {
        if read().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    read()
}

/// The admin listener's `/metrics` text (`admin` is its base URL).
async fn metrics_text(admin: &str) -> String {
    let reply = send(
        Version::HTTP_11,
        "GET",
        &format!("{admin}/metrics"),
        &[],
        b"",
    )
    .await;
    String::from_utf8_lossy(&reply.body).into_owned()
}
