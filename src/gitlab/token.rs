//! The GitLab token: read from an environment variable or a file, never from
//! the YAML, and never printed; and the [`Secret`] header that carries it.

use std::fmt;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use crate::config::TokenSource;

/// The header GitLab reads a personal access token from.
pub(crate) const GITLAB_TOKEN_HEADER: &str = "private-token";

/// The GitLab credential. Its `Debug` is redacted and it has no `Display`.
#[derive(Clone)]
pub struct UpstreamToken(Arc<HeaderValue>);

/// Why the token could not be read. Never holds the token itself.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The variable is not set (or not Unicode).
    #[error("environment variable {0} (upstream.token_env) is not set")]
    MissingEnv(String),
    /// The file could not be read.
    #[error("cannot read token file {path} ({key}): {source}")]
    File {
        /// The file.
        path: String,
        /// The config key naming it.
        key: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Empty, or not a single printable line.
    #[error("the GitLab token from {0} is empty or holds characters a token cannot have")]
    Invalid(String),
}

impl UpstreamToken {
    /// Reads the token from its source (for OAuth: the refresh token).
    pub(crate) fn read(source: &TokenSource) -> Result<UpstreamToken, TokenError> {
        let (text, origin) = match source {
            TokenSource::Env(name) => (
                std::env::var(name).map_err(|_| TokenError::MissingEnv(name.clone()))?,
                format!("${name}"),
            ),
            TokenSource::File(path) => {
                return UpstreamToken::read_file(path, "upstream.token_file");
            }
            TokenSource::OAuth(settings) => {
                return UpstreamToken::read_file(
                    &settings.refresh_token_file,
                    "upstream.oauth.refresh_token_file",
                );
            }
        };
        UpstreamToken::from_text(text.trim_end_matches(['\n', '\r']), &origin)
    }

    /// Reads a secret from the file `path`, which config key `key` names.
    pub(crate) fn read_file(
        path: &std::path::Path,
        key: &'static str,
    ) -> Result<UpstreamToken, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
            path: path.display().to_string(),
            key,
            source,
        })?;
        UpstreamToken::from_text(
            text.trim_end_matches(['\n', '\r']),
            &path.display().to_string(),
        )
    }

    /// Wraps a token given as text; `origin` names where it came from in errors.
    pub(crate) fn from_text(text: &str, origin: &str) -> Result<UpstreamToken, TokenError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Invalid(origin.to_owned()));
        }
        let mut value =
            HeaderValue::from_str(text).map_err(|_| TokenError::Invalid(origin.to_owned()))?;
        value.set_sensitive(true);
        Ok(UpstreamToken(Arc::new(value)))
    }

    /// The header value to send to GitLab (marked sensitive: never indexed by HPACK).
    pub(crate) fn header_value(&self) -> HeaderValue {
        (*self.0).clone()
    }

    /// The token as text, for a form field or a file. Never log it.
    pub(crate) fn expose(&self) -> &str {
        // Built from checked ASCII text, so always valid UTF-8.
        self.0.to_str().unwrap_or_default()
    }

    /// Whether two tokens are the same secret.
    pub(crate) fn same_as(&self, other: &UpstreamToken) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpstreamToken(<redacted>)")
    }
}

/// The value sent to GitLab: `PRIVATE-TOKEN: <pat>` or
/// `Authorization: Bearer <oauth access token>`. `Debug` is redacted.
#[derive(Clone)]
pub(crate) struct Secret {
    header: HeaderName,
    value: HeaderValue,
}

impl Secret {
    /// A personal (or project/group) access token, sent as `PRIVATE-TOKEN`.
    pub(crate) fn personal(token: &UpstreamToken) -> Secret {
        Secret {
            header: HeaderName::from_static(GITLAB_TOKEN_HEADER),
            value: token.header_value(),
        }
    }

    /// An OAuth access token, sent as `Authorization: Bearer`.
    pub(crate) fn bearer(access_token: &UpstreamToken) -> Secret {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", access_token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        value.set_sensitive(true);
        Secret {
            header: http::header::AUTHORIZATION,
            value,
        }
    }

    /// The header name.
    pub(crate) fn header_name(&self) -> HeaderName {
        self.header.clone()
    }

    /// The header value, borrowed: to compare two secrets without a copy.
    pub(crate) fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// The header value (marked sensitive).
    pub(crate) fn header_value(&self) -> HeaderValue {
        self.value.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}: <redacted>)", self.header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let token = UpstreamToken::from_text("glpat-secret", "test").unwrap();
        assert!(!format!("{token:?}").contains("secret"));
        assert!(UpstreamToken::from_text("", "test").is_err());
        assert!(UpstreamToken::from_text("a b", "test").is_err());
    }
}
