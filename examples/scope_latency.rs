//! The latency a scope adds to a request, with a warm and a cold resolution
//! cache: release glgate (shipped Echoes policy, audit to a file) in front of
//! the in-process fake GitLab, one keep-alive connection, requests one at a
//! time.
//!
//! ```text
//! cargo run --release --example scope_latency [-- REQUESTS]
//! ```
//!
//! Three clients on one glgate: `echoes` (no scope), `other` (a scope, cache
//! ttl 10 min: warm after the first request) and, on a second glgate, a
//! scoped client whose cache expires after 1 ms (every request resolves its
//! project with GitLab: cold). Each makes REQUESTS (default 2000) calls of
//! `GET /projects/:id/merge_requests`, rounds interleaved; the report gives
//! p50/p90/p99 per setup and the medians' differences.

// A benchmark that cannot set itself up has nothing better to do than stop with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/sandbox.rs"]
mod sandbox;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sandbox::{Sandbox, SandboxOptions};

const SCOPE: &str = "    rate_limit: { per_second: 1000000, burst: 1000000 }\n    scope:\n      groups: [acme, partners/team]\n      projects: [tools/ci-templates]\n      exclude: [acme/secret-stuff]\n";
const UNLIMITED: &str = "    rate_limit: { per_second: 1000000, burst: 1000000 }\n";

struct Setup {
    name: &'static str,
    url: String,
    token: String,
    samples: Vec<Duration>,
}

async fn timed(client: &Client<HttpConnector, Empty<Bytes>>, url: &str, token: &str) -> Duration {
    let request = http::Request::get(url)
        .header("private-token", token)
        .body(Empty::new())
        .unwrap();
    let started = Instant::now();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.into_body().collect().await.unwrap();
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let warm = Sandbox::with(SandboxOptions {
        client_extra: UNLIMITED.into(),
        other_client: Some(SCOPE.into()),
        config_extra: "scope_cache:\n  ttl: 10m\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    let cold = Sandbox::with(SandboxOptions {
        client_extra: SCOPE.into(),
        config_extra: "scope_cache:\n  ttl: 1ms\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    for sb in [&warm, &cold] {
        sb.fake.set_recording(false);
    }
    let target = "/api/v4/projects/101/merge_requests?state=opened";
    let mut setups = [
        Setup {
            name: "no scope",
            url: warm.url(target),
            token: warm.client_token.clone(),
            samples: Vec::with_capacity(requests),
        },
        Setup {
            name: "scope, warm cache",
            url: warm.url(target),
            token: warm.other_token.clone(),
            samples: Vec::with_capacity(requests),
        },
        Setup {
            name: "scope, cold cache",
            url: cold.url(target),
            token: cold.client_token.clone(),
            samples: Vec::with_capacity(requests),
        },
    ];
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    // Warm-up: connections, the warm cache, allocator.
    for setup in &setups {
        for _ in 0..50 {
            timed(&client, &setup.url, &setup.token).await;
        }
    }
    for _ in 0..requests {
        for setup in &mut setups {
            let elapsed = timed(&client, &setup.url, &setup.token).await;
            setup.samples.push(elapsed);
        }
    }
    println!("{requests} sequential requests per setup, rounds interleaved: GET {target}");
    println!(
        "{:<20} {:>10} {:>10} {:>10}",
        "setup", "p50 µs", "p90 µs", "p99 µs"
    );
    let mut medians = Vec::new();
    for setup in &mut setups {
        setup.samples.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let p50 = percentile(&setup.samples, 0.5);
        medians.push(us(p50));
        println!(
            "{:<20} {:>10.0} {:>10.0} {:>10.0}",
            setup.name,
            us(p50),
            us(percentile(&setup.samples, 0.9)),
            us(percentile(&setup.samples, 0.99)),
        );
    }
    println!(
        "added by scope (p50): warm cache {:+.0} µs, cold cache {:+.0} µs (one GitLab lookup on loopback)",
        medians[1] - medians[0],
        medians[2] - medians[0]
    );
    warm.server.shutdown().await;
    cold.server.shutdown().await;
}
