//! The attack suite: threat classes 1 to 13 (docs/threat-model.md), each a table of concrete
//! requests sent to a real glgate in front of the recording fake GitLab.
//!
//! Every row says what the client must get (glgate's refusal and its `reason`
//! code, the HTTP layer's own refusal, glgate's local answer, or GitLab's
//! answer) and, read from the fake's record, what GitLab must receive: nothing
//! for a refusal; for an allowed request exactly the checked method, target
//! bytes and body, glgate's token in `private-token`, the pinned `Host`, only
//! allowlisted headers, and nothing of the client's credentials.
//!
//! Rows travel as raw HTTP/1.1 bytes (nothing normalised), over HTTP/2 with
//! hyper's client (prior knowledge), or as hand-written HTTP/2 frames for what
//! hyper's client refuses to send.

// Integration tests: a failed step stops the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fake_gitlab::{FakeGitlab, RecordedRequest};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::sandbox::{Sandbox, SandboxOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------
// Reason codes (src/canonical.rs, src/policy/decision.rs, src/proxy/error.rs, src/auth.rs)

const AMB: &str = "ambiguous_target";
const NOT_API: &str = "not_api";
const NOT_ORIGIN: &str = "not_origin_form";
const NO_RULE: &str = "no_rule";
const METHOD: &str = "method_not_allowed";
const UNSUPPORTED: &str = "unsupported_method";
const FORBIDDEN_HEADER: &str = "forbidden_header";
const REPEATED: &str = "repeated_header";
const FORBIDDEN_PARAM: &str = "forbidden_param";
const DUPLICATE: &str = "duplicate_param";
const UNKNOWN: &str = "unknown_param";
const INVALID: &str = "invalid_param";
const INVALID_PATH: &str = "invalid_path_param";
const MISSING: &str = "missing_param";
const NO_BODY: &str = "body_not_allowed";
const MEDIA: &str = "unsupported_content_type";
const MALFORMED: &str = "malformed_body";
const TOO_MANY: &str = "too_many_params";
const MISSING_TOKEN: &str = "missing_token";
const UNKNOWN_TOKEN: &str = "unknown_token";
const MALFORMED_TOKEN: &str = "malformed_token";
const BODY_READ: &str = "body_read_error";
const BODY_TIMEOUT: &str = "body_timeout";
const UPSTREAM_DOWN: &str = "upstream_unavailable";

// Targets used by many rows.
const MR: &str = "/api/v4/projects/101/merge_requests/1";
const HOOKS: &str = "/api/v4/projects/101/hooks";
const GROUP_LABELS: &str = "/api/v4/groups/acme/labels";
const LABELS_JSON: &str = r#"{"add_labels":"echoes/a"}"#;
const HOOK_JSON: &str = r#"{"url":"https://api.echoeshq.com/hooks/1"}"#;
const LABEL_FORM: &str = "name=echoes%2Fcreated&color=%23428BCA";

/// Header names glgate may send to GitLab: its allowlist, plus what it sets itself.
const UPSTREAM_HEADERS: &[&str] = &[
    "host",
    "private-token",
    "content-length",
    "content-type",
    "x-request-id",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
];

/// Client headers glgate copies to GitLab unchanged (unless a row says otherwise).
const COPIED_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "cache-control",
];

/// Connection-specific headers that HTTP/2 forbids (hyper's client strips
/// them silently, so a row carrying one would test nothing over HTTP/2).
const H2_FORBIDDEN: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

// ---------------------------------------------------------------------------
// Rows

/// Which transports a row runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum On {
    /// Raw HTTP/1.1 bytes only.
    H1,
    /// Raw HTTP/1.1 bytes, then HTTP/2 through hyper's client.
    Both,
}

