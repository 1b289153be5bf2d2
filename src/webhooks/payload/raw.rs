//! The payload policy file as written: serde structs with source locations,
//! compiled by [`super::PayloadPolicy::compile`].

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::kinds::KINDS;

/// A webhook payload policy: which GitLab events pass to the client's
/// receiver, and which fields of each are removed or kept. An event kind
/// not listed is dropped.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayloadPolicy {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub(super) version: Spanned<u32>,
    /// What the policy is for.
    #[serde(default)]
    pub(super) description: Option<String>,
    /// The event kinds that pass, each once. Any other kind is dropped.
    #[schemars(with = "Vec<RawEvent>")]
    pub(super) events: Spanned<Vec<Spanned<RawEvent>>>,
}

/// One event kind that passes, and what is removed from it: `remove` (these
/// fields are removed) or `keep` (only these fields survive), never both;
/// with neither, the payload passes unchanged.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = { "required": ["remove", "keep"] }))]
pub(super) struct RawEvent {
    /// The event kind, e.g. `push` (sent with `X-Gitlab-Event: Push Hook`).
    #[schemars(with = "KindName")]
    pub(super) kind: Spanned<String>,
    /// What this kind is passed for.
    #[serde(default)]
    pub(super) description: Option<String>,
    /// Fields removed before delivery, e.g. `commits[*].author.email`, `**.email`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) remove: Option<Spanned<Vec<Spanned<String>>>>,
    /// The only fields delivered (with the objects and lists that hold them);
    /// the kind's `object_kind`/`event_name` is always kept.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub(super) keep: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The schema of `kind`: the names in the kinds table, so the schema and
/// the compiler never disagree.
struct KindName;

impl JsonSchema for KindName {
    fn schema_name() -> Cow<'static, str> {
        "EventKind".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        let described: Vec<String> = KINDS
            .iter()
            .map(|k| format!("{} ({})", k.name, k.header))
            .collect();
        json_schema!({
            "type": "string",
            "enum": names,
            "description": format!("A GitLab webhook event kind and the X-Gitlab-Event header it comes with: {}.", described.join(", ")),
        })
    }
}
