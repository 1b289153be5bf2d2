//! Threat class 2 (docs/threat-model.md): dot segments.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_02(),
        ..Tables::default()
    };
    run_class("class 2", SandboxOptions::default(), tables, (30, 0, 0), 60).await;
}