/// What the client must get, and so what GitLab must receive.
#[derive(Clone, Debug)]
enum Want {
    /// glgate refuses with this status and `reason`; GitLab receives nothing.
    Refused(u16, &'static str),
    /// The HTTP layer refuses before glgate sees a request: a bare 400, a
    /// reset stream or a closed connection; GitLab receives nothing.
    Protocol,
    /// glgate answers itself (the API root); GitLab receives nothing.
    Local(u16),
    /// Forwarded: the client gets GitLab's status; GitLab receives exactly
    /// the request (`None`: the request as the row sent it).
    Forwarded(u16, Option<Fwd>),
}

/// The one request GitLab must receive.
#[derive(Clone, Debug)]
struct Fwd {
    method: String,
    target: String,
    body: Vec<u8>,
    content_type: Option<String>,
}

fn fwd(method: &str, target: &str, body: &str, content_type: Option<&str>) -> Fwd {
    Fwd {
        method: method.to_owned(),
        target: target.to_owned(),
        body: body.as_bytes().to_vec(),
        content_type: content_type.map(str::to_owned),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    PrivateToken,
    Bearer,
    None,
}

type Check = fn(&Answer, &Env) -> Result<(), String>;

/// One request: sent the same way over every transport it runs on.
/// `{TOKEN}`, `{GITLAB}`, `{FAKE}` and `{PROXY}` in the target, header values
/// and body stand for the client token, GitLab's token, the fake's and the
/// proxy's address.
#[derive(Clone)]
struct Row {
    on: On,
    method: String,
    target: String,
    auth: Auth,
    host: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    want: Want,
    /// Headers that must not reach GitLab although glgate would copy them.
    absent: Vec<&'static str>,
    /// A further check of the client's answer.
    check: Option<Check>,
    /// Run on the fake before the row (e.g. make it fail).
    before: Option<fn(&FakeGitlab)>,
}

fn req(method: &str, target: &str) -> Row {
    Row {
        on: On::Both,
        method: method.to_owned(),
        target: target.to_owned(),
        auth: Auth::PrivateToken,
        host: true,
        headers: Vec::new(),
        body: Vec::new(),
        want: Want::Protocol,
        absent: Vec::new(),
        check: None,
        before: None,
    }
}

fn get(target: &str) -> Row {
    req("GET", target)
}

impl Row {
    fn h1(mut self) -> Row {
        self.on = On::H1;
        self
    }
    fn header(mut self, name: &str, value: &str) -> Row {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    fn auth(mut self, auth: Auth) -> Row {
        self.auth = auth;
        self
    }
    fn no_host(mut self) -> Row {
        self.host = false;
        self
    }
    fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Row {
        if let Some(content_type) = content_type {
            self = self.header("Content-Type", content_type);
        }
        self.body = body.to_vec();
        self
    }
    fn json(self, body: &str) -> Row {
        self.body(Some("application/json"), body.as_bytes())
    }
    fn form(self, body: &str) -> Row {
        self.body(Some("application/x-www-form-urlencoded"), body.as_bytes())
    }
    fn refused(mut self, status: u16, reason: &'static str) -> Row {
        self.want = Want::Refused(status, reason);
        self
    }
    fn protocol(mut self) -> Row {
        self.want = Want::Protocol;
        self
    }
    fn local(mut self, status: u16) -> Row {
        self.want = Want::Local(status);
        self
    }
    /// Forwarded exactly as sent; the client gets GitLab's `status`.
    fn ok(mut self, status: u16) -> Row {
        self.want = Want::Forwarded(status, None);
        self
    }
    /// Forwarded with this target (what the HTTP layer left of the sent one).
    fn ok_as(mut self, status: u16, target: &str) -> Row {
        let mut expected = self.fwd();
        expected.target = target.to_owned();
        self.want = Want::Forwarded(status, Some(expected));
        self
    }
    fn absent(mut self, name: &'static str) -> Row {
        self.absent.push(name);
        self
    }
    fn check(mut self, check: Check) -> Row {
        self.check = Some(check);
        self
    }
    fn before(mut self, before: fn(&FakeGitlab)) -> Row {
        self.before = Some(before);
        self
    }

    fn versions(&self) -> &'static [&'static str] {
        match self.on {
            On::H1 => &["h1"],
            On::Both => &["h1", "h2"],
        }
    }

    fn content_type(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
    }

    /// The request as sent, as GitLab must receive it.
    fn fwd(&self) -> Fwd {
        Fwd {
            method: self.method.clone(),
            target: self.target.clone(),
            body: self.body.clone(),
            content_type: if self.body.is_empty() {
                None
            } else {
                self.content_type()
            },
        }
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn describe(&self) -> String {
        format!(
            "{} {} {:?} body={:?}",
            self.method,
            self.target,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// A raw HTTP/1 exchange: bytes (possibly several requests) and the answers
/// expected in order. Answers after `required` may be missing (the server
/// closed the connection); every answer that does arrive must match.
#[derive(Clone)]
struct RawRow {
    name: &'static str,
    bytes: Vec<u8>,
    wants: Vec<Want>,
    required: Option<usize>,
}

fn raw(name: &'static str, bytes: impl AsRef<[u8]>) -> RawRow {
    RawRow {
        name,
        bytes: bytes.as_ref().to_vec(),
        wants: Vec::new(),
        required: None,
    }
}

impl RawRow {
    fn then(mut self, want: Want) -> RawRow {
        self.wants.push(want);
        self
    }
    fn required(mut self, count: usize) -> RawRow {
        self.required = Some(count);
        self
    }
    /// Answers that must arrive: up to the last that is not a protocol refusal.
    fn required_count(&self) -> usize {
        self.required.unwrap_or_else(|| {
            self.wants
                .iter()
                .rposition(|w| !matches!(w, Want::Protocol))
                .map_or(0, |i| i + 1)
        })
    }
}

/// A hand-written HTTP/2 request: its header list (pseudo-headers included,
/// sent literally, in order) and its DATA frames.
#[derive(Clone)]
struct H2Row {
    name: &'static str,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    data: Vec<Vec<u8>>,
    want: Want,
}

fn h2(name: &'static str, method: &str, path: &str) -> H2Row {
    H2Row {
        name,
        headers: vec![
            (b":method".to_vec(), method.as_bytes().to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (b":authority".to_vec(), b"glgate.test".to_vec()),
            (b":path".to_vec(), path.as_bytes().to_vec()),
            (b"private-token".to_vec(), b"{TOKEN}".to_vec()),
        ],
        data: Vec::new(),
        want: Want::Protocol,
    }
}

impl H2Row {
    /// Adds a field; a pseudo-header goes after the last pseudo-header.
    fn add(mut self, name: &[u8], value: &[u8]) -> H2Row {
        let at = if name.starts_with(b":") {
            self.headers
                .iter()
                .rposition(|(n, _)| n.starts_with(b":"))
                .map_or(0, |i| i + 1)
        } else {
            self.headers.len()
        };
        self.headers.insert(at, (name.to_vec(), value.to_vec()));
        self
    }
    /// Replaces a field's value in place (or adds it).
    fn set(mut self, name: &[u8], value: &[u8]) -> H2Row {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_vec(),
            None => return self.add(name, value),
        }
        self
    }
    fn remove(mut self, name: &[u8]) -> H2Row {
        self.headers.retain(|(n, _)| n != name);
        self
    }
    fn data(mut self, chunk: &[u8]) -> H2Row {
        self.data.push(chunk.to_vec());
        self
    }
    fn want(mut self, want: Want) -> H2Row {
        self.want = want;
        self
    }
    fn pseudo(&self, name: &[u8]) -> String {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
    /// Forwarded exactly as sent.
    fn ok(self, status: u16) -> H2Row {
        let body: Vec<u8> = self.data.concat();
        let content_type = if body.is_empty() {
            None
        } else {
            self.headers
                .iter()
                .find(|(n, _)| n == b"content-type")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let expected = Fwd {
            method: self.pseudo(b":method"),
            target: self.pseudo(b":path"),
            body,
            content_type,
        };
        self.want(Want::Forwarded(status, Some(expected)))
    }
}

// ---------------------------------------------------------------------------
// Answers and the environment

/// What the client got.
#[derive(Clone, Debug, Default)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Read from raw HTTP/2 frames: the headers were not decoded.
    opaque: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn header_text(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect()
    }

    fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(300).collect();
        format!("{} {body}", self.status)
    }
}

/// The sandbox's addresses and secrets, for placeholders and leak checks.
struct Env {
    proxy: SocketAddr,
    base_url: String,
    client_token: String,
    gitlab_token: String,
    fake_addr: String,
    /// Never anywhere in an answer.
    secrets: Vec<String>,
}

impl Env {
    fn of(sb: &Sandbox) -> Env {
        Env {
            proxy: sb.server.addr,
            base_url: sb.base_url(),
            client_token: sb.client_token.clone(),
            gitlab_token: sb.gitlab_token.clone(),
            fake_addr: sb.fake.addr().to_string(),
            secrets: vec![sb.client_token.clone(), sb.gitlab_token.clone()],
        }
    }

    fn fill(&self, text: &str) -> String {
        text.replace("{TOKEN}", &self.client_token)
            .replace("{GITLAB}", &self.gitlab_token)
            .replace("{FAKE}", &self.fake_addr)
            .replace("{PROXY}", &self.proxy.to_string())
    }

    fn fill_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (from, to) in [
            ("{TOKEN}", self.client_token.clone()),
            ("{GITLAB}", self.gitlab_token.clone()),
            ("{FAKE}", self.fake_addr.clone()),
            ("{PROXY}", self.proxy.to_string()),
        ] {
            out = replace_bytes(&out, from.as_bytes(), to.as_bytes());
        }
        out
    }

    fn fill_fwd(&self, fwd: &Fwd) -> Fwd {
        Fwd {
            method: fwd.method.clone(),
            target: self.fill(&fwd.target),
            body: self.fill_bytes(&fwd.body),
            content_type: fwd.content_type.clone(),
        }
    }
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Checks

/// Leaks: no secret anywhere, no upstream address in a header, no cookie.
fn check_leaks(env: &Env, answer: &Answer) -> Result<(), String> {
    let headers = answer.header_text();
    for secret in &env.secrets {
        if headers.contains(secret.as_str()) || contains(&answer.body, secret.as_bytes()) {
            return Err(format!("answer reveals a secret ({secret:.12}…)"));
        }
    }
    if headers.contains(&env.fake_addr) {
        return Err(format!("a header reveals the upstream address:\n{headers}"));
    }
    if answer.header("set-cookie").is_some() {
        return Err("Set-Cookie reached the client".into());
    }
    Ok(())
}

/// The client's answer against `want`.
fn check_answer(
    env: &Env,
    want: &Want,
    outcome: &Result<Answer, String>,
    is_head: bool,
) -> Result<(), String> {
    if let Ok(answer) = outcome {
        check_leaks(env, answer)?;
    }
    let from_glgate = |answer: &Answer| -> Result<(), String> {
        if !answer.opaque && answer.header("x-request-id").is_none() {
            return Err(format!(
                "no x-request-id: not glgate's answer: {}",
                answer.summary()
            ));
        }
        Ok(())
    };
    match want {
        Want::Protocol => match outcome {
            Err(_) => Ok(()),
            Ok(answer)
                if answer.status == 400
                    && (answer.opaque || answer.header("x-request-id").is_none())
                    && !contains(&answer.body, b"glgate") =>
            {
                Ok(())
            }
            Ok(answer) => Err(format!(
                "expected the HTTP layer to refuse, got {}",
                answer.summary()
            )),
        },
        Want::Refused(status, reason) => {
            let answer = outcome
                .as_ref()
                .map_err(|e| format!("expected {status} {reason}, got no answer: {e}"))?;
            if answer.status != *status {
                return Err(format!(
                    "expected {status} {reason}, got {}",
                    answer.summary()
                ));
            }
            from_glgate(answer)?;
            if contains(&answer.body, env.fake_addr.as_bytes()) {
                return Err("the refusal names the upstream address".into());
            }
            if is_head {
                return Ok(());
            }
            let json: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|_| format!("refusal is not JSON: {}", answer.summary()))?;
            if json["reason"] != *reason {
                return Err(format!("expected reason {reason}, got {json}"));
            }
            let message = json["message"].as_str().unwrap_or_default();
            if !message.starts_with(&status.to_string()) || !message.contains(" - glgate: ") {
                return Err(format!("unexpected message shape: {json}"));
            }
            Ok(())
        }
        Want::Local(status) | Want::Forwarded(status, _) => {
            let answer = outcome
                .as_ref()
                .map_err(|e| format!("expected {status}, got no answer: {e}"))?;
            if answer.status != *status {
                return Err(format!("expected {status}, got {}", answer.summary()));
            }
            from_glgate(answer)
        }
    }
}

/// What GitLab received against what it must receive.
fn check_recorded(
    env: &Env,
    expected: &Fwd,
    got: &RecordedRequest,
    answer: Option<&Answer>,
) -> Result<(), String> {
    let fail = |what: String| Err(format!("{what}; GitLab received {got:?}"));
    if got.method != expected.method {
        return fail(format!("method: expected {}", expected.method));
    }
    if got.target != expected.target {
        return fail(format!("target: expected {}", expected.target));
    }
    if got.body != expected.body {
        return fail(format!(
            "body: expected {:?}",
            String::from_utf8_lossy(&expected.body)
        ));
    }
    if got.header("private-token") != Some(env.gitlab_token.as_str()) {
        return fail("private-token is not glgate's GitLab token".into());
    }
    if got.header("host") != Some(env.fake_addr.as_str()) {
        return fail("Host is not pinned to GitLab's".into());
    }
    if let Some((name, _)) = got
        .headers
        .iter()
        .find(|(n, _)| !UPSTREAM_HEADERS.contains(&n.as_str()))
    {
        return fail(format!("header '{name}' is not on the allowlist"));
    }
    if got.header("content-type") != expected.content_type.as_deref() {
        return fail(format!(
            "content-type: expected {:?}",
            expected.content_type
        ));
    }
    if !expected.body.is_empty()
        && got.header("content-length") != Some(expected.body.len().to_string().as_str())
    {
        return fail("content-length is not the body's exact length".into());
    }
    if format!("{got:?}").contains(&env.client_token) {
        return fail("the client token reached GitLab".into());
    }
    if let Some(id) = answer.and_then(|a| a.header("x-request-id"))
        && got.header("x-request-id") != Some(id)
    {
        return fail(format!("x-request-id: expected glgate's {id}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Transports

const READ_LIMIT: Duration = Duration::from_secs(10);

/// Writes `bytes`, reads until the server closes (or the time limit).
async fn exchange_h1(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits a byte stream into HTTP/1 responses (1xx skipped).
fn parse_h1(mut data: &[u8], heads: &[bool]) -> Vec<Answer> {
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
fn h1_bytes(env: &Env, row: &Row) -> Vec<u8> {
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

async fn send_h1(env: &Env, row: &Row) -> Result<Answer, String> {
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
async fn send_h2(env: &Env, row: &Row) -> Result<Answer, String> {
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

/// HTTP/2 written by hand: literal HPACK, no Huffman, one stream. Enough to
/// send what hyper's client refuses to, and to read the status and body back.
mod h2raw {
    use super::*;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const DATA: u8 = 0;
    const HEADERS: u8 = 1;
    const RST_STREAM: u8 = 3;
    const SETTINGS: u8 = 4;
    const PING: u8 = 6;
    const GOAWAY: u8 = 7;
    const END_STREAM: u8 = 0x1;
    const ACK: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    const PADDED: u8 = 0x8;
    const PRIORITY: u8 = 0x20;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn integer(out: &mut Vec<u8>, prefix_bits: u32, flags: u8, mut value: usize) {
        let max = (1usize << prefix_bits) - 1;
        if value < max {
            out.push(flags | value as u8);
            return;
        }
        out.push(flags | max as u8);
        value -= max;
        while value >= 128 {
            out.push((value % 128) as u8 | 0x80);
            value /= 128;
        }
        out.push(value as u8);
    }

    /// Every field as "literal without indexing, new name", no Huffman.
    fn header_block(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in headers {
            out.push(0x00);
            integer(&mut out, 7, 0, name.len());
            out.extend_from_slice(name);
            integer(&mut out, 7, 0, value.len());
            out.extend_from_slice(value);
        }
        out
    }

    fn read_integer(block: &[u8], pos: &mut usize, prefix_bits: u32) -> Option<usize> {
        let max = (1usize << prefix_bits) - 1;
        let mut value = usize::from(*block.get(*pos)?) & max;
        *pos += 1;
        if value < max {
            return Some(value);
        }
        let mut shift = 0;
        loop {
            let byte = *block.get(*pos)?;
            *pos += 1;
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return Some(value);
            }
            if shift > 28 {
                return None;
            }
        }
    }

    /// Huffman-coded digits (RFC 7541 appendix B: '0'-'2' take 5 bits, '3'-'9' 6).
    fn huffman_digits(raw: &[u8]) -> String {
        let bits: Vec<u8> = raw
            .iter()
            .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
            .collect();
        let mut out = String::new();
        let mut i = 0;
        while i + 5 <= bits.len() {
            let code5 = bits[i..i + 5].iter().fold(0u8, |a, b| (a << 1) | b);
            if code5 <= 2 {
                out.push(char::from(b'0' + code5));
                i += 5;
                continue;
            }
            let Some(&bit) = bits.get(i + 5) else { break };
            let code6 = (code5 << 1) | bit;
            if (0b011001..=0b011111).contains(&code6) {
                out.push(char::from(b'3' + (code6 - 0b011001)));
                i += 6;
                continue;
            }
            break;
        }
        out
    }

    /// `:status` from the first field of a response header block.
    fn status(block: &[u8]) -> Option<u16> {
        let mut pos = 0;
        while block.get(pos)? & 0xe0 == 0x20 {
            read_integer(block, &mut pos, 5)?;
        }
        let first = *block.get(pos)?;
        if first & 0x80 != 0 {
            return match read_integer(block, &mut pos, 7)? {
                8 => Some(200),
                9 => Some(204),
                10 => Some(206),
                11 => Some(304),
                12 => Some(400),
                13 => Some(404),
                14 => Some(500),
                _ => None,
            };
        }
        let prefix = if first & 0x40 != 0 { 6 } else { 4 };
        if read_integer(block, &mut pos, prefix)? != 8 {
            return None;
        }
        let huffman = block.get(pos)? & 0x80 != 0;
        let len = read_integer(block, &mut pos, 7)?;
        let raw = block.get(pos..pos + len)?;
        let text = if huffman {
            huffman_digits(raw)
        } else {
            String::from_utf8_lossy(raw).into_owned()
        };
        text.parse().ok()
    }

    fn unpad(flags: u8, mut payload: &[u8], priority: bool) -> Vec<u8> {
        let mut pad = 0;
        if flags & PADDED != 0 && !payload.is_empty() {
            pad = usize::from(payload[0]);
            payload = &payload[1..];
        }
        if priority && flags & PRIORITY != 0 {
            payload = payload.get(5..).unwrap_or_default();
        }
        payload[..payload.len().saturating_sub(pad)].to_vec()
    }

    /// Sends one request on stream 1; returns the answer, or why there is none.
    pub async fn exchange(
        addr: SocketAddr,
        headers: &[(Vec<u8>, Vec<u8>)],
        data: &[Vec<u8>],
    ) -> Result<Answer, String> {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        let end = if data.is_empty() { END_STREAM } else { 0 };
        out.extend(frame(HEADERS, END_HEADERS | end, 1, &header_block(headers)));
        for (i, chunk) in data.iter().enumerate() {
            let end = if i + 1 == data.len() { END_STREAM } else { 0 };
            out.extend(frame(DATA, end, 1, chunk));
        }
        let _ = stream.write_all(&out).await;
        let mut answer = Answer {
            opaque: true,
            ..Answer::default()
        };
        let mut got_headers = false;
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        let deadline = tokio::time::Instant::now() + READ_LIMIT;
        let finish = |mut answer: Answer| {
            if answer.status == 0 {
                // Fall back on the JSON message, which starts with the status.
                answer.status = serde_json::from_slice::<serde_json::Value>(&answer.body)
                    .ok()
                    .and_then(|j| j["message"].as_str().map(str::to_owned))
                    .and_then(|m| m.get(..3).and_then(|s| s.parse().ok()))
                    .unwrap_or(0);
            }
            Ok(answer)
        };
        loop {
            while buffer.len() >= 9 {
                let len = (usize::from(buffer[0]) << 16)
                    | (usize::from(buffer[1]) << 8)
                    | usize::from(buffer[2]);
                if buffer.len() < 9 + len {
                    break;
                }
                let kind = buffer[3];
                let flags = buffer[4];
                let id =
                    u32::from_be_bytes([buffer[5], buffer[6], buffer[7], buffer[8]]) & 0x7fff_ffff;
                let payload: Vec<u8> = buffer[9..9 + len].to_vec();
                buffer.drain(..9 + len);
                match kind {
                    SETTINGS if flags & ACK == 0 => {
                        let _ = stream.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                    }
                    PING if flags & ACK == 0 => {
                        let _ = stream.write_all(&frame(PING, ACK, 0, &payload)).await;
                    }
                    HEADERS if id == 1 => {
                        if !got_headers {
                            got_headers = true;
                            answer.status = status(&unpad(flags, &payload, true)).unwrap_or(0);
                        }
                        if flags & END_STREAM != 0 {
                            return finish(answer);
                        }
                    }
                    DATA if id == 1 => {
                        answer.body.extend(unpad(flags, &payload, false));
                        if flags & END_STREAM != 0 {
                            return finish(answer);
                        }
                    }
                    RST_STREAM if id == 1 => {
                        let code = payload
                            .get(..4)
                            .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                        return Err(format!("stream reset (error code {code})"));
                    }
                    GOAWAY => {
                        let last = payload.get(..4).map_or(0, |c| {
                            u32::from_be_bytes([c[0], c[1], c[2], c[3]]) & 0x7fff_ffff
                        });
                        let code = payload
                            .get(4..8)
                            .map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                        if last < 1 || code != 0 {
                            return Err(format!("GOAWAY (error code {code})"));
                        }
                    }
                    _ => {}
                }
            }
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err("connection closed".into()),
                Err(_) => return Err("no answer in time".into()),
                Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Runners

/// Runs one row over one transport; an error says what went wrong.
async fn run_row(sb: &Sandbox, env: &Env, row: &Row, version: &str) -> Result<(), String> {
    sb.fake.clear_requests();
    if let Some(before) = row.before {
        before(&sb.fake);
    }
    let outcome = if version == "h1" {
        send_h1(env, row).await
    } else {
        send_h2(env, row).await
    };
    let recorded = sb.fake.requests();
    check_answer(env, &row.want, &outcome, row.method == "HEAD")?;
    let expected = match &row.want {
        Want::Forwarded(_, Some(fwd)) => Some(env.fill_fwd(fwd)),
        Want::Forwarded(_, None) => Some(env.fill_fwd(&row.fwd())),
        _ => None,
    };
    let Some(expected) = expected else {
        if recorded.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "GitLab must receive nothing, received {recorded:?}"
        ));
    };
    let [got] = recorded.as_slice() else {
        return Err(format!(
            "GitLab must receive exactly one request, received {recorded:?}"
        ));
    };
    let answer = outcome.as_ref().ok();
    check_recorded(env, &expected, got, answer)?;
    for name in &row.absent {
        if got.header(name).is_some() {
            return Err(format!("'{name}' reached GitLab: {got:?}"));
        }
    }
    for (name, value) in &row.headers {
        let lower = name.to_ascii_lowercase();
        if COPIED_HEADERS.contains(&lower.as_str())
            && !row.absent.contains(&lower.as_str())
            && got.header(&lower) != Some(env.fill(value).as_str())
        {
            return Err(format!(
                "'{name}: {value}' was not copied to GitLab: {got:?}"
            ));
        }
    }
    if let (Some(check), Some(answer)) = (row.check, answer) {
        check(answer, env)?;
    }
    Ok(())
}

/// Runs every row; returns the number of exchanges.
/// Panics at the end with every failure.
async fn run_rows(sb: &Sandbox, env: &Env, rows: &[Row], failures: &mut Vec<String>) -> usize {
    let mut ran = 0;
    for row in rows.iter() {
        for version in row.versions() {
            ran += 1;
            if let Err(error) = run_row(sb, env, row, version).await {
                failures.push(format!("[{version}] {}\n    {error}", row.describe()));
            }
        }
    }
    ran
}

async fn run_raw(sb: &Sandbox, env: &Env, row: &RawRow) -> Result<(), String> {
    sb.fake.clear_requests();
    let received = exchange_h1(env.proxy, &env.fill_bytes(&row.bytes)).await;
    let answers = parse_h1(&received, &[]);
    let recorded = sb.fake.requests();
    if answers.len() < row.required_count() || answers.len() > row.wants.len() {
        return Err(format!(
            "expected {}..={} answers, got {}: {:?}; GitLab received {recorded:?}",
            row.required_count(),
            row.wants.len(),
            answers.len(),
            String::from_utf8_lossy(&received)
        ));
    }
    let mut expected = Vec::new();
    for (i, (want, answer)) in row.wants.iter().zip(&answers).enumerate() {
        check_answer(env, want, &Ok(answer.clone()), false)
            .map_err(|e| format!("answer {}: {e}", i + 1))?;
        if let Want::Forwarded(_, fwd) = want {
            let fwd = fwd.as_ref().expect("raw rows name what GitLab receives");
            expected.push((env.fill_fwd(fwd), answer));
        }
    }
    if recorded.len() != expected.len() {
        return Err(format!(
            "GitLab must receive {} request(s), received {recorded:?}",
            expected.len()
        ));
    }
    for ((fwd, answer), got) in expected.iter().zip(&recorded) {
        check_recorded(env, fwd, got, Some(*answer))?;
    }
    Ok(())
}

async fn run_raws(sb: &Sandbox, env: &Env, rows: &[RawRow], failures: &mut Vec<String>) -> usize {
    let mut ran = 0;
    for row in rows.iter() {
        ran += 1;
        if let Err(error) = run_raw(sb, env, row).await {
            failures.push(format!(
                "[raw h1] {}: {:?}\n    {error}",
                row.name,
                String::from_utf8_lossy(&row.bytes)
            ));
        }
    }
    ran
}

async fn run_h2raw(sb: &Sandbox, env: &Env, row: &H2Row) -> Result<(), String> {
    sb.fake.clear_requests();
    let headers: Vec<(Vec<u8>, Vec<u8>)> = row
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), env.fill_bytes(v)))
        .collect();
    let data: Vec<Vec<u8>> = row.data.iter().map(|d| env.fill_bytes(d)).collect();
    let outcome = h2raw::exchange(env.proxy, &headers, &data).await;
    let recorded = sb.fake.requests();
    let is_head = row.pseudo(b":method") == "HEAD";
    if let Ok(answer) = &outcome
        && is_head
        && !answer.body.is_empty()
    {
        return Err(format!(
            "the answer to HEAD carries a body: {}",
            answer.summary()
        ));
    }
    check_answer(env, &row.want, &outcome, is_head)?;
    match &row.want {
        Want::Forwarded(_, Some(fwd)) => {
            let [got] = recorded.as_slice() else {
                return Err(format!(
                    "GitLab must receive exactly one request, received {recorded:?}"
                ));
            };
            check_recorded(env, &env.fill_fwd(fwd), got, None)
        }
        _ if recorded.is_empty() => Ok(()),
        _ => Err(format!(
            "GitLab must receive nothing, received {recorded:?}"
        )),
    }
}

async fn run_h2raws(sb: &Sandbox, env: &Env, rows: &[H2Row], failures: &mut Vec<String>) -> usize {
    let mut ran = 0;
    for row in rows.iter() {
        ran += 1;
        if let Err(error) = run_h2raw(sb, env, row).await {
            failures.push(format!("[raw h2] {}\n    {error}", row.name));
        }
    }
    ran
}

fn report(class: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{class}: {} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether every row of the table still exists, per kind.
fn count<T>(rows: &[T]) -> usize {
    rows.len()
}

// ---------------------------------------------------------------------------
// Class 1: encoded separators

/// `%2F` is legitimate inside `{project}`, `{group}` and label names and never
/// splits a segment: the route is read on literal `/`. Anything that makes a
/// dot, empty or backslash part appear after the one decoding is refused
/// before the policy is consulted; what is allowed reaches GitLab unchanged.
fn class_01() -> Vec<Row> {
    let color = r##"{"color":"#ffffff"}"##;
    vec![
        get("/api/v4/projects/g%2F..%2Fother%2Fp").refused(400, AMB),
        get("/api/v4/projects/acme%2F..%2Fsecret%2Fvault").refused(400, AMB),
        get("/api/v4/projects/acme%2f..%2fsecret%2fvault").refused(400, AMB),
        get("/api/v4/projects/acme%2F.%2Fbackend").refused(400, AMB),
        get("/api/v4/projects/acme%2F%2Fbackend").refused(400, AMB),
        get("/api/v4/projects/%2Facme%2Fbackend").refused(400, AMB),
        get("/api/v4/projects/acme%2Fbackend%2F").refused(400, AMB),
        get("/api/v4/projects/..%2Fsecret%2Fvault").refused(400, AMB),
        get("/api/v4/projects/acme%2Fbackend%2F..%2F..%2Fsecret%2Fvault").refused(400, AMB),
        get("/api/v4/projects/acme%5Cbackend").refused(400, AMB),
        get("/api/v4/projects/acme%5cbackend").refused(400, AMB),
        get("/api/v4/projects/acme%5C..%5Csecret%5Cvault").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests/1%2F..%2F2").refused(400, AMB),
        get("/api/v4/projects/101/repository/commits/abc1234%2F..%2Fdef5678").refused(400, AMB),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2F..%2Fbug").refused(400, AMB),
        req("PUT", "/api/v4/groups/acme/labels/echoes%2F.%2Fx")
            .json(color)
            .refused(400, AMB),
        // A %2F never becomes a route separator.
        get("/api/v4/projects%2F101").refused(403, NO_RULE),
        get("/api/v4/projects/101/merge_requests%2F1").refused(403, NO_RULE),
        get("/api/v4/projects/101/merge_requests/1%2F2").refused(403, NO_RULE),
        get("/api/v4/users/1%2F2").refused(403, NO_RULE),
        get("/api%2Fv4/projects/101").refused(404, NOT_API),
        get("/api/v4%2Fprojects/101").refused(404, NOT_API),
        req("PUT", "/api/v4/groups/acme/labels/bug%2Fechoes%2Fx")
            .json(color)
            .refused(403, INVALID_PATH),
        // Allowed: the encoded path reaches GitLab byte for byte, read the same way.
        get("/api/v4/projects/acme%2Fbackend").ok(200),
        get("/api/v4/projects/acme%2fbackend").ok(200),
        get("/api/v4/projects/ACME%2Fbackend").ok(200),
        get("/api/v4/projects/%41cme%2Fbackend").ok(200),
        get("/api/v4/projects/acme%2Fplatform%2Fapi").ok(200),
        get("/api/v4/groups/acme%2Fplatform").ok(200),
        get("/api/v4/projects/acme%2Fbackend/merge_requests/1").ok(200),
        // One project path "101/variables", not the variables route.
        get("/api/v4/projects/101%2Fvariables").ok(404),
        get("/api/v4/projects/101%2Fmerge_requests").ok(404),
        get("/api/v4/groups/acme/labels/echoes%2Fintent%3A%20feature").ok(200),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2Fnot-there").ok(404),
    ]
}

#[tokio::test]
async fn class_01_encoded_separators() {
    let rows = class_01();
    assert_eq!(count(&rows), 34, "class 1 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 1", &failures);
    assert_eq!(ran, 68, "class 1 exchanges");
}

// ---------------------------------------------------------------------------
// Class 2: dot segments

/// `.` and `..`, raw or encoded (also inside an encoded id, or with a `;`
/// suffix) are refused before routing, whatever method; names made of dots
/// that are not dot segments are matched like any other name.
fn class_02() -> Vec<Row> {
    vec![
        get("/api/v4/projects/101/./merge_requests").refused(400, AMB),
        get("/api/v4/projects/101/../301").refused(400, AMB),
        get("/api/v4/projects/301/../101").refused(400, AMB),
        get("/api/v4/projects/./101").refused(400, AMB),
        get("/api/v4/./projects/101").refused(400, AMB),
        get("/api/v4/../v4/projects/101").refused(400, AMB),
        get("/api/v4/projects/101/..").refused(400, AMB),
        get("/api/v4/projects/101/.").refused(400, AMB),
        get("/api/v4/projects/%2e%2e").refused(400, AMB),
        get("/api/v4/projects/%2E%2E").refused(400, AMB),
        get("/api/v4/projects/.%2e").refused(400, AMB),
        get("/api/v4/projects/%2e.").refused(400, AMB),
        get("/api/v4/projects/%2e").refused(400, AMB),
        get("/api/v4/projects/101/%2e%2e/301").refused(400, AMB),
        get("/api/v4/projects/101/%2E/merge_requests").refused(400, AMB),
        get("/api/v4/%2e%2e/v4/projects/101").refused(400, AMB),
        get("/api/v4/projects/..;x").refused(400, AMB),
        get("/api/v4/projects/101/..;/301").refused(400, AMB),
        get("/api/v4/projects/101/%2e%2e%2fuser").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests/1/..").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests/1/%2e%2e").refused(400, AMB),
        get("/api/v4/projects/101/.%2E/.%2e/user").refused(400, AMB),
        get("/api/v4/users/1/..").refused(400, AMB),
        req("PUT", "/api/v4/projects/101/merge_requests/1/../2")
            .json(LABELS_JSON)
            .refused(400, AMB),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2F%2e%2e%2Fbug").refused(400, AMB),
        req("HEAD", "/api/v4/projects/101/../301").refused(400, AMB),
        // Not dot segments: names of dots are matched, never normalised.
        get("/api/v4/projects/...").refused(403, NO_RULE),
        get("/api/v4/groups/...").ok(404),
        get("/api/v4/groups/acme%2F...").ok(404),
        get("/api/v4/projects/acme%2F.backend").ok(404),
    ]
}

#[tokio::test]
async fn class_02_dot_segments() {
    let rows = class_02();
    assert_eq!(count(&rows), 30, "class 2 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 2", &failures);
    assert_eq!(ran, 60, "class 2 exchanges");
}

// ---------------------------------------------------------------------------
// Class 3: double encoding

/// The path is decoded exactly once: a `%` left after that, or an escape that
/// is not two hex digits, is refused. Queries and bodies are decoded once too,
/// as Rack does, so a doubly encoded value is checked as what GitLab reads.
fn class_03() -> Vec<Row> {
    vec![
        get("/api/v4/projects/acme%252Fbackend").refused(400, AMB),
        get("/api/v4/projects/acme%252fbackend").refused(400, AMB),
        get("/api/v4/projects/%252e%252e").refused(400, AMB),
        get("/api/v4/projects/101/%252e%252e/301").refused(400, AMB),
        get("/api/v4/projects/acme%25%32%46backend").refused(400, AMB),
        get("/api/v4/projects/acme%255Cbackend").refused(400, AMB),
        // A lone '%' after one decoding is data, not an escape: no project
        // path holds one (no rule matches), a label name may.
        get("/api/v4/projects/%25").refused(403, NO_RULE),
        get("/api/v4/projects/101%25").refused(403, NO_RULE),
        get("/api/v4/projects/%2").refused(400, AMB),
        get("/api/v4/projects/101%2").refused(400, AMB),
        get("/api/v4/projects/%zz").refused(400, AMB),
        get("/api/v4/projects/%%32%46").refused(400, AMB),
        get("/api/v4/projects/acme%u002fbackend").refused(400, AMB),
        get("/api/v4/projects/%25252F").refused(400, AMB),
        get("/api/v4/groups/acme/labels/echoes%252Fx").refused(400, AMB),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%25").refused(403, "invalid_path_param"),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2F50%25").ok(404),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2F50%2525").refused(400, AMB),
        get("/api/v4/groups?search=%zz").refused(400, AMB),
        get("/api/v4/groups?search=%2").refused(400, AMB),
        // A route name spelled with escapes: GitLab's router reads it as the
        // name, glgate compares route names as sent, so it is refused.
        get("/api/v4/%70rojects/101").refused(400, AMB),
        // Bodies: decoded once, then checked.
        req("PUT", MR)
            .json(r#"{"add_labels":"echoes%2Fx"}"#)
            .refused(403, INVALID),
        req("PUT", MR)
            .form("add_labels=echoes%252Fx")
            .refused(403, INVALID),
        req("PUT", MR)
            .form("add_labels=echoes%2Fa%zz")
            .refused(400, MALFORMED),
        // Allowed: one decoding gives a valid value; forwarded unchanged.
        get("/api/v4/users/%31").ok(200),
        get("/api/v4/groups?search=%252F").ok(200),
        get("/api/v4/groups?search=100%25").ok(200),
        get("/api/v4/user?sud%256f=root").ok(200),
        req("PUT", MR).form("add_labels=echoes%2F%2525").ok(200),
    ]
}

#[tokio::test]
async fn class_03_double_encoding() {
    let rows = class_03();
    assert_eq!(count(&rows), 29, "class 3 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 3", &failures);
    assert_eq!(ran, 58, "class 3 exchanges");
}

// ---------------------------------------------------------------------------
// Class 4: aliases

/// Spellings GitLab may resolve to the same resource: letter case of the
/// prefix and literals (refused: literals match exactly), format suffixes
/// (refused: GitLab may read them as a format), leading zeros and other
/// number spellings (no route). Paths and ids of the same project are each
/// forwarded exactly as sent.
fn class_04() -> Vec<Row> {
    vec![
        get("/API/V4/projects/101").refused(404, NOT_API),
        get("/Api/v4/projects/101").refused(404, NOT_API),
        get("/api/V4/projects/101").refused(404, NOT_API),
        get("/api/v3/projects/101").refused(404, NOT_API),
        get("/api/v4.1/projects/101").refused(404, NOT_API),
        get("/api//v4/projects/101").refused(404, NOT_API),
        get("/projects/101").refused(404, NOT_API),
        get("/gitlab/api/v4/projects/101").refused(404, NOT_API),
        get("/api/v4x/projects").refused(404, NOT_API),
        get("/api/v4/Projects/101").refused(403, NO_RULE),
        get("/api/v4/PROJECTS/101").refused(403, NO_RULE),
        get("/api/v4/projects/101/Merge_Requests").refused(403, NO_RULE),
        get("/api/v4/User").refused(403, NO_RULE),
        get("/api/v4/projects/101.json").refused(400, AMB),
        get("/api/v4/projects/101.xml").refused(403, NO_RULE),
        get("/api/v4/projects/101.JSON").refused(400, AMB),
        get("/api/v4/projects/101.binary").refused(400, AMB),
        get("/api/v4/projects/acme%2Fbackend.xml").ok(404),
        get("/api/v4/projects/acme%2Fbackend.json").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests.json").refused(400, AMB),
        get("/api/v4/user.json").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests/1.txt").refused(400, AMB),
        get("/api/v4/projects/101%2Ejson").refused(400, AMB),
        get("/api/v4/groups/acme.atom").refused(400, AMB),
        get("/api/v4/projects/acme%2Fbackend.git").refused(400, AMB),
        get("/api/v4/projects/101.html").refused(403, NO_RULE),
        get("/api/v4/users/1.csv").refused(403, NO_RULE),
        get("/api/v4/users/1.yaml").refused(403, NO_RULE),
        get("/api/v4/groups/acme/labels/echoes%2Fv1.json").refused(400, AMB),
        req("PUT", "/api/v4/projects/101/merge_requests/1.json")
            .json(LABELS_JSON)
            .refused(400, AMB),
        get("/api/v4/projects/0101").refused(403, NO_RULE),
        get("/api/v4/users/01").refused(403, NO_RULE),
        get("/api/v4/projects/101/merge_requests/01").refused(403, NO_RULE),
        get("/api/v4/projects/-1").refused(403, NO_RULE),
        get("/api/v4/projects/1e2").refused(403, NO_RULE),
        get("/api/v4/projects/0x65").refused(403, NO_RULE),
        get("/api/v4/users/99999999999999999999").refused(403, NO_RULE),
        get("/api/v4/projects/101%20").refused(403, NO_RULE),
        get("/api/v4/projects/%20101").refused(403, NO_RULE),
        get("/api/v4/projects/+101").refused(400, AMB),
        // Allowed aliases, each forwarded exactly as spelled.
        get("/api/v4/projects/101").ok(200),
        get("/api/v4/projects/acme%2FBACKEND").ok(200),
        get("/api/v4/projects/%61%63%6d%65%2F%62ackend").ok(200),
        get("/api/v4/projects/101/repository/commits/ABC1234").ok(200),
        get("/api/v4/projects/acme%2Fold-backend").ok(301),
        req("HEAD", "/api/v4/projects/101").ok(200),
    ]
}

#[tokio::test]
async fn class_04_aliases() {
    let rows = class_04();
    assert_eq!(count(&rows), 46, "class 4 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 4", &failures);
    assert_eq!(ran, 92, "class 4 exchanges");
}

// ---------------------------------------------------------------------------
// Class 5: empty segments and trailing slashes

/// `//` anywhere and a trailing `/` are refused before routing; an empty
/// query or empty query pieces are harmless and forwarded unchanged; the API
/// root is answered by glgate and never forwarded.
fn class_05() -> Vec<Row> {
    vec![
        get("/api/v4/projects//101").refused(400, AMB),
        get("/api/v4//projects/101").refused(400, AMB),
        get("/api/v4/projects/101/").refused(400, AMB),
        get("/api/v4/projects/101//").refused(400, AMB),
        get("/api/v4/user/").refused(400, AMB),
        get("/api/v4/user//").refused(400, AMB),
        get("/api/v4/projects/101//merge_requests").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests/").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests//").refused(400, AMB),
        get("/api/v4/groups/acme/labels/").refused(400, AMB),
        req("PUT", "/api/v4/projects/101/merge_requests/1/")
            .json(LABELS_JSON)
            .refused(400, AMB),
        req("DELETE", "/api/v4/projects/101/hooks/9001/").refused(400, AMB),
        get("/api/v4/projects/%2F").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests/1/commits/").refused(400, AMB),
        get("/api/v4//").refused(400, AMB),
        get("/api/v4///").refused(400, AMB),
        get("/api/v4/projects/101/?state=opened").refused(400, AMB),
        get("/api/v4/projects/101?=").refused(400, AMB),
        get("/api/v4/projects/101?=x").refused(400, AMB),
        get("//api/v4/user").refused(404, NOT_API),
        req("POST", "/api/v4/").refused(403, NO_RULE),
        req("DELETE", "/api/v4").refused(403, NO_RULE),
        // Allowed: empty query pieces.
        get("/api/v4/projects/101?").ok(200),
        get("/api/v4/projects/101?&").ok(200),
        get("/api/v4/projects/101/merge_requests?&&state=opened&&").ok(200),
        // The API root: answered locally.
        get("/api/v4/").local(200),
        get("/api/v4").local(200),
        get("/api/v4?").local(200),
        req("HEAD", "/api/v4/").local(200),
        get("/api/v4/?private_token=x").auth(Auth::None).local(200),
    ]
}

#[tokio::test]
async fn class_05_empty_segments() {
    let rows = class_05();
    assert_eq!(count(&rows), 30, "class 5 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 5", &failures);
    assert_eq!(ran, 60, "class 5 exchanges");
}

// ---------------------------------------------------------------------------
// Class 6: `;` parameters, `#` fragments, `?` inside encoded segments

/// A raw `;` in the path or the query (or a form body) is refused: some
/// servers read it as a separator. Encoded `;`, `#` and `?` are just bytes of
/// a value: they never end a segment, so they either fit a param's syntax or
/// find no route. A raw `#` fragment is dropped by the HTTP layer before
/// glgate reads the target: only the part before it is checked and forwarded.
fn class_06() -> Vec<Row> {
    vec![
        get("/api/v4/projects/101;x=1").refused(400, AMB),
        get("/api/v4/projects/101;/merge_requests").refused(400, AMB),
        get("/api/v4/projects;/101").refused(400, AMB),
        get("/api/v4/projects/101/merge_requests;jsessionid=1").refused(400, AMB),
        get("/api/v4/user;.json").refused(400, AMB),
        get("/api/v4/users/1;2").refused(400, AMB),
        get("/api/v4;/user").refused(404, NOT_API),
        get("/api/v4/projects/101?state=opened;labels=x").refused(400, AMB),
        get("/api/v4/projects/101?;=1").refused(400, AMB),
        req("PUT", MR)
            .form("add_labels=echoes/a;remove_labels=echoes/b")
            .refused(400, MALFORMED),
        get("/api/v4/projects/101%3Bx=1").refused(403, NO_RULE),
        get("/api/v4/projects/101%3Fx=1").refused(403, NO_RULE),
        get("/api/v4/projects/101%23x").refused(403, NO_RULE),
        get("/api/v4/projects/acme%2Fbackend%3F/merge_requests").refused(403, NO_RULE),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%3F%2F..%2Fbug").refused(400, AMB),
        // Allowed: encoded separators are part of the value.
        get("/api/v4/groups?search=opened%3Blabels=x").ok(200),
        get("/api/v4/projects/101/merge_requests?a=1?b=2").ok(200),
        get("/api/v4/groups/acme/labels/echoes%23x").ok(404),
        get("/api/v4/groups/acme/labels/echoes%2Fwhat%3F").ok(404),
        get("/api/v4/groups/acme/labels/echoes%3Bx").ok(404),
        // Fragments never reach glgate nor GitLab (hyper's client cannot send them).
        get("/api/v4/projects/101#x")
            .h1()
            .ok_as(200, "/api/v4/projects/101"),
        get("/api/v4/projects/101#/../../301/variables")
            .h1()
            .ok_as(200, "/api/v4/projects/101"),
        get("/api/v4/projects/101/merge_requests?state=opened#&sudo=root")
            .h1()
            .ok_as(200, "/api/v4/projects/101/merge_requests?state=opened"),
        get("/api/v4/projects/101/variables#/../../101")
            .h1()
            .refused(403, NO_RULE),
        get("#/api/v4/user").h1().protocol(),
    ]
}

/// The same over hand-written HTTP/2 frames: `:path` with a fragment.
fn class_06_h2() -> Vec<H2Row> {
    vec![
        h2("fragment in :path", "GET", "/api/v4/projects/101#/../301").want(Want::Forwarded(
            200,
            Some(fwd("GET", "/api/v4/projects/101", "", None)),
        )),
        h2(
            "fragment hides a forbidden param",
            "GET",
            "/api/v4/user#?sudo=root",
        )
        .want(Want::Forwarded(
            200,
            Some(fwd("GET", "/api/v4/user", "", None)),
        )),
        h2("';' in :path", "GET", "/api/v4/projects/101;x").want(Want::Refused(400, AMB)),
    ]
}

#[tokio::test]
async fn class_06_params_fragments_queries() {
    let rows = class_06();
    let h2rows = class_06_h2();
    assert_eq!((count(&rows), count(&h2rows)), (25, 3), "class 6 tables");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await
        + run_h2raws(&sb, &env, &h2rows, &mut failures).await;
    report("class 6", &failures);
    assert_eq!(ran, 48, "class 6 exchanges");
}

// ---------------------------------------------------------------------------
// Class 7: backslash, control bytes, NUL, CR/LF, overlong and invalid UTF-8

/// Backslashes (raw or encoded), control bytes, NUL, CR/LF, overlong and
/// invalid UTF-8 in the path are refused by glgate, or by the HTTP layer when
/// they are not even valid HTTP; query values may hold tabs and line breaks
/// (descriptions) but no other control byte; bodies follow the same rules.
fn class_07() -> Vec<Row> {
    let json = |value: &str| format!(r#"{{"add_labels":"{value}"}}"#);
    vec![
        get(r"/api/v4/projects/101\..\301").refused(400, AMB),
        get(r"/api/v4/projects\101").refused(400, AMB),
        get(r"/api/v4\projects\101").refused(404, NOT_API),
        get(r"/api/v4/projects/acme\backend").refused(400, AMB),
        get("/api/v4/projects/101%5C").refused(400, AMB),
        get("/api/v4/projects/101%00").refused(400, AMB),
        get("/api/v4/projects/101%00.json").refused(400, AMB),
        get("/api/v4/projects/acme%00%2Fbackend").refused(400, AMB),
        get("/api/v4/projects/101%0d%0aX-Injected:%201").refused(400, AMB),
        get("/api/v4/projects/101%0A").refused(400, AMB),
        get("/api/v4/projects/101%0D").refused(400, AMB),
        get("/api/v4/projects/101%09").refused(400, AMB),
        get("/api/v4/projects/101%7F").refused(400, AMB),
        get("/api/v4/projects/101%1b").refused(400, AMB),
        get("/api/v4/projects/%c0%af").refused(400, AMB),
        get("/api/v4/projects/acme%c0%afbackend").refused(400, AMB),
        get("/api/v4/projects/acme%c0%2fbackend").refused(400, AMB),
        get("/api/v4/projects/%e0%80%af").refused(400, AMB),
        get("/api/v4/projects/%f0%80%80%af").refused(400, AMB),
        get("/api/v4/projects/%ff").refused(400, AMB),
        get("/api/v4/projects/%ed%a0%80").refused(400, AMB),
        get("/api/v4/projects/%c3").refused(400, AMB),
        get("/api/v4/projects/%c2%85").refused(400, AMB),
        get("/api/v4/projects/acmé%2Fbackend").refused(400, AMB),
        get("/api/v4/projects/101{x}").refused(400, AMB),
        get("/api/v4/projects/101|x").refused(400, AMB),
        get("/api/v4/projects/101^x").refused(400, AMB),
        get("/api/v4/projects/101\"x").refused(400, AMB),
        get("/api/v4/projects/101[x]").refused(400, AMB),
        get("/api/v4/projects/acme%e2%80%ae%2Fbackend").refused(403, NO_RULE),
        get("/api/v4/projects/acme%C3%A9%2Fbackend").refused(403, NO_RULE),
        get("/api/v4/user?x=%00").refused(400, AMB),
        get("/api/v4/user?x=%01").refused(400, AMB),
        get("/api/v4/user?x=%7f").refused(400, AMB),
        get("/api/v4/user?x%0d=1").refused(400, AMB),
        get("/api/v4/user?x=%c0%af").refused(400, AMB),
        get("/api/v4/user?x=%ff").refused(400, AMB),
        get("/api/v4/user?x=%c2%85").refused(400, AMB),
        // Not valid HTTP: the HTTP layer refuses (raw bytes only).
        get("/api/v4/projects/101\x01").h1().protocol(),
        get("/api/v4/projects/101\x00").h1().protocol(),
        get("/api/v4/projects/101\t").h1().protocol(),
        get("/api/v4/projects/1 01").h1().protocol(),
        get("/api/v4/projects/101`").h1().protocol(),
        get("/api/v4/projects/101<x>").h1().protocol(),
        get("/api/v4/groups?search=\"").h1().protocol(),
        get("/api/v4/groups?search=a b").h1().protocol(),
        get("/api/v4/user")
            .header("User-Agent", "a\x01b")
            .h1()
            .protocol(),
        get("/api/v4/user")
            .header("User-Agent", "a\x7fb")
            .h1()
            .protocol(),
        get("/api/v4/user").header("X-Foo\x00", "1").h1().protocol(),
        // Bodies.
        req("PUT", MR)
            .json(&json(r"echoes/a\u0000"))
            .refused(400, MALFORMED),
        req("PUT", MR)
            .json(&json(r"echoes/a\u0007"))
            .refused(400, MALFORMED),
        req("PUT", MR)
            .json(r#"{"add\u0000labels":"echoes/a"}"#)
            .refused(400, MALFORMED),
        req("PUT", MR)
            .json(&json(r"echoes/\ud800"))
            .refused(400, MALFORMED),
        req("PUT", MR)
            .body(
                Some("application/json"),
                b"{\"add_labels\":\"echoes/\xc0\xaf\"}",
            )
            .refused(400, MALFORMED),
        req("PUT", MR)
            .body(
                Some("application/json"),
                b"{\"add_labels\":\"echoes/\xff\"}",
            )
            .refused(400, MALFORMED),
        req("PUT", MR)
            .form("add_labels=echoes/a%00")
            .refused(400, MALFORMED),
        req("PUT", MR)
            .form("add_labels=echoes/%c0%af")
            .refused(400, MALFORMED),
        req("PUT", MR)
            .form("add_labels=echoes%5Ca")
            .refused(403, INVALID),
        req("POST", HOOKS)
            .json(r#"{"url":"https://api.echoeshq.com/\\@evil.example/"}"#)
            .refused(403, INVALID),
        // Allowed: line breaks and tabs in query values stay encoded on the wire.
        get("/api/v4/groups?search=a%0d%0ab").ok(200),
        get("/api/v4/groups?search=a%09b").ok(200),
        get(r"/api/v4/groups?search=a\b").ok(200),
        get("/api/v4/groups?search=été").ok(200),
        get("/api/v4/groups/acme/labels/echoes%2F%C3%A9t%C3%A9").ok(404),
    ]
}

/// Raw bytes that are not UTF-8 at all.
fn class_07_raw() -> Vec<RawRow> {
    let request = |target: &[u8]| {
        let mut bytes = b"GET ".to_vec();
        bytes.extend_from_slice(target);
        bytes.extend_from_slice(
            b" HTTP/1.1\r\nHost: glgate.test\r\nPRIVATE-TOKEN: {TOKEN}\r\nConnection: close\r\n\r\n",
        );
        bytes
    };
    vec![
        raw("overlong '/' raw in the path", request(b"/api/v4/projects/acme\xc0\xafbackend"))
            .then(Want::Protocol),
        raw("0xff raw in the path", request(b"/api/v4/projects/\xff")).then(Want::Protocol),
        raw("bare CR in the request line", request(b"/api/v4/projects/101\r")).then(Want::Protocol),
        raw("invalid UTF-8 raw in the query", request(b"/api/v4/groups?search=\xc3\x28"))
            .then(Want::Protocol),
        raw(
            "0xff in a header value",
            b"GET /api/v4/user HTTP/1.1\r\nHost: glgate.test\r\nPRIVATE-TOKEN: {TOKEN}\r\nUser-Agent: \xff\xfe\r\nConnection: close\r\n\r\n",
        )
        .then(Want::Forwarded(200, Some(fwd("GET", "/api/v4/user", "", None)))),
    ]
}

/// Over hand-written HTTP/2 frames: what hyper's client will not send.
fn class_07_h2() -> Vec<H2Row> {
    vec![
        h2("space in :path", "GET", "/api/v4/projects/1 01"),
        h2("NUL in :path", "GET", "/api/v4/projects/101\0"),
        h2("CR LF in :path", "GET", "/api/v4/projects/101\r\nx: y"),
        h2("tab in :path", "GET", "/api/v4/projects/101\t"),
        h2("backslash in :path", "GET", r"/api/v4/projects/101\..\301")
            .want(Want::Refused(400, AMB)),
        h2("encoded NUL in :path", "GET", "/api/v4/projects/101%00").want(Want::Refused(400, AMB)),
        h2("overlong UTF-8 raw in :path", "GET", "/").set(b":path", b"/api/v4/projects/\xc0\xaf"),
    ]
}

#[tokio::test]
async fn class_07_control_bytes_and_encodings() {
    let rows = class_07();
    let raws = class_07_raw();
    let h2rows = class_07_h2();
    assert_eq!(
        (count(&rows), count(&raws), count(&h2rows)),
        (64, 5, 7),
        "class 7 tables"
    );
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await
        + run_raws(&sb, &env, &raws, &mut failures).await
        + run_h2raws(&sb, &env, &h2rows, &mut failures).await;
    report("class 7", &failures);
    assert_eq!(ran, 64 + 53 + 5 + 7, "class 7 exchanges");
}

// ---------------------------------------------------------------------------
// Class 8: non-origin-form targets, Host, forwarding headers

/// Absolute-form, authority-form and `*` targets are refused; `Host` never
/// reaches GitLab (glgate pins GitLab's); forwarding, rewriting and
/// proxy-trust headers are dropped by the allowlist, never forwarded.
fn class_08() -> Vec<Row> {
    let mut rows = vec![
        get("http://evil.example/api/v4/user")
            .h1()
            .refused(400, NOT_ORIGIN),
        get("http://{FAKE}/api/v4/user")
            .h1()
            .refused(400, NOT_ORIGIN),
        get("https://gitlab.example/api/v4/projects/101")
            .h1()
            .refused(400, NOT_ORIGIN),
        get("HTTP://evil.example/api/v4/user")
            .h1()
            .refused(400, NOT_ORIGIN),
        get("http://user:{TOKEN}@evil.example/api/v4/user")
            .h1()
            .refused(400, NOT_ORIGIN),
        get("http://evil.example").h1().refused(400, NOT_ORIGIN),
        get("evil.example:443").h1().refused(400, NOT_ORIGIN),
        get("{FAKE}").h1().refused(400, NOT_ORIGIN),
        req("OPTIONS", "*").h1().refused(400, NOT_ORIGIN),
        get("*").h1().refused(400, NOT_ORIGIN),
        get("//evil.example/api/v4/user").refused(404, NOT_API),
        // Host tricks: GitLab always gets its own Host.
        get("/api/v4/user").header("Host", "evil.example").ok(200),
        get("/api/v4/user").header("Host", "{FAKE}").ok(200),
        get("/api/v4/user")
            .header("Host", "evil.example:80@{FAKE}")
            .ok(200),
        get("/api/v4/user").header("Host", "a, b").ok(200),
        get("/api/v4/user").no_host().h1().ok(200),
        get("/api/v4/user")
            .header("Host", "glgate.test")
            .header("Host", "evil.example")
            .h1()
            .refused(400, REPEATED),
        get("/api/v4/user")
            .header("Host", "glgate.test")
            .header("host", "glgate.test")
            .h1()
            .refused(400, REPEATED),
    ];
    // Forwarding, rewriting and proxy-trust headers: each dropped.
    for (name, value) in [
        ("X-Forwarded-For", "10.9.9.9"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Forwarded-Server", "evil.example"),
        ("X-Forwarded-Ssl", "on"),
        ("X-Forwarded-Scheme", "https"),
        ("Forwarded", "for=10.9.9.9;host=evil.example;proto=https"),
        ("X-Original-URL", "/api/v4/projects/301/variables"),
        ("X-Rewrite-URL", "/api/v4/projects/301/variables"),
        ("X-Original-URI", "/api/v4/projects/301/variables"),
        ("X-Envoy-Original-Path", "/api/v4/projects/301/variables"),
        ("X-Original-Host", "evil.example"),
        ("X-Host", "evil.example"),
        ("X-HTTP-Host-Override", "evil.example"),
        ("X-Real-IP", "10.9.9.9"),
        ("X-Client-IP", "10.9.9.9"),
        ("True-Client-IP", "10.9.9.9"),
        ("Client-IP", "10.9.9.9"),
        ("Via", "1.1 evil"),
        ("Max-Forwards", "0"),
        ("Referer", "https://evil.example/"),
        ("Origin", "https://evil.example"),
        ("X-Sendfile-Type", "X-Accel-Redirect"),
        ("X-Accel-Mapping", "/var/opt/gitlab/=/"),
        ("Gitlab-Workhorse", "1"),
        ("Gitlab-Workhorse-Api-Request", "eyJhbGciOiJIUzI1NiJ9.e30.x"),
        ("X-Request-Id", "client-chosen-id"),
        ("X-Gitlab-Token", "hook-secret"),
    ] {
        rows.push(get("/api/v4/user").header(name, value).ok(200));
    }
    rows.push(
        req("PUT", MR)
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Original-URL", "/api/v4/projects/301")
            .header("Forwarded", "host=evil.example")
            .json(LABELS_JSON)
            .ok(200),
    );
    rows
}

fn class_08_h2() -> Vec<H2Row> {
    vec![
        h2("absolute :path", "GET", "http://evil.example/api/v4/user"),
        h2("relative :path", "GET", "api/v4/user"),
        h2("empty :path", "GET", ""),
        h2("no :path", "GET", "/api/v4/user").remove(b":path"),
        h2("two :path", "GET", "/api/v4/user").add(b":path", b"/api/v4/projects/301"),
        h2("* :path", "OPTIONS", "*").want(Want::Refused(400, NOT_ORIGIN)),
        h2(":authority of another host", "GET", "/api/v4/user")
            .set(b":authority", b"evil.example")
            .ok(200),
        h2("host header beside :authority", "GET", "/api/v4/user")
            .add(b"host", b"evil.example")
            .ok(200),
        h2(":scheme https", "GET", "/api/v4/user")
            .set(b":scheme", b"https")
            .ok(200),
    ]
}

#[tokio::test]
async fn class_08_targets_host_forwarding_headers() {
    let rows = class_08();
    let h2rows = class_08_h2();
    assert_eq!((count(&rows), count(&h2rows)), (49, 9), "class 8 tables");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await
        + run_h2raws(&sb, &env, &h2rows, &mut failures).await;
    report("class 8", &failures);
    assert_eq!(ran, 49 + 36 + 9, "class 8 exchanges");
}

// ---------------------------------------------------------------------------
// Class 9: request smuggling

fn head(method: &str, target: &str, extra: &str) -> String {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: glgate.test\r\nPRIVATE-TOKEN: {{TOKEN}}\r\n{extra}"
    )
}

fn chunked(body: &str) -> String {
    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
}

/// A JSON PUT on the MR-labels rule with `framing` headers and `wire` body.
fn put_mr(framing: &str, wire: &str) -> String {
    head(
        "PUT",
        MR,
        &format!("Content-Type: application/json\r\n{framing}Connection: close\r\n\r\n{wire}"),
    )
}

fn mr_fwd() -> Want {
    Want::Forwarded(
        200,
        Some(fwd("PUT", MR, LABELS_JSON, Some("application/json"))),
    )
}

fn user_fwd() -> Want {
    Want::Forwarded(200, Some(fwd("GET", "/api/v4/user", "", None)))
}

/// A request that would be allowed on its own: if it ever reaches GitLab, a
/// body was read as a request.
fn smuggled(env: &Env) -> String {
    env.fill(
        "GET /api/v4/users/3?smuggled=1 HTTP/1.1\r\nHost: glgate.test\r\nPRIVATE-TOKEN: {TOKEN}\r\n\r\n",
    )
}

/// Every body is re-framed with an exact `Content-Length`; conflicting or
/// obfuscated framing is refused by the HTTP layer or read one way only (and
/// the connection closed); a request hidden in a body never reaches GitLab;
/// a pipelined request after a refused one is evaluated on its own.
fn class_09(env: &Env) -> Vec<RawRow> {
    let smuggled = || smuggled(env);
    let body = LABELS_JSON;
    let len = body.len();
    let close = "Connection: close\r\n\r\n";
    vec![
        // Content-Length and Transfer-Encoding together: chunked wins, then close.
        raw(
            "CL then TE",
            put_mr("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", &chunked(body)),
        )
        .then(mr_fwd()),
        raw(
            "TE then CL",
            put_mr("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", &chunked(body)),
        )
        .then(mr_fwd()),
        raw(
            "CL.TE: a request after the last chunk, inside the CL count",
            format!(
                "{}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{}",
                head("GET", "/api/v4/user", ""),
                5 + smuggled().len(),
                smuggled()
            ),
        )
        .then(user_fwd()),
        raw(
            "TE.CL: chunk data past a short CL",
            format!(
                "{}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n{close}8\r\nSMUGGLED\r\n0\r\n\r\n",
                head("GET", "/api/v4/user", "")
            ),
        )
        .then(Want::Refused(403, NO_BODY)),
        raw(
            "CL.TE: one stray byte after the last chunk",
            format!(
                "{}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
                head("GET", "/api/v4/user", "")
            ),
        )
        .then(user_fwd()),
        // Content-Length spellings.
        raw(
            "duplicate identical Content-Length",
            put_mr(&format!("Content-Length: {len}\r\nContent-Length: {len}\r\n"), body),
        )
        .then(mr_fwd()),
        raw(
            "duplicate differing Content-Length",
            put_mr(&format!("Content-Length: {len}\r\nContent-Length: {}\r\n", len + 1), body),
        )
        .then(Want::Protocol),
        raw("Content-Length list", put_mr(&format!("Content-Length: {len}, {len}\r\n"), body))
            .then(Want::Protocol),
        raw("Content-Length with a sign", put_mr(&format!("Content-Length: +{len}\r\n"), body))
            .then(Want::Protocol),
        raw("negative Content-Length", put_mr("Content-Length: -1\r\n", body)).then(Want::Protocol),
        raw("hex Content-Length", put_mr("Content-Length: 0x19\r\n", body)).then(Want::Protocol),
        raw(
            "overflowing Content-Length",
            put_mr("Content-Length: 99999999999999999999999\r\n", body),
        )
        .then(Want::Protocol),
        raw("empty Content-Length", put_mr("Content-Length: \r\n", body)).then(Want::Protocol),
        raw(
            "Content-Length with a space inside",
            put_mr(&format!("Content-Length: {} {}\r\n", len / 10, len % 10), body),
        )
        .then(Want::Protocol),
        // Transfer-Encoding spellings.
        raw("TE xchunked", put_mr("Transfer-Encoding: xchunked\r\n", &chunked(body))).then(Want::Protocol),
        raw(
            "TE chunked, identity",
            put_mr("Transfer-Encoding: chunked, identity\r\n", &chunked(body)),
        )
        .then(Want::Protocol),
        raw("TE identity", put_mr(&format!("Transfer-Encoding: identity\r\nContent-Length: {len}\r\n"), body))
            .then(Want::Protocol),
        raw(
            "TE chunked then TE identity",
            put_mr("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", &chunked(body)),
        )
        .then(Want::Protocol),
        raw("TE quoted", put_mr("Transfer-Encoding: \"chunked\"\r\n", &chunked(body))).then(Want::Protocol),
        raw("TE with a parameter", put_mr("Transfer-Encoding: chunked;q=1\r\n", &chunked(body)))
            .then(Want::Protocol),
        raw("space before the colon", put_mr("Transfer-Encoding : chunked\r\n", &chunked(body)))
            .then(Want::Protocol),
        raw(
            "TE folded onto the previous line",
            put_mr("X-Foo: a\r\n Transfer-Encoding: chunked\r\n", &chunked(body)),
        )
        .then(Want::Protocol),
        raw("TE after a tab", put_mr("Transfer-Encoding:\tchunked\r\n", &chunked(body))).then(mr_fwd()),
        raw("TE upper case", put_mr("Transfer-Encoding: CHUNKED\r\n", &chunked(body))).then(mr_fwd()),
        raw(
            "TE identity then TE chunked",
            put_mr("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n", &chunked(body)),
        )
        .then(mr_fwd()),
        raw("TE gzip, chunked", put_mr("Transfer-Encoding: gzip, chunked\r\n", &chunked(body)))
            .then(mr_fwd()),
        raw(
            "Transfer_Encoding is just a header: the body is framed by CL",
            put_mr(
                &format!("Transfer_Encoding: chunked\r\nContent-Length: {}\r\n", chunked(body).len()),
                &chunked(body),
            ),
        )
        .then(Want::Refused(400, MALFORMED)),
        // HTTP/1.0.
        raw(
            "HTTP/1.0 with chunked",
            put_mr("Transfer-Encoding: chunked\r\n", &chunked(body)).replacen("HTTP/1.1", "HTTP/1.0", 1),
        )
        .then(Want::Protocol),
        raw(
            "HTTP/1.0 with Content-Length",
            put_mr(&format!("Content-Length: {len}\r\n"), body).replacen("HTTP/1.1", "HTTP/1.0", 1),
        )
        .then(mr_fwd()),
        raw(
            "HTTP/1.0 GET",
            format!("{}\r\n", head("GET", "/api/v4/user", "")).replacen("HTTP/1.1", "HTTP/1.0", 1),
        )
        .then(user_fwd()),
        // Bare LF and CR.
        raw(
            "bare LF line ends",
            "GET /api/v4/user HTTP/1.1\nHost: glgate.test\nPRIVATE-TOKEN: {TOKEN}\nConnection: close\n\n",
        )
        .then(user_fwd()),
        raw(
            "bare LF starts a TE header inside another header's line",
            format!(
                "{}X-Foo: a\nTransfer-Encoding: chunked\r\n{close}5\r\nhello\r\n0\r\n\r\n",
                head("GET", "/api/v4/user", "")
            ),
        )
        .then(Want::Refused(403, NO_BODY)),
        raw(
            "bare CR inside a header line",
            format!(
                "{}X-Foo: a\rTransfer-Encoding: chunked\r\n{close}5\r\nhello\r\n0\r\n\r\n",
                head("GET", "/api/v4/user", "")
            ),
        )
        .then(Want::Protocol),
        // Chunk framing.
        raw(
            "chunk extension",
            put_mr("Transfer-Encoding: chunked\r\n", &format!("{len:x};ext=1\r\n{body}\r\n0\r\n\r\n")),
        )
        .then(mr_fwd()),
        raw(
            "chunked trailers carrying credentials",
            put_mr(
                "Transfer-Encoding: chunked\r\n",
                &format!("{len:x}\r\n{body}\r\n0\r\nSudo: root\r\nPRIVATE-TOKEN: {{GITLAB}}\r\n\r\n"),
            ),
        )
        .then(mr_fwd()),
        raw(
            "chunk size in 0x form",
            put_mr("Transfer-Encoding: chunked\r\n", &format!("0x{len:x}\r\n{body}\r\n0\r\n\r\n")),
        )
        .then(Want::Refused(400, BODY_READ)),
        raw(
            "overflowing chunk size",
            put_mr("Transfer-Encoding: chunked\r\n", &format!("fffffffffffffffff\r\n{body}\r\n0\r\n\r\n")),
        )
        .then(Want::Refused(400, BODY_READ)),
        raw(
            "chunk data longer than its size",
            put_mr("Transfer-Encoding: chunked\r\n", &format!("5\r\n{body}\r\n0\r\n\r\n")),
        )
        .then(Want::Refused(400, BODY_READ)),
        raw(
            "chunks with bare LF",
            put_mr("Transfer-Encoding: chunked\r\n", &format!("{len:x}\n{body}\n0\n\n")),
        )
        .then(Want::Refused(400, BODY_READ)),
        raw(
            "Content-Length shorter than the body: the rest is the next request",
            format!(
                "{}Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n{body}{}",
                head("PUT", MR, ""),
                smuggled().replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
            ),
        )
        .then(mr_fwd())
        .then(Want::Forwarded(200, Some(fwd("GET", "/api/v4/users/3?smuggled=1", "", None)))),
        raw(
            "Content-Length longer than the body",
            put_mr(&format!("Content-Length: {}\r\n", len + 10), body),
        )
        .then(Want::Refused(408, BODY_TIMEOUT)),
        raw(
            "Expect: 100-continue",
            put_mr(&format!("Expect: 100-continue\r\nContent-Length: {len}\r\n"), body),
        )
        .then(mr_fwd()),
        // Upgrades and tunnels.
        raw(
            "Upgrade: websocket",
            head("GET", "/api/v4/user", &format!("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{close}")),
        )
        .then(user_fwd()),
        raw(
            "Upgrade: h2c",
            head("GET", "/api/v4/user", &format!("Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n{close}")),
        )
        .then(user_fwd()),
        raw("CONNECT to GitLab's address", head("CONNECT", "{FAKE}", close))
            .then(Want::Refused(400, NOT_ORIGIN)),
        raw("CONNECT with a path", head("CONNECT", "/api/v4/user", close))
            .then(Want::Refused(405, UNSUPPORTED)),
        raw("TRACE", head("TRACE", "/api/v4/user", close)).then(Want::Refused(405, UNSUPPORTED)),
        raw("TRACE with Max-Forwards", head("TRACE", "/api/v4/user", &format!("Max-Forwards: 0\r\n{close}")))
            .then(Want::Refused(405, UNSUPPORTED)),
        raw("TRACK", head("TRACK", "/api/v4/user", close)).then(Want::Refused(405, UNSUPPORTED)),
        // Request lines that are not HTTP/1.1.
        raw("HTTP/0.9", "GET /api/v4/user\r\n\r\n").then(Want::Protocol),
        raw("HTTP/1.2", head("GET", "/api/v4/user", close).replacen("HTTP/1.1", "HTTP/1.2", 1))
            .then(Want::Protocol),
        raw("HTTP/2.0 in an HTTP/1 request line", head("GET", "/api/v4/user", close).replacen("HTTP/1.1", "HTTP/2.0", 1))
            .then(Want::Protocol),
        raw("extra word in the request line", head("GET", "/api/v4/user", close).replacen("HTTP/1.1", "HTTP/1.1 x", 1))
            .then(Want::Protocol),
        raw("header without a colon", head("GET", "/api/v4/user", &format!("X-Foo bar\r\n{close}")))
            .then(Want::Protocol),
        raw("space inside a header name", head("GET", "/api/v4/user", &format!("Content Length: 5\r\n{close}")))
            .then(Want::Protocol),
        // Pipelining: each request is evaluated on its own.
        raw(
            "refused (no rule), then allowed",
            format!("{}\r\n{}", head("GET", "/api/v4/projects/101/variables", ""), head("GET", "/api/v4/user", close)),
        )
        .then(Want::Refused(403, NO_RULE))
        .then(user_fwd()),
        raw(
            "refused (unknown token), then allowed",
            format!(
                "GET /api/v4/user HTTP/1.1\r\nHost: glgate.test\r\nPRIVATE-TOKEN: glg_wrong\r\n\r\n{}",
                head("GET", "/api/v4/user", close)
            ),
        )
        .then(Want::Refused(401, UNKNOWN_TOKEN))
        .then(user_fwd()),
        raw(
            "refused (dot segment), then allowed",
            format!("{}\r\n{}", head("GET", "/api/v4/projects/101/../301", ""), head("GET", "/api/v4/user", close)),
        )
        .then(Want::Refused(400, AMB))
        .then(user_fwd()),
        raw(
            "refused (TRACE), then allowed",
            format!("{}\r\n{}", head("TRACE", "/api/v4/user", ""), head("GET", "/api/v4/user", close)),
        )
        .then(Want::Refused(405, UNSUPPORTED))
        .then(user_fwd()),
        raw(
            "refused (Sudo header), then allowed without it",
            format!("{}Sudo: root\r\n\r\n{}", head("GET", "/api/v4/user", ""), head("GET", "/api/v4/user", close)),
        )
        .then(Want::Refused(400, FORBIDDEN_HEADER))
        .then(user_fwd()),
        raw(
            "allowed, refused, allowed",
            format!(
                "{}\r\n{}\r\n{}",
                head("GET", "/api/v4/user", ""),
                head("DELETE", "/api/v4/projects/101", ""),
                head("GET", "/api/v4/users/2", close)
            ),
        )
        .then(user_fwd())
        .then(Want::Refused(403, METHOD))
        .then(Want::Forwarded(200, Some(fwd("GET", "/api/v4/users/2", "", None)))),
        raw(
            "a request in the body of a refused request (close)",
            format!(
                "{}Content-Length: {}\r\n{close}{}",
                head("GET", "/api/v4/user", ""),
                smuggled().len(),
                smuggled()
            ),
        )
        .then(Want::Refused(403, NO_BODY)),
        raw(
            "a request in the body of a refused request, then a pipelined one",
            format!(
                "{}Content-Length: {}\r\n\r\n{}{}",
                head("GET", "/api/v4/user", ""),
                smuggled().len(),
                smuggled(),
                head("GET", "/api/v4/users/2", close)
            ),
        )
        .then(Want::Refused(403, NO_BODY))
        .then(Want::Forwarded(200, Some(fwd("GET", "/api/v4/users/2", "", None))))
        .required(1),
        raw(
            "a request in the chunks of a refused request, then a pipelined one",
            format!(
                "{}Transfer-Encoding: chunked\r\n\r\n{}{}",
                head("GET", "/api/v4/user", ""),
                chunked(&smuggled()),
                head("GET", "/api/v4/users/2", close)
            ),
        )
        .then(Want::Refused(403, NO_BODY))
        .then(Want::Forwarded(200, Some(fwd("GET", "/api/v4/users/2", "", None))))
        .required(1),
    ]
}

/// HTTP/2 framing attacks, over hand-written frames.
fn class_09_h2() -> Vec<H2Row> {
    let body = LABELS_JSON.as_bytes();
    let put = |name| h2(name, "PUT", MR).add(b"content-type", b"application/json");
    let smuggle = "GET /api/v4/users/3?smuggled=1 HTTP/1.1\r\nHost: glgate.test\r\n\r\n";
    vec![
        put("transfer-encoding: chunked")
            .add(b"transfer-encoding", b"chunked")
            .data(body),
        put("content-length shorter than DATA")
            .add(b"content-length", b"3")
            .data(body),
        put("content-length longer than DATA")
            .add(b"content-length", b"100")
            .data(body),
        put("connection header")
            .add(b"connection", b"keep-alive")
            .data(body),
        put("keep-alive header")
            .add(b"keep-alive", b"timeout=5")
            .data(body),
        put("proxy-connection header")
            .add(b"proxy-connection", b"keep-alive")
            .data(body),
        put("upgrade header").add(b"upgrade", b"h2c").data(body),
        put("te: gzip").add(b"te", b"gzip").data(body),
        put("te: trailers")
            .add(b"te", b"trailers")
            .data(body)
            .ok(200),
        put("CR LF in a header value")
            .add(b"user-agent", b"a\r\ntransfer-encoding: chunked")
            .data(body),
        put("LF in a header value")
            .add(b"user-agent", b"a\nsudo: root")
            .data(body),
        put("upper-case header name")
            .add(b"Sudo", b"root")
            .data(body),
        put("colon inside a header name")
            .add(b"x:y", b"1")
            .data(body),
        put("DATA split in three")
            .data(&body[..5])
            .data(&body[5..12])
            .data(&body[12..])
            .ok(200),
        h2("GET with a body", "GET", "/api/v4/user")
            .add(b"content-type", b"application/json")
            .data(b"{}")
            .want(Want::Refused(403, NO_BODY)),
        h2(
            "an HTTP/1 request as the body of a GET",
            "GET",
            "/api/v4/user",
        )
        .data(smuggle.as_bytes())
        .want(Want::Refused(403, NO_BODY)),
        put("an HTTP/1 request inside an allowed JSON value")
            .data(
                serde_json::json!({ "add_labels": format!("echoes/a\r\n\r\n{smuggle}") })
                    .to_string()
                    .as_bytes(),
            )
            .ok(200),
        h2("TRACE", "TRACE", "/api/v4/user").want(Want::Refused(405, UNSUPPORTED)),
        h2("CONNECT", "CONNECT", "")
            .remove(b":path")
            .remove(b":scheme")
            .want(Want::Refused(400, NOT_ORIGIN)),
    ]
}

#[tokio::test]
async fn class_09_request_smuggling() {
    let sb = Sandbox::with(SandboxOptions {
        config_extra: "limits:\n  body_read_timeout: 2s\n  header_read_timeout: 2s\n".into(),
        ..SandboxOptions::default()
    })
    .await;
    let env = Env::of(&sb);
    let raws = class_09(&env);
    let h2rows = class_09_h2();
    assert_eq!((count(&raws), count(&h2rows)), (64, 19), "class 9 tables");
    let mut failures = Vec::new();
    let ran = run_raws(&sb, &env, &raws, &mut failures).await
        + run_h2raws(&sb, &env, &h2rows, &mut failures).await;
    report("class 9", &failures);
    assert_eq!(ran, 64 + 19, "class 9 exchanges");
}

// ---------------------------------------------------------------------------
// Class 10: hop-by-hop headers and method overrides

/// Hop-by-hop headers, and every header a `Connection` header names, stay
/// behind; method-override headers are refused by name, `_method` in any
/// case and any source is refused; unknown or lower-case methods get 405.
fn class_10() -> Vec<Row> {
    let mut rows = vec![
        get("/api/v4/user")
            .header("Connection", "x-secret")
            .header("X-Secret", "v")
            .h1()
            .ok(200),
        get("/api/v4/user")
            .header("Connection", "keep-alive, x-secret")
            .header("X-Secret", "v")
            .h1()
            .ok(200),
        get("/api/v4/user")
            .header("Connection", "accept")
            .header("Accept", "application/json")
            .h1()
            .absent("accept")
            .ok(200),
        get("/api/v4/user")
            .header("Connection", "user-agent")
            .header("User-Agent", "secret-agent")
            .h1()
            .absent("user-agent")
            .ok(200),
        get("/api/v4/user")
            .header("Connection", "cache-control")
            .header("Cache-Control", "no-cache")
            .h1()
            .absent("cache-control")
            .ok(200),
        // Named in Connection, a credential, framing or typing header would
        // be dropped on the way to GitLab: refused.
        get("/api/v4/user")
            .header("Connection", "private-token")
            .h1()
            .refused(400, "end_to_end_header_in_connection"),
        req("PUT", "/api/v4/projects/101/merge_requests/1")
            .json(r#"{"add_labels":"echoes/a"}"#)
            .header("Connection", "content-type")
            .h1()
            .refused(400, "end_to_end_header_in_connection"),
        get("/api/v4/user")
            .header("Connection", "x-request-id")
            .header("X-Request-Id", "client-chosen")
            .h1()
            .ok(200),
        get("/api/v4/user")
            .header("Keep-Alive", "timeout=5")
            .h1()
            .ok(200),
        get("/api/v4/user")
            .header("Proxy-Connection", "keep-alive")
            .h1()
            .ok(200),
        get("/api/v4/user").header("TE", "trailers").ok(200),
        get("/api/v4/user")
            .header("TE", "gzip, chunked")
            .h1()
            .ok(200),
        get("/api/v4/user").header("Trailer", "X-Foo").ok(200),
        get("/api/v4/user")
            .header("Upgrade", "websocket")
            .h1()
            .ok(200),
        get("/api/v4/user")
            .header("Proxy-Authorization", "Basic Zm9vOmJhcg==")
            .ok(200),
        get("/api/v4/user")
            .header("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
            .ok(200),
        get("/api/v4/user")
            .header("X-Original-Method", "DELETE")
            .ok(200),
        // Allowlisted headers do reach GitLab.
        get("/api/v4/user")
            .header("Accept", "application/json")
            .header("User-Agent", "python-gitlab/4.0")
            .header("Accept-Language", "en")
            .header("If-None-Match", "\"abc\"")
            .ok(200),
        // Method overrides.
        get("/api/v4/projects/101")
            .header("x-http-method-override", "DELETE")
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/projects/101")
            .header("X-HTTP-Method-Override", "PUT")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/projects/101")
            .header("x-Http-Method-Override", "PUT")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/projects/101")
            .header("x-http-method", "DELETE")
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/projects/101")
            .header("x-method-override", "PATCH")
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/projects/101")
            .header("x-http-method-override", "")
            .refused(400, FORBIDDEN_HEADER),
        req("POST", HOOKS)
            .header("X-HTTP-Method-Override", "DELETE")
            .json(HOOK_JSON)
            .refused(400, FORBIDDEN_HEADER),
        req("DELETE", "/api/v4/projects/101/hooks/9001")
            .header("x-http-method-override", "GET")
            .refused(400, FORBIDDEN_HEADER),
        // `_method`, any case, any source.
        get("/api/v4/projects/101?_method=DELETE").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?_METHOD=delete").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?_Method=PUT").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?%5Fmethod=DELETE").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?_method%5B%5D=DELETE").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?_method[]=DELETE").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?_method=").refused(400, FORBIDDEN_PARAM),
        get("/api/v4/projects/101?_method").refused(400, FORBIDDEN_PARAM),
        req("PUT", MR)
            .form("add_labels=echoes/a&_method=DELETE")
            .refused(400, FORBIDDEN_PARAM),
        req("PUT", MR)
            .json(r#"{"add_labels":"echoes/a","_method":"DELETE"}"#)
            .refused(400, FORBIDDEN_PARAM),
        req("POST", HOOKS)
            .json(r#"{"url":"https://api.echoeshq.com/h","_method":"PUT"}"#)
            .refused(400, FORBIDDEN_PARAM),
        req("PUT", &format!("{MR}?_method=POST"))
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_PARAM),
        // Methods.
        req("get", "/api/v4/user").refused(405, UNSUPPORTED),
        req("Get", "/api/v4/user").refused(405, UNSUPPORTED),
        req("OPTIONS", "/api/v4/user").refused(405, UNSUPPORTED),
        req("PROPFIND", "/api/v4/user").refused(405, UNSUPPORTED),
        req("PURGE", "/api/v4/user").refused(405, UNSUPPORTED),
        req("DELETE", "/api/v4/user").refused(403, METHOD),
        req("POST", "/api/v4/user").refused(403, METHOD),
        req("PATCH", MR).json(LABELS_JSON).refused(403, METHOD),
        req("PUT", "/api/v4/projects/101")
            .json(LABELS_JSON)
            .refused(403, METHOD),
        req("DELETE", "/api/v4/projects/101").refused(403, METHOD),
        req("POST", "/api/v4/groups/10/members")
            .json(r#"{"user_id":2,"access_level":50}"#)
            .refused(403, METHOD),
        req("HEAD", "/api/v4/user").ok(200),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2Fgone").ok(404),
    ];
    rows.push(
        req("PUT", MR)
            .header("Connection", "x-method")
            .header("X-Method", "DELETE")
            .h1()
            .json(LABELS_JSON)
            .ok(200),
    );
    rows
}

/// HEAD over HTTP/2 frames: an answer to HEAD never carries a body, whether
/// GitLab or glgate itself answers.
fn class_10_h2() -> Vec<H2Row> {
    vec![
        h2("HEAD forwarded", "HEAD", "/api/v4/user").ok(200),
        h2("HEAD of the API root", "HEAD", "/api/v4/").want(Want::Local(200)),
        h2(
            "HEAD refused by the canonicalizer",
            "HEAD",
            "/api/v4/projects/101/../301",
        )
        .want(Want::Refused(400, AMB)),
        h2(
            "HEAD refused by the policy",
            "HEAD",
            "/api/v4/projects/101/variables",
        )
        .want(Want::Refused(403, NO_RULE)),
        h2("HEAD without a token", "HEAD", "/api/v4/user")
            .remove(b"private-token")
            .want(Want::Refused(401, MISSING_TOKEN)),
    ]
}

#[tokio::test]
async fn class_10_hop_by_hop_and_overrides() {
    let rows = class_10();
    let h2rows = class_10_h2();
    assert_eq!((count(&rows), count(&h2rows)), (52, 5), "class 10 tables");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await
        + run_h2raws(&sb, &env, &h2rows, &mut failures).await;
    report("class 10", &failures);
    assert_eq!(ran, 94, "class 10 exchanges");
}

// ---------------------------------------------------------------------------
// Class 11: query and body parameters, merged

/// Query and body (JSON or form) are merged and checked together, as GitLab
/// merges them: a name sent twice (across or within sources) is refused,
/// nested forms are refused, lists are checked element by element and never
/// empty, unknown content types on write rules get 415. Legitimate lists,
/// encodings and merges reach GitLab byte for byte.
fn class_11() -> Vec<Row> {
    let put = || req("PUT", MR);
    let q = |query: &str| req("PUT", &format!("{MR}?{query}"));
    let hooks_q = |query: &str| req("POST", &format!("{HOOKS}?{query}"));
    let many: String = (0..=256).map(|i| format!("p{i}=1&")).collect();
    vec![
        // Duplicates across the query and the body.
        q("add_labels=echoes/a").json(r#"{"add_labels":"echoes/b"}"#).refused(400, DUPLICATE),
        q("add_labels=echoes/a").form("add_labels=echoes/b").refused(400, DUPLICATE),
        q("add_labels[]=echoes/a").json(r#"{"add_labels":["echoes/b"]}"#).refused(400, DUPLICATE),
        q("remove_labels[]=echoes/a").form("remove_labels[]=echoes/b").refused(400, DUPLICATE),
        hooks_q("url=https://evil.example/").json(HOOK_JSON).refused(400, DUPLICATE),
        hooks_q("url=https://api.echoeshq.com/h")
            .json(r#"{"url":"https://evil.example/"}"#)
            .refused(400, DUPLICATE),
        hooks_q("enable_ssl_verification=false").json(HOOK_JSON).refused(403, INVALID),
        hooks_q("enable_ssl_verification=true")
            .json(r#"{"url":"https://api.echoeshq.com/h","enable_ssl_verification":"true"}"#)
            .refused(400, DUPLICATE),
        q("title=pwned").json(LABELS_JSON).refused(403, UNKNOWN),
        q("state_event=close").form("add_labels=echoes/a").refused(403, UNKNOWN),
        // Duplicates within one source.
        put().json(r#"{"add_labels":"echoes/a","add_labels":"bug"}"#).refused(400, DUPLICATE),
        put().json(r#"{"add_labels":"bug","add_labels":"echoes/a"}"#).refused(400, DUPLICATE),
        put().form("add_labels=echoes/a&add_labels=bug").refused(400, DUPLICATE),
        put().form("add_labels[]=echoes/a&add_labels=bug").refused(400, DUPLICATE),
        q("add_labels=echoes/a&add_labels=echoes/b").refused(400, DUPLICATE),
        get("/api/v4/projects/101/merge_requests?state=opened&state=closed").refused(400, DUPLICATE),
        get("/api/v4/projects/101/merge_requests?labels[]=a&labels=b").refused(400, DUPLICATE),
        // Nested forms.
        put().form("add_labels[x]=echoes/a").refused(400, MALFORMED),
        q("add_labels[x]=echoes/a").refused(400, AMB),
        get("/api/v4/groups?a[b]=1").refused(400, AMB),
        get("/api/v4/groups?a[][b]=1").refused(400, AMB),
        get("/api/v4/groups?a[]b=1").refused(400, AMB),
        get("/api/v4/groups?a]=1").refused(400, AMB),
        get("/api/v4/groups?a%5Bb%5D=1").refused(400, AMB),
        put().form("add_labels%5Bx%5D=echoes/a").refused(400, MALFORMED),
        put().json(r#"{"add_labels[]":"echoes/a"}"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":{"a":"echoes/x"}}"#).refused(403, INVALID),
        put().json(r#"{"add_labels":[{"a":"echoes/x"}]}"#).refused(403, INVALID),
        put().json(r#"{"add_labels":[["echoes/x"]]}"#).refused(403, INVALID),
        put().json(r#"["add_labels"]"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":"echoes/a"}x"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":"echoes/a"}{"title":"x"}"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":"echoes/a","#).refused(400, MALFORMED),
        // `labels` replaces the whole set (`labels=` removes every label): never accepted.
        put().json(r#"{"labels":["echoes/a"]}"#).refused(403, UNKNOWN),
        put().form("labels=").refused(403, UNKNOWN),
        q("labels[]=echoes/a").refused(403, UNKNOWN),
        // Empty and mixed lists.
        put().json(r#"{"add_labels":""}"#).refused(403, INVALID),
        put().json(r#"{"remove_labels":[]}"#).refused(403, INVALID),
        put().json(r#"{"add_labels":null}"#).refused(403, INVALID),
        put().form("add_labels=").refused(403, INVALID),
        put().form("add_labels=,").refused(403, INVALID),
        put().form("remove_labels[]=").refused(403, INVALID),
        put().json(r#"{"add_labels":"echoes/a,bug"}"#).refused(403, INVALID),
        put().form("add_labels=echoes/a%2Cbug").refused(403, INVALID),
        put().json(r#"{"remove_labels":["echoes/a","bug"]}"#).refused(403, INVALID),
        put().json(r#"{"Add_Labels":"echoes/a"}"#).refused(403, UNKNOWN),
        put().json(r#"{"add_labels ":"echoes/a"}"#).refused(403, UNKNOWN),
        // Content types on write rules.
        put().body(Some("text/plain"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put()
            .body(
                Some("multipart/form-data; boundary=x"),
                b"--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\npwned\r\n--x--\r\n",
            )
            .refused(415, MEDIA),
        put().body(Some("application/json; charset=latin1"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put().body(None, LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put().body(Some("application/xml"), b"<add_labels>echoes/a</add_labels>").refused(415, MEDIA),
        put().body(Some("application/vnd.api+json"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put().body(Some("application/json-patch+json"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put()
            .body(Some("application/x-www-form-urlencoded; charset=utf-16"), b"add_labels=echoes/a")
            .refused(415, MEDIA),
        put().body(Some("application/json; boundary=x"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        req("POST", GROUP_LABELS)
            .body(
                Some("multipart/form-data; boundary=x"),
                b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\necho/x\r\n--x--\r\n",
            )
            .refused(415, MEDIA),
        put()
            .body(Some("application/x-www-form-urlencoded"), LABELS_JSON.as_bytes())
            .refused(403, UNKNOWN),
        put().json("add_labels=echoes/a").refused(400, MALFORMED),
        // Bodies where the rule takes none, or no such parameter.
        get("/api/v4/projects/101/merge_requests")
            .json(r#"{"state":"all"}"#)
            .refused(403, NO_BODY),
        req("DELETE", "/api/v4/projects/101/hooks/9001").json(r#"{"x":1}"#).refused(403, UNKNOWN),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2Fx?name=echoes/y").refused(403, UNKNOWN),
        req("POST", GROUP_LABELS).form("name=echoes%2Fno-color").refused(403, MISSING),
        req("POST", HOOKS).json("{}").refused(403, MISSING),
        get(&format!("/api/v4/groups?{many}")).refused(400, TOO_MANY),
        // Allowed.
        put().form("add_labels[]=echoes%2Fa&add_labels[]=echoes%2Fb").ok(200),
        put().json(r#"{"remove_labels":["echoes/a","echoes/b"]}"#).ok(200),
        put()
            .json(r#"{"add_labels":"echoes/intent: feature, echoes/effort: S"}"#)
            .ok(200),
        q("add_labels=echoes%2Fa").ok(200),
        q("add_labels=echoes%2Fa").json(r#"{"remove_labels":"echoes/b"}"#).ok(200),
        put().form("add%5Flabels=echoes%2Fa").ok(200),
        put().form("add_labels%5B%5D=echoes%2Fa").ok(200),
        put().form("add_labels=echoes%2Fintent%3A+feature&").ok(200),
        put().body(Some("APPLICATION/JSON"), LABELS_JSON.as_bytes()).ok(200),
        put().body(Some("application/json ; charset=\"UTF-8\""), LABELS_JSON.as_bytes()).ok(200),
        put()
            .body(Some("application/x-www-form-urlencoded; charset=utf-8"), b"add_labels=echoes%2Fa")
            .ok(200),
        put().header("Content-Type", "application/json").ok(400),
        req("POST", HOOKS)
            .json(r#"{"url":"https://api.echoeshq.com/hooks/1","token":"s3cret","push_events":true,"enable_ssl_verification":true}"#)
            .ok(201),
        hooks_q("url=https%3A%2F%2Fapi.echoeshq.com%2Fq")
            .json(r#"{"merge_requests_events":true}"#)
            .ok(201),
        get("/api/v4/projects/101/merge_requests?labels[]=bug&labels[]=x").ok(200),
        get("/api/v4/projects/101/merge_requests?state=opened&State=closed").ok(200),
    ]
}

#[tokio::test]
async fn class_11_query_and_body_merge() {
    let rows = class_11();
    assert_eq!(count(&rows), 81, "class 11 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 11", &failures);
    assert_eq!(ran, 162, "class 11 exchanges");
}

// ---------------------------------------------------------------------------
// Class 12: client credentials and impersonation

/// Every credential GitLab accepts (docs/gitlab.md §2): the headers it would honour
/// are refused by name, in any letter case (`Cookie` is dropped, never
/// forwarded); Rack's underscore spellings are dropped; the client's own token is
/// consumed and never forwarded; anything but exactly one valid client token
/// gets 401; credential parameters are refused in any case, in the query and
/// in JSON and form bodies. `token` (the webhook secret) is not a credential.
fn class_12() -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, value) in [
        ("job-token", "job-secret"),
        ("deploy-token", "deploy-secret"),
        ("sudo", "root"),
        ("x-csrf-token", "csrf"),
        ("dpop", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.x"),
    ] {
        rows.push(
            get("/api/v4/user")
                .header(name, value)
                .refused(400, FORBIDDEN_HEADER),
        );
    }
    rows.extend([
        req("PUT", MR)
            .header("sudo", "root")
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_HEADER),
        req("PUT", MR)
            .header("job-token", "x")
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("JOB-TOKEN", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("Job-Token", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("SUDO", "1")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("Sudo", "")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        // Cookie (`_gitlab_session`) is dropped, never forwarded: load balancers add
        // affinity cookies, so it is not refused.
        get("/api/v4/user")
            .header("Cookie", "_gitlab_session=stolen")
            .absent("cookie")
            .ok(200),
        get("/api/v4/user")
            .header("COOKIE", "_gitlab_session=stolen; other=1")
            .h1()
            .absent("cookie")
            .ok(200),
        req("PUT", MR)
            .header("Cookie", "_gitlab_session=stolen")
            .json(LABELS_JSON)
            .absent("cookie")
            .ok(200),
        get("/api/v4/user")
            .header("X-Csrf-Token", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("DPoP", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/").header("sudo", "root").local(200),
        // Underscore spellings Rack would read as the same header: dropped.
        get("/api/v4/user")
            .header("Private_Token", "{GITLAB}")
            .ok(200),
        get("/api/v4/user").header("Job_Token", "x").ok(200),
        get("/api/v4/user").header("Deploy_Token", "x").ok(200),
        get("/api/v4/user").header("X_CSRF_Token", "x").ok(200),
        // The client's own token: consumed, never forwarded.
        get("/api/v4/user").ok(200),
        get("/api/v4/user").auth(Auth::Bearer).ok(200),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "bearer {TOKEN}")
            .ok(200),
        req("PUT", MR).auth(Auth::Bearer).json(LABELS_JSON).ok(200),
        // Anything else: 401.
        get("/api/v4/user")
            .auth(Auth::None)
            .refused(401, MISSING_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "{GITLAB}")
            .refused(401, UNKNOWN_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Bearer {GITLAB}")
            .refused(401, UNKNOWN_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "glg_wrong")
            .refused(401, UNKNOWN_TOKEN),
        get("/api/v4/user")
            .header("Authorization", "Bearer {TOKEN}")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .header("PRIVATE-TOKEN", "{TOKEN}")
            .h1()
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Basic eDpnbGdfc2VjcmV0")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Token {TOKEN}")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "{TOKEN} {TOKEN}")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Bearer")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/projects/101/../301")
            .auth(Auth::None)
            .refused(401, MISSING_TOKEN),
    ]);
    // Credential parameters in the query, any case and spelling.
    for query in [
        "private_token=x",
        "access_token=x",
        "bearer_token=x",
        "job_token=x",
        "sudo=root",
        "PRIVATE_TOKEN=x",
        "Access_Token=x",
        "SUDO=root",
        "Job_Token=x",
        "%70rivate_token=x",
        "private%5Ftoken=x",
        "%73udo=root",
        "sudo[]=root",
        "sudo=",
        "sudo",
        "private_token={GITLAB}",
    ] {
        rows.push(get(&format!("/api/v4/user?{query}")).refused(400, FORBIDDEN_PARAM));
    }
    rows.push(get("/api/v4/user?sudo[x]=root").refused(400, AMB));
    rows.push(
        req("PUT", &format!("{MR}?sudo=1"))
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_PARAM),
    );
    // In JSON bodies.
    for name in [
        "private_token",
        "access_token",
        "bearer_token",
        "job_token",
        "sudo",
        "SUDO",
        "Private_Token",
    ] {
        rows.push(
            req("PUT", MR)
                .json(&format!(r#"{{"add_labels":"echoes/a","{name}":"x"}}"#))
                .refused(400, FORBIDDEN_PARAM),
        );
    }
    rows.push(
        req("PUT", MR)
            .json(r#"{"sudo":null,"add_labels":"echoes/a"}"#)
            .refused(400, FORBIDDEN_PARAM),
    );
    // In form bodies.
    for param in [
        "private_token=x",
        "access_token=x",
        "bearer_token=x",
        "job_token=x",
        "sudo=root",
        "sudo[]=root",
        "%73udo=root",
    ] {
        rows.push(
            req("POST", GROUP_LABELS)
                .form(&format!("{LABEL_FORM}&{param}"))
                .refused(400, FORBIDDEN_PARAM),
        );
    }
    rows.extend([
        // A body on a read rule is never read, credential or not.
        get("/api/v4/user")
            .json(r#"{"private_token":"x"}"#)
            .refused(403, NO_BODY),
        // `token` is the webhook secret, not a credential.
        req("POST", HOOKS)
            .json(r#"{"url":"https://api.echoeshq.com/hooks/2","token":"s3cret"}"#)
            .ok(201),
        get("/api/v4/user?token=x").ok(200),
    ]);
    rows
}

#[tokio::test]
async fn class_12_credentials_and_impersonation() {
    let rows = class_12();
    assert_eq!(count(&rows), 73, "class 12 table");
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut failures = Vec::new();
    let ran = run_rows(&sb, &env, &rows, &mut failures).await;
    report("class 12", &failures);
    assert_eq!(ran, 138, "class 12 exchanges");
}

// ---------------------------------------------------------------------------
// Class 13: responses

fn links_through_glgate(answer: &Answer, env: &Env) -> Result<(), String> {
    let link = answer.header("link").ok_or("no Link header")?;
    let mut urls = 0;
    for entry in link.split(", ") {
        let url = entry
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(url, _)| url)
            .ok_or_else(|| format!("malformed Link: {link}"))?;
        if !url.starts_with(&format!("{}/api/v4/", env.base_url)) || url.contains("/gitlab/") {
            return Err(format!("Link URL does not lead through glgate: {url}"));
        }
        urls += 1;
    }
    if urls == 0 {
        return Err("empty Link".into());
    }
    Ok(())
}

fn moved_to_backend(answer: &Answer, env: &Env) -> Result<(), String> {
    let expected = format!("{}/api/v4/projects/acme%2Fbackend", env.base_url);
    match answer.header("location") {
        Some(location) if location == expected => Ok(()),
        other => Err(format!("Location {other:?}, expected {expected}")),
    }
}

fn moved_to_backend_mrs(answer: &Answer, env: &Env) -> Result<(), String> {
    let expected = format!(
        "{}/api/v4/projects/acme%2Fbackend/merge_requests?state=opened",
        env.base_url
    );
    match answer.header("location") {
        Some(location) if location == expected => Ok(()),
        other => Err(format!("Location {other:?}, expected {expected}")),
    }
}

fn error_names_nothing(answer: &Answer, _env: &Env) -> Result<(), String> {
    let body = String::from_utf8_lossy(&answer.body);
    for word in ["127.0.0.1", "localhost", "http://", "https://", "glpat-"] {
        if body.contains(word) {
            return Err(format!("the error reveals '{word}': {body}"));
        }
    }
    Ok(())
}

/// GitLab's 401 to glgate's own token: glgate's reason, naming nothing.
fn credential_rejected(answer: &Answer, env: &Env) -> Result<(), String> {
    let body = String::from_utf8_lossy(&answer.body);
    if !body.contains("\"reason\":\"upstream_credential_rejected\"") {
        return Err(format!("not upstream_credential_rejected: {body}"));
    }
    error_names_nothing(answer, env)
}

/// GitLab's absolute `Link` and `Location` URLs lead through glgate and the
/// upstream address appears in no header; `Set-Cookie` never reaches the
/// client; GitLab's own errors pass through and glgate's errors (502 for an
/// unreachable GitLab included) reveal neither host nor token.
fn class_13() -> Vec<Row> {
    vec![
        get("/api/v4/groups/acme/projects?per_page=5")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups/acme/projects?per_page=5&page=2")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups/acme/projects?per_page=5&page=10")
            .ok(200)
            .check(links_through_glgate),
        req("HEAD", "/api/v4/groups/acme/projects?per_page=5")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups/acme/labels?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/users?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/projects/101/merge_requests?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/projects/101/repository/tags?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/projects/acme%2Fold-backend")
            .ok(301)
            .check(moved_to_backend),
        req("HEAD", "/api/v4/projects/acme%2Fold-backend")
            .ok(301)
            .check(moved_to_backend),
        get("/api/v4/projects/acme%2Fold-backend/merge_requests?state=opened")
            .ok(301)
            .check(moved_to_backend_mrs),
        get("/api/v4/user").ok(200),
        get("/api/v4/projects/999").ok(404),
        req("PUT", MR).json(LABELS_JSON).ok(200),
        req("POST", HOOKS).json(HOOK_JSON).ok(201),
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(500))
            .ok(500),
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(503))
            .ok(503),
        // GitLab rejecting glgate's own token is not the client's fault:
        // 503, never GitLab's bare 401 (which clients read as their own).
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(401))
            .ok(503)
            .check(credential_rejected),
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(429))
            .ok(429),
        // glgate's own refusals name nothing.
        get("/api/v4/projects/101/variables")
            .refused(403, NO_RULE)
            .check(error_names_nothing),
        get("http://{FAKE}/api/v4/user")
            .h1()
            .refused(400, NOT_ORIGIN)
            .check(error_names_nothing),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "{GITLAB}")
            .refused(401, UNKNOWN_TOKEN)
            .check(error_names_nothing),
    ]
}

/// GitLab unreachable: 502, naming neither the address nor the token.
fn class_13_down() -> Vec<Row> {
    vec![
        get("/api/v4/user")
            .refused(502, UPSTREAM_DOWN)
            .check(error_names_nothing),
        get("/api/v4/projects/acme%2Fbackend")
            .refused(502, UPSTREAM_DOWN)
            .check(error_names_nothing),
        req("PUT", MR)
            .json(LABELS_JSON)
            .refused(502, UPSTREAM_DOWN)
            .check(error_names_nothing),
        req("HEAD", "/api/v4/user").refused(502, UPSTREAM_DOWN),
    ]
}

/// GitLab under a relative-URL prefix: the prefix is added upstream only.
fn class_13_prefixed() -> Vec<Row> {
    vec![
        get("/api/v4/groups?per_page=2")
            .ok_as(200, "/gitlab/api/v4/groups?per_page=2")
            .check(links_through_glgate),
        get("/api/v4/groups/acme/projects?per_page=5")
            .ok_as(200, "/gitlab/api/v4/groups/acme/projects?per_page=5")
            .check(links_through_glgate),
        get("/api/v4/projects/acme%2Fold-backend")
            .ok_as(301, "/gitlab/api/v4/projects/acme%2Fold-backend")
            .check(moved_to_backend),
    ]
}

#[tokio::test]
async fn class_13_responses() {
    let rows = class_13();
    let down = class_13_down();
    let prefixed = class_13_prefixed();
    assert_eq!(
        (count(&rows), count(&down), count(&prefixed)),
        (23, 4, 3),
        "class 13 tables"
    );
    let mut failures = Vec::new();
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    let mut ran = run_rows(&sb, &env, &rows, &mut failures).await;

    let refused = support::upstreams::refused_address().await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{refused}")),
        ..SandboxOptions::default()
    })
    .await;
    let mut env = Env::of(&sb);
    env.secrets.push(refused.to_string());
    ran += run_rows(&sb, &env, &down, &mut failures).await;

    let sb = Sandbox::with(SandboxOptions {
        path_prefix: "/gitlab".into(),
        ..SandboxOptions::default()
    })
    .await;
    let env = Env::of(&sb);
    ran += run_rows(&sb, &env, &prefixed, &mut failures).await;
    report("class 13", &failures);
    assert_eq!(ran, 45 + 8 + 6, "class 13 exchanges");
}
