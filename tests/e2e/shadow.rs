//! Shadow policies: evaluated on live traffic beside the real policy, never
//! enforced; every disagreement is in the audit line and the metrics.

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use http::Version;

const SHADOW: &str = r#"version: 1
name: tighter-but-with-delete
rules:
  - id: me
    methods: [GET]
    paths: [/user]
  - id: projects.delete
    methods: [DELETE]
    paths: ["/projects/{project}"]
    params: {}
"#;

#[tokio::test]
async fn shadow_decisions_are_recorded_and_never_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow.yaml");
    std::fs::write(&shadow, SHADOW).unwrap();
    let sb = Sandbox::with(SandboxOptions {
        client_extra: format!("    shadow_policy: {}\n", shadow.display()),
        ..SandboxOptions::default()
    })
    .await;
    // Both allow.
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    // The real policy allows, the shadow would refuse: still forwarded.
    assert_eq!(
        get(&sb.url("/api/v4/projects/101"), &sb.client_token)
            .await
            .status,
        200
    );
    // The real policy refuses, the shadow would allow: still refused.
    let reply = send(
        Version::HTTP_11,
        "DELETE",
        &sb.url("/api/v4/projects/101"),
        &[("private-token", &sb.client_token)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 403);
    let targets: Vec<String> = sb
        .fake
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(targets, ["GET /api/v4/user", "GET /api/v4/projects/101"]);

    let events = sb.audit_events(3).await;
    let shadow_of = |i: usize| {
        (
            events[i]["decision"].as_str().unwrap().to_owned(),
            events[i]["shadow_decision"].as_str().unwrap().to_owned(),
            events[i]["shadow_rule"].as_str().unwrap_or("-").to_owned(),
            events[i]["shadow_reason"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        shadow_of(0),
        (
            "allow".into(),
            "allow".into(),
            "me".into(),
            "allowed".into()
        )
    );
    assert_eq!(
        shadow_of(1),
        (
            "allow".into(),
            "deny".into(),
            "-".into(),
            "method_not_allowed".into()
        )
    );
    assert_eq!(
        shadow_of(2),
        (
            "deny".into(),
            "allow".into(),
            "projects.delete".into(),
            "allowed".into()
        )
    );

    let admin = format!("http://{}/metrics", sb.server.admin_addr.unwrap());
    let metrics =
        String::from_utf8_lossy(&send(Version::HTTP_11, "GET", &admin, &[], b"").await.body)
            .into_owned();
    assert!(
        metrics.contains(r#"glgate_shadow_disagreements_total{client="echoes",decision="allow",shadow_decision="deny"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"glgate_shadow_disagreements_total{client="echoes",decision="deny",shadow_decision="allow"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn clients_without_a_shadow_policy_have_no_shadow_fields() {
    let sb = Sandbox::start().await;
    get(&sb.url("/api/v4/user"), &sb.client_token).await;
    let events = sb.audit_events(1).await;
    assert!(events[0].get("shadow_decision").is_none());
}

/// `glgate policy replay` on an audit log written by a real glgate run:
/// narrowing the policy shows exactly the past requests it would now refuse.
#[tokio::test]
async fn replay_reads_a_real_audit_log() {
    let sb = Sandbox::start().await;
    for target in [
        "/api/v4/user",
        "/api/v4/projects/101",
        "/api/v4/projects/101/merge_requests",
    ] {
        assert_eq!(get(&sb.url(target), &sb.client_token).await.status, 200);
    }
    sb.audit_events(3).await;
    let dir = tempfile::tempdir().unwrap();
    let narrower = dir.path().join("narrow.yaml");
    std::fs::write(
        &narrower,
        "version: 1\nname: narrow\nrules:\n  - {id: me, methods: [GET], paths: [/user]}\n  - {id: projects.read, methods: [GET], paths: ['/projects/{project}']}\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["policy", "replay", "--policy"])
        .arg(&narrower)
        .arg(&sb.audit_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("/api/v4/projects/101/merge_requests"),
        "{stdout}"
    );
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains("now refuse") && l.contains("/api/v4/user ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 unchanged, 1 now refused, 0 now allowed"),
        "{stdout}"
    );
}
