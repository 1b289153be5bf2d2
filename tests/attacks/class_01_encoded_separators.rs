//! Threat class 1 (docs/threat-model.md): encoded separators.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_01(),
        ..Tables::default()
    };
    run_class("class 1", SandboxOptions::default(), tables, (34, 0, 0), 68).await;
}
