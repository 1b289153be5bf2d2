//! Threat class 13 (docs/threat-model.md): responses.

use crate::harness::*;
use crate::support::sandbox::{Sandbox, SandboxOptions};
use crate::support::upstreams::refused_address;

fn links_through_glgate(answer: &Answer, env: &Env) -> Result<(), String> {
    let link = answer.header("link").ok_or("no Link header")?;
    let mut urls = 0;
    for entry in link.split(", ") {
        let url = entry
            .split_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(url, _)| url)
            .ok_or_else(|| format!("malformed Link: {link}"))?;
        if !url.starts_with(&format!("{}/api/v4/", env.base_url)) || url.contains("/gitlab/") {
            return Err(format!("Link URL does not lead through glgate: {url}"));
        }
        urls += 1;
    }
    if urls == 0 {
        return Err("empty Link".into());
    }
    Ok(())
}

fn moved_to_backend(answer: &Answer, env: &Env) -> Result<(), String> {
    let expected = format!("{}/api/v4/projects/acme%2Fbackend", env.base_url);
    match answer.header("location") {
        Some(location) if location == expected => Ok(()),
        other => Err(format!("Location {other:?}, expected {expected}")),
    }
}

fn moved_to_backend_mrs(answer: &Answer, env: &Env) -> Result<(), String> {
    let expected = format!(
        "{}/api/v4/projects/acme%2Fbackend/merge_requests?state=opened",
        env.base_url
    );
    match answer.header("location") {
        Some(location) if location == expected => Ok(()),
        other => Err(format!("Location {other:?}, expected {expected}")),
    }
}

fn error_names_nothing(answer: &Answer, _env: &Env) -> Result<(), String> {
    let body = String::from_utf8_lossy(&answer.body);
    for word in ["127.0.0.1", "localhost", "http://", "https://", "glpat-"] {
        if body.contains(word) {
            return Err(format!("the error reveals '{word}': {body}"));
        }
    }
    Ok(())
}

/// GitLab's 401 to glgate's own token: glgate's reason, naming nothing.
fn credential_rejected(answer: &Answer, env: &Env) -> Result<(), String> {
    let body = String::from_utf8_lossy(&answer.body);
    if !body.contains("\"reason\":\"upstream_credential_rejected\"") {
        return Err(format!("not upstream_credential_rejected: {body}"));
    }
    error_names_nothing(answer, env)
}

/// GitLab's absolute `Link` and `Location` URLs lead through glgate and the
/// upstream address appears in no header; `Set-Cookie` never reaches the
/// client; GitLab's own errors pass through and glgate's errors (502 for an
/// unreachable GitLab included) reveal neither host nor token.
fn class_13() -> Vec<Row> {
    vec![
        get("/api/v4/groups/acme/projects?per_page=5")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups/acme/projects?per_page=5&page=2")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups/acme/projects?per_page=5&page=10")
            .ok(200)
            .check(links_through_glgate),
        req("HEAD", "/api/v4/groups/acme/projects?per_page=5")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/groups/acme/labels?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/users?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/projects/101/merge_requests?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/projects/101/repository/tags?per_page=1")
            .ok(200)
            .check(links_through_glgate),
        get("/api/v4/projects/acme%2Fold-backend")
            .ok(301)
            .check(moved_to_backend),
        req("HEAD", "/api/v4/projects/acme%2Fold-backend")
            .ok(301)
            .check(moved_to_backend),
        get("/api/v4/projects/acme%2Fold-backend/merge_requests?state=opened")
            .ok(301)
            .check(moved_to_backend_mrs),
        get("/api/v4/user").ok(200),
        get("/api/v4/projects/999").ok(404),
        req("PUT", MR).json(LABELS_JSON).ok(200),
        req("POST", HOOKS).json(HOOK_JSON).ok(201),
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(500))
            .ok(500),
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(503))
            .ok(503),
        // GitLab rejecting glgate's own token is not the client's fault:
        // 503, never GitLab's bare 401 (which clients read as their own).
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(401))
            .ok(503)
            .check(credential_rejected),
        get("/api/v4/user")
            .before(|fake| fake.set_fail_next(429))
            .ok(429),
        // glgate's own refusals name nothing.
        get("/api/v4/projects/101/variables")
            .refused(403, NO_RULE)
            .check(error_names_nothing),
        get("http://{FAKE}/api/v4/user")
            .h1()
            .refused(400, NOT_ORIGIN)
            .check(error_names_nothing),
        get("/api/v4/user")
            .auth(Auth::None)
            .header("PRIVATE-TOKEN", "{GITLAB}")
            .refused(401, UNKNOWN_TOKEN)
            .check(error_names_nothing),
    ]
}

/// GitLab unreachable: 502, naming neither the address nor the token.
fn class_13_down() -> Vec<Row> {
    vec![
        get("/api/v4/user")
            .refused(502, UPSTREAM_DOWN)
            .check(error_names_nothing),
        get("/api/v4/projects/acme%2Fbackend")
            .refused(502, UPSTREAM_DOWN)
            .check(error_names_nothing),
        req("PUT", MR)
            .json(LABELS_JSON)
            .refused(502, UPSTREAM_DOWN)
            .check(error_names_nothing),
        req("HEAD", "/api/v4/user").refused(502, UPSTREAM_DOWN),
    ]
}

/// GitLab under a relative-URL prefix: the prefix is added upstream only.
fn class_13_prefixed() -> Vec<Row> {
    vec![
        get("/api/v4/groups?per_page=2")
            .ok_as(200, "/gitlab/api/v4/groups?per_page=2")
            .check(links_through_glgate),
        get("/api/v4/groups/acme/projects?per_page=5")
            .ok_as(200, "/gitlab/api/v4/groups/acme/projects?per_page=5")
            .check(links_through_glgate),
        get("/api/v4/projects/acme%2Fold-backend")
            .ok_as(301, "/gitlab/api/v4/projects/acme%2Fold-backend")
            .check(moved_to_backend),
    ]
}

#[tokio::test]
async fn class_13_responses() {
    let rows = Tables {
        rows: class_13(),
        ..Tables::default()
    };
    let down = Tables {
        rows: class_13_down(),
        ..Tables::default()
    };
    let prefixed = Tables {
        rows: class_13_prefixed(),
        ..Tables::default()
    };
    assert_eq!(
        (rows.sizes(), down.sizes(), prefixed.sizes()),
        ((23, 0, 0), (4, 0, 0), (3, 0, 0)),
        "class 13 tables"
    );
    let mut run = Run::default();
    let sb = Sandbox::start().await;
    let env = Env::of(&sb);
    run.tables(&sb, &env, &rows).await;

    let refused = refused_address().await;
    let sb = Sandbox::with(SandboxOptions {
        upstream_url: Some(format!("http://{refused}")),
        ..SandboxOptions::default()
    })
    .await;
    let mut env = Env::of(&sb);
    env.secrets.push(refused.to_string());
    run.tables(&sb, &env, &down).await;

    let sb = Sandbox::with(SandboxOptions {
        path_prefix: "/gitlab".into(),
        ..SandboxOptions::default()
    })
    .await;
    let env = Env::of(&sb);
    run.tables(&sb, &env, &prefixed).await;
    run.finish("class 13", 45 + 8 + 6);
}
