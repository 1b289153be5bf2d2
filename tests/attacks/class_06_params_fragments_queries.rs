//! Threat class 6 (docs/threat-model.md): `;` parameters, `#` fragments, `?` inside encoded segments.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

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
    let tables = |_: &Env| Tables {
        rows: class_06(),
        h2: class_06_h2(),
        ..Tables::default()
    };
    run_class("class 6", SandboxOptions::default(), tables, (25, 0, 3), 48).await;
}
