//! Every listener is bounded (threat class 15) and a stalled peer cannot hold
//! a connection forever (threat class 16), over real sockets:
//!
//! - the admin listener has its own cap (`admin.max_connections`) and the
//!   header-read and idle timeouts of `limits:`; flooding it leaves proxy
//!   clients alone, and its slots come back;
//! - a response the client takes no bytes of (HTTP/2 window never opened,
//!   HTTP/1.1 client that stops reading) is cut after `limits.send_timeout`:
//!   the slot comes back, the upstream connection is released, and the
//!   request is audited `send_stalled`;
//! - an HTTP/2 peer that never acknowledges the closing GOAWAY's PING does
//!   not hold its slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::client::{get, raw, raw_status};
use crate::support::sandbox::{Sandbox, SandboxOptions};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads what the server sends on `stream` until it closes it, within
/// `within`; returns what was read.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection");
    String::from_utf8_lossy(&seen).into_owned()
}

/// Polls `check` every 20 ms until it holds, for at most `within`.
async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- threat class 15: the admin listener ------------------------------------

/// Admin capped at 2 connections; short header-read and idle timeouts.
const ADMIN_FLOOD: &str = "admin:\n  listen: 127.0.0.1:0\n  max_connections: 2\n\
     limits:\n  header_read_timeout: 300ms\n  idle_timeout: 400ms\n  max_connections: 4\n";

