//! `limits.idle_timeout`: a connection with no request in flight (HTTP/1.1
//! keep-alive between requests, HTTP/2 with no open stream, or a connection
//! that never sends anything) is closed and gives its `max_connections` slot
//! back; a slow request in flight is not cut.

use std::time::{Duration, Instant};

use crate::support::client::get;
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::upstreams::slow_upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short idle timeout, long header timeout (so only the idle timeout can
/// close an idle connection), two slots.
const LIMITS: &str =
    "limits:\n  idle_timeout: 400ms\n  header_read_timeout: 30s\n  max_connections: 2\n";

fn options(upstream: Option<String>) -> SandboxOptions {
    SandboxOptions {
        config_extra: LIMITS.into(),
        upstream_url: upstream,
        ..SandboxOptions::default()
    }
}

/// Sends one keep-alive HTTP/1.1 GET and reads its whole response (by
/// `Content-Length`), leaving the connection open. Returns the status.
async fn h1_exchange(stream: &mut TcpStream, token: &str) -> u16 {
    let request = format!("GET /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {token}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(
            n > 0,
            "closed mid-response: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("a content-length");
        if seen.len() >= end + 4 + length {
            return text[9..12].parse().unwrap();
        }
    }
}

/// Waits for the server to close `stream`; returns how long that took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut rest))
        .await
        .expect("the server closed the idle connection")
        .ok();
    started.elapsed()
}

#[tokio::test]
async fn idle_http1_and_silent_connections_are_closed_and_free_their_slot() {
    let sb = Sandbox::with(options(None)).await;
    let mut keep_alive = TcpStream::connect(sb.server.addr).await.unwrap();
    let mut silent = TcpStream::connect(sb.server.addr).await.unwrap();
    assert_eq!(h1_exchange(&mut keep_alive, &sb.client_token).await, 200);
    // Both slots are held now; both connections are idle.
    let took = closed_within(&mut keep_alive, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    closed_within(&mut silent, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Both slots came back: two new connections are served, not refused.
    let mut first = TcpStream::connect(sb.server.addr).await.unwrap();
    let mut second = TcpStream::connect(sb.server.addr).await.unwrap();
    assert_eq!(h1_exchange(&mut first, &sb.client_token).await, 200);
    assert_eq!(h1_exchange(&mut second, &sb.client_token).await, 200);
}

#[tokio::test]
async fn idle_http2_connections_are_closed_and_free_their_slot() {
    let sb = Sandbox::with(options(None)).await;
    let mut ended = Vec::new();
    for _ in 0..2 {
        let tcp = TcpStream::connect(sb.server.addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        let connection = tokio::spawn(connection);
        let request = http::Request::get(sb.url("/api/v4/user"))
            .header("private-token", &sb.client_token)
            .body(())
            .unwrap();
        let mut client = client.ready().await.unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            chunk.unwrap();
        }
        // Keep the client handle: the connection stays open from our side.
        ended.push((client, connection));
    }
    for (_client, connection) in ended {
        tokio::time::timeout(Duration::from_secs(5), connection)
            .await
            .expect("the server closed the idle HTTP/2 connection")
            .unwrap()
            .ok();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut first = TcpStream::connect(sb.server.addr).await.unwrap();
    assert_eq!(h1_exchange(&mut first, &sb.client_token).await, 200);
    assert_eq!(
        get(&sb.url("/api/v4/user"), &sb.client_token).await.status,
        200
    );
}

#[tokio::test]
async fn a_slow_request_in_flight_is_not_cut_by_the_idle_timeout() {
    let slow = slow_upstream(Duration::from_millis(1500)).await;
    let sb = Sandbox::with(options(Some(format!("http://{slow}")))).await;
    // HTTP/1.1: the response arrives whole after more than three idle timeouts.
    let mut stream = TcpStream::connect(sb.server.addr).await.unwrap();
    let started = Instant::now();
    assert_eq!(h1_exchange(&mut stream, &sb.client_token).await, 200);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    // HTTP/2: the same, on a stream of a connection that is otherwise idle.
    let tcp = TcpStream::connect(sb.server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(sb.url("/api/v4/user"))
        .header("private-token", &sb.client_token)
        .body(())
        .unwrap();
    let mut client = client.ready().await.unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&bytes).contains("slow"));
}
