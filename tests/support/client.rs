//! A small HTTP client for tests and the demo: real hyper over real sockets,
//! HTTP/1.1 or HTTP/2 (prior knowledge), and raw bytes for what a client
//! library would normalise away.

// Test support: a setup that fails stops the test with its reason.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// One header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Everything the client saw, as text (for leak checks).
    pub fn all_text(&self) -> String {
        let mut text = format!("{}\n", self.status);
        for (name, value) in &self.headers {
            text.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        text.push_str(&String::from_utf8_lossy(&self.body));
        text
    }
}

/// Sends one request with hyper's client.
pub async fn send(
    version: Version,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut builder = Client::builder(TokioExecutor::new());
    if version == Version::HTTP_2 {
        builder.http2_only(true);
    }
    let client = builder.build_http::<Full<Bytes>>();
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("valid request");
    let response = tokio::time::timeout(Duration::from_secs(20), client.request(request))
        .await
        .expect("response within 20s")
        .expect("request succeeds");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    let reply = Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    };
    assert!(
        !reply.all_text().contains(fake_gitlab::DEFAULT_TOKEN),
        "the GitLab token reached a client"
    );
    reply
}

/// The `rel="next"` URL of a reply's `Link` header, if any.
pub fn next_link(reply: &Reply) -> Option<String> {
    reply
        .header("link")?
        .split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .and_then(|l| Some(l.get(1..l.find('>')?)?.to_owned()))
}

/// GET with a client token in `PRIVATE-TOKEN`, over HTTP/1.1.
pub async fn get(url: &str, token: &str) -> Reply {
    send(
        Version::HTTP_11,
        "GET",
        url,
        &[("private-token", token)],
        b"",
    )
    .await
}

/// Writes raw bytes to `addr` and reads until the server closes or 5 s pass.
pub async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(
        !text.contains(fake_gitlab::DEFAULT_TOKEN),
        "the GitLab token reached a client"
    );
    text
}

/// The status code of a raw HTTP/1.1 response (0 when there is none).
pub fn raw_status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
