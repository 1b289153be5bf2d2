//! Credential routes: `/personal_access_tokens/self[/rotate]`, `/user` (with
//! the admin and bot flags tests set), group membership of the token user,
//! and the OAuth provider at the site root (`/oauth/authorize`, `/oauth/token`).

use std::sync::Mutex;

use base64::Engine;
use http::StatusCode;
use http::header::LOCATION;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Ctx, users};
use crate::credentials::{Credentials, Grant, Kind, Token};
use crate::params::{Params, percent_encode};
use crate::reply::Reply;
use crate::store::Store;

/// Answers the credential routes; `None` for every other route.
pub(crate) fn route(
    ctx: &Ctx<'_>,
    credentials: &mut Credentials,
    token: &Token,
    store: &Mutex<Store>,
    segments: &[&str],
) -> Option<Reply> {
    let reply = match (ctx.method, segments) {
        ("GET", ["personal_access_tokens", "self"]) => token_self(token),
        ("POST", ["personal_access_tokens", "self", "rotate"]) => rotate(ctx, credentials, token),
        ("GET", ["user"]) => {
            // Poisoned only if a handler panicked earlier; acceptable in a test tool.
            let store = store.lock().unwrap();
            let mut reply = users::current(ctx, &store);
            reply.edit_json(|user| {
                user["is_admin"] = json!(credentials.is_admin);
                user["bot"] = json!(credentials.bot);
            });
            reply
        }
        ("GET", ["groups", id, "members", "all", user_id]) => {
            let store = store.lock().unwrap();
            let Some(group) = store.find_group(id) else {
                return Some(Reply::not_found("Group"));
            };
            let level = credentials.group_access.get(&group.id).copied();
            match (user_id.parse::<u64>(), level) {
                (Ok(uid), Some(level)) if uid == token.user_id && level > 0 => {
                    match store.user(uid) {
                        Some(user) => Reply::ok(ctx.render(&store).member(user, level)),
                        None => Reply::not_found("Member"),
                    }
                }
                (Ok(uid), None) if uid == token.user_id => match store.user(uid) {
                    Some(user) => Reply::ok(ctx.render(&store).member(user, 50)),
                    None => Reply::not_found("Member"),
                },
                _ => Reply::not_found("Member"),
            }
        }
        _ => return None,
    };
    Some(reply)
}

fn token_json(token: &Token) -> Value {
    let mut body = json!({
        "id": token.id,
        "name": token.name,
        "revoked": token.revoked,
        "created_at": "2026-01-01T00:00:00.000Z",
        "description": null,
        "scopes": token.scopes,
        "user_id": token.user_id,
        "last_used_at": null,
        "active": !token.revoked,
        "granular": token.granular_scopes.is_some(),
        "expires_at": token.expires_at,
    });
    // A fine-grained token: GitLab lists `granular` as its only scope and
    // describes its boundaries in `granular_scopes`, each with one project
    // or group id (null when the boundary names none).
    if let Some(scopes) = &token.granular_scopes {
        body["scopes"] = json!(["granular"]);
        body["granular_scopes"] = scopes
            .iter()
            .map(|scope| {
                json!({
                    "access": scope.access,
                    "permissions": scope.permissions,
                    "project_id": scope.project_id,
                    "group_id": scope.group_id,
                })
            })
            .collect();
    }
    body
}

/// `GET /personal_access_tokens/self`: personal access tokens only.
fn token_self(token: &Token) -> Reply {
    if token.kind != Kind::Personal {
        return Reply::bad_request("400 Bad request - not a personal access token");
    }
    Reply::ok(token_json(token))
}

