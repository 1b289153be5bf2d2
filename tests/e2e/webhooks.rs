//! The webhook relay end to end: a client registers its hook through
//! glgate, the fake GitLab stores the relay URL and glgate's secret and later
//! delivers documented GitLab payloads there, and a local receiver stands in
//! for the third party and records what reaches it.

use std::path::PathBuf;
use std::time::Duration;

use http::Version;

use crate::support::binary::run_glgate;
use crate::support::client::{Reply, get, send};
use crate::support::receiver::Receiver;
use crate::support::sandbox::{Sandbox, SandboxOptions};

/// The shipped payload policy for Echoes.
fn echoes_webhook_policy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/echoes.webhooks.yaml")
}

/// A documented GitLab payload from `tests/fixtures/webhooks/`.
fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON fixture")
}

/// The policy, with the receiver's loopback URL allowed as Echoes' API (the
/// shipped rule allows only `https://api.echoeshq.com/`).
fn policy_for(receiver: &Receiver) -> String {
    let echoes = r"https://api\.echoeshq\.com/[^\s\\]*";
    let local = format!(r"http://127\.0\.0\.1:{}/[^\s\\]*", receiver.addr.port());
    crate::support::sandbox::ECHOES_POLICY.replace(echoes, &local)
}

/// The relay's own files, kept beside the sandbox.
struct RelayFiles {
    dir: tempfile::TempDir,
}

impl RelayFiles {
    fn new() -> RelayFiles {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("webhook-key"),
            "2f1e0d0c0b0a09080706050403020100ffeeddccbbaa99887766554433221100\n",
        )
        .unwrap();
        RelayFiles { dir }
    }

    fn config(&self) -> String {
        format!(
            "webhooks:\n  key_file: {}\n  spool: {}\n  retry_initial: 100ms\n  retry_max: 300ms\n  max_age: 30s\n",
            self.dir.path().join("webhook-key").display(),
            self.dir.path().join("spool").display(),
        )
    }
}

async fn relay_sandbox(receiver: &Receiver, files: &RelayFiles, scope: &str) -> Sandbox {
    relay_sandbox_with(receiver, files, scope, "").await
}

async fn relay_sandbox_with(
    receiver: &Receiver,
    files: &RelayFiles,
    scope: &str,
    webhooks_extra: &str,
) -> Sandbox {
    Sandbox::with(SandboxOptions {
        policy: policy_for(receiver),
        config_extra: format!("{}{webhooks_extra}", files.config()),
        client_extra: format!(
            "    webhooks:\n      policy: {}\n{scope}",
            echoes_webhook_policy().display()
        ),
        ..SandboxOptions::default()
    })
    .await
}

