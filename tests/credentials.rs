//! The GitLab credential's life while glgate serves: token file reload under
//! load, broken files, expiry watch, auto-rotation, OAuth refresh; and client
//! tokens rotating through several digests.

// Integration tests: a failed step stops the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::Version;
use support::client::{get, send};
use support::sandbox::{Sandbox, SandboxOptions, random_token};

/// Generous client rate limit: these tests put glgate under load.
const NO_RATE_LIMIT: &str = "limits:\n  client_rate_limit: {per_second: 100000, burst: 100000}\n";

/// Replaces `path` the way a secret manager does: a new file renamed over it.
fn replace_atomically(path: &Path, content: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, content).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn fake_saw_token(sb: &Sandbox, token: &str) -> bool {
    sb.fake
        .requests()
        .iter()
        .any(|r| r.header("private-token") == Some(token))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_file_rotated_100_times_under_load_fails_no_request() {
    let sb = Arc::new(
        Sandbox::with(SandboxOptions {
            upstream_extra: "  token_reload_interval: 10ms\n".into(),
            config_extra: NO_RATE_LIMIT.into(),
            ..SandboxOptions::default()
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (sb, stop, succeeded, failures) = (
            sb.clone(),
            stop.clone(),
            succeeded.clone(),
            failures.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
                if reply.status == 200 {
                    succeeded.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{} {}", reply.status, reply.all_text()));
                }
            }
        }));
    }
    let token_path = sb.dir.path().join("gitlab-token");
    let mut old = sb.gitlab_token.clone();
    for round in 0..100 {
        let new = format!("glpat-rotated-{round:03}-{}", &random_token()[4..24]);
        sb.remember_secret(&new);
        sb.fake.add_token(&new);
        sb.fake.clear_requests();
        replace_atomically(&token_path, &format!("{new}\n"));
        wait_until("GitLab receives the new token", || {
            fake_saw_token(&sb, &new)
        })
        .await;
        // In-flight requests that loaded the old token finish with it; then
        // GitLab revokes it, so any later use of it would fail the test.
        tokio::time::sleep(Duration::from_millis(30)).await;
        sb.fake.revoke(&old);
        old = new;
    }
    // Run a little longer on the last token, with every earlier one revoked.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let succeeded = succeeded.load(Ordering::Relaxed);
    assert!(succeeded >= 300, "only {succeeded} requests ran");
    assert_eq!(sb.fake.valid_tokens(), vec![old.clone()]);
    eprintln!("100 rotations, {succeeded} requests, 0 failures");
}

#[tokio::test]
async fn an_empty_or_missing_token_file_keeps_the_old_token_and_is_logged() {
    let sb = Sandbox::with(SandboxOptions {
        upstream_extra: "  token_reload_interval: 10ms\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    let token_path = sb.dir.path().join("gitlab-token");
    let marker = format!("{}", token_path.display());

    replace_atomically(&token_path, "");
    wait_until("the empty file is logged", || {
        support::logs::captured().contains(&format!("the GitLab token from {marker} is empty"))
    })
    .await;
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );

    std::fs::remove_file(&token_path).unwrap();
    wait_until("the missing file is logged", || {
        support::logs::captured().contains(&format!("cannot read token file {marker}"))
    })
    .await;
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );

    // A token with a space cannot be a token: kept out, old one used.
    replace_atomically(&token_path, "not a token\n");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert!(
        sb.fake
            .requests()
            .iter()
            .all(|r| r.header("private-token") == Some(sb.gitlab_token.as_str()))
    );
    let logs = support::logs::captured();
    assert!(
        logs.contains("still using the previous GitLab token"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_sighup_reload_reads_the_token_file_at_once() {
    let sb = Sandbox::start().await;
    let new = "glpat-after-reload-0123456789";
    sb.remember_secret(new);
    sb.fake.add_token(new);
    replace_atomically(&sb.dir.path().join("gitlab-token"), new);
    sb.server.reload().unwrap();
    sb.fake.clear_requests();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert_eq!(sb.fake.requests()[0].header("private-token"), Some(new));
}

#[tokio::test]
async fn a_client_may_list_its_old_and_new_token_during_a_rotation() {
    let old = random_token();
    let new = random_token();
    let sb = Sandbox::with(SandboxOptions {
        other_client: Some(String::new()),
        ..SandboxOptions::default()
    })
    .await;
    sb.remember_secret(&old);
    sb.remember_secret(&new);
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    let digest = glgate::auth::token_digest_hex(&sb.client_token);
    let rotated = config.replace(
        &format!("token_sha256: \"{digest}\""),
        &format!(
            "token_sha256:\n      - \"{digest}\"\n      - \"{}\"",
            glgate::auth::token_digest_hex(&new)
        ),
    );
    std::fs::write(&sb.config_path, rotated).unwrap();
    sb.server.reload().unwrap();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert_eq!(get(&sb.url("/api/v4/user"), &new).await.status, 200);
    assert_eq!(get(&sb.url("/api/v4/user"), &old).await.status, 401);
    let events = sb.audit_events(3).await;
    assert_eq!(events[0]["client"], "echoes");
    assert_eq!(events[1]["client"], "echoes");
}

#[tokio::test]
async fn expiry_is_a_metric_and_in_readiness() {
    let sb = Sandbox::start().await;
    sb.fake
        .set_token_expiry(&sb.gitlab_token, Some("2031-02-03"));
    // Read at start: a reload of a changed config starts a fresh credential.
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace("token_file: gitlab-token", "token_file: ./gitlab-token"),
    )
    .unwrap();
    sb.server.reload().unwrap();
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    let expected = glgate::credential::parse_date("2031-02-03").unwrap();
    let mut text = String::new();
    for _ in 0..200 {
        let metrics = send(
            Version::HTTP_11,
            "GET",
            &format!("{admin}/metrics"),
            &[],
            b"",
        )
        .await;
        text = String::from_utf8_lossy(&metrics.body).into_owned();
        if text.contains(&format!(
            "glgate_upstream_token_expiry_timestamp_seconds {expected}"
        )) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        text.contains(&format!(
            "glgate_upstream_token_expiry_timestamp_seconds {expected}"
        )),
        "{text}"
    );
    let ready = send(Version::HTTP_11, "GET", &format!("{admin}/ready"), &[], b"").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["token_expires_at"], "2031-02-03");
}
