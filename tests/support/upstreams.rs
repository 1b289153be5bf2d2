//! Misbehaving upstreams for fault tests: one that is down, one that is slow.

// Test support: a setup that fails stops the test with its reason.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An address where nothing listens (bound, then released).
pub async fn refused_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

/// An HTTP/1.1 upstream that waits `delay` before answering every request
/// with 200 and a small JSON body.
pub async fn slow_upstream(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buffer[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let body = br#"{"id":1,"username":"slow"}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    addr
}

/// What a scripted upstream does after reading a request.
#[derive(Clone, Copy, Debug)]
pub enum Script {
    /// Announces `declared` body bytes, sends `sent`, then resets the connection.
    ResetMidBody { declared: usize, sent: usize },
    /// Announces `declared` body bytes, sends `sent`, then stalls forever.
    StallMidBody { declared: usize, sent: usize },
    /// Streams `total` bytes with chunked encoding.
    Chunked { total: usize },
    /// Announces a `Content-Length` of `declared` (and sends nothing more).
    Declares { declared: u64 },
    /// Closes the connection without answering.
    CloseWithoutAnswer,
}

/// An HTTP/1.1 upstream following `script`; the counter counts requests read
/// (but glgate's own token check, answered 404).
pub async fn scripted_upstream(
    script: Script,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                // glgate reads its token's expiry at start: not part of any
                // script, and not counted.
                if head.starts_with(b"GET /api/v4/personal_access_tokens/self ") {
                    let _ = stream
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let json_head = |length: String| {
                    format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}\r\n")
                };
                match script {
                    Script::ResetMidBody { declared, sent }
                    | Script::StallMidBody { declared, sent } => {
                        let head = json_head(format!("content-length: {declared}\r\n"));
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(&vec![b' '; sent]).await;
                        let _ = stream.flush().await;
                        if let Script::StallMidBody { .. } = script {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        } else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let _ = stream.set_zero_linger();
                            drop(stream);
                        }
                    }
                    Script::Chunked { total } => {
                        let head = json_head("transfer-encoding: chunked\r\n".into());
                        let _ = stream.write_all(head.as_bytes()).await;
                        let chunk = vec![b' '; 16 * 1024];
                        let mut left = total;
                        while left > 0 {
                            let n = left.min(chunk.len());
                            let frame = format!("{n:x}\r\n");
                            if stream.write_all(frame.as_bytes()).await.is_err()
                                || stream.write_all(&chunk[..n]).await.is_err()
                                || stream.write_all(b"\r\n").await.is_err()
                            {
                                return;
                            }
                            left -= n;
                        }
                        let _ = stream.write_all(b"0\r\n\r\n").await;
                    }
                    Script::Declares { declared } => {
                        let head = json_head(format!("content-length: {declared}\r\n"));
                        let _ = stream.write_all(head.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    Script::CloseWithoutAnswer => drop(stream),
                }
            });
        }
    });
    (addr, seen)
}
