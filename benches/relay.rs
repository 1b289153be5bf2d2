//! The webhook relay under load (`cargo bench --bench relay`): a real glgate
//! with the relay on, in front of the fake GitLab, a registered hook, and a
//! local receiver answering 200. GitLab's side is played by N concurrent
//! senders posting a documented merge-request payload to the relay URL with
//! the hook's secret, as GitLab does. Reported per concurrency:
//!
//! - acknowledgements per second and the p50/p99 time to GitLab's 200 (the
//!   delivery is verified, scoped, minimized and fsynced in the spool first);
//! - end to end: the time until the receiver has every delivery.
//!
//! The run counts only if every acknowledgement was a 200 and every accepted
//! delivery reached the receiver; otherwise it says what went wrong and fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/client.rs"]
mod client;
#[path = "../tests/support/logs.rs"]
mod logs;
#[path = "../tests/support/receiver.rs"]
mod receiver;
#[path = "../tests/support/sandbox.rs"]
mod sandbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use receiver::Receiver;
use sandbox::{Sandbox, SandboxOptions};

/// Deliveries per concurrency level.
const DELIVERIES: usize = 2000;

#[tokio::main]
async fn main() {
    let receiver = Receiver::start().await;
    let relay = tempfile::tempdir().unwrap();
    let key = relay.path().join("webhook-key");
    std::fs::write(
        &key,
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
    )
    .unwrap();
    let echoes = r"https://api\.echoeshq\.com/[^\s\\]*";
    let local = format!(r"http://127\.0\.0\.1:{}/[^\s\\]*", receiver.addr.port());
    let sb = Sandbox::with(SandboxOptions {
        policy: sandbox::ECHOES_POLICY.replace(echoes, &local),
        config_extra: format!(
            "webhooks:\n  key_file: {}\n  spool: {}\n  max_queued: 1000000\n  max_queue_bytes: 4294967296\n",
            key.display(),
            relay.path().join("spool").display()
        ),
        client_extra: format!(
            "    webhooks:\n      policy: {}/policies/echoes.webhooks.yaml\n",
            env!("CARGO_MANIFEST_DIR")
        ),
        // Audit to a file, as in production; the default client rate limit
        // does not apply to GitLab's deliveries.
        ..SandboxOptions::default()
    })
    .await;
    let registered = client::send(
        http::Version::HTTP_11,
        "POST",
        &sb.url("/api/v4/projects/101/hooks"),
        &[("private-token", &sb.client_token), ("content-type", "application/json")],
        serde_json::json!({"url": receiver.url("/in"), "token": "t", "merge_requests_events": true})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.all_text());
    let (_, relay_url, secret) = sb.fake.stored_hooks().pop().unwrap();
    let secret = secret.unwrap();
    let mut payload: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/webhooks/merge_request.json"
        ))
        .unwrap(),
    )
    .unwrap();
    payload["project"]["path_with_namespace"] = "acme/backend".into();
    payload["project"]["id"] = 101.into();
    let body = Bytes::from(payload.to_string());
    println!(
        "webhook relay: {DELIVERIES} merge-request deliveries ({} bytes each) per run, durable spool, audit to a file",
        body.len()
    );
    println!("concurrency  acks/s  ack p50 ms  ack p99 ms  end-to-end deliveries/s");
    let http: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut expected_total = 0;
    for concurrency in [1usize, 16, 64] {
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (http, next, body, url, secret) = (
                http.clone(),
                next.clone(),
                body.clone(),
                relay_url.clone(),
                secret.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < DELIVERIES {
                    let request = http::Request::post(&url)
                        .header("content-type", "application/json")
                        .header("x-gitlab-event", "Merge Request Hook")
                        .header("x-gitlab-token", &secret)
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let sent = Instant::now();
                    let response = http.request(request).await.unwrap();
                    let status = response.status();
                    let _ = response.into_body().collect().await;
                    latencies.push(sent.elapsed());
                    if status != 200 {
                        failures += 1;
                    }
                }
                (latencies, failures)
            }));
        }
        let mut latencies = Vec::new();
        let mut failures = 0;
        for task in tasks {
            let (mine, failed) = task.await.unwrap();
            latencies.extend(mine);
            failures += failed;
        }
        let acked = started.elapsed();
        assert_eq!(
            failures, 0,
            "{failures} deliveries were not acknowledged 200"
        );
        expected_total += DELIVERIES;
        let all = receiver
            .wait_for(expected_total, Duration::from_secs(300))
            .await
            .len();
        assert!(
            all >= expected_total,
            "the receiver got {all} of {expected_total} deliveries"
        );
        let end_to_end = started.elapsed();
        latencies.sort();
        let percentile = |p: f64| {
            latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
                .as_secs_f64()
                * 1000.0
        };
        println!(
            "{concurrency:>11}  {:>6.0}  {:>10.2}  {:>10.2}  {:>24.0}",
            DELIVERIES as f64 / acked.as_secs_f64(),
            percentile(0.50),
            percentile(0.99),
            DELIVERIES as f64 / end_to_end.as_secs_f64(),
        );
    }
}
