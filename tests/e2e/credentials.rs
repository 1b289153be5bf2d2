//! The GitLab credential's life while glgate serves: token file reload under
//! load, broken files, expiry watch, auto-rotation, OAuth refresh; and client
//! tokens rotating through several digests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions, random_token};
use http::Version;

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
        crate::support::logs::captured()
            .contains(&format!("the GitLab token from {marker} is empty"))
    })
    .await;
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );

    std::fs::remove_file(&token_path).unwrap();
    wait_until("the missing file is logged", || {
        crate::support::logs::captured().contains(&format!("cannot read token file {marker}"))
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
    let logs = crate::support::logs::lines_with(&marker);
    assert!(
        logs.iter()
            .any(|l| l.contains("still using the previous GitLab token")),
        "{logs:#?}"
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
    // Read at start: a reload that changes how the token is read starts a
    // fresh credential.
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace(
            "  token_file: gitlab-token\n",
            "  token_file: gitlab-token\n  token_reload_interval: 1s\n",
        ),
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

use crate::support::binary::run_glgate as glgate;

#[tokio::test]
async fn token_rotate_writes_the_new_token_atomically_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::with(SandboxOptions {
        upstream_extra: "  token_reload_interval: 10ms\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    let config = sb.config_path.display().to_string();
    let (code, out, err) = glgate(&[
        "token",
        "rotate",
        "--config",
        &config,
        "--expires-at",
        "2027-01-15",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let token_path = sb.dir.path().join("gitlab-token");
    let new = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    sb.remember_secret(&new);
    assert!(out.contains("expires 2027-01-15"), "{out}");
    assert!(
        !out.contains(&new) && !err.contains(&new),
        "printed the token"
    );
    assert_eq!(sb.fake.valid_tokens(), vec![new.clone()], "old one revoked");
    let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The running glgate picks the new file up: no request fails.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        sb.fake.clear_requests();
        let status = get(&sb.url("/api/v4/user"), &sb.client_token).await.status;
        let used = sb
            .fake
            .requests()
            .into_iter()
            .find(|r| r.path() == "/api/v4/user");
        if status == 200
            && used.and_then(|r| r.header("private-token").map(str::to_owned)) == Some(new.clone())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "glgate never used the rotated token"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_token_rotate_runs_rotate_once() {
    let sb = Sandbox::start().await;
    // A slow rotation, so that both runs have read the token before the
    // first one is done.
    sb.fake
        .on_rotate(|| std::thread::sleep(Duration::from_millis(500)));
    let config = sb.config_path.display().to_string();
    let args = ["token", "rotate", "--config", config.as_str()];
    let (a, b) = tokio::join!(glgate(&args), glgate(&args));
    assert_eq!(a.0, 0, "{}{}", a.1, a.2);
    assert_eq!(b.0, 0, "{}{}", b.1, b.2);
    assert_eq!(sb.fake.rotations(), 1, "exactly one rotation at GitLab");
    let skipped = [&a, &b]
        .iter()
        .filter(|run| run.1.contains("another process rotated it"))
        .count();
    assert_eq!(skipped, 1, "{a:?} {b:?}");
    let token_path = sb.dir.path().join("gitlab-token");
    let new = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    sb.remember_secret(&new);
    assert_eq!(
        sb.fake.valid_tokens(),
        vec![new],
        "the new token is valid: no family revocation"
    );
}

#[tokio::test]
async fn rotating_an_already_rotated_token_revokes_the_family_like_gitlab() {
    let gitlab = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write_config = |token: &str| {
        std::fs::write(dir.path().join("t"), token).unwrap();
        std::fs::write(
            dir.path().join("p.yaml"),
            crate::support::sandbox::ECHOES_POLICY,
        )
        .unwrap();
        let config = dir.path().join("c.yaml");
        std::fs::write(
            &config,
            format!(
                "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: {}\n  token_file: t\nclients:\n  - {{name: a, token_sha256: \"{}\", policy: p.yaml}}\n",
                gitlab.base_url(),
                "a".repeat(64)
            ),
        )
        .unwrap();
        config.display().to_string()
    };
    let config = write_config(gitlab.token());
    assert_eq!(glgate(&["token", "rotate", "--config", &config]).await.0, 0);
    let rotated = std::fs::read_to_string(dir.path().join("t")).unwrap();
    // A second process still holding the old token rotates it again.
    let config = write_config(gitlab.token());
    let (code, _, err) = glgate(&["token", "rotate", "--config", &config]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!gitlab.valid_tokens().contains(&rotated.trim().to_owned()));
    assert!(
        gitlab.valid_tokens().is_empty(),
        "the whole family is revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_whose_write_fails_prints_the_new_token_and_exits_non_zero() {
    let gitlab = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("gitlab-token"), gitlab.token()).unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: {}\n  token_file: secrets/gitlab-token\nclients:\n  - {{name: a, token_sha256: \"{}\", policy: p.yaml}}\n",
            gitlab.base_url(),
            "a".repeat(64)
        ),
    )
    .unwrap();
    // The volume disappears while GitLab rotates: the old token is revoked,
    // the new one cannot be saved.
    let vanishing = secrets.clone();
    gitlab.on_rotate(move || {
        std::fs::remove_dir_all(&vanishing).unwrap();
    });
    let (code, out, err) =
        glgate(&["token", "rotate", "--config", &config.display().to_string()]).await;
    assert_eq!(code, 3, "{out}{err}");
    let valid = gitlab.valid_tokens();
    assert_eq!(valid.len(), 1);
    assert_eq!(
        out.trim(),
        valid[0],
        "the new token is printed on stdout, alone"
    );
    assert!(err.contains("revoked the old one"), "{err}");
    assert!(err.contains("Save it now"), "{err}");
    assert!(err.contains("Do not run `token rotate` again"), "{err}");
}

#[test]
fn auto_rotate_is_refused_without_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    let path = dir.path().join("glgate.yaml");
    let text = format!(
        "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: https://gitlab.example.com\n  token_env: GITLAB_TOKEN\n  auto_rotate: {{before_expiry: 7d}}\nclients:\n  - {{name: a, token_sha256: \"{}\", policy: p.yaml}}\n",
        "a".repeat(64)
    );
    let errors = glgate::config::Config::compile(&path, &text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("glgate.yaml:6:"), "{errors}");
    assert!(errors.contains("upstream.auto_rotate"), "{errors}");
    assert!(
        errors.contains("auto_rotate needs a token_file"),
        "{errors}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_rotate_rotates_a_token_near_expiry_once_and_serves_on() {
    let sb = Sandbox::start().await;
    let soon = glgate::credential::format_date(glgate::credential::now_unix() + 3 * 86_400);
    sb.fake.set_token_expiry(&sb.gitlab_token, Some(&soon));
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace(
            "  token_file: gitlab-token\n",
            "  token_file: gitlab-token\n  auto_rotate: {before_expiry: 7d}\n",
        ),
    )
    .unwrap();
    sb.server.reload().unwrap();
    wait_until("glgate rotates", || sb.fake.rotations() == 1).await;
    let token_path = sb.dir.path().join("gitlab-token");
    wait_until("the new token is saved", || {
        std::fs::read_to_string(&token_path).unwrap().trim() != sb.gitlab_token
    })
    .await;
    let new = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    sb.remember_secret(&new);
    assert_eq!(sb.fake.valid_tokens(), vec![new.clone()]);
    sb.fake.clear_requests();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert_eq!(
        sb.fake.requests()[0].header("private-token"),
        Some(new.as_str())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sb.fake.rotations(), 1, "the new token is far from expiry");
    let logs = crate::support::logs::lines_with(&token_path.display().to_string());
    assert!(
        logs.iter()
            .any(|l| l.contains("auto_rotate: the GitLab token was rotated and saved")),
        "{logs:#?}"
    );
    // The warning names no file: tied to this token's expiry date instead.
    let warned = crate::support::logs::lines_with(&format!("expires_at={soon}"));
    assert!(
        warned
            .iter()
            .any(|l| l.contains("the GitLab token expires within 7 day(s)")),
        "{warned:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_rotated_token_that_cannot_be_saved_is_kept_and_saved_once_possible() {
    let sb = Sandbox::start().await;
    let old = sb.gitlab_token.clone();
    let soon = glgate::credential::format_date(glgate::credential::now_unix() + 3 * 86_400);
    sb.fake.set_token_expiry(&old, Some(&soon));
    let token_path = sb.dir.path().join("gitlab-token");
    // While GitLab rotates, the token file's place becomes a non-empty
    // folder: the rename of the new token fails (the way to make a write
    // fail as root), although the folder itself stays writable.
    let blocked = token_path.clone();
    sb.fake.on_rotate(move || {
        std::fs::remove_file(&blocked).unwrap();
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), "x").unwrap();
    });
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace(
            "  token_file: gitlab-token\n",
            "  token_file: gitlab-token\n  auto_rotate: {before_expiry: 7d}\n",
        ),
    )
    .unwrap();
    sb.server.reload().unwrap();
    wait_until("glgate rotates", || sb.fake.rotations() == 1).await;
    let copy = sb.dir.path().join("gitlab-token.unsaved");
    wait_until("the emergency copy is written", || copy.exists()).await;
    let new = std::fs::read_to_string(&copy).unwrap().trim().to_owned();
    sb.remember_secret(&new);
    assert_eq!(sb.fake.valid_tokens(), vec![new.clone()]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&copy).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    // A SIGHUP (same upstream section: the credential is kept).
    sb.server.reload().unwrap();
    sb.fake.clear_requests();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert!(fake_saw_token(&sb, &new));
    // The operator "fixes" the folder by putting back the file they had: it
    // holds the revoked token. A SIGHUP follows, with a changed upstream
    // section (a new credential is built). glgate must keep the new token.
    std::fs::remove_dir_all(&token_path).unwrap();
    std::fs::write(&token_path, format!("{old}\n")).unwrap();
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace(
            "  token_file: gitlab-token\n",
            "  token_file: gitlab-token\n  token_reload_interval: 100ms\n",
        ),
    )
    .unwrap();
    sb.server.reload().unwrap();
    sb.fake.clear_requests();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert!(fake_saw_token(&sb, &new));
    assert!(!fake_saw_token(&sb, &old));
    wait_until("the new token is saved to the token file", || {
        std::fs::read_to_string(&token_path).unwrap().trim() == new
    })
    .await;
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The copy is removed just after the token file is renamed into place.
    wait_until("the emergency copy is removed once saved", || {
        !copy.exists()
    })
    .await;
    // And from then on the file is watched as usual, and served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sb.fake.clear_requests();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    assert!(fake_saw_token(&sb, &new));
    assert_eq!(sb.fake.rotations(), 1);
    let logs = crate::support::logs::lines_with(&sb.dir.path().display().to_string());
    let logged = |text: &str| logs.iter().any(|l| l.contains(text));
    assert!(logged("gitlab-token.unsaved"), "{logs:#?}");
    assert!(logged("the token file is ignored"), "{logs:#?}");
    assert!(logged("the rotated GitLab token is now saved"), "{logs:#?}");
    assert!(!logged("then run `glgate token rotate`"), "{logs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_token_makes_one_request_wait_and_the_next_ones_fail_fast() {
    let sb = Sandbox::start().await;
    sb.fake.revoke(&sb.gitlab_token);
    let started = Instant::now();
    let first = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    // glgate's token, not the client's: 503, not GitLab's bare 401.
    assert_eq!(first.status, 503);
    assert_eq!(first.json()["reason"], "upstream_credential_rejected");
    assert!(
        started.elapsed() < glgate::credential::ROTATION_GRACE + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let url = sb.url("/api/v4/user");
    let clients = (0..20).map(|_| {
        let (url, token) = (url.clone(), sb.client_token.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let status = get(&url, &token).await.status;
            (status, started.elapsed())
        })
    });
    for client in futures_util::future::join_all(clients).await {
        let (status, took) = client.unwrap();
        assert_eq!(status, 503);
        assert!(took < Duration::from_millis(200), "took {took:?}");
    }
    // A new token in the file is used at once, without waiting for the
    // periodic check.
    let fresh = random_token();
    sb.fake.add_token(&fresh);
    sb.remember_secret(&fresh);
    replace_atomically(&sb.dir.path().join("gitlab-token"), &format!("{fresh}\n"));
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
}

/// Switches a running sandbox to OAuth: registers the app in the fake,
/// writes the secret and a first refresh token, reloads.
fn switch_to_oauth(sb: &Sandbox) -> std::path::PathBuf {
    sb.fake.oauth_client(
        "glgate-app",
        "app-secret-123",
        "http://127.0.0.1:7171/callback",
    );
    let (access, refresh) = sb.fake.oauth_grant();
    sb.remember_secret(&access);
    sb.remember_secret(&refresh);
    sb.remember_secret("app-secret-123");
    std::fs::write(sb.dir.path().join("oauth-secret"), "app-secret-123\n").unwrap();
    let refresh_path = sb.dir.path().join("oauth-refresh");
    std::fs::write(&refresh_path, format!("{refresh}\n")).unwrap();
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace(
            "  token_file: gitlab-token\n",
            "  oauth:\n    client_id: glgate-app\n    client_secret_file: oauth-secret\n    refresh_token_file: oauth-refresh\n",
        ),
    )
    .unwrap();
    sb.server.reload().unwrap();
    refresh_path
}

/// Remembers every OAuth token the fake issued, for the leak check.
fn remember_oauth_tokens(sb: &Sandbox) {
    for token in sb.fake.valid_tokens() {
        sb.remember_secret(&token);
    }
    for token in sb.fake.valid_refresh_tokens() {
        sb.remember_secret(&token);
    }
    for request in sb.fake.requests() {
        if let Some(bearer) = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            sb.remember_secret(bearer);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_refreshes_before_expiry_and_saves_the_refresh_token_first() {
    let sb = Sandbox::with(SandboxOptions {
        config_extra: NO_RATE_LIMIT.into(),
        ..SandboxOptions::default()
    })
    .await;
    sb.fake.set_oauth_expires_in(3);
    let refresh_path = switch_to_oauth(&sb);
    let started = Instant::now();
    let mut seen_access = Vec::<String>::new();
    while started.elapsed() < Duration::from_millis(6500) {
        sb.fake.clear_requests();
        let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
        assert_eq!(reply.status, 200, "{}", reply.all_text());
        let request = sb
            .fake
            .requests()
            .into_iter()
            .find(|r| r.path() == "/api/v4/user")
            .unwrap();
        assert_eq!(request.header("private-token"), None);
        let access = request
            .header("authorization")
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned();
        if !seen_access.contains(&access) {
            // By the time GitLab sees a new access token, the refresh token
            // issued with it is already on disk.
            let saved = std::fs::read_to_string(&refresh_path)
                .unwrap()
                .trim()
                .to_owned();
            assert!(
                sb.fake.valid_refresh_tokens().contains(&saved),
                "stale refresh token on disk"
            );
            seen_access.push(access);
        }
        remember_oauth_tokens(&sb);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen_access.len() >= 3,
        "refreshed before each expiry: {}",
        seen_access.len()
    );
    let calls = sb.fake.oauth_refresh_calls();
    assert!(
        (3..=5).contains(&calls),
        "{calls} refreshes in 4.5 s of 2 s tokens"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_refresh_keeps_serving_the_still_valid_access_token() {
    let sb = Sandbox::start().await;
    switch_to_oauth(&sb);
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    remember_oauth_tokens(&sb);
    let credential = sb.server.gateway.snapshot().upstream.credential().clone();
    // A slow token endpoint that fails: requests must neither wait for it
    // nor lose the access token, which is still valid.
    sb.fake.fail_oauth_token(1, Duration::from_millis(1500));
    let refresh = tokio::spawn({
        let credential = credential.clone();
        async move { credential.refresh().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut served = 0;
    while !refresh.is_finished() {
        let asked = Instant::now();
        let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
        assert_eq!(reply.status, 200, "{}", reply.all_text());
        assert!(
            asked.elapsed() < Duration::from_millis(300),
            "{:?}",
            asked.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(1));
    assert!(served >= 10, "{served}");
    assert!(refresh.await.unwrap().is_err());
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    // The next refresh works and its token is used.
    credential.refresh().await.unwrap();
    remember_oauth_tokens(&sb);
    sb.fake.clear_requests();
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    remember_oauth_tokens(&sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_refreshes_collapse_into_one() {
    let sb = Sandbox::start().await;
    switch_to_oauth(&sb);
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    let before = sb.fake.oauth_refresh_calls();
    let credential = sb.server.gateway.snapshot().upstream.credential().clone();
    let (a, b) = tokio::join!(credential.refresh(), credential.refresh());
    a.unwrap();
    b.unwrap();
    let seen: Vec<String> = sb
        .fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    let logs: Vec<String> = crate::support::logs::captured()
        .lines()
        .filter(|l| l.contains("OAuth"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        sb.fake.oauth_refresh_calls(),
        before + 1,
        "{seen:?} {logs:#?}"
    );
    remember_oauth_tokens(&sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_refresh_token_means_503_and_retries_with_backoff() {
    let sb = Sandbox::start().await;
    sb.fake.set_oauth_expires_in(1);
    switch_to_oauth(&sb);
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    remember_oauth_tokens(&sb);
    sb.fake.revoke_refresh_tokens();
    let revoked_at = sb.fake.oauth_refresh_calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 503, "{}", reply.all_text());
    assert_eq!(reply.json()["reason"], "upstream_credential_unavailable");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("no valid GitLab credential")
    );
    let admin = format!("http://{}", sb.server.admin_addr.unwrap());
    let ready = send(Version::HTTP_11, "GET", &format!("{admin}/ready"), &[], b"").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["upstream"], "no valid GitLab credential");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let retries = sb.fake.oauth_refresh_calls() - revoked_at;
    // Due at 0.8 s, then after 1 s, 2 s: three or so in 4 s, not a flood.
    assert!((2..=4).contains(&retries), "{retries} refresh attempts");
    assert!(crate::support::logs::captured().contains("OAuth refresh failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_login_follows_the_authorization_code_flow_with_pkce() {
    // Also: an idle connection does not block the callback, and a callback
    // with a wrong or missing state is ignored even when it carries `error`.
    let gitlab = fake_gitlab::FakeGitlab::start(fake_gitlab::FakeOptions::default())
        .await
        .unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let redirect = format!("http://127.0.0.1:{port}/callback");
    gitlab.oauth_client("app", "s3cret-app", &redirect);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        crate::support::sandbox::ECHOES_POLICY,
    )
    .unwrap();
    std::fs::write(dir.path().join("app-secret"), "s3cret-app\n").unwrap();
    let path = dir.path().join("c.yaml");
    let text = format!(
        "version: 1\nlisten: 127.0.0.1:0\nupstream:\n  url: {}\n  oauth:\n    client_id: app\n    client_secret_file: app-secret\n    refresh_token_file: state/refresh\n    redirect_uri: {redirect}\nclients:\n  - {{name: a, token_sha256: \"{}\", policy: p.yaml}}\n",
        gitlab.base_url(),
        "a".repeat(64)
    );
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let config = glgate::config::Config::compile(&path, &text).unwrap();
    let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
    let login = tokio::spawn(async move {
        glgate::credential::login(&config.upstream, Duration::from_secs(20), move |url| {
            url_tx.send(url.to_owned()).unwrap();
        })
        .await
    });
    let url = url_rx.await.unwrap();
    assert!(url.contains("code_challenge_method=S256") && url.contains("response_type=code"));
    // An idle connection (a browser's preconnect) holds nothing up.
    let idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // A redirect with another state, or none, is refused whatever it
    // carries (an `error` too); login goes on.
    for forged in ["?error=access_denied&state=forged", "?error=access_denied"] {
        let refused = send(
            Version::HTTP_11,
            "GET",
            &format!("{redirect}{forged}"),
            &[],
            b"",
        )
        .await;
        assert_eq!(refused.status, 400, "{forged}");
    }
    assert!(
        !login.is_finished(),
        "a forged error must not end the login"
    );
    let forged = send(
        Version::HTTP_11,
        "GET",
        &format!("{redirect}?code=x&state=forged"),
        &[],
        b"",
    )
    .await;
    assert_eq!(forged.status, 400);
    // The "browser": GitLab approves and redirects to the loopback callback.
    let authorize = send(Version::HTTP_11, "GET", &url, &[], b"").await;
    assert_eq!(authorize.status, 302);
    let location = authorize.header("location").unwrap().to_owned();
    assert!(location.starts_with(&redirect));
    let asked = Instant::now();
    let callback = send(Version::HTTP_11, "GET", &location, &[], b"").await;
    assert_eq!(callback.status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    drop(idle);
    let outcome = login.await.unwrap().unwrap();
    assert!(matches!(outcome, glgate::credential::LoginOutcome::Saved));
    let saved = std::fs::read_to_string(dir.path().join("state/refresh")).unwrap();
    assert_eq!(gitlab.valid_refresh_tokens(), vec![saved.trim().to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_rotate_under_load_fails_no_request_although_gitlab_revokes_at_once() {
    // A long reload interval: only the re-read after GitLab's 401 can save
    // the requests that race the rotation.
    let sb = Arc::new(
        Sandbox::with(SandboxOptions {
            upstream_extra: "  token_reload_interval: 1h\n".into(),
            config_extra: NO_RATE_LIMIT.into(),
            ..SandboxOptions::default()
        })
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let succeeded = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (sb, stop, failures, succeeded) = (
            sb.clone(),
            stop.clone(),
            failures.clone(),
            succeeded.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if get(&sb.url("/api/v4/user"), &sb.client_token).await.status == 200 {
                    succeeded.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let config = sb.config_path.display().to_string();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (code, out, err) = glgate(&["token", "rotate", "--config", &config]).await;
        assert_eq!(code, 0, "{out}{err}");
        let new = std::fs::read_to_string(sb.dir.path().join("gitlab-token")).unwrap();
        sb.remember_secret(new.trim());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    let succeeded = succeeded.load(Ordering::Relaxed);
    assert!(succeeded > 50, "only {succeeded} requests ran");
    assert_eq!(sb.fake.rotations(), 3);
    eprintln!("3 GitLab rotations, {succeeded} requests, 0 failures");
}

#[tokio::test]
async fn client_new_prints_both_digests_for_a_rotation() {
    let old = glgate::auth::token_digest_hex(&random_token());
    let (code, out, err) = glgate(&["client", "new", "echoes", "--replacing", &old]).await;
    assert_eq!(code, 0, "{err}");
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("glg_"))
        .unwrap()
        .to_owned();
    let new = glgate::auth::token_digest_hex(&token);
    assert!(
        out.contains(&format!("- \"{old}\"  # current token")),
        "{out}"
    );
    assert!(out.contains(&format!("- \"{new}\"  # new token")), "{out}");
    assert!(out.contains(&format!("token_sha256: \"{new}\"")), "{out}");
    let (code, _, err) = glgate(&["client", "new", "echoes", "--replacing", "nothex"]).await;
    assert_eq!(code, 2, "{err}");
}
