//! `glgate doctor` against the fake GitLab: the checklist, its advice and
//! its exit code, for a healthy setup and for each thing that goes wrong.

use std::path::PathBuf;

use crate::support::tls::{TestCa, tls_upstream_with};
use crate::support::upstreams::refused_address;
use fake_gitlab::{FakeGitlab, FakeOptions};

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

/// A config for `url` reading the token from a file holding `token`.
fn setup(url: &str, token: &str, upstream_extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    std::fs::write(dir.path().join("gitlab-token"), format!("{token}\n")).unwrap();
    let config = dir.path().join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: {url}\n  token_file: gitlab-token\n  connect_timeout: 2s\n{upstream_extra}clients:\n  - name: echoes\n    token_sha256: \"{}\"\n    policy: policy.yaml\n",
            "a".repeat(64)
        ),
    )
    .unwrap();
    Setup { dir, config }
}

/// Runs `glgate doctor` (off the runtime, so the fake keeps serving).
async fn doctor(setup: &Setup, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "doctor".to_owned(),
        "--config".to_owned(),
        setup.config.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

async fn fake() -> FakeGitlab {
    FakeGitlab::start(FakeOptions::default()).await.unwrap()
}

#[tokio::test]
async fn a_healthy_setup_passes_every_check() {
    let gitlab = fake().await;
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &["--group", "acme", "--group", "acme/platform"]).await;
    assert_eq!(code, 0, "{out}");
    for line in [
        "✓ config and 1 policy file(s) compile",
        "✓ DNS: 127.0.0.1 resolves to",
        "✓ TCP: connected to",
        "! TLS: upstream.url is plain http",
        "✓ GitLab 17.5.0",
        "✓ token accepted by GitLab",
        "✓ token kind: personal access token 'glgate'",
        "✓ token is active and not revoked",
        "✓ scopes: api, read_user",
        "✓ expiry: 2027-06-30",
        "✓ user glgate-bot is a dedicated account",
        "✓ group acme: Owner (50)",
        "✓ group acme/platform: Owner (50)",
        "0 failed",
    ] {
        assert!(out.contains(line), "missing '{line}' in:\n{out}");
    }
    assert!(!out.contains(gitlab.token()), "doctor printed the token");
}

#[tokio::test]
async fn missing_scopes_are_named_with_why_they_are_needed() {
    let gitlab = fake().await;
    gitlab.set_token_scopes(gitlab.token(), &["read_api"]);
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ scopes: missing api, read_user (has: read_api)"),
        "{out}"
    );
    assert!(out.contains("api: glgate forwards the writes"), "{out}");
    assert!(out.contains("read_user: clients read /user"), "{out}");
}

#[tokio::test]
async fn an_api_token_needs_no_read_user_scope() {
    let gitlab = fake().await;
    gitlab.set_token_scopes(gitlab.token(), &["api"]);
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ scopes: api\n"), "{out}");
    assert!(!out.contains("read_user: clients read /user"), "{out}");
}

#[tokio::test]
async fn a_token_expiring_soon_is_a_warning() {
    let gitlab = fake().await;
    let soon = glgate::credential::format_date(glgate::credential::now_unix() + 10 * 86_400);
    gitlab.set_token_expiry(gitlab.token(), Some(&soon));
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 0, "a warning is not a failure:\n{out}");
    assert!(
        out.contains(&format!("! expiry: {soon}, in 9 day(s)"))
            || out.contains(&format!("! expiry: {soon}, in 10 day(s)")),
        "{out}"
    );
    assert!(out.contains("glgate token rotate"), "{out}");
}

#[tokio::test]
async fn an_administrator_or_a_person_is_a_warning() {
    let gitlab = fake().await;
    gitlab.set_user_admin(true);
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("! user glgate-bot is an administrator"),
        "{out}"
    );
    assert!(out.contains("dedicated non-admin service account"), "{out}");
}

#[tokio::test]
async fn a_rejected_token_and_a_weak_group_role_fail() {
    let gitlab = fake().await;
    gitlab.set_group_access(11, 30);
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &["--group", "acme/platform", "--group", "secret"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ group acme/platform: Developer (30)"),
        "{out}"
    );
    assert!(out.contains("needs Maintainer (40) or above"), "{out}");

    gitlab.revoke(gitlab.token());
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ token rejected by GitLab (401)"), "{out}");
}

#[tokio::test]
async fn an_unreachable_upstream_fails_at_tcp() {
    let addr = refused_address().await;
    let s = setup(&format!("http://{addr}"), "glpat-x", "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ TCP: cannot connect to"), "{out}");
    assert!(out.contains("is GitLab up"), "{out}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_at_tls_and_names_ca_file() {
    let gitlab_ca = TestCa::new("GitLab CA");
    let upstream = tls_upstream_with(gitlab_ca.leaf(&["localhost"], false), None).await;
    let url = format!("https://localhost:{}", upstream.port());

    let wrong = setup(&url, "glpat-x", "  ca_file: ca.pem\n");
    std::fs::write(
        wrong.dir.path().join("ca.pem"),
        TestCa::new("Other CA").pem(),
    )
    .unwrap();
    let (code, out) = doctor(&wrong, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ TLS: handshake with localhost failed"),
        "{out}"
    );
    assert!(out.contains("set upstream.ca_file"), "{out}");

    let right = setup(&url, "glpat-x", "  ca_file: ca.pem\n");
    std::fs::write(right.dir.path().join("ca.pem"), gitlab_ca.pem()).unwrap();
    let (_, out) = doctor(&right, &[]).await;
    assert!(
        out.contains("✓ TLS: localhost's certificate is valid"),
        "{out}"
    );
}

