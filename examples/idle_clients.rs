//! Opens many keep-alive client connections, sends one request on each,
//! reads its whole response, then keeps every connection open and idle, for
//! `benches/load.sh` to measure a proxy's memory with many idle clients.
//!
//!   cargo run --release --example idle_clients -- ADDR COUNT TARGET TOKEN HOLD_SECONDS
//!
//! Prints `open COUNT ok OK_COUNT` once every response is in, then holds.

#![forbid(unsafe_code)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and reads one response (by `Content-Length`); returns its status.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buffer[..n]);
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if seen.len() >= end + 4 + length {
            return Ok(head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0));
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, count, target, token, hold] = args.as_slice() else {
        eprintln!("usage: idle_clients ADDR COUNT TARGET TOKEN HOLD_SECONDS");
        std::process::exit(2);
    };
    let count: usize = count.parse().unwrap_or(1000);
    let hold: u64 = hold.parse().unwrap_or(10);
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nPRIVATE-TOKEN: {token}\r\n\r\n");
    let mut streams = Vec::with_capacity(count);
    let mut ok = 0;
    // In batches, so that the proxy's accept queue is never the bottleneck.
    for batch in (0..count).collect::<Vec<_>>().chunks(100) {
        let mut tasks = Vec::new();
        for _ in batch {
            let (addr, request) = (addr.clone(), request.clone());
            tasks.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await?;
                let status = exchange(&mut stream, request.as_bytes()).await?;
                Ok::<_, std::io::Error>((stream, status))
            }));
        }
        for task in tasks {
            match task.await {
                Ok(Ok((stream, status))) => {
                    ok += usize::from(status == 200);
                    streams.push(stream);
                }
                Ok(Err(error)) => eprintln!("connection failed: {error}"),
                Err(error) => eprintln!("task failed: {error}"),
            }
        }
    }
    println!("open {} ok {ok}", streams.len());
    tokio::time::sleep(Duration::from_secs(hold)).await;
    drop(streams);
    Ok(())
}
