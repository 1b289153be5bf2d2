//! The config file: raw serde structs compiled into a [`Config`] that cannot
//! be invalid. Every problem of the config and of every policy it names is
//! reported at once, with file, line, column and key. No network I/O here.
//!
//! `model.rs` holds the checked types the rest of glgate reads, `compile/`
//! turns the raw structs of `raw.rs` into them, `startup.rs` names the
//! settings only a restart applies.

mod compile;
mod model;
mod raw;
mod startup;
mod url;

use std::path::Path;

pub use model::Config;
pub(crate) use model::{
    AuditOutput, CONFIG_VERSION, CacheSettings, CertMatch, ClientConfig,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_OAUTH_REDIRECT_URI, DEFAULT_TOKEN_RELOAD_INTERVAL,
    DEFAULT_WEBHOOK_BODY_BYTES, DEFAULT_WEBHOOK_QUEUE_BYTES, DEFAULT_WEBHOOK_QUEUED, Limits,
    OAuthSettings, RateLimit, TlsSettings, TokenSource, UpstreamConfig, WebhookSettings,
};
pub(crate) use startup::StartupSettings;
pub use url::BaseUrl;

use crate::diagnostic::{Diagnostics, parse_yaml_all_keys, read_source};
use raw::RawConfig;

/// The JSON Schema of config files, generated from the types that read them.
pub(crate) fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(RawConfig).to_value();
    schema["title"] = "glgate config".into();
    schema
}

impl Config {
    /// Reads and compiles a config file and every policy it names.
    pub(crate) fn load(path: &Path) -> Result<Config, Diagnostics> {
        let text = read_source(path, "config")?;
        Config::compile(path, &text)
    }

    /// Compiles config `text`; `source` names the file and anchors relative paths.
    pub fn compile(source: &Path, text: &str) -> Result<Config, Diagnostics> {
        parse_yaml_all_keys::<RawConfig>(source, text)
            .and_then(|raw| compile::compile(source, raw))
            .map_err(|problems| problems.with_source(source, text))
    }
}

#[cfg(test)]
mod tests;
