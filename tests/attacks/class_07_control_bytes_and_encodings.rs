//! Threat class 7 (docs/threat-model.md): backslash, control bytes, NUL, CR/LF, overlong and invalid UTF-8.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_07(),
        raws: class_07_raw(),
        h2: class_07_h2(),
    };
    run_class(
        "class 7",
        SandboxOptions::default(),
        tables,
        (64, 5, 7),
        64 + 53 + 5 + 7,
    )
    .await;
}
