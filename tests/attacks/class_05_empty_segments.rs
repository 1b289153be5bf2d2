//! Threat class 5 (docs/threat-model.md): empty segments and trailing slashes.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_05(),
        ..Tables::default()
    };
    run_class("class 5", SandboxOptions::default(), tables, (30, 0, 0), 60).await;
}
