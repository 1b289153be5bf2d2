//! Threat class 4 (docs/threat-model.md): aliases.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_04(),
        ..Tables::default()
    };
    run_class("class 4", SandboxOptions::default(), tables, (46, 0, 0), 92).await;
}
