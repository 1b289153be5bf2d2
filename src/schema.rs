//! JSON Schemas of the config, policy and webhook payload policy files, generated from the Rust
//! types that read them, for editors (yaml-language-server) and CI.
//! The shipped copies in `schemas/` are kept in sync by a test.

/// Which file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchemaKind {
    /// `glgate.yaml`
    Config,
    /// A policy file.
    Policy,
    /// A webhook payload policy file.
    WebhookPolicy,
}

/// The schema, pretty-printed, with a trailing newline (as shipped).
pub(crate) fn render(kind: SchemaKind) -> String {
    let schema = match kind {
        SchemaKind::Config => crate::config::json_schema(),
        SchemaKind::Policy => crate::policy::json_schema(),
        SchemaKind::WebhookPolicy => crate::webhooks::payload::json_schema(),
    };
    // Serializing a JSON value to a string cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_schemas_match_the_types() {
        for (kind, shipped, command) in [
            (
                SchemaKind::Config,
                include_str!("../schemas/config.schema.json"),
                "config",
            ),
            (
                SchemaKind::Policy,
                include_str!("../schemas/policy.schema.json"),
                "policy",
            ),
            (
                SchemaKind::WebhookPolicy,
                include_str!("../schemas/webhook-policy.schema.json"),
                "webhook-policy",
            ),
        ] {
            if std::env::var_os("GLGATE_BLESS").is_some() {
                let path = format!(
                    "{}/schemas/{command}.schema.json",
                    env!("CARGO_MANIFEST_DIR")
                );
                std::fs::write(path, render(kind)).unwrap();
                continue;
            }
            assert!(
                render(kind) == shipped,
                "schemas/{command}.schema.json is out of date: run `cargo run -q -- schema {command} > schemas/{command}.schema.json` (or GLGATE_BLESS=1 cargo test --lib schema)"
            );
        }
    }

    #[test]
    fn schemas_close_every_object() {
        let policy: serde_json::Value = serde_json::from_str(&render(SchemaKind::Policy)).unwrap();
        assert_eq!(policy["additionalProperties"], false);
        assert_eq!(policy["$defs"]["RawRule"]["additionalProperties"], false);
        assert!(
            policy["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "rules")
        );
    }
}
