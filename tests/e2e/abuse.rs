//! Abuse limits over real sockets (threat classes 15 and 18, docs/threat-model.md): slow and huge
//! clients, connection floods, HTTP/2 stream floods and rapid resets, and
//! per-client rate limits. Each limit answers with a clear status (or closes
//! the connection where HTTP gives no better answer) and spares other clients.

use std::time::{Duration, Instant};

use crate::support::client::{get, raw, raw_status, send};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::upstreams::slow_upstream;
use http::Version;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limits(yaml: &str) -> SandboxOptions {
    SandboxOptions {
        config_extra: format!("limits:\n{yaml}"),
        ..SandboxOptions::default()
    }
}

/// Reads until the server closes the connection; returns what arrived and how long it took.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let sb = Sandbox::with(limits("  header_read_timeout: 300ms\n")).await;
    let mut stream = TcpStream::connect(sb.server.addr).await.unwrap();
    stream
        .write_all(b"GET /api/v4/user HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let (response, took) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert!(
        response.is_empty() || raw_status(&response) == 408,
        "{response}"
    );
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn slow_bodies_get_408() {
    let sb = Sandbox::with(limits("  body_read_timeout: 300ms\n")).await;
    let mut stream = TcpStream::connect(sb.server.addr).await.unwrap();
    let head = format!(
        "PUT /api/v4/projects/101/merge_requests/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"add_labels\":",
        sb.client_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (response, took) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&response), 408, "{response}");
    assert!(response.contains("body_timeout"), "{response}");
    assert!(took < Duration::from_secs(3));
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn huge_or_numerous_headers_get_431() {
    let sb = Sandbox::with(limits("  max_header_bytes: 8192\n")).await;
    let token = &sb.client_token;
    let big = format!(
        "GET /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {token}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    assert_eq!(raw_status(&raw(sb.server.addr, big.as_bytes()).await), 431);
    let mut many = format!("GET /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {token}\r\n");
    for i in 0..150 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    assert_eq!(raw_status(&raw(sb.server.addr, many.as_bytes()).await), 431);
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn an_oversized_declared_body_is_refused_before_it_is_sent() {
    let sb = Sandbox::start().await;
    let mut stream = TcpStream::connect(sb.server.addr).await.unwrap();
    let head = format!(
        "PUT /api/v4/projects/101/merge_requests/1 HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 50000000\r\nConnection: close\r\n\r\n",
        sb.client_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (response, took) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&response), 413, "{response}");
    assert!(
        took < Duration::from_secs(2),
        "answered without waiting for the body"
    );
    assert!(sb.fake.requests().is_empty());
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_slots_come_back() {
    let sb = Sandbox::with(limits("  max_connections: 3\n")).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let stream = TcpStream::connect(sb.server.addr).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(sb.server.addr).await.unwrap();
    let (response, _) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&response), 503, "{response}");
    assert!(response.contains("over_capacity"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
    let admin = format!("http://{}/metrics", sb.server.admin_addr.unwrap());
    let metrics = send(Version::HTTP_11, "GET", &admin, &[], b"").await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("glgate_connections_refused_total 1"));
}

#[tokio::test]
async fn http2_concurrent_streams_are_capped_as_configured() {
    let sb = Sandbox::with(limits("  http2_max_concurrent_streams: 7\n")).await;
    let tcp = TcpStream::connect(sb.server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let mut connection = std::pin::pin!(connection);
    let request = http::Request::get(sb.url("/api/v4/user"))
        .header("private-token", &sb.client_token)
        .body(())
        .unwrap();
    let exchange = async {
        let mut client = client.ready().await.unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        response.await.unwrap().status()
    };
    tokio::select! {
        status = exchange => assert_eq!(status, 200),
        ended = &mut connection => panic!("connection ended early: {ended:?}"),
    }
    assert_eq!(
        connection.max_concurrent_send_streams(),
        7,
        "the server's SETTINGS"
    );
}

#[tokio::test]
async fn http2_rapid_resets_close_the_connection_and_spare_others() {
    let sb = Sandbox::with(limits("  http2_max_pending_reset_streams: 5\n")).await;
    let tcp = TcpStream::connect(sb.server.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut refused = false;
    for _ in 0..2000 {
        let request = http::Request::get(sb.url("/api/v4/user"))
            .header("private-token", &sb.client_token)
            .body(())
            .unwrap();
        client = match client.ready().await {
            Ok(client) => client,
            Err(_) => {
                refused = true;
                break;
            }
        };
        match client.send_request(request, true) {
            Ok((response, _)) => drop(response),
            Err(_) => {
                refused = true;
                break;
            }
        }
        let _ = &mut client;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(
        refused || ended.is_ok(),
        "the flooding connection was not closed"
    );
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200,
        "others are served"
    );
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_whole_second_retry_after() {
    let sb = Sandbox::with(SandboxOptions {
        client_extra: "    rate_limit: { per_second: 0.5, burst: 3 }\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
            200
        );
    }
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["reason"], "rate_limited");
    let retry_after: u64 = reply
        .header("retry-after")
        .unwrap()
        .parse()
        .expect("whole seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(sb.fake.requests().len(), 3);
}

#[tokio::test]
async fn a_flooding_client_does_not_slow_a_well_behaved_one() {
    let slow = slow_upstream(Duration::from_millis(5)).await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{slow}")),
        client_extra: "    rate_limit: { per_second: 20, burst: 20 }\n".into(),
        other_client: Some("    rate_limit: { per_second: 1000, burst: 1000 }\n".into()),
        ..SandboxOptions::default()
    })
    .await;
    let polite = |sb: &Sandbox| {
        let url = sb.url("/api/v4/user");
        let token = sb.other_token.clone();
        async move {
            let mut latencies = Vec::new();
            for _ in 0..20 {
                let started = Instant::now();
                assert_eq!(get(&url, &token).await.status, 200);
                latencies.push(started.elapsed());
            }
            latencies.sort();
            latencies[latencies.len() / 2]
        }
    };
    let quiet = polite(&sb).await;
    let flood_url = sb.url("/api/v4/user");
    let flood_token = sb.client_token.clone();
    let flood = tokio::spawn(async move {
        let mut limited = 0;
        let mut tasks = Vec::new();
        for _ in 0..400 {
            let (url, token) = (flood_url.clone(), flood_token.clone());
            tasks.push(tokio::spawn(async move { get(&url, &token).await.status }));
        }
        for task in tasks {
            if task.await.unwrap() == 429 {
                limited += 1;
            }
        }
        limited
    });
    let during = polite(&sb).await;
    let limited = flood.await.unwrap();
    assert!(
        limited >= 300,
        "the flood was rate-limited ({limited} of 400 got 429)"
    );
    assert!(
        during < quiet * 10 + Duration::from_millis(50),
        "median latency of the polite client: {quiet:?} quiet, {during:?} during the flood"
    );
}
