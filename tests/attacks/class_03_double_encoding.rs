//! Threat class 3 (docs/threat-model.md): double encoding.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

/// The path is decoded exactly once: a percent escape left after that, or an
/// escape that is not two hex digits, is refused (a lone `%` is data). Queries and bodies are decoded once too,
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
    let tables = |_: &Env| Tables {
        rows: class_03(),
        ..Tables::default()
    };
    run_class("class 3", SandboxOptions::default(), tables, (29, 0, 0), 58).await;
}
