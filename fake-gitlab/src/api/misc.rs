//! Instance-level endpoints: version, metadata, the token itself.

use serde_json::json;

use crate::reply::Reply;

/// The GitLab version the fake claims to be.
const VERSION: &str = "17.5.0";

/// `GET /version`.
pub(crate) fn version() -> Reply {
    Reply::ok(json!({ "version": VERSION, "revision": "fake" }))
}

/// `GET /metadata`.
pub(crate) fn metadata() -> Reply {
    Reply::ok(json!({
        "version": VERSION,
        "revision": "fake",
        "kas": { "enabled": false, "externalUrl": null, "version": null },
        "enterprise": false,
    }))
}

/// `GET /personal_access_tokens/self`.
pub(crate) fn token_self() -> Reply {
    Reply::ok(json!({
        "id": 42,
        "name": "glgate",
        "revoked": false,
        "active": true,
        "scopes": ["api", "read_user"],
        "expires_at": "2027-06-30",
        "last_used_at": null,
        "user_id": 1,
    }))
}