#[tokio::test]
async fn a_config_that_does_not_compile_is_the_first_failure() {
    let s = setup("ftp://nowhere", "glpat-x", "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ config does not compile"), "{out}");
    assert!(out.contains("upstream.url"), "{out}");
}

#[tokio::test]
async fn the_groups_of_every_scope_are_checked() {
    let gitlab = fake().await;
    gitlab.set_group_access(21, 30);
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config.push_str(
        "    scope:\n      groups: [acme, partners/team]\n      projects: [tools/ci-templates]\n",
    );
    std::fs::write(&s.config, config).unwrap();
    let (code, out) = doctor(&s, &["--group", "ACME"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✓ group acme: Owner (50)"), "{out}");
    assert_eq!(out.matches("group acme:").count(), 1, "checked once: {out}");
    assert!(
        out.contains("✗ group partners/team: Developer (30)"),
        "{out}"
    );
    assert!(
        !out.contains("group tools"),
        "a listed project's group is not checked: {out}"
    );
}

/// A fine-grained boundary for the fake: `access` granting `permissions`.
fn boundary(
    access: &str,
    permissions: &[&str],
    group_id: Option<u64>,
) -> fake_gitlab::GranularScope {
    fake_gitlab::GranularScope {
        access: access.to_owned(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        project_id: None,
        group_id,
    }
}

/// A fine-grained token (GitLab 18.10+: `scopes: ["granular"]` and
/// `granular_scopes`) is recognised: no "missing api scope", its boundaries
/// listed, and each permission GitLab's table names for the policy found.
#[tokio::test]
async fn a_fine_grained_token_is_recognised_and_checked_against_the_policy() {
    let gitlab = fake().await;
    gitlab.set_token_granular_scopes(
        gitlab.token(),
        Some(vec![
            boundary(
                "all_memberships",
                &[
                    "read_commit",
                    "read_group",
                    "create_label",
                    "delete_label",
                    "read_label",
                    "update_label",
                    "read_member",
                    "read_merge_request",
                    "update_merge_request",
                    "read_project",
                    "read_repository_tag",
                    "create_webhook",
                    "delete_webhook",
                    "read_webhook",
                    "update_webhook",
                    "read_work_item",
                ],
                None,
            ),
            boundary(
                "user",
                &[
                    "read_group",
                    "read_namespace",
                    "read_personal_access_token",
                    "read_user",
                ],
                None,
            ),
            boundary("instance", &["read_user"], None),
        ]),
    );
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 0, "{out}");
    for line in [
        "✓ token kind: fine-grained personal access token 'glgate'",
        "✓ token is active and not revoked",
        "✓ fine-grained boundary all_memberships: create_label, create_webhook,",
        "✓ fine-grained boundary user: read_group, read_namespace, read_personal_access_token, read_user",
        "✓ fine-grained boundary instance: read_user",
        "✓ policy echoes: the token holds each of the 27 fine-grained permission(s) GitLab's table names for it",
        "✓ expiry: 2027-06-30",
    ] {
        assert!(out.contains(line), "missing '{line}' in:\n{out}");
    }
    assert!(!out.contains("scopes:"), "no classic scope line: {out}");
    assert!(!out.contains("not found in the token"), "{out}");
}

/// A fine-grained token lacking some of what the policy needs, or holding
/// it only at a boundary that cannot serve it, is told which, by GitLab's
/// names and ours, as a warning (the names are compared, not proven).
#[tokio::test]
async fn a_fine_grained_token_missing_permissions_is_told_which() {
    let gitlab = fake().await;
    gitlab.set_token_granular_scopes(
        gitlab.token(),
        Some(vec![
            boundary(
                "selected_memberships",
                &["read_group", "read_merge_request"],
                Some(11),
            ),
            boundary("user", &["read_user", "create_label"], None),
        ]),
    );
    let s = setup(&gitlab.base_url(), gitlab.token(), "");
    let (code, out) = doctor(&s, &[]).await;
    assert_eq!(code, 0, "warnings only: {out}");
    assert!(
        out.contains("✓ fine-grained boundary selected_memberships (group 11): read_group, read_merge_request"),
        "{out}"
    );
    let missing = out
        .lines()
        .find(|l| l.starts_with("! policy echoes: not found in the token:"))
        .unwrap_or_else(|| panic!("no missing line in:\n{out}"));
    for named in [
        "Label: Create (Group) as create_label",
        "Webhook: Create (Project) as create_webhook",
        "User: Read (Instance) as read_user",
    ] {
        assert!(missing.contains(named), "{named} not in {missing}");
    }
    assert!(
        !missing.contains("Merge Request: Read (Group)"),
        "{missing}"
    );
    assert!(!out.contains("scopes: missing"), "{out}");
}
