//! Threat class 12 (docs/threat-model.md): client credentials and impersonation.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

/// Every credential GitLab accepts (docs/gitlab.md §2): the headers it would honour
/// are refused by name, in any letter case (`Cookie` is dropped, never
/// forwarded); Rack's underscore spellings are dropped; the client's own token is
/// consumed and never forwarded; anything but exactly one valid client token
/// gets 401; credential parameters are refused in any case, in the query and
/// in JSON and form bodies. `token` (the webhook secret) is not a credential.
fn class_12() -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, value) in [
        ("job-token", "job-secret"),
        ("deploy-token", "deploy-secret"),
        ("sudo", "root"),
        ("x-csrf-token", "csrf"),
        ("dpop", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.x"),
    ] {
        rows.push(
            get("/api/v4/user")
                .header(name, value)
                .refused(400, FORBIDDEN_HEADER),
        );
    }
    rows.extend([
        req("PUT", MR)
            .header("sudo", "root")
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_HEADER),
        req("PUT", MR)
            .header("job-token", "x")
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("JOB-TOKEN", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("Job-Token", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("SUDO", "1")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("Sudo", "")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        // Cookie (`_gitlab_session`) is dropped, never forwarded: load balancers add
        // affinity cookies, so it is not refused.
        get("/api/v4/user")
            .header("Cookie", "_gitlab_session=stolen")
            .absent("cookie")
            .ok(200),
        get("/api/v4/user")
            .header("COOKIE", "_gitlab_session=stolen; other=1")
            .h1()
            .absent("cookie")
            .ok(200),
        req("PUT", MR)
            .header("Cookie", "_gitlab_session=stolen")
            .json(LABELS_JSON)
            .absent("cookie")
            .ok(200),
        get("/api/v4/user")
            .header("X-Csrf-Token", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/user")
            .header("DPoP", "x")
            .h1()
            .refused(400, FORBIDDEN_HEADER),
        get("/api/v4/").header("sudo", "root").local(200),
        // Underscore spellings Rack would read as the same header: dropped.
        get("/api/v4/user")
            .header("Private_Token", "{GITLAB}")
            .ok(200),
        get("/api/v4/user").header("Job_Token", "x").ok(200),
        get("/api/v4/user").header("Deploy_Token", "x").ok(200),
        get("/api/v4/user").header("X_CSRF_Token", "x").ok(200),
        // The client's own token: consumed, never forwarded.
        get("/api/v4/user").ok(200),
        get("/api/v4/user").auth(Auth::Bearer).ok(200),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "bearer {TOKEN}")
            .ok(200),
        req("PUT", MR).auth(Auth::Bearer).json(LABELS_JSON).ok(200),
        // Anything else: 401.
        get("/api/v4/user")
            .auth(Auth::None)
            .refused(401, MISSING_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "{GITLAB}")
            .refused(401, UNKNOWN_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Bearer {GITLAB}")
            .refused(401, UNKNOWN_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "glg_wrong")
            .refused(401, UNKNOWN_TOKEN),
        get("/api/v4/user")
            .header("Authorization", "Bearer {TOKEN}")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .header("PRIVATE-TOKEN", "{TOKEN}")
            .h1()
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Basic eDpnbGdfc2VjcmV0")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Token {TOKEN}")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "{TOKEN} {TOKEN}")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("Authorization", "Bearer")
            .refused(401, MALFORMED_TOKEN),
        get("/api/v4/projects/101/../301")
            .auth(Auth::None)
            .refused(401, MISSING_TOKEN),
    ]);
    // Credential parameters in the query, any case and spelling.
    for query in [
        "private_token=x",
        "access_token=x",
        "bearer_token=x",
        "job_token=x",
        "sudo=root",
        "PRIVATE_TOKEN=x",
        "Access_Token=x",
        "SUDO=root",
        "Job_Token=x",
        "%70rivate_token=x",
        "private%5Ftoken=x",
        "%73udo=root",
        "sudo[]=root",
        "sudo=",
        "sudo",
        "private_token={GITLAB}",
    ] {
        rows.push(get(&format!("/api/v4/user?{query}")).refused(400, FORBIDDEN_PARAM));
    }
    rows.push(get("/api/v4/user?sudo[x]=root").refused(400, AMB));
    rows.push(
        req("PUT", &format!("{MR}?sudo=1"))
            .json(LABELS_JSON)
            .refused(400, FORBIDDEN_PARAM),
    );
    // In JSON bodies.
    for name in [
        "private_token",
        "access_token",
        "bearer_token",
        "job_token",
        "sudo",
        "SUDO",
        "Private_Token",
    ] {
        rows.push(
            req("PUT", MR)
                .json(&format!(r#"{{"add_labels":"echoes/a","{name}":"x"}}"#))
                .refused(400, FORBIDDEN_PARAM),
        );
    }
    rows.push(
        req("PUT", MR)
            .json(r#"{"sudo":null,"add_labels":"echoes/a"}"#)
            .refused(400, FORBIDDEN_PARAM),
    );
    // In form bodies.
    for param in [
        "private_token=x",
        "access_token=x",
        "bearer_token=x",
        "job_token=x",
        "sudo=root",
        "sudo[]=root",
        "%73udo=root",
    ] {
        rows.push(
            req("POST", GROUP_LABELS)
                .form(&format!("{LABEL_FORM}&{param}"))
                .refused(400, FORBIDDEN_PARAM),
        );
    }
    rows.extend([
        // A body on a read rule is never read, credential or not.
        get("/api/v4/user")
            .json(r#"{"private_token":"x"}"#)
            .refused(403, NO_BODY),
        // `token` is the webhook secret, not a credential.
        req("POST", HOOKS)
            .json(r#"{"url":"https://api.echoeshq.com/hooks/2","token":"s3cret"}"#)
            .ok(201),
        get("/api/v4/user?token=x").ok(200),
    ]);
    rows
}

#[tokio::test]
async fn class_12_credentials_and_impersonation() {
    let tables = |_: &Env| Tables {
        rows: class_12(),
        ..Tables::default()
    };
    run_class(
        "class 12",
        SandboxOptions::default(),
        tables,
        (73, 0, 0),
        138,
    )
    .await;
}
