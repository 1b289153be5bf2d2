//! Threat class 8 (docs/threat-model.md): non-origin-form targets, Host, forwarding headers.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_08(),
        h2: class_08_h2(),
        ..Tables::default()
    };
    run_class(
        "class 8",
        SandboxOptions::default(),
        tables,
        (49, 0, 9),
        49 + 36 + 9,
    )
    .await;
}
