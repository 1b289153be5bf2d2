//! Instance-level endpoints: version, metadata.

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
