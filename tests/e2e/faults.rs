//! Upstream faults (threat class 19, docs/threat-model.md): GitLab refusing, resetting, stalling,
//! answering too much, or presenting a certificate glgate must not trust.
//! The client gets a clear 502/504 (or a cleanly cut stream once headers were
//! sent), glgate stays up, and no request is sent to GitLab twice.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::client::{get, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::tls::{TestCa, tls_upstream};
use crate::support::upstreams::{Script, scripted_upstream};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn behind(
    script: Script,
    upstream_extra: &str,
) -> (Sandbox, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let (addr, seen) = scripted_upstream(script).await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{addr}")),
        upstream_extra: upstream_extra.to_owned(),
        ..SandboxOptions::default()
    })
    .await;
    (sb, seen)
}

/// Sends a GET and reads the body to its end: (status, bytes read, whether the body failed).
async fn get_streamed(sb: &Sandbox) -> (u16, usize, bool) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::get(sb.url("/api/v4/user"))
        .header("private-token", &sb.client_token)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut read = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap()
        {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) => return (status, read, true),
            None => return (status, read, false),
        }
    }
}

async fn still_up(sb: &Sandbox) {
    let reply = get(&sb.url("/api/v4/"), "").await;
    assert_eq!(reply.status, 200, "glgate still answers");
}

#[tokio::test]
async fn a_reset_mid_body_cuts_the_stream_cleanly() {
    let (sb, seen) = behind(
        Script::ResetMidBody {
            declared: 10_000,
            sent: 1_000,
        },
        "",
    )
    .await;
    let (status, read, failed) = get_streamed(&sb).await;
    assert_eq!(status, 200);
    assert!(
        failed && read < 10_000,
        "truncated, not completed: read {read}"
    );
    let events = sb.audit_events(1).await;
    assert_eq!(events[0]["error"], "upstream_body_error", "{}", events[0]);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    still_up(&sb).await;
}

#[tokio::test]
async fn a_stalled_body_is_cut_after_the_idle_timeout() {
    let (sb, _) = behind(
        Script::StallMidBody {
            declared: 10_000,
            sent: 100,
        },
        "  body_idle_timeout: 300ms\n",
    )
    .await;
    let started = std::time::Instant::now();
    let (status, read, failed) = get_streamed(&sb).await;
    assert_eq!(status, 200);
    assert!(failed && read == 100, "read {read}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let events = sb.audit_events(1).await;
    assert_eq!(events[0]["error"], "upstream_body_timeout", "{}", events[0]);
    still_up(&sb).await;
}

#[tokio::test]
async fn an_announced_oversized_response_is_a_502() {
    let (sb, _) = behind(
        Script::Declares {
            declared: 10_000_000,
        },
        "  max_response_bytes: 1000000\n",
    )
    .await;
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["reason"], "response_too_large");
    still_up(&sb).await;
}

#[tokio::test]
async fn a_streamed_oversized_response_is_cut_at_the_limit() {
    let (sb, _) = behind(
        Script::Chunked { total: 2_000_000 },
        "  max_response_bytes: 100000\n",
    )
    .await;
    let (status, read, failed) = get_streamed(&sb).await;
    assert_eq!(status, 200);
    assert!(failed && read <= 100_000, "read {read}");
    let events = sb.audit_events(1).await;
    assert_eq!(events[0]["error"], "response_too_large", "{}", events[0]);
    still_up(&sb).await;
}

#[tokio::test]
async fn a_write_is_never_sent_twice_when_gitlab_drops_it() {
    let (sb, seen) = behind(Script::CloseWithoutAnswer, "").await;
    let reply = send(
        http::Version::HTTP_11,
        "POST",
        &sb.url("/api/v4/projects/101/hooks"),
        &[
            ("private-token", &sb.client_token),
            ("content-type", "application/json"),
        ],
        br#"{"url":"https://api.echoeshq.com/h"}"#,
    )
    .await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["reason"], "upstream_unavailable");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1, "GitLab saw the POST once");
    still_up(&sb).await;
}

/// glgate in front of an HTTPS upstream whose certificate comes from `ca`
/// (trusted through `ca_file` when `trust` is set) and names `names`.
async fn behind_tls(names: &[&str], expired: bool, trust: bool) -> (Sandbox, tempfile::TempDir) {
    let ca = TestCa::new("glgate test CA");
    let upstream = tls_upstream(ca.leaf(names, expired)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let trusted = if trust {
        ca.pem()
    } else {
        TestCa::new("another CA").pem()
    };
    std::fs::write(&ca_path, trusted).unwrap();
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("https://localhost:{}", upstream.port())),
        upstream_extra: format!("  ca_file: {}\n", ca_path.display()),
        ..SandboxOptions::default()
    })
    .await;
    (sb, dir)
}

#[tokio::test]
async fn a_private_ca_upstream_is_trusted_through_ca_file() {
    let (sb, _dir) = behind_tls(&["localhost"], false, true).await;
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 200, "{}", reply.all_text());
}

#[tokio::test]
async fn untrusted_misnamed_or_expired_certificates_are_502() {
    for (names, expired, trust, what) in [
        (&["localhost"][..], false, false, "unknown CA"),
        (&["gitlab.other.example"][..], false, true, "wrong name"),
        (&["localhost"][..], true, true, "expired"),
    ] {
        let (sb, _dir) = behind_tls(names, expired, trust).await;
        let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
        assert_eq!(reply.status, 502, "{what}: {}", reply.all_text());
        assert_eq!(reply.json()["reason"], "upstream_unavailable", "{what}");
        assert!(
            !reply.all_text().contains("localhost"),
            "{what}: no upstream name in the error"
        );
        still_up(&sb).await;
    }
}
