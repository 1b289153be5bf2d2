//! Threat class 9 (docs/threat-model.md): request smuggling.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let options = SandboxOptions {
        config_extra: "limits:\n  body_read_timeout: 2s\n  header_read_timeout: 2s\n".into(),
        ..SandboxOptions::default()
    };
    let tables = |env: &Env| Tables {
        raws: class_09(env),
        h2: class_09_h2(),
        ..Tables::default()
    };
    run_class("class 9", options, tables, (0, 64, 19), 64 + 19).await;
}
