//! The `reason` codes glgate's refusals carry (src/canonical.rs,
//! src/policy/decision.rs, src/proxy/error.rs, src/auth.rs), short enough for
//! a table row.

pub const AMB: &str = "ambiguous_target";
pub const NOT_API: &str = "not_api";
pub const NOT_ORIGIN: &str = "not_origin_form";
pub const NO_RULE: &str = "no_rule";
pub const METHOD: &str = "method_not_allowed";
pub const UNSUPPORTED: &str = "unsupported_method";
pub const FORBIDDEN_HEADER: &str = "forbidden_header";
pub const REPEATED: &str = "repeated_header";
pub const FORBIDDEN_PARAM: &str = "forbidden_param";
pub const DUPLICATE: &str = "duplicate_param";
pub const UNKNOWN: &str = "unknown_param";
pub const INVALID: &str = "invalid_param";
pub const INVALID_PATH: &str = "invalid_path_param";
pub const MISSING: &str = "missing_param";
pub const NO_BODY: &str = "body_not_allowed";
pub const MEDIA: &str = "unsupported_content_type";
pub const MALFORMED: &str = "malformed_body";
pub const TOO_MANY: &str = "too_many_params";
pub const MISSING_TOKEN: &str = "missing_token";
pub const UNKNOWN_TOKEN: &str = "unknown_token";
pub const MALFORMED_TOKEN: &str = "malformed_token";
pub const BODY_READ: &str = "body_read_error";
pub const BODY_TIMEOUT: &str = "body_timeout";
pub const UPSTREAM_DOWN: &str = "upstream_unavailable";