async fn call(sb: &Sandbox, method: &str, target: &str, body: &serde_json::Value) -> Reply {
    send(
        Version::HTTP_11,
        method,
        &sb.url(target),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

/// Registers a hook for the receiver's `path` on `owner` (`projects/101`,
/// `groups/10`) through glgate; returns the hook id.
async fn register(sb: &Sandbox, owner: &str, url: &str, token: &str) -> u64 {
    let reply = call(
        sb,
        "POST",
        &format!("/api/v4/{owner}/hooks"),
        &serde_json::json!({
            "url": url, "token": token, "push_events": true,
            "merge_requests_events": true, "note_events": true, "pipeline_events": true,
        }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.all_text());
    // The client sees its own URL, never the relay's, and never a token.
    let hook = reply.json();
    assert_eq!(hook["url"], url);
    assert!(hook.get("token").is_none());
    hook["id"].as_u64().unwrap()
}

/// Waits (up to 10 s) for an audit line that `wanted` accepts; all lines.
async fn audit_with(
    sb: &Sandbox,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = sb.audit_events(1).await;
        if events.iter().any(&wanted) || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn contains_key(value: &serde_json::Value, wanted: &dyn Fn(&str) -> bool) -> bool {
    match value {
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| wanted(key) || contains_key(value, wanted)),
        serde_json::Value::Array(items) => items.iter().any(|item| contains_key(item, wanted)),
        _ => false,
    }
}

#[tokio::test]
async fn a_registered_hook_points_at_glgate_and_reads_back_as_the_client_wrote_it() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox(&receiver, &files, "").await;
    let url = receiver.url("/hooks/gitlab/acme");
    let id = register(&sb, "projects/101", &url, "client-secret-1").await;

    // What GitLab stored: glgate's relay URL and glgate's secret.
    let stored = sb.fake.stored_hooks();
    let (_, gitlab_url, gitlab_token) = stored.iter().find(|h| h.0 == id).unwrap();
    assert!(
        gitlab_url.starts_with(&format!("{}/-/webhooks/v1/", sb.base_url())),
        "{gitlab_url}"
    );
    assert!(!gitlab_url.contains("acme") && !gitlab_url.contains("client-secret-1"));
    let gitlab_token = gitlab_token.as_deref().unwrap();
    assert_ne!(gitlab_token, "client-secret-1");
    assert_eq!(gitlab_token.len(), 64);

    // Reading and listing through glgate shows the client's own URL.
    let listed = get(&sb.url("/api/v4/projects/101/hooks"), &sb.client_token).await;
    assert_eq!(listed.status, 200);
    let hooks = listed.json();
    let hooks = hooks.as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["url"], url);
    let one = get(
        &sb.url(&format!("/api/v4/projects/101/hooks/{id}")),
        &sb.client_token,
    )
    .await;
    assert_eq!(
        (one.status, one.json()["url"].as_str()),
        (200, Some(url.as_str()))
    );

    // An update of the URL re-seals; one without url or token changes nothing of them.
    let moved = receiver.url("/hooks/gitlab/acme-2");
    let reply = call(
        &sb,
        "PUT",
        &format!("/api/v4/projects/101/hooks/{id}"),
        &serde_json::json!({ "url": moved }),
    )
    .await;
    assert_eq!(
        (reply.status, reply.json()["url"].as_str()),
        (200, Some(moved.as_str()))
    );
    let reply = call(
        &sb,
        "PUT",
        &format!("/api/v4/projects/101/hooks/{id}"),
        &serde_json::json!({ "note_events": false }),
    )
    .await;
    assert_eq!(
        (reply.status, reply.json()["url"].as_str()),
        (200, Some(moved.as_str()))
    );

    // The registration is audited as rewritten for the relay.
    let rewritten =
        |e: &serde_json::Value| e["rule"] == "project-hooks.create" && e["webhook_relay"] == true;
    let events = audit_with(&sb, rewritten).await;
    assert!(events.iter().any(rewritten), "{events:?}");

    let reply = send(
        Version::HTTP_11,
        "DELETE",
        &sb.url(&format!("/api/v4/projects/101/hooks/{id}")),
        &[("private-token", &sb.client_token)],
        b"",
    )
    .await;
    assert_eq!(reply.status, 204);
    assert!(sb.fake.stored_hooks().is_empty());
}

#[tokio::test]
async fn deliveries_reach_the_client_minimized_with_its_own_token() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox(&receiver, &files, "").await;
    register(&sb, "projects/101", &receiver.url("/in"), "client-secret-2").await;

    let answers = sb
        .fake
        .deliver_event(101, "Push Hook", fixture("push.json"))
        .await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].status, Some(200), "GitLab gets a 2xx");
    let answers = sb
        .fake
        .deliver_event(101, "Pipeline Hook", fixture("pipeline.json"))
        .await;
    assert_eq!(answers[0].status, Some(200));

    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for delivery in &got {
        assert_eq!(delivery.path, "/in");
        assert_eq!(delivery.header("x-gitlab-token"), Some("client-secret-2"));
        assert!(delivery.header("x-gitlab-instance").is_none());
        assert!(delivery.header("idempotency-key").is_some());
        assert!(delivery.header("x-gitlab-event-uuid").is_some());
        let body = delivery.json();
        assert_eq!(body["project"]["path_with_namespace"], "acme/backend");
        assert!(
            !contains_key(&body, &|key| key == "email" || key.ends_with("_email")),
            "emails are removed: {body}"
        );
    }
    let pipeline = got
        .iter()
        .find(|d| d.header("x-gitlab-event") == Some("Pipeline Hook"))
        .unwrap()
        .json();
    assert!(pipeline["object_attributes"].get("variables").is_none());

    // One audit line on receipt and one per attempt, without secrets.
    let audit = std::fs::read_to_string(&sb.audit_path).unwrap();
    assert!(!audit.contains("client-secret-2"));
    let webhook_lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["kind"] == "webhook")
        .collect();
    assert!(
        webhook_lines
            .iter()
            .any(|l| l["phase"] == "received" && l["decision"] == "accept"),
        "{webhook_lines:?}"
    );
}

