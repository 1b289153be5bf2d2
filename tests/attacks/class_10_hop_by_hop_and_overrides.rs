//! Threat class 10 (docs/threat-model.md): hop-by-hop headers and method overrides.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_10(),
        h2: class_10_h2(),
        ..Tables::default()
    };
    run_class(
        "class 10",
        SandboxOptions::default(),
        tables,
        (52, 0, 5),
        94,
    )
    .await;
}