#[tokio::test]
async fn flooding_the_admin_port_spares_proxy_clients_and_its_slots_come_back() {
    let sb = Sandbox::with(SandboxOptions {
        admin: false,
        config_extra: ADMIN_FLOOD.into(),
        ..SandboxOptions::default()
    })
    .await;
    let admin = sb.server.admin_addr.unwrap();
    // Two connections hold the admin's two slots: one silent, one sending
    // its headers a line at a time (slowloris).
    let mut silent = TcpStream::connect(admin).await.unwrap();
    let mut slowloris = TcpStream::connect(admin).await.unwrap();
    slowloris
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let dripping = tokio::spawn(async move {
        let started = Instant::now();
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if slowloris
                .write_all(format!("x-drip-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        let answer = read_until_closed(&mut slowloris, Duration::from_secs(5)).await;
        (answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // More connections than the cap: each is refused at once.
    for _ in 0..8 {
        let answer = raw(admin, b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(raw_status(&answer), 503, "{answer}");
    }
    // The proxy serves its clients meanwhile, through the fake GitLab.
    let reply = get(&sb.url("/api/v4/user"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    assert!(!sb.fake.requests().is_empty());
    // The header-read timeout cuts the slowloris long before its 50 lines
    // (2.5 s of them).
    let (answer, took) = dripping.await.unwrap();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(took < Duration::from_millis(2000), "cut after {took:?}");
    // The idle timeout closes the silent one.
    read_until_closed(&mut silent, Duration::from_secs(5)).await;
    // Both slots came back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..2 {
        let answer = raw(
            admin,
            b"GET /live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(raw_status(&answer), 200, "{answer}");
    }
    let metrics = raw(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        metrics.contains("glgate_admin_connections_refused_total 8"),
        "{metrics}"
    );
    assert!(metrics.contains("glgate_connections_refused_total 0"));
}

// --- threat class 16: stalled peers -----------------------------------------

/// An HTTP/1.1 upstream: `GET /api/v4/user` gets a chunked body that never
/// ends, anything else `[]`. Counts the endless answers cut because glgate
/// closed the connection (a write failed).
async fn endless_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let released = Arc::new(AtomicUsize::new(0));
    let counter = released.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                loop {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    if !head.starts_with(b"GET /api/v4/user ") {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                      content-length: 2\r\n\r\n[]";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                transfer-encoding: chunked\r\n\r\n";
                    let mut chunk = format!("{:x}\r\n", 16 * 1024).into_bytes();
                    chunk.extend_from_slice(&[b' '; 16 * 1024]);
                    chunk.extend_from_slice(b"\r\n");
                    if stream.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    while stream.write_all(&chunk).await.is_ok() {}
                    counter.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            });
        }
    });
    (addr, released)
}

/// Send timeout 500 ms; two slots; idle and header timeouts out of the way.
const STALL_LIMITS: &str = "limits:\n  send_timeout: 500ms\n  max_connections: 2\n  idle_timeout: 30s\n  header_read_timeout: 30s\n";

fn stall_options(upstream: SocketAddr, limits: &str) -> SandboxOptions {
    SandboxOptions {
        config_extra: limits.into(),
        upstream_url: Some(format!("http://{upstream}")),
        ..SandboxOptions::default()
    }
}

/// One HTTP/2 connection whose client announces a zero stream window
/// (SETTINGS_INITIAL_WINDOW_SIZE = 0) and asks for the endless body: the
/// response headers arrive, and not one body byte can. Returns what must
/// stay alive, and the connection's task (which ends when glgate closes it).
async fn zero_window_stream(
    sb: &Sandbox,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::RecvStream,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = TcpStream::connect(sb.server.addr).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(sb.url("/api/v4/user"))
        .header("private-token", &sb.client_token)
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("response headers")
        .unwrap();
    assert_eq!(response.status(), 200);
    (client, response.into_body(), connection)
}

#[tokio::test]
async fn an_http2_stream_never_given_a_window_is_cut_after_the_send_timeout() {
    let (upstream, released) = endless_upstream().await;
    let sb = Sandbox::with(stall_options(upstream, STALL_LIMITS)).await;
    let started = Instant::now();
    let first = zero_window_stream(&sb).await;
    let second = zero_window_stream(&sb).await;
    // Both slots are held by stalled streams: the next connection is refused.
    let answer = raw(
        sb.server.addr,
        b"GET /api/v4/users HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&answer), 503, "{answer}");
    // After the send timeout glgate closes both connections.
    for (_client, _body, connection) in [first, second] {
        let ended = tokio::time::timeout(Duration::from_secs(5), connection)
            .await
            .expect("glgate closed the stalled HTTP/2 connection");
        drop(ended);
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    // The slots came back: new connections are served.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..2 {
        let reply = get(&sb.url("/api/v4/users"), &sb.client_token).await;
        assert_eq!(reply.status, 200);
    }
    // Each stalled request is audited as such, and its upstream connection
    // was closed (the upstream's writes failed).
    let events = sb.audit_events(4).await;
    let stalled: Vec<_> = events
        .iter()
        .filter(|e| e["path"] == "/api/v4/user")
        .collect();
    assert_eq!(stalled.len(), 2, "{events:?}");
    for event in stalled {
        assert_eq!(event["error"], "send_stalled", "{event}");
        assert_eq!(event["status"], 200, "{event}");
    }
    eventually(
        Duration::from_secs(5),
        "upstream connections released",
        || released.load(Ordering::SeqCst) == 2,
    )
    .await;
    // A stream that is read, however slowly and however long, is never cut.
    slow_reader(&sb, Duration::from_millis(2000)).await;
}

/// Reads the endless body over HTTP/2 a chunk every 50 ms for `during`
/// (four send timeouts and more): every chunk taken is progress.
async fn slow_reader(sb: &Sandbox, during: Duration) {
    let tcp = TcpStream::connect(sb.server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get(sb.url("/api/v4/user"))
        .header("private-token", &sb.client_token)
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let started = Instant::now();
    while started.elapsed() < during {
        let chunk = tokio::time::timeout(Duration::from_secs(2), body.data())
            .await
            .expect("the body keeps coming")
            .expect("the body does not end")
            .expect("the stream is not reset");
        let _ = body.flow_control().release_capacity(chunk.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_http1_client_that_stops_reading_is_cut_after_the_send_timeout() {
    let (upstream, released) = endless_upstream().await;
    let limits = STALL_LIMITS.replace("max_connections: 2", "max_connections: 1");
    let sb = Sandbox::with(stall_options(upstream, &limits)).await;
    let mut stream = TcpStream::connect(sb.server.addr).await.unwrap();
    let request = format!(
        "GET /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\n\r\n",
        sb.client_token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // Reads nothing more: the socket buffers fill, then glgate waits on us.
    let audit = sb.audit_path.clone();
    eventually(
        Duration::from_secs(10),
        "the stalled request audited",
        || std::fs::read_to_string(&audit).is_ok_and(|text| !text.is_empty()),
    )
    .await;
    let events = sb.audit_events(1).await;
    assert_eq!(events[0]["error"], "send_stalled", "{}", events[0]);
    assert_eq!(events[0]["path"], "/api/v4/user");
    // Its connection is closed (after what the buffers held) and its one
    // slot is back.
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let reply = get(&sb.url("/api/v4/users"), &sb.client_token).await;
    assert_eq!(reply.status, 200);
    eventually(
        Duration::from_secs(5),
        "upstream connection released",
        || released.load(Ordering::SeqCst) == 1,
    )
    .await;
}

// --- the closing GOAWAY's PING ---------------------------------------------

/// One slot; an idle connection is closed after 300 ms, and its peer has
/// `header_read_timeout` to finish closing.
const CLOSING: &str =
    "limits:\n  idle_timeout: 300ms\n  header_read_timeout: 300ms\n  max_connections: 1\n";

#[tokio::test]
async fn an_http2_peer_that_never_acknowledges_the_goaway_ping_loses_its_slot() {
    let sb = Sandbox::with(SandboxOptions {
        config_extra: CLOSING.into(),
        ..SandboxOptions::default()
    })
    .await;
    // An HTTP/2 client preface and an empty SETTINGS frame, then silence:
    // this peer reads nothing, so it acknowledges neither glgate's SETTINGS
    // nor the PING of its graceful close.
    let mut silent = TcpStream::connect(sb.server.addr).await.unwrap();
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = raw(
        sb.server.addr,
        b"GET /api/v4/user HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(raw_status(&answer), 503, "the one slot is held: {answer}");
    // Idle timeout, then the closing grace: the slot comes back well before
    // hyper's keep-alive would give up on the peer (~50 s).
    let started = Instant::now();
    let request = format!(
        "GET /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {}\r\nConnection: close\r\n\r\n",
        sb.client_token
    );
    loop {
        let answer = raw(sb.server.addr, request.as_bytes()).await;
        if raw_status(&answer) == 200 {
            break;
        }
        assert_eq!(raw_status(&answer), 503, "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the silent HTTP/2 peer still holds the slot"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(silent);
}