#[tokio::test]
async fn events_outside_the_scope_are_answered_and_dropped() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    // acme without acme/secret-stuff: a group hook on acme is allowed with the
    // relay, and the excluded project's events never reach the client.
    let scope = "    scope:\n      groups: [acme]\n      exclude: [acme/secret-stuff]\n";
    let sb = relay_sandbox(&receiver, &files, scope).await;
    register(&sb, "groups/10", &receiver.url("/group"), "group-secret").await;

    let inside = sb
        .fake
        .deliver_event(103, "Merge Request Hook", fixture("merge_request.json"))
        .await;
    assert_eq!(inside[0].status, Some(200));
    let excluded = sb
        .fake
        .deliver_event(104, "Merge Request Hook", fixture("merge_request.json"))
        .await;
    assert_eq!(excluded.len(), 1);
    assert_eq!(
        excluded[0].status,
        Some(200),
        "a dropped event is answered 2xx so GitLab keeps the hook"
    );

    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_after = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got_after.len(),
        1,
        "the excluded project's event never arrives"
    );
    assert_eq!(
        got_after[0].json()["project"]["path_with_namespace"],
        "acme/platform/api"
    );
    let dropped = |e: &serde_json::Value| {
        e["kind"] == "webhook"
            && e["reason"] == "out_of_scope"
            && e["object"] == "acme/secret-stuff/keys"
    };
    let events = audit_with(&sb, dropped).await;
    assert!(events.iter().any(dropped), "{events:?}");
}

