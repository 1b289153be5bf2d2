//! The policy file as written: serde structs with source locations, compiled
//! by [`super::compile`] into types that cannot be invalid.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A policy file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    /// Format version; must be 1.
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// A short name for logs and listings.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// What the policy is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The allow rules. Anything no rule allows is refused.
    #[schemars(with = "Vec<RawRule>")]
    pub rules: Spanned<Vec<Spanned<RawRule>>>,
}

/// One allow rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    /// A unique, stable id (shown in audit lines and refusals).
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// What the rule is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The methods allowed (`GET` also allows `HEAD`).
    #[schemars(with = "Vec<String>")]
    pub methods: Spanned<Vec<Spanned<String>>>,
    /// Path templates relative to `/api/v4`, e.g. `/projects/{project}/merge_requests/{iid}`.
    #[schemars(with = "Vec<String>")]
    pub paths: Spanned<Vec<Spanned<String>>>,
    /// Extra constraints on path params, by param name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawParam>")]
    pub path_params: BTreeMap<String, Spanned<RawParam>>,
    /// The closed set of query and body parameters accepted. Required for
    /// rules that allow a write method; when absent on a read-only rule, any
    /// query parameter (but no body) is accepted.
    #[serde(default)]
    #[schemars(with = "Option<BTreeMap<String, RawParam>>")]
    pub params: Option<Spanned<BTreeMap<String, Spanned<RawParam>>>>,
    /// Largest request body accepted by this rule, in bytes.
    #[serde(default)]
    #[schemars(with = "Option<u64>")]
    pub max_body_bytes: Option<Spanned<u64>>,
    /// Before forwarding, glgate reads the resource at the request's path with
    /// its own token and forwards only if this field matches (e.g. a webhook's
    /// `url`): the client may touch only resources that are its own.
    #[serde(default)]
    #[schemars(with = "Option<RawFieldMatch>")]
    pub owned_if: Option<Spanned<RawFieldMatch>>,
    /// Before forwarding a write that replaces a set-valued field (a merge
    /// request's `labels`), glgate reads the object at the request's path and
    /// forwards only if every item the request would add or remove matches
    /// this pattern: the parameter named `field` replaces GitLab's field of
    /// the same name.
    #[serde(default)]
    #[schemars(with = "Option<RawFieldMatch>")]
    pub changes_only: Option<Spanned<RawFieldMatch>>,
    /// Items of a JSON list response are relayed only if this field matches;
    /// the others are removed (and totals that would count them dropped).
    #[serde(default)]
    #[schemars(with = "Option<RawFieldMatch>")]
    pub response_filter: Option<Spanned<RawFieldMatch>>,
}

/// A constraint on one parameter: exactly one of `type`, `pattern` or `enum`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParam {
    /// `any`, `bool` or `integer`.
    #[serde(rename = "type", default)]
    #[schemars(with = "Option<RawParamType>")]
    pub kind: Option<Spanned<RawParamType>>,
    /// A regex that must match the whole value.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub pattern: Option<Spanned<String>>,
    /// The accepted values.
    #[serde(rename = "enum", default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub one_of: Option<Spanned<Vec<String>>>,
    /// The request must carry this parameter.
    #[serde(default)]
    pub required: bool,
    /// The value may be a list (JSON array, `name[]=` repeats, or a
    /// comma-separated string); each element is checked.
    #[serde(default)]
    pub list: bool,
    /// Longest accepted value (each element, for lists), in characters.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// JSON `null` is accepted (GitLab reads it as "unset"); never with `required`.
    #[serde(default)]
    pub nullable: bool,
}

/// A condition on one field of a GitLab JSON object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFieldMatch {
    /// The field, e.g. `url`.
    pub field: String,
    /// A regex its string value must match whole.
    #[schemars(with = "String")]
    pub pattern: Spanned<String>,
}

/// The built-in parameter types.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawParamType {
    /// Any scalar value.
    Any,
    /// `true`, `false`, `1` or `0` (or a JSON boolean).
    Bool,
    /// A decimal integer (or a JSON integer).
    Integer,
}
