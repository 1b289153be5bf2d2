//! Sending a row: as raw HTTP/1.1 bytes (nothing normalised) or over HTTP/2
//! with hyper's client (prior knowledge).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::answer::Answer;
use super::env::Env;
use super::headers::H2_FORBIDDEN;
use super::rows::{Auth, Row};

pub const READ_LIMIT: Duration = Duration::from_secs(10);

/// Writes `bytes`, reads until the server closes (or the time limit).
pub async fn exchange_h1(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may refuse and close before reading everything.
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + READ_LIMIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buffer[..n]),
        }
    }
    out
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits a byte stream into HTTP/1 responses (1xx skipped).
pub fn parse_h1(mut data: &[u8], heads: &[bool]) -> Vec<Answer> {
    let mut out: Vec<Answer> = Vec::new();
    while let Some(end) = find(data, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let mut rest = &data[end + 4..];
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        if (100..200).contains(&status) {
            data = rest;
            continue;
        }
        let mut answer = Answer {
            status,
            headers,
            ..Answer::default()
        };
        let is_head = heads.get(out.len()).copied().unwrap_or(false);
        let chunked = answer
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
        let length: Option<usize> = answer.header("content-length").and_then(|v| v.parse().ok());
        if is_head || status == 204 || status == 304 {
            // No body.
        } else if chunked {
            while let Some(line_end) = find(rest, b"\r\n") {
                let size_line = String::from_utf8_lossy(&rest[..line_end]).into_owned();
                let size_text = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
                rest = &rest[line_end + 2..];
                if size == 0 {
                    // Optional trailers, then an empty line.
                    rest = if rest.starts_with(b"\r\n") {
                        &rest[2..]
                    } else {
                        find(rest, b"\r\n\r\n").map_or(&[][..], |i| &rest[i + 4..])
                    };
                    break;
                }
                let take = size.min(rest.len());
                answer.body.extend_from_slice(&rest[..take]);
                rest = &rest[(take + 2).min(rest.len())..];
            }
        } else if let Some(length) = length {
            let take = length.min(rest.len());
            answer.body = rest[..take].to_vec();
            rest = &rest[take..];
        } else {
            answer.body = rest.to_vec();
            rest = &[];
        }
        out.push(answer);
        data = rest;
    }
    out
}

/// The raw HTTP/1.1 bytes of a row.
pub fn h1_bytes(env: &Env, row: &Row) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\n", row.method, row.target);
    if row.host && !row.has_header("host") {
        head.push_str("Host: glgate.test\r\n");
    }
    match row.auth {
        Auth::PrivateToken => head.push_str("PRIVATE-TOKEN: {TOKEN}\r\n"),
        Auth::Bearer => head.push_str("Authorization: Bearer {TOKEN}\r\n"),
        Auth::None => {}
    }
    for (name, value) in &row.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !row.body.is_empty()
        && !row.has_header("content-length")
        && !row.has_header("transfer-encoding")
    {
        head.push_str(&format!("Content-Length: {}\r\n", row.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = env.fill(&head).into_bytes();
    bytes.extend_from_slice(&env.fill_bytes(&row.body));
    bytes
}

pub async fn send_h1(env: &Env, row: &Row) -> Result<Answer, String> {
    let received = exchange_h1(env.proxy, &h1_bytes(env, row)).await;
    let mut answers = parse_h1(&received, &[row.method == "HEAD"]);
    match answers.len() {
        0 => Err(format!(
            "connection closed without an answer ({:?})",
            String::from_utf8_lossy(&received)
        )),
        1 => Ok(answers.remove(0)),
        n => Err(format!("{n} answers to one request")),
    }
}

/// Sends a row over HTTP/2 with hyper's client (prior knowledge).
pub async fn send_h2(env: &Env, row: &Row) -> Result<Answer, String> {
    let target = env.fill(&row.target);
    let uri: http::Uri = format!("http://{}{target}", env.proxy)
        .parse()
        .unwrap_or_else(|e| panic!("table error: {target} is not a URI for HTTP/2 ({e})"));
    assert_eq!(
        uri.path_and_query().map(|p| p.as_str()),
        Some(target.as_str()),
        "table error: {target} changes on its way through hyper's client: mark the row h1()"
    );
    let mut request = http::Request::builder()
        .method(row.method.as_str())
        .uri(uri);
    match row.auth {
        Auth::PrivateToken => request = request.header("private-token", &env.client_token),
        Auth::Bearer => {
            request = request.header("authorization", format!("Bearer {}", env.client_token))
        }
        Auth::None => {}
    }
    for (name, value) in &row.headers {
        let lower = name.to_ascii_lowercase();
        assert!(
            !H2_FORBIDDEN.contains(&lower.as_str())
                && (lower != "te" || value.eq_ignore_ascii_case("trailers")),
            "table error: {name} cannot go over HTTP/2: mark the row h1()"
        );
        request = request.header(name.as_str(), env.fill(value));
    }
    let request = request
        .body(Full::new(Bytes::from(env.fill_bytes(&row.body))))
        .unwrap_or_else(|e| {
            panic!(
                "table error: {} cannot go over HTTP/2 ({e})",
                row.describe()
            )
        });
    let stream = TcpStream::connect(env.proxy).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    let response = tokio::time::timeout(READ_LIMIT, sender.send_request(request))
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|e| format!("request failed: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(READ_LIMIT, body.collect())
        .await
        .map_err(|_| "body not in time".to_owned())?
        .map_err(|e| format!("body failed: {e}"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        opaque: false,
    })
}