#[tokio::test]
async fn forged_or_missing_secrets_and_unknown_relay_urls_are_refused() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox(&receiver, &files, "").await;
    let id = register(&sb, "projects/101", &receiver.url("/in"), "s").await;
    let stored = sb.fake.stored_hooks();
    let relay_url = stored.iter().find(|h| h.0 == id).unwrap().1.clone();
    let body = fixture("push.json").to_string();
    let post = |url: String, headers: Vec<(&'static str, String)>| {
        let body = body.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            send(Version::HTTP_11, "POST", &url, &headers, body.as_bytes()).await
        }
    };
    let event = ("x-gitlab-event", "Push Hook".to_owned());
    let missing = post(relay_url.clone(), vec![event.clone()]).await;
    assert_eq!(missing.status, 401);
    let forged = post(
        relay_url.clone(),
        vec![event.clone(), ("x-gitlab-token", "0".repeat(64))],
    )
    .await;
    assert_eq!(forged.status, 401);
    // Someone else's relay URL (another key) or an altered one: unknown.
    let altered = format!("{}A", relay_url);
    let unknown = post(altered, vec![event.clone(), ("x-gitlab-token", "x".into())]).await;
    assert_eq!(unknown.status, 404);
    // A client token is never accepted there.
    let token = stored
        .iter()
        .find(|h| h.0 == id)
        .unwrap()
        .2
        .clone()
        .unwrap();
    let with_client_token = post(
        relay_url.clone(),
        vec![
            event.clone(),
            ("x-gitlab-token", token.clone()),
            ("private-token", sb.client_token.clone()),
        ],
    )
    .await;
    assert_eq!(with_client_token.status, 400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty());
    let refused = audit_with(&sb, |e| e["reason"] == "client_credential_on_webhook").await;
    let reasons: Vec<&str> = refused
        .iter()
        .filter(|e| e["kind"] == "webhook")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for reason in [
        "webhook_secret_invalid",
        "relay_url_unknown",
        "client_credential_on_webhook",
    ] {
        assert!(reasons.contains(&reason), "{reasons:?}");
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_accepted_event_later() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox(&receiver, &files, "").await;
    register(&sb, "projects/101", &receiver.url("/in"), "s").await;
    receiver.set_status(503);
    let mut sent = Vec::new();
    for n in 0..5 {
        let mut payload = fixture("note_merge_request.json");
        payload["object_attributes"]["note"] = serde_json::Value::from(format!("note {n}"));
        let answers = sb.fake.deliver_event(101, "Note Hook", payload).await;
        assert_eq!(
            answers[0].status,
            Some(200),
            "accepted while the receiver is down"
        );
        sent.push(format!("note {n}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received().is_empty());
    receiver.set_status(200);
    let got = receiver.wait_for(5, Duration::from_secs(15)).await;
    let mut notes: Vec<String> = got
        .iter()
        .map(|d| {
            d.json()["object_attributes"]["note"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    notes.sort();
    notes.dedup();
    assert_eq!(notes, sent, "exactly the accepted events, none lost");
}

/// A free port on 127.0.0.1 (bound, then released for the binary to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The glgate binary serving `config`, once it accepts connections on `port`.
async fn serve_binary(config: &std::path::Path, port: u16) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_glgate"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("glgate did not start on port {port}");
}

#[tokio::test]
async fn kill_9_at_any_moment_loses_no_accepted_event() {
    use fake_gitlab::{FakeGitlab, FakeOptions};
    let fake = FakeGitlab::start(FakeOptions::default()).await.unwrap();
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let dir = files.dir.path();
    let port = free_port();
    let client_token = crate::support::sandbox::random_token();
    std::fs::write(dir.join("gitlab-token"), fake.token()).unwrap();
    std::fs::write(dir.join("policy.yaml"), policy_for(&receiver)).unwrap();
    let config = dir.join("glgate.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\nlisten: 127.0.0.1:{port}\n\
             upstream:\n  url: {}\n  token_file: gitlab-token\n\
             clients:\n  - name: echoes\n    token_sha256: \"{}\"\n    policy: policy.yaml\n\
             \x20   webhooks:\n      policy: {}\n\
             audit:\n  output: audit.log\n\
             webhooks:\n  key_file: webhook-key\n  spool: spool\n  retry_initial: 50ms\n  retry_max: 200ms\n",
            fake.base_url(),
            glgate::auth::token_digest_hex(&client_token),
            echoes_webhook_policy().display(),
        ),
    )
    .unwrap();
    let mut glgate = serve_binary(&config, port).await;
    let register = send(
        Version::HTTP_11,
        "POST",
        &format!("http://127.0.0.1:{port}/api/v4/projects/101/hooks"),
        &[
            ("private-token", &client_token),
            ("content-type", "application/json"),
        ],
        serde_json::json!({ "url": receiver.url("/in"), "token": "t", "note_events": true })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(register.status, 201, "{}", register.all_text());

    // GitLab delivers one event after another; glgate is killed while it
    // accepts them (receiver down: all still queued), restarted, killed
    // again while it delivers them, and restarted again.
    receiver.set_status(503);
    let fake = std::sync::Arc::new(fake);
    let feeder = {
        let fake = fake.clone();
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            for n in 0..60 {
                let mut payload = fixture("note_merge_request.json");
                payload["object_attributes"]["note"] = serde_json::Value::from(format!("n{n}"));
                let answers = fake.deliver_event(101, "Note Hook", payload).await;
                if answers.first().and_then(|a| a.status) == Some(200) {
                    accepted.push(format!("n{n}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            accepted
        })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    glgate.kill().unwrap();
    glgate.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut glgate = serve_binary(&config, port).await;
    let accepted = feeder.await.unwrap();
    assert!(
        accepted.len() > 5 && accepted.len() < 60,
        "the kill fell mid-stream: {} accepted",
        accepted.len()
    );
    receiver.set_status(200);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    glgate.kill().unwrap();
    glgate.wait().unwrap();
    let mut glgate = serve_binary(&config, port).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let mut notes: Vec<String> = receiver
            .received()
            .iter()
            .map(|d| {
                d.json()["object_attributes"]["note"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        notes.sort();
        notes.dedup();
        if notes.len() >= accepted.len() || tokio::time::Instant::now() > deadline {
            break notes;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    glgate.kill().unwrap();
    glgate.wait().unwrap();
    let mut expected = accepted.clone();
    expected.sort();
    let missing: Vec<&String> = expected.iter().filter(|n| !delivered.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}"
    );
    // Every delivery carries GitLab's idempotency key, so the receiver can
    // tell a redelivery after a crash from a new event.
    let keys: std::collections::HashSet<String> = receiver
        .received()
        .iter()
        .map(|d| d.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), delivered.len());
}

#[tokio::test]
async fn a_full_queue_answers_gitlab_503_and_keeps_what_it_accepted() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox_with(
        &receiver,
        &files,
        "",
        "  max_queued: 2\n  max_client_share_percent: 100\n",
    )
    .await;
    register(&sb, "projects/101", &receiver.url("/in"), "s").await;
    receiver.set_status(503);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let answers = sb
            .fake
            .deliver_event(101, "Push Hook", fixture("push.json"))
            .await;
        statuses.push(answers[0].status);
    }
    assert_eq!(statuses, [Some(200), Some(200), Some(503)]);
    let admin = sb.server.admin_addr.unwrap();
    let ready = send(
        Version::HTTP_11,
        "GET",
        &format!("http://{admin}/ready"),
        &[],
        b"",
    )
    .await;
    assert_eq!(ready.status, 200, "API requests are still served");
    assert_eq!(ready.json()["degraded"], "webhook_queue_near_full");
    assert_eq!(ready.json()["webhook_queue"]["near_full"], true);
    let queue_full = |e: &serde_json::Value| {
        e["kind"] == "webhook" && e["reason"] == "queue_full" && e["status"] == 503
    };
    let events = audit_with(&sb, queue_full).await;
    assert!(events.iter().any(queue_full), "{events:?}");
    receiver.set_status(200);
    assert_eq!(receiver.wait_for(2, Duration::from_secs(10)).await.len(), 2);
    // Once the deliveries are settled in the spool, /ready is no longer degraded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = send(
            Version::HTTP_11,
            "GET",
            &format!("http://{admin}/ready"),
            &[],
            b"",
        )
        .await;
        if ready.json().get("degraded").is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            ready.all_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn prune_hooks_lists_then_deletes_relay_hooks_outside_the_scope() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox(&receiver, &files, "    scope:\n      groups: [acme]\n").await;
    register(&sb, "projects/101", &receiver.url("/a"), "s").await;
    let platform = register(&sb, "projects/103", &receiver.url("/b"), "s").await;
    // Another integration's hook is never considered.
    let other = send(
        Version::HTTP_11,
        "POST",
        &format!("{}/api/v4/projects/103/hooks", sb.fake.base_url()),
        &[
            ("private-token", sb.fake.token()),
            ("content-type", "application/json"),
        ],
        br#"{"url":"https://jenkins.acme.internal/hook"}"#,
    )
    .await;
    assert_eq!(other.status, 201);
    let config = std::fs::read_to_string(&sb.config_path).unwrap();
    std::fs::write(
        &sb.config_path,
        config.replace(
            "groups: [acme]\n",
            "groups: [acme]\n      exclude: [acme/platform]\n",
        ),
    )
    .unwrap();
    let path = sb.config_path.display().to_string();
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = ["scope", "prune-hooks", "--config", &path]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let (code, out, err) =
        run_glgate(&args(&[]).iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("2 relay hook(s) found, 1 outside"), "{out}");
    assert!(
        out.contains(&format!("project acme/platform/api hook {platform}")),
        "{out}"
    );
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(sb.fake.stored_hooks().len(), 3, "a dry run deletes nothing");
    let (code, out, err) = run_glgate(
        &args(&["--delete"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": deleted"), "{out}");
    let left: Vec<u64> = sb.fake.stored_hooks().iter().map(|h| h.0).collect();
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&platform));
}

#[tokio::test]
async fn new_key_prints_a_key_the_config_accepts() {
    let (code, out, err) = run_glgate(&["webhooks", "new-key"]).await;
    assert_eq!(code, 0, "{err}");
    let key = out.trim();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    let (_, again, _) = run_glgate(&["webhooks", "new-key"]).await;
    assert_ne!(again.trim(), key, "a fresh key each time");
}

#[tokio::test]
async fn check_shows_the_relay_and_warns_of_a_readable_key() {
    use std::os::unix::fs::PermissionsExt;
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let sb = relay_sandbox(&receiver, &files, "").await;
    let key = files.dir.path().join("webhook-key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = sb.config_path.display().to_string();
    let (code, out, err) = run_glgate(&["check", "--config", &config]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("webhooks relay at http://127.0.0.1:"), "{out}");
    assert!(
        out.contains("echoes.webhooks.yaml): 7 event kind(s) pass"),
        "{out}"
    );
    assert!(
        out.contains("webhooks.key_file") && out.contains("chmod 600"),
        "{out}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, out, _) = run_glgate(&["check", "--config", &config]).await;
    assert!(!out.contains("warning: webhooks.key_file"), "{out}");
}

#[tokio::test]
async fn a_hook_from_before_the_relay_is_not_widened_around_it() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    let scope = "    scope:\n      groups: [acme]\n      exclude: [acme/secret-stuff]\n";
    let sb = relay_sandbox(&receiver, &files, scope).await;
    // Echoes' group hook, registered at GitLab before the relay.
    let direct = send(
        Version::HTTP_11,
        "POST",
        &format!("{}/api/v4/groups/10/hooks", sb.fake.base_url()),
        &[
            ("private-token", sb.fake.token()),
            ("content-type", "application/json"),
        ],
        serde_json::json!({ "url": receiver.url("/old"), "token": "old" })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(direct.status, 201);
    let id = direct.json()["id"].as_u64().unwrap();
    sb.fake.clear_requests();
    // Turning more events on would deliver the excluded project's around the relay.
    let widen = call(
        &sb,
        "PUT",
        &format!("/api/v4/groups/10/hooks/{id}"),
        &serde_json::json!({ "push_events": true }),
    )
    .await;
    assert_eq!(widen.status, 403, "{}", widen.all_text());
    assert_eq!(widen.json()["reason"], "webhook_relay_migration_needed");
    assert!(
        sb.fake.requests().iter().all(|r| r.method == "GET"),
        "nothing was written at GitLab"
    );
    // With its url and token it moves behind the relay.
    let migrate = call(
        &sb,
        "PUT",
        &format!("/api/v4/groups/10/hooks/{id}"),
        &serde_json::json!({ "url": receiver.url("/old"), "token": "old", "push_events": true }),
    )
    .await;
    assert_eq!(migrate.status, 200, "{}", migrate.all_text());
    assert_eq!(migrate.json()["url"], receiver.url("/old"));
    let stored = sb.fake.stored_hooks();
    assert!(stored[0].1.contains("/-/webhooks/v1/"), "{stored:?}");
}

#[tokio::test]
async fn another_client_never_reaches_a_relay_hook_even_without_owned_if() {
    let receiver = Receiver::start().await;
    let files = RelayFiles::new();
    // A policy whose delete rule has no owned_if: the relay still guards its hooks.
    let policy = policy_for(&receiver).replace(
        "      - /projects/{project}/hooks/{hook_id}\n    owned_if: *echoes_hook\n    params: {}\n",
        "      - /projects/{project}/hooks/{hook_id}\n    params: {}\n",
    );
    assert!(!policy.contains("Remove one of Echoes' own webhooks, by id.\n    methods: [DELETE]\n    paths:\n      - /groups/{group}/hooks/{hook_id}\n      - /projects/{project}/hooks/{hook_id}\n    owned_if"));
    let sb = Sandbox::with(SandboxOptions {
        policy,
        config_extra: files.config(),
        client_extra: format!(
            "    webhooks:\n      policy: {}\n",
            echoes_webhook_policy().display()
        ),
        other_client: Some(String::new()),
        ..SandboxOptions::default()
    })
    .await;
    let id = register(&sb, "projects/101", &receiver.url("/in"), "secret").await;
    let as_other = |method: &'static str| {
        let sb = &sb;
        async move {
            send(
                Version::HTTP_11,
                method,
                &sb.url(&format!("/api/v4/projects/101/hooks/{id}")),
                &[("private-token", &sb.other_token)],
                b"",
            )
            .await
        }
    };
    let deleted = as_other("DELETE").await;
    assert_eq!(deleted.status, 403, "{}", deleted.all_text());
    let read = as_other("GET").await;
    assert_eq!(read.status, 403);
    let listed = get(&sb.url("/api/v4/projects/101/hooks"), &sb.other_token).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.json().as_array().unwrap().len(),
        0,
        "{}",
        listed.all_text()
    );
    assert_eq!(sb.fake.stored_hooks().len(), 1, "still there");
}