/// `POST /personal_access_tokens/self/rotate` (optional `expires_at`).
fn rotate(ctx: &Ctx<'_>, credentials: &mut Credentials, token: &Token) -> Reply {
    if token.kind != Kind::Personal {
        return Reply::bad_request("400 Bad request - not a personal access token");
    }
    if !token
        .scopes
        .iter()
        .any(|s| s == "api" || s == "self_rotate")
    {
        return Reply::message(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    let expires_at = ctx.params.str("expires_at").filter(|s| !s.is_empty());
    match credentials.rotate(&token.secret, expires_at) {
        Some(fresh) => {
            let mut body = token_json(&fresh);
            body["token"] = json!(fresh.secret);
            Reply::ok(body)
        }
        None => Reply::status_message(StatusCode::UNAUTHORIZED),
    }
}

/// The OAuth provider, served at `{prefix}/oauth/...`; `None` for other paths.
pub(crate) fn oauth(
    path: &str,
    method: &str,
    params: &Params,
    credentials: &mut Credentials,
) -> Option<Reply> {
    let reply = match (method, path) {
        ("GET", "/oauth/authorize") => authorize(params, credentials),
        ("POST", "/oauth/token") => token(params, credentials),
        _ => return None,
    };
    Some(reply)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// `GET /oauth/authorize`: approves at once (the test user is always signed
/// in and always consents) and redirects to the registered redirect URI.
fn authorize(params: &Params, credentials: &mut Credentials) -> Reply {
    let Some(app) = credentials.oauth_app.clone() else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "no application");
    };
    let given = |key: &str| params.str(key).unwrap_or_default();
    if given("client_id") != app.client_id || given("redirect_uri") != app.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client or redirect URI",
        );
    }
    if given("response_type") != "code"
        || given("code_challenge_method") != "S256"
        || given("code_challenge").is_empty()
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type=code and a S256 code_challenge are required",
        );
    }
    let code = credentials.mint("code-");
    credentials.grants.insert(
        code.clone(),
        Grant {
            client_id: app.client_id.clone(),
            redirect_uri: app.redirect_uri.clone(),
            code_challenge: given("code_challenge"),
        },
    );
    let location = format!(
        "{}?code={}&state={}",
        app.redirect_uri,
        percent_encode(&code),
        percent_encode(&given("state"))
    );
    Reply::json(StatusCode::FOUND, json!({})).with_header(LOCATION, location)
}

/// `POST /oauth/token`: `authorization_code` (with PKCE) or `refresh_token`.
/// A refresh invalidates the old access token and the old refresh token.
fn token(params: &Params, credentials: &mut Credentials) -> Reply {
    let given = |key: &str| params.str(key).unwrap_or_default();
    let Some(app) = credentials.oauth_app.clone() else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "no application");
    };
    if given("client_id") != app.client_id || given("client_secret") != app.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    match given("grant_type").as_str() {
        "authorization_code" => {
            let Some(grant) = credentials.grants.remove(&given("code")) else {
                return invalid_grant();
            };
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(given("code_verifier").as_bytes()));
            if grant.client_id != app.client_id
                || grant.redirect_uri != given("redirect_uri")
                || grant.code_challenge != challenge
            {
                return invalid_grant();
            }
            token_reply(credentials, &app.client_id)
        }
        "refresh_token" => {
            credentials.refresh_calls += 1;
            let Some(owner) = credentials.refresh_tokens.remove(&given("refresh_token")) else {
                return invalid_grant();
            };
            let (client_id, old_access) = owner.split_once('\n').unwrap_or_default();
            if client_id != app.client_id {
                return invalid_grant();
            }
            if let Some(old) = credentials.find_mut(old_access) {
                old.revoked = true;
            }
            token_reply(credentials, &app.client_id)
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported",
        ),
    }
}

fn invalid_grant() -> Reply {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
    )
}

fn token_reply(credentials: &mut Credentials, client_id: &str) -> Reply {
    let (access, refresh) = credentials.issue_oauth(client_id);
    Reply::ok(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": credentials.oauth_expires_in,
        "refresh_token": refresh,
        "scope": "api read_user",
        "created_at": crate::credentials::now(),
    }))
}
